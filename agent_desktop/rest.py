"""The JSON REST API for integrations: customers, contacts, tickets, queue and agent status.

twisted.web on a port of its own (``[desktop] api_bind``/``api_port``, off unless ``api_enabled``):
the desktop port's websockets HTTP parser refuses request bodies.  A client logs in with
``POST /api/login`` on the desktop port and sends the session's token as ``Authorization: Bearer
<token>`` until it gets a 401, then logs in again (with Redis, a token from any daemon of the center
is looked up there once, then cached: ``sessions_redis.py``).  Every handler is a Twisted coroutine
awaiting the CRM store's Deferreds (its thread pool), with a timeout, so the reactor never waits.
README.md in this package lists the endpoints, fields and answers.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from sqlalchemy import exc as sa_exc
from twisted.internet import defer
from twisted.protocols.policies import WrappingFactory
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from agent_desktop import auth
from agent_desktop.actions import SUPERVISOR_ROLES, _plain
from agent_desktop.scope import Scope
from agent_desktop.sessions_redis import RedisSessions, SessionsUnavailable
from callcenter.aio import as_deferred
from callcenter.config import DesktopConfig
from callcenter.netservice import ListenService
from crm_core.errors import Conflict, CrmError, InvalidInput, InvalidTransition, NotFound

logger = logging.getLogger(__name__)

#: Request bodies larger than this are refused (413) without being kept.
MAX_BODY = 64 * 1024
#: A CRM call not answered within this many seconds answers 503.
CRM_TIMEOUT = 10.0
#: Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT = 60
#: Errors that mean the CRM is down or unreachable (503), not a bug (500).
CRM_DOWN = (ConnectionError, OSError, RuntimeError, sa_exc.OperationalError, sa_exc.InterfaceError,
            sa_exc.DisconnectionError, sa_exc.TimeoutError)
JSON_HEADERS = ((b"Content-Type", b"application/json; charset=utf-8"), (b"Cache-Control", b"no-store"),
                (b"X-Content-Type-Options", b"nosniff"), (b"Server", b"callcenter"))
TICKET_FIELDS = ("subject", "kind", "description", "customer_id", "call_id", "priority", "owner", "due_at", "key")
CHANGE_FIELDS = ("status", "priority", "owner", "note", "due_at", "version")


class ApiError(Exception):
    """A request answered with ``status`` and ``{"error": message, "field": field?}``."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: tuple[tuple[bytes, bytes], ...] = (), **extra: Any):
        super().__init__(message)
        self.status = status
        self.doc: dict[str, Any] = {"error": message, **({"field": field} if field else {}), **extra}
        self.headers = headers


@dataclass
class Call:
    """One authenticated request, as handlers see it."""

    session: auth.Session
    request: Request
    query: dict[str, str]
    #: The JSON object sent (POST, PATCH); empty for GET.
    body: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    status: int
    doc: dict[str, Any]
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[Call], Awaitable[Any]]


# -- input checks: each refusal names the field ------------------------------------------------------


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False,
          nullable: bool = False) -> str | None:
    value = body.get(name)
    if value is None and (not required or (nullable and name in body)):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not _utf8(value):
        raise ApiError(400, f"'{name}' must be a text of 1 to {limit} characters"
                       + (" or null" if nullable else ""), name)
    return value.strip()


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) in the JSON
        return False
    return True


def _number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 63:
        raise ApiError(400, f"'{name}' must be a positive whole number", name)
    return value


def _moment(value: Any, name: str) -> datetime:
    """An ISO 8601 time with its UTC offset (``2026-03-01T09:00:00+08:00`` or ``...Z``)."""
    if isinstance(value, str):
        # An unencoded '+' in a query string arrives as a space: take it back.
        text = value.strip().replace(" ", "+") if "T" in value else value
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    raise ApiError(400, f"'{name}' must be an ISO 8601 time with its offset, e.g. 2026-03-01T09:00:00+08:00", name)


def _only(given: Any, allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        expected = f"expected one of: {', '.join(allowed)}" if allowed else f"this path takes no {what}s"
        raise ApiError(400, f"unknown {what} '{unknown[0]}'; {expected}", unknown[0])


def _limit(query: dict[str, str], default: int, most: int) -> int:
    text = query.get("limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not 1 <= int(text) <= most:
        raise ApiError(400, f"'limit' must be a whole number from 1 to {most}", "limit")
    return int(text)


def _path_id(name: bytes) -> int | None:
    """A positive number from a path segment, or None (the path then answers 404)."""
    return int(name) if name.isdigit() and len(name) <= 18 and int(name) > 0 else None


# -- the API: one handler per endpoint ------------------------------------------------------------------


class RestApi:
    """The handlers.  ``sessions``: the desktop's ``auth.SessionStore``; ``scope_of(session)``: what it may
    see; ``store()``: the CRM store or None; ``acd()``: the ACD service (``queue_rows``, ``agent_rows``)
    or None; ``clock``: the reactor (CRM timeouts); ``shared``: with Redis, the center's sessions, whose
    cache ``sessions`` is."""

    def __init__(self, sessions: Any, scope_of: Callable[[auth.Session], Scope], store: Callable[[], Any],
                 acd: Callable[[], Any], clock: Any, crm_timeout: float = CRM_TIMEOUT,
                 shared: RedisSessions | None = None) -> None:
        self._sessions = sessions
        self._shared = shared
        self._scope_of = scope_of
        self._store = store
        self._acd = acd
        self._clock = clock
        self._crm_timeout = crm_timeout

    async def _crm(self, call: Callable[[Any], "defer.Deferred[Any]"]) -> Any:
        """``call(store)``'s result; 503 when there is no CRM, it is down or it does not answer in time."""
        store = self._store()
        if store is None:
            raise ApiError(503, "the CRM is not available; try again later")
        try:
            return await call(store).addTimeout(self._crm_timeout, self._clock)
        except (CrmError, defer.CancelledError):
            raise
        except defer.TimeoutError as exc:  # the job still runs to its end (DbPool): a retry must be idempotent
            logger.warning("REST API: the CRM did not answer within %.1f s", self._crm_timeout)
            raise ApiError(503, "the CRM did not answer in time; try again later") from exc
        except CRM_DOWN as exc:
            logger.warning("REST API: the CRM failed: %s: %s", type(exc).__name__, str(exc)[:200])
            raise ApiError(503, "the CRM is not available; try again later") from exc

    # -- customers and contacts --
    async def find_customers(self, call: Call) -> dict[str, Any]:
        _only(call.query, ("phone", "q", "limit"), "parameter")
        phone, text = call.query.get("phone"), call.query.get("q")
        if (phone is None) == (text is None):
            raise ApiError(400, "give one of phone=<number> or q=<name, email, phone or #ticket>")
        limit = _limit(call.query, 20, 100)
        if phone is not None:
            phone = _text(call.query, "phone", 64, required=True)
            found = await self._crm(lambda s: s.lookup_by_ani(phone, limit=limit))
        else:
            text = _text(call.query, "q", 200, required=True)
            found = await self._crm(lambda s: s.search(text, limit=limit))
        return {"customers": _plain(list(found))}

    async def customer(self, customer_id: int, call: Call) -> dict[str, Any]:
        _only(call.query, (), "parameter")
        view = await self._crm(lambda s: s.customer_view(customer_id))
        if view is None:
            raise ApiError(404, f"no customer {customer_id}")
        doc = _plain(view)
        doc.update(balance=_plain(view.balance), arrears=_plain(view.arrears),
                   arrears_since=_plain(view.arrears_since))
        return {"customer": doc}

    async def history(self, customer_id: int, call: Call) -> dict[str, Any]:
        _only(call.query, ("before", "limit"), "parameter")
        before = _moment(call.query["before"], "before") if "before" in call.query else None
        limit = _limit(call.query, 50, 200)
        found = await self._crm(lambda s: s.history(customer_id, before=before, limit=limit))
        if not found.contacts and not found.tickets and await self._crm(
                lambda s: s.customer_view(customer_id)) is None:
            raise ApiError(404, f"no customer {customer_id}")
        return {"history": _plain(found)}

    async def contact(self, linkedid: str, call: Call) -> dict[str, Any]:
        _only(call.query, (), "parameter")
        record = await self._crm(lambda s: s.contact(linkedid))
        if record is None:
            raise ApiError(404, f"no call {linkedid}")
        return {"contact": _plain(record)}

    # -- tickets --
    async def ticket(self, ticket_id: int, call: Call) -> dict[str, Any]:
        _only(call.query, (), "parameter")
        detail = await self._crm(lambda s: s.ticket(ticket_id))
        if detail is None:
            raise ApiError(404, f"no ticket {ticket_id}")
        return {"ticket": {**_plain(detail.ticket), "description": detail.description,
                           "linkedids": list(detail.linkedids), "history": _plain(detail.history)}}

    async def open_ticket(self, call: Call) -> Reply:
        from crm_core.tickets import NewTicket

        body = call.body
        _only(call.query, (), "parameter")
        _only(body, TICKET_FIELDS, "field")
        key = _text(body, "key", 200)
        header_key = _header(call.request, b"Idempotency-Key")
        if header_key is not None:
            header_key = _text({"Idempotency-Key": header_key}, "Idempotency-Key", 200, required=True)
            if key is not None and key != header_key:
                raise ApiError(400, "the Idempotency-Key header and the 'key' field differ", "key")
            key = header_key
        customer_id = _number(body["customer_id"], "customer_id") if body.get("customer_id") is not None else None
        call_id = _text(body, "call_id", 64)
        new = NewTicket(kind=_text(body, "kind", 32) or "consultation",
                        subject=_text(body, "subject", 200, required=True), created_by=call.session.agent,
                        customer_id=customer_id, description=_text(body, "description", 10000),
                        priority=_text(body, "priority", 32) or "normal", owner=_text(body, "owner", 64),
                        due_at=_moment(body["due_at"], "due_at") if body.get("due_at") is not None else None,
                        linkedids=(call_id,) if call_id else (), idempotency_key=key)
        try:
            summary = await self._crm(lambda s: s.open_ticket(new))
        except NotFound as exc:
            raise ApiError(400, str(exc), "customer_id") from exc
        if key is not None and (summary.kind, summary.subject, summary.customer_id, summary.created_by) != (
                new.kind, new.subject, new.customer_id, new.created_by):
            raise ApiError(409, f"the idempotency key was used for ticket {summary.id}, opened with other values",
                           "key", ticket_id=summary.id)
        return Reply(201, {"ticket": _plain(summary)}, ((b"Location", f"/api/v1/tickets/{summary.id}".encode()),))

    async def change_ticket(self, ticket_id: int, call: Call) -> dict[str, Any]:
        body = call.body
        _only(call.query, (), "parameter")
        if "subject" in body:
            raise ApiError(400, "'subject' cannot be changed; add a 'note' instead", "subject")
        _only(body, CHANGE_FIELDS, "field")
        if not body:
            raise ApiError(400, f"send at least one of: {', '.join(CHANGE_FIELDS)}")
        changes: dict[str, Any] = {}
        for name, limit in (("status", 32), ("priority", 32), ("note", 10000)):
            if name in body:
                changes[name] = _text(body, name, limit, required=True)
        if "owner" in body:
            changes["owner"] = _text(body, "owner", 64, required=True, nullable=True)
        if "due_at" in body:
            changes["due_at"] = None if body["due_at"] is None else _moment(body["due_at"], "due_at")
        if "version" in body:
            changes["expected_version"] = _number(body["version"], "version")
        summary = await self._crm(lambda s: s.change_ticket(ticket_id, call.session.agent, **changes))
        return {"ticket": _plain(summary)}

    # -- live status, limited to what the session may see --
    def _running_acd(self) -> Any:
        acd = self._acd()
        if acd is None:
            raise ApiError(503, "the ACD is not running")
        return acd

    async def queues(self, call: Call) -> dict[str, Any]:
        _only(call.query, (), "parameter")
        acd = self._running_acd()
        scope = self._scope_of(call.session)
        return {"queues": [row for row in acd.queue_rows() if scope.sees_queue(row["queue"])]}

    async def agents(self, call: Call) -> dict[str, Any]:
        _only(call.query, (), "parameter")
        acd = self._running_acd()
        scope = self._scope_of(call.session)
        rows = [row for row in acd.agent_rows() if scope.sees_agent(row["agent"])]
        if call.session.role not in SUPERVISOR_ROLES:  # an agent: only themselves, whatever the scope says
            rows = [row for row in rows if row["agent"] == call.session.agent]
        return {"agents": rows}

    async def _session(self, token: str | None) -> auth.Session | None:
        """``token``'s live session: cached here, else (with Redis) looked up; 503 when Redis is down."""
        found = self._sessions.get(token)
        if found is None and token and self._shared is not None:
            try:
                found = await as_deferred(self._shared.fetch(token))
            except SessionsUnavailable as exc:  # logged by the store
                raise ApiError(503, "sessions are not available (Redis does not answer); try again later") from exc
        return found

    # -- one exchange: method, authentication, body, handler, answer --------------------------------
    def serve(self, request: Request, methods: dict[bytes, Handler]) -> Any:
        """Answer ``request`` with one of ``methods`` (none: 404); JSON, never a traceback."""
        started = self._clock.seconds()
        who = "-"
        gone = False

        async def run() -> Reply:
            nonlocal who
            if not methods:
                raise ApiError(404, "no such API path")
            handler = methods.get(request.method)
            if handler is None:
                allow = ", ".join(sorted(m.decode() for m in methods))
                raise ApiError(405, f"use {allow}", headers=((b"Allow", allow.encode()),))
            found = await self._session(auth.bearer_token(_header(request, b"Authorization")))
            if found is None:
                raise _Unauthorized(_header(request, b"Authorization") is not None)
            who = found.agent
            call = Call(found, request, _query_of(request),
                        _body_of(request) if request.method in (b"POST", b"PATCH") else {})
            answer = await handler(call)
            return answer if isinstance(answer, Reply) else Reply(200, answer)

        def failed(failure: Any) -> Reply | None:
            exc = failure.value
            if isinstance(exc, ApiError):
                return Reply(exc.status, exc.doc, exc.headers)
            if isinstance(exc, InvalidInput):
                return Reply(400, {"error": str(exc), "field": exc.field})
            if isinstance(exc, NotFound):
                return Reply(404, {"error": str(exc)})
            if isinstance(exc, (InvalidTransition, Conflict)):
                return Reply(409, {"error": str(exc)})
            if isinstance(exc, CrmError):
                return Reply(400, {"error": str(exc)})
            if gone:
                return None
            logger.error("REST API %s %s failed:\n%s", _show(request.method), _show(request.path),
                         failure.getTraceback())
            return Reply(500, {"error": "internal error; it is logged"})

        def answer(reply: Reply | None) -> None:
            if reply is None or gone:
                return
            _send(request, reply)
            level = logging.DEBUG if reply.status < 300 and request.method == b"GET" else logging.INFO
            logger.log(level, "REST API %s %s -> %d (%s, %.0f ms)", _show(request.method), _show(request.path),
                       reply.status, who, (self._clock.seconds() - started) * 1000)

        def disconnected(_: Any) -> None:
            nonlocal gone
            gone = True
            d.cancel()

        d = defer.ensureDeferred(run())
        request.notifyFinish().addErrback(disconnected)
        d.addErrback(failed).addCallback(answer).addErrback(
            lambda f: logger.error("REST API: answering %s failed: %s", _show(request.path), f.getErrorMessage()))
        return NOT_DONE_YET


class _Unauthorized(ApiError):
    def __init__(self, sent: bool):
        challenge = 'Bearer realm="callcenter"' + (', error="invalid_token"' if sent else "")
        super().__init__(401, "the token is unknown or expired; log in again with POST /api/login on the desktop port"
                         if sent else "send a session token: Authorization: Bearer <token> (POST /api/login on the "
                         "desktop port)", headers=((b"WWW-Authenticate", challenge.encode()),))


def _header(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def _show(value: bytes | None) -> str:
    """A request's method or path for a log line: bounded, never raw control bytes."""
    return repr((value or b"")[:200])[2:-1]


def _query_of(request: Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for raw, values in (request.args or {}).items():
        try:
            name = raw.decode("utf-8")
            decoded = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise ApiError(400, "the query string is not UTF-8") from None
        if len(decoded) != 1:
            raise ApiError(400, f"give '{name}' once", name)
        query[name] = decoded[0]
    return query


def _body_of(request: Request) -> dict[str, Any]:
    """The request's JSON object; 413 over MAX_BODY, 415 not JSON, 400 not a JSON object."""
    content = request.content
    if getattr(content, "too_large", False):
        raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
    ctype = (_header(request, b"Content-Type") or "application/json").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    content.seek(0)
    raw = content.read()
    if not raw.strip():
        raise ApiError(400, "send a JSON object in the body")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None
    except ValueError as exc:  # NaN, Infinity
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "the body must be a JSON object")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _send(request: Request, reply: Reply) -> None:
    try:
        text = json.dumps(reply.doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, still valid JSON
        text = json.dumps(reply.doc, separators=(",", ":")).encode("ascii")
    request.setResponseCode(reply.status)
    for name, value in (*JSON_HEADERS, *reply.headers, (b"Content-Length", str(len(text)).encode())):
        request.setHeader(name, value)
    request.write(text)
    request.finish()


# -- the resource tree -----------------------------------------------------------------------------------


class _Node(Resource):
    """A path of the API: its methods (none: 404), JSON 404 for unknown children, 405 with Allow for others.
    ``param(segment)`` makes the child for a path parameter (an id), or None (404)."""

    def __init__(self, api: RestApi, methods: dict[bytes, Handler] | None = None,
                 param: Callable[[bytes], Resource | None] | None = None) -> None:
        super().__init__()
        self._api = api
        self._methods = methods or {}
        self._param = param

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802 (twisted.web API)
        if path == b"":  # a trailing slash
            return self
        made = self._param(path) if self._param is not None else None
        return made if made is not None else _Node(self._api)

    def render(self, request: Request) -> Any:
        return self._api.serve(request, self._methods)


def build_tree(api: RestApi) -> Resource:
    """``/api/v1/...``: the endpoints listed in README.md."""
    def node(methods: dict[bytes, Handler] | None = None, param: Any = None, **children: Resource) -> _Node:
        made = _Node(api, methods, param)
        for name, child in children.items():
            made.putChild(name.encode(), child)
        return made

    def customer(segment: bytes) -> Resource | None:
        cid = _path_id(segment)
        return None if cid is None else node({b"GET": functools.partial(api.customer, cid)},
                                             history=node({b"GET": functools.partial(api.history, cid)}))

    def ticket(segment: bytes) -> Resource | None:
        tid = _path_id(segment)
        return None if tid is None else node({b"GET": functools.partial(api.ticket, tid),
                                              b"PATCH": functools.partial(api.change_ticket, tid)})

    def contact(segment: bytes) -> Resource | None:
        try:
            linkedid = segment.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return node({b"GET": functools.partial(api.contact, linkedid)}) if 0 < len(linkedid) <= 64 else None

    v1 = node(customers=node({b"GET": api.find_customers}, customer), contacts=node(param=contact),
              tickets=node({b"POST": api.open_ticket}, ticket), queues=node({b"GET": api.queues}),
              agents=node({b"GET": api.agents}))
    return node(api=node(v1=v1))


# -- the site and the service ----------------------------------------------------------------------------


class _BoundedBody:
    """A request body as it arrives: kept up to MAX_BODY bytes; past that only ``too_large`` is kept."""

    def __init__(self, declared: int | None) -> None:
        self._buffer = io.BytesIO()
        self.too_large = declared is not None and declared > MAX_BODY

    def write(self, data: bytes) -> None:
        if self.too_large:
            return
        if self._buffer.tell() + len(data) > MAX_BODY:
            self.too_large = True
            self._buffer = io.BytesIO()
            return
        self._buffer.write(data)

    def seek(self, *args: Any) -> int:
        return self._buffer.seek(*args)

    def tell(self) -> int:
        return self._buffer.tell()

    def read(self, *args: Any) -> bytes:
        return self._buffer.read(*args)

    def close(self) -> None:
        self._buffer.close()


class ApiSite(Site):
    """The HTTP side: bounded request bodies, idle connections closed after IDLE_TIMEOUT."""

    noisy = False

    def __init__(self, resource: Resource, clock: Any) -> None:
        super().__init__(resource, timeout=IDLE_TIMEOUT, reactor=clock)

    def getContentFile(self, length: int | None) -> Any:  # noqa: N802 (twisted.web API)
        return _BoundedBody(length)

    def log(self, request: Request) -> None:
        """No access log file: ``RestApi`` logs each answer."""


class _Connections(WrappingFactory):
    """The site's open connections, so that ``shutdown()`` (on stop) closes them, keep-alive ones too."""

    noisy = False

    async def shutdown(self) -> None:
        for protocol in list(self.protocols):
            protocol.transport.loseConnection()


class RestService(ListenService):
    """The REST API's port (``[desktop] api_bind``/``api_port``; ``address`` once started)."""

    def __init__(self, config: DesktopConfig, reactor: Any, sessions: Any, scope_of: Callable[[auth.Session], Scope],
                 store: Callable[[], Any], acd: Callable[[], Any], crm_timeout: float = CRM_TIMEOUT,
                 shared: RedisSessions | None = None) -> None:
        self.api = RestApi(sessions, scope_of, store, acd, reactor, crm_timeout, shared)
        site = ApiSite(build_tree(self.api), reactor)
        super().__init__("rest-api", reactor, config.api_bind, config.api_port, _Connections(site))
