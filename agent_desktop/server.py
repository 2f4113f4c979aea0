"""The desktop server: websockets on the daemon's asyncio loop.

One port serves the desktop pages and a small JSON API over HTTP
(``POST /api/login``, ``POST /api/logout``) and the live channel over a
websocket at ``/ws``.  A websocket is authenticated by its first frame
(``auth`` with the token) or by the ``cc_session`` cookie on the upgrade
request.  Sessions are this daemon's (``auth.SessionStore``) or, with Redis,
the center's (``sessions_redis.RedisSessions``, rechecked every
``session_recheck_seconds``).  Bad frames get an ``error`` frame back; they
never reach the daemon's core.  README.md in this package lists the messages,
close codes and limits.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import mimetypes
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

from twisted.internet.task import LoopingCall
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent_desktop import auth, messages
from agent_desktop.actions import ACTIONS, SUPERVISOR_ROLES
from agent_desktop.hub import AcdPort, Desktop, GhostWatch, Hub
from agent_desktop.scope import Scope, scope_for
from agent_desktop.sessions_redis import RedisSessions, SessionsUnavailable
from callcenter.aio import as_deferred, resolved
from callcenter.config import DesktopConfig
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SESSION_EXPIRED = 4440
CLOSE_RATE_LIMITED = 4429
#: The shared sessions (Redis) did not answer: the desktop may try again later.
CLOSE_TRY_AGAIN = 1013
#: How long a new websocket may take to send its ``auth`` frame.
AUTH_TIMEOUT = 10.0
#: Frames refused in a row by the rate limit before the connection is closed.
REFUSALS_BEFORE_CLOSE = 20

#: ``check_password(login, password) -> Deferred[AgentConfig | None]`` (the CRM store's).
PasswordCheck = Callable[[str, str], Any]


def _http(status: http.HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8",
          extra: tuple[tuple[str, str], ...] = ()) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *extra])
    return Response(status.value, status.phrase, headers, body)


def _json(status: http.HTTPStatus, doc: dict[str, Any], extra: tuple[tuple[str, str], ...] = ()) -> Response:
    return _http(status, json.dumps(doc).encode(), "application/json", extra)


#: Sent with every static page: scripts and styles only from files of this origin (no inline code),
#: websockets to this host, no framing, no <base>, forms post only here.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
                           "form-action 'self'")
STATIC_HEADERS = (("Content-Security-Policy", CONTENT_SECURITY_POLICY), ("X-Frame-Options", "DENY"),
                  ("Referrer-Policy", "no-referrer"))


def static_response(path: str) -> Response:
    """A file from static/, or 404; never a path outside static/.  Every answer carries the CSP."""
    name = path.split("?", 1)[0].lstrip("/") or "index.html"
    target = (STATIC / name).resolve()
    if STATIC.resolve() not in target.parents or not target.is_file():
        return _http(http.HTTPStatus.NOT_FOUND, b"not found\n", extra=STATIC_HEADERS)
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript",):
        ctype += "; charset=utf-8"
    return _http(http.HTTPStatus.OK, target.read_bytes(), ctype, STATIC_HEADERS)


class DesktopService(AsyncService):
    """The desktop port.  ``clock`` is the reactor (sessions, expiry, ghost timers, rechecks);
    ``check_password`` returns the CRM's Deferred, or is None without a CRM; ``acd`` returns the ACD
    service or None; ``shared``: the center's sessions in Redis (several daemons), whose cache
    becomes ``sessions``, or None (sessions of this daemon only)."""

    name = "desktop"

    def __init__(self, config: DesktopConfig, clock: Any, check_password: PasswordCheck | None = None,
                 acd: Callable[[], AcdPort | None] = lambda: None, shared: RedisSessions | None = None):
        self._config = config
        self._clock = clock
        self._check_password = check_password
        self._acd = acd
        self.server: Server | None = None
        self.shared = shared
        #: This daemon's sessions: all of them, or with ``shared`` those it has seen (the cache).
        self.sessions = shared.local if shared is not None else auth.SessionStore(clock, config.session_minutes * 60)
        self._rechecks: LoopingCall | None = None
        self._rechecking: Any = None  # the Deferred of the recheck under way
        self.login_failures = auth.FailureLimiter(clock, config.login_failures_per_minute, 60.0)
        self.hub = Hub()
        self.ghosts = GhostWatch(clock, acd, config.heartbeat_seconds)
        self.ghosts.watch(self.hub)
        #: The calls of the agents (``agent_desktop.call_feed.CallFeed``): its snapshot greets each desktop.
        self.feed: Any = None
        #: The supervisors' live queue figures and agent grid (``agent_desktop.wallboard.WallboardFeed``).
        self.wallboard: Any = None
        #: What desktops may ask (``agent_desktop.actions.DesktopActions``); None: only ping.
        self.actions: Any = None
        self._acting: set[asyncio.Future[Any]] = set()

    async def find_session(self, token: str | None) -> auth.Session | None:
        """The live session of ``token``, or None; with Redis, ``SessionsUnavailable`` when a token this
        daemon has not cached cannot be looked up."""
        if self.shared is None:
            return self.sessions.get(token)
        return await self.shared.find(token)

    def scope_of(self, session: auth.Session) -> Scope:
        """What ``session`` may see: its groups' queues and agents under the ACD's current setup."""
        acd = self._acd()
        distributor = getattr(acd, "distributor", None) if acd is not None else None
        return scope_for(session.role, session.groups, distributor.setup if distributor is not None else None,
                         session.agent)

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

    # -- HTTP -------------------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == "/ws":
            if "token" in parse_qs(query):
                return _http(http.HTTPStatus.BAD_REQUEST,
                             b"a token in the URL is refused; send it in the first frame or the cookie\n")
            return None  # go on with the websocket handshake (which checks the Origin)
        if path.startswith("/api/"):
            if request.headers.get("Origin") not in self._origins():
                return _http(http.HTTPStatus.FORBIDDEN, b"origin not allowed\n")
            if request.method != "POST":
                return _json(http.HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST"}, (("Allow", "POST"),))
            if path == "/api/login":
                return await self._login(connection, request)
            if path == "/api/logout":
                return await self._logout(request)
            return _json(http.HTTPStatus.NOT_FOUND, {"error": "no such API"})
        if path == "/healthz":
            return _http(http.HTTPStatus.OK, b"ok\n")
        return static_response(path)

    async def _login(self, connection: ServerConnection, request: Request) -> Response:
        creds = auth.basic_credentials(request.headers.get("Authorization"))
        if creds is None:
            return _json(http.HTTPStatus.BAD_REQUEST, {
                "error": "send the username and password as HTTP Basic credentials (Authorization: Basic ...)"})
        username, password = creds
        keys = (f"user:{username.lower()}", f"addr:{connection.remote_address[0]}")
        wait = self.login_failures.retry_after(*keys)
        if wait > 0:
            return _json(http.HTTPStatus.TOO_MANY_REQUESTS, {"error": "too many failed logins; try again later"},
                         (("Retry-After", str(int(wait) + 1)),))
        if self._check_password is None:
            return _json(http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "logins are not available (no CRM)"})
        try:
            agent = await resolved(self._check_password(username, password))
        except Exception:
            logger.exception("desktop login of %r: the CRM failed", username)
            return _json(http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the CRM is not available; try again"})
        if agent is None:
            self.login_failures.failed(*keys)
            logger.info("desktop login refused for %r from %s", username, connection.remote_address[0])
            return _json(http.HTTPStatus.UNAUTHORIZED, {"error": "wrong username or password"})
        if self.shared is None:
            session = self.sessions.open(agent.login, agent.role, frozenset(agent.groups))
        else:
            try:
                session = await self.shared.open(agent.login, agent.role, frozenset(agent.groups))
            except SessionsUnavailable:  # logged by the store
                return _json(http.HTTPStatus.SERVICE_UNAVAILABLE, {
                    "error": "logins are not available: the shared sessions (Redis) do not answer; try again"})
        logger.info("desktop login: %s (%s) from %s", agent.login, agent.role, connection.remote_address[0])
        cookie = auth.set_cookie(session.token, int(self._config.session_minutes * 60))
        return _json(http.HTTPStatus.OK, {"token": session.token, "expires_at": session.expires_at,
                                          "role": session.role, "agent": session.agent},
                     (("Set-Cookie", cookie),))

    async def _logout(self, request: Request) -> Response:
        token = (auth.bearer_token(request.headers.get("Authorization"))
                 or auth.cookie_token(request.headers.get("Cookie")))
        session = None
        if token and self.shared is None:
            session = self.sessions.close(token)
        elif token:
            try:
                session = await self.shared.close(token)
            except SessionsUnavailable:  # logged by the store; the cookie is kept for the retry
                return _json(http.HTTPStatus.SERVICE_UNAVAILABLE, {
                    "error": "the logout did not reach the shared sessions (Redis); try again"})
        if session is not None:
            self.hub.close_session(session.token, CLOSE_UNAUTHENTICATED, "logged out")
            logger.info("desktop logout: %s", session.agent)
        return _json(http.HTTPStatus.OK, {"ok": True, "ended": session is not None},
                     (("Set-Cookie", auth.set_cookie("", 0)),))

    # -- websocket --------------------------------------------------------------------------------

    async def _authenticate(self, ws: ServerConnection) -> auth.Session | None:
        """The session from the cookie or the first frame; closes the websocket and returns None if none."""
        try:
            return await self._authenticate_by_token(ws)
        except SessionsUnavailable:  # logged by the store
            await ws.close(CLOSE_TRY_AGAIN, "sessions not available; try again later")
            return None

    async def _authenticate_by_token(self, ws: ServerConnection) -> auth.Session | None:
        assert ws.request is not None
        session = await self.find_session(auth.cookie_token(ws.request.headers.get("Cookie")))
        if session is not None:
            return session
        try:
            raw = await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT)
        except ConnectionClosed:
            return None
        except asyncio.TimeoutError:
            await ws.close(CLOSE_UNAUTHENTICATED, "no auth frame in time")
            return None
        try:
            msg = messages.parse_frame(raw)
        except messages.BadFrame as exc:
            await ws.close(CLOSE_UNAUTHENTICATED, f"authenticate first: {exc}"[:120])
            return None
        if msg.type != "auth":
            await ws.close(CLOSE_UNAUTHENTICATED, "authenticate first: send an auth frame with your token")
            return None
        token = msg.body.get("token")
        session = await self.find_session(token) if isinstance(token, str) else None
        if session is None:
            await ws.close(CLOSE_UNAUTHENTICATED, "authentication failed")
        return session

    async def _handler(self, ws: ServerConnection) -> None:
        session = await self._authenticate(ws)
        if session is None:
            return
        desktop = Desktop(ws, session, self._config.send_queue, self.hub.remove)
        self.hub.add(desktop)
        expiry = self._clock.callLater(max(0.0, session.expires_at - self._clock.seconds()),
                                       desktop.close, CLOSE_SESSION_EXPIRED, "session expired")
        desktop.push(messages.frame("welcome", agent=session.agent, role=session.role,
                                    expires_at=session.expires_at))
        if self.feed is not None:
            desktop.push(self.feed.snapshot(session.agent))
        if self.wallboard is not None and session.role in SUPERVISOR_ROLES:
            desktop.push(self.wallboard.snapshot(self.scope_of(session)))
        bucket = auth.TokenBucket(self._clock, self._config.frame_rate, self._config.frame_burst)
        refused = 0
        try:
            async for raw in ws:
                if not bucket.take():
                    refused += 1
                    if refused >= REFUSALS_BEFORE_CLOSE:
                        desktop.stop()
                        self.hub.remove(desktop)
                        await ws.close(CLOSE_RATE_LIMITED, "too many frames")
                        return
                    desktop.push(messages.error_frame("too many frames; slow down"))
                    continue
                refused = 0
                self._on_frame(desktop, raw)
        except ConnectionClosed:
            pass
        finally:
            if expiry.active():
                expiry.cancel()
            desktop.stop()
            self.hub.remove(desktop)

    def _on_frame(self, desktop: Desktop, raw: str | bytes) -> None:
        try:
            msg = messages.parse_frame(raw)
        except messages.BadFrame as exc:
            logger.info("desktop of %s sent a bad frame: %s", desktop.agent, exc)
            desktop.push(messages.error_frame(str(exc)))
            return
        if msg.type == "ping":
            desktop.push(messages.frame("pong", id=msg.body.get("id")))
        elif self.actions is not None and msg.type in ACTIONS:
            task = asyncio.ensure_future(self._act(desktop, msg))
            self._acting.add(task)
            task.add_done_callback(self._acting.discard)
        else:
            desktop.push(messages.error_frame(f"unknown frame type {msg.type!r}"))

    async def _act(self, desktop: Desktop, msg: messages.Frame) -> None:
        """Run one request of the desktop's agent; its ``result`` frame carries the request's ``id``."""
        request_id = msg.body.get("id")
        if request_id is not None and not isinstance(request_id, (str, int)):
            request_id = None
        result = await self.actions.handle(desktop.agent, desktop.role, msg.type, msg.body,
                                           self.scope_of(desktop.session))
        desktop.push(messages.frame("result", id=request_id, request=msg.type, **result))

    # -- lifecycle --------------------------------------------------------------------------------

    async def recheck_sessions(self) -> None:
        """With Redis: close the websockets of the sessions that ended on another daemon (a logout)."""
        assert self.shared is not None
        try:
            gone = await self.shared.recheck()
        except Exception:  # a LoopingCall whose call fails stops for good
            logger.exception("checking the desktop sessions against Redis failed")
            return
        for session in gone:
            logger.info("desktop logout on another daemon: %s", session.agent)
            self.hub.close_session(session.token, CLOSE_UNAUTHENTICATED, "logged out")

    def _recheck_tick(self) -> Any:
        self._rechecking = as_deferred(self.recheck_sessions())
        return self._rechecking

    async def start(self) -> None:
        self.server = await as_deferred(self._serve())
        host, port = self.address
        logger.info("desktop listening on http://%s:%d/ (websocket /ws)", host, port)
        if self.shared is not None:
            self._rechecks = LoopingCall(self._recheck_tick)
            self._rechecks.clock = self._clock
            self._rechecks.start(self._config.session_recheck_seconds, now=False)
            logger.info("desktop sessions shared through Redis, rechecked every %g s",
                        self._config.session_recheck_seconds)

    async def _serve(self) -> Server:
        return await serve(self._handler, self._config.bind, self._config.port,
                           process_request=self._process_request, origins=self._origins(),
                           max_size=messages.MAX_FRAME, ping_interval=self._config.ping_interval or None,
                           ping_timeout=self._config.ping_timeout or None, close_timeout=2,
                           logger=logging.getLogger("agent_desktop.ws"))

    async def stop(self) -> None:
        self.ghosts.stop()
        if self._rechecks is not None and self._rechecks.running:
            self._rechecks.stop()
        if self.feed is not None:
            self.feed.stop()
        if self.server is not None:
            self.server.close(close_connections=True)
            await as_deferred(self.server.wait_closed())
            self.server = None
        if self._rechecking is not None and not self._rechecking.called:
            await self._rechecking  # never fails; bounded by the Redis timeout
        if self.shared is not None:
            await as_deferred(self.shared.stop())
