"""A desktop as a test drives it: ``POST /api/login``, then the websocket, from plain threads.

Tests that run the daemon in its own process (the real-Asterisk suites) act
through the same door as a browser: they log in with Basic credentials, open
``/ws`` with the session cookie, send request frames and read the ``pop``,
``call``, ``agent`` and ``result`` frames the daemon pushes.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.request
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def login(port: int, user: str, password: str, host: str = "127.0.0.1") -> dict[str, Any]:
    """``POST /api/login``: the answer's JSON (``token``, ``role``, ...); raises on anything but 200."""
    creds = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"http://{host}:{port}/api/login", method="POST",
                                     headers={"Authorization": f"Basic {creds}"})
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read())


class DesktopClient:
    """One logged-in desktop: a websocket and a thread collecting every frame it receives."""

    def __init__(self, port: int, user: str, password: str, host: str = "127.0.0.1") -> None:
        self.session = login(port, user, password, host)
        self.ws = connect(f"ws://{host}:{port}/ws", additional_headers={"Cookie": f"cc_session={self.session['token']}"},
                          open_timeout=15, legacy=True)
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int | None, str] | None = None
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, name=f"desktop-{user}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                with self._changed:
                    self.frames.append(json.loads(raw))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        with self._changed:
            self.closed = (self.ws.close_code, self.ws.close_reason or "")
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.frames)

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0, what: str = "a frame",
             since: int = 0) -> dict[str, Any]:
        """The first frame from index ``since`` on that ``match``es, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for frame in self.frames[since:]:
                    if match(frame):
                        return frame
                left = deadline - time.monotonic()
                if left <= 0 or self.closed is not None:
                    types = [f.get("type") + (f"/{f['state']}" if "state" in f else "") for f in self.frames[since:]]
                    raise AssertionError(f"no {what} within {timeout} s (closed: {self.closed}); got {types}")
                self._changed.wait(left)

    def wait_type(self, kind: str, timeout: float = 15.0, since: int = 0, **where: Any) -> dict[str, Any]:
        return self.wait(lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in where.items()),
                         timeout, f"{kind} frame {where}", since)

    def request(self, _type: str, _timeout: float = 15.0, **body: Any) -> dict[str, Any]:
        """Send one request frame of type ``_type`` with ``body`` and return its ``result`` frame."""
        request_id = next(self._ids)
        since = self.mark()
        self.ws.send(json.dumps({"type": _type, "id": request_id, **body}))
        return self.wait(lambda f: f.get("type") == "result" and f.get("id") == request_id, _timeout,
                         f"result of {_type}", since)

    def ok(self, _type: str, **body: Any) -> dict[str, Any]:
        result = self.request(_type, **body)
        assert result["ok"], result
        return result

    def close(self) -> None:
        self.ws.close()
        self._reader.join(5)

    def __enter__(self) -> "DesktopClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

