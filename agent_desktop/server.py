"""The desktop server: websockets on the daemon's asyncio loop.

One port serves the desktop pages over HTTP and the live channel over a
websocket at ``/ws``.  Bad frames get an ``error`` frame back; they never
close the connection or reach the daemon's core.
"""

from __future__ import annotations

import http
import logging
import mimetypes
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agent_desktop import messages
from callcenter.aio import as_deferred
from callcenter.config import DesktopConfig
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def _http(status: http.HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")])
    return Response(status.value, status.phrase, headers, body)


def static_response(path: str) -> Response:
    """A file from static/, or 404; never a path outside static/."""
    name = path.split("?", 1)[0].lstrip("/") or "index.html"
    target = (STATIC / name).resolve()
    if STATIC.resolve() not in target.parents or not target.is_file():
        return _http(http.HTTPStatus.NOT_FOUND, b"not found\n")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript",):
        ctype += "; charset=utf-8"
    return _http(http.HTTPStatus.OK, target.read_bytes(), ctype)


class DesktopService(AsyncService):
    name = "desktop"

    def __init__(self, config: DesktopConfig):
        self._config = config
        self.server: Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self.server is None:
            raise RuntimeError("desktop server is not running")
        sock = next(iter(self.server.sockets))
        host, port = sock.getsockname()[:2]
        return host, port

    def _origins(self) -> list[str | None]:
        local = {self._config.bind, "127.0.0.1", "localhost"}
        own = [f"http://{h}:{self._config.port}" for h in sorted(local)]
        # None admits clients that send no Origin (not browsers: tools, tests).
        return [*self._config.allowed_origins, *own, None]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None  # go on with the websocket handshake
        if path == "/healthz":
            return _http(http.HTTPStatus.OK, b"ok\n")
        return static_response(path)

    async def _handler(self, ws: ServerConnection) -> None:
        await ws.send(messages.frame("hello", server="callcenter"))
        async for raw in ws:
            try:
                msg = messages.parse_frame(raw)
            except messages.BadFrame as exc:
                logger.info("desktop %s sent a bad frame: %s", ws.remote_address, exc)
                await ws.send(messages.error_frame(str(exc)))
                continue
            if msg.type == "ping":
                await ws.send(messages.frame("pong", id=msg.body.get("id")))
            else:
                await ws.send(messages.error_frame(f"unknown frame type {msg.type!r}"))

    async def start(self) -> None:
        self.server = await as_deferred(self._serve())
        host, port = self.address
        logger.info("desktop listening on http://%s:%d/ (websocket /ws)", host, port)

    async def _serve(self) -> Server:
        return await serve(self._handler, self._config.bind, self._config.port,
                           process_request=self._process_request, origins=self._origins(),
                           max_size=messages.MAX_FRAME, logger=logging.getLogger("agent_desktop.ws"))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close(close_connections=True)
            await as_deferred(self.server.wait_closed())
            self.server = None
