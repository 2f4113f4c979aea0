"""The AMI link: panoramisk's Manager, with the parts that break replaced.

Kept from panoramisk 1.4: ``Manager`` (configuration, login, event pattern
registration), ``Action`` (ActionID generation and the future the answer is
delivered on) and the protocol's map of pending actions by ActionID, through
which every answer is routed to its action.

Replaced, and why:

* deciding when an action is answered (``Action.multi`` / ``completed``):
  panoramisk guesses a list from the reply's ``Message:`` text ("will
  follow", "Added ... to queue", "successfully queued") and so waits for the
  end of a list that never comes after QueueAdd, Originate and Atxfer (single
  replies): they timed out although they had succeeded, and a retry of a
  timed-out Originate dialled twice.  It also ends a list at the first
  message with a ``Response:`` header, and never ends one answered with
  ``Response: Error``.  Here every action DECLARES its reply shape in
  ``ami_actions`` (single, or a list and its completing event);
  :class:`DeclaredAction` completes a single action with its first message
  and a list with its completing event, or at once with an error response.
  An action without a declared shape is refused before it is sent.  The
  OriginateResponse event that reports an Originate's outcome is therefore
  no longer swallowed by the action: it reaches the listener like any event;
* logging in: panoramisk waits for the Login answer forever, so a peer that
  accepts TCP but never sends the banner or never answers Login left the
  link stuck; the answer must come within ``login_timeout`` or the
  connection is closed and reopened with the usual backoff;
* framing and decoding (``AMIProtocol.data_received``): panoramisk decodes
  each TCP chunk on its own with ``errors='ignore'``, dropping a UTF-8
  character split between reads, and splits on ``\\r\\n\\r\\n`` from byte 0,
  gluing the banner to the Login response.  We use the byte-level
  ``ami_codec.AMIDecoder``, which also bounds memory (a message over 64 KiB
  drops the connection, which is then reopened);
* encoding (``AMIProtocol.send``): ``ami_codec.encode_action`` refuses CR, LF
  and NUL in any header (injection) and over-long lines;
* pending actions on disconnect: panoramisk queues them and re-sends them
  after the next login, which could dial a customer twice; we fail them with
  ``AMILinkDown``;
* connecting: panoramisk retries on a fixed 2 s timer; we run one loop with
  exponential backoff and jitter (first retry <= 1 s, cap 30 s);
* pings: panoramisk sends Ping and never looks at the answer; ours must be
  answered within ``ping_timeout`` or the link is declared dead and reopened,
  so a half-open TCP link is noticed within ``ping_interval + ping_timeout``;
* event dispatch: in panoramisk an exception raised by one handler kills
  the connection; here every listener call is guarded and logged with the
  event name and the call id;
* after every (re)login the listener gets a snapshot from CoreShowChannels,
  QueueStatus and Status before any further event ("resync"); events that
  arrive meanwhile are held and delivered after the snapshot, in order;
* Asterisk restarts are detected (Shutdown event, a new CoreStartupTime, or
  FullyBooted's Uptime going down) and reported to the listener.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol as PanoramiskProtocol
from panoramisk.message import Message

from callcenter.asterisk.ami_actions import ActionSpec, UnknownAMIAction, spec_for
from callcenter.asterisk.ami_codec import AMIDecoder, AMIMessage, FrameTooLarge, encode_action
from callcenter.backoff import Backoff
from callcenter.logging import call_id_context, truncated

logger = logging.getLogger(__name__)

__all__ = ["AMIActionFailed", "AMIActionTimeout", "AMIClient", "AMILinkDown", "AMIListener", "AMISnapshot",
           "AMIUnexpectedReply", "DeclaredAction", "UnknownAMIAction"]

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class AMILinkDown(ConnectionError):
    """No authenticated AMI connection, or it closed before the answer came."""


class AMIActionTimeout(TimeoutError):
    """Asterisk did not answer an action in time."""


class AMIActionFailed(Exception):
    """Asterisk answered ``Response: Error``; ``message`` is its reason."""

    def __init__(self, action: str, message: str, response: AMIMessage):
        self.action, self.message, self.response = action, message, response
        super().__init__(f"{action} failed: {message}")


class AMIUnexpectedReply(Exception):
    """Asterisk answered a list action with something that starts no list (not ``EventList: start``)."""


@dataclass(frozen=True)
class AMISnapshot:
    """What Asterisk reported right after a (re)login."""

    channels: tuple[AMIMessage, ...]       # CoreShowChannel events
    queue_status: tuple[AMIMessage, ...]   # QueueParams / QueueMember / QueueEntry events
    status: tuple[AMIMessage, ...]         # Status events
    restarted: bool                        # Asterisk restarted since the previous login
    core_status: AMIMessage | None = None


class AMIListener(Protocol):
    def ami_snapshot(self, snapshot: AMISnapshot) -> None: ...
    def ami_event(self, event: AMIMessage) -> None: ...
    def ami_link_down(self) -> None: ...


class DeclaredAction(Action):
    """panoramisk's Action (ActionID, future) completed by its DECLARED reply shape, never by guessing.

    ``add_message`` gets every message carrying this ActionID, in order.  A
    single action is answered by its first message.  A list action is answered
    at once by a first message that does not start a list (``Response: Error``
    ...), else by the list's completing event (its result is then every
    message: the start response, the items, the completing event).  Headers
    go out in the order given (``pairs``).
    """

    def __init__(self, name: str, pairs: list[tuple[str, str]], spec: ActionSpec):
        fields: dict[str, Any] = {"Action": name}
        for key, value in pairs:
            fields.setdefault(key, []).append(value)
        super().__init__({k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in fields.items()})
        self.name, self.pairs, self.spec = name, pairs, spec
        self.messages: list[AMIMessage] = []

    def add_message(self, message: AMIMessage) -> bool:  # type: ignore[override]
        """Take one message; True once the action is answered (the caller then forgets it)."""
        if self.future.done():
            return True
        self.messages.append(message)
        if not self.spec.is_list:
            self.future.set_result(message)
            return True
        if len(self.messages) == 1 and not _starts_list(message):
            self.future.set_result([message])
            return True
        if message.kind == "event" and message.name.lower() == self.spec.complete.lower():
            self.future.set_result(list(self.messages))
            return True
        return False


def _starts_list(msg: AMIMessage) -> bool:
    return (msg.kind == "response" and msg.name.lower() == "success"
            and (msg.get("EventList") or "").lower() == "start")


def _as_panoramisk(msg: AMIMessage) -> Message:
    headers: dict[str, Any] = {}
    for key, value in msg.headers:
        if key in headers:
            old = headers[key]
            headers[key] = (old if isinstance(old, list) else [old]) + [value]
        else:
            headers[key] = value
    out = Message(headers)
    out.ami = msg
    return out


class AMIProtocol(PanoramiskProtocol):
    """panoramisk's protocol with byte framing, safe encoding and failed pendings."""

    max_message_bytes = 64 * 1024

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.decoder = AMIDecoder(self.max_message_bytes)

    def send(self, data: Any, as_list: bool | None = None) -> "asyncio.Future[Any]":
        """Send a :class:`DeclaredAction` (or a dict, as panoramisk's Manager does for Login).

        ``as_list`` is panoramisk's per-call override and is ignored: the
        action's declared shape decides.  An undeclared action fails its
        future with :class:`UnknownAMIAction` and is not sent.
        """
        if not isinstance(data, DeclaredAction):
            name, pairs = "", []
            for key, value in dict(data).items():
                if key.lower() == "action":
                    name = str(value)
                elif key.lower() != "actionid":
                    for item in value if isinstance(value, (list, tuple)) else [value]:
                        pairs.append((key, str(item)))
            try:
                data = DeclaredAction(name, pairs, spec_for(name, pairs))
            except ValueError as exc:
                failed: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
                failed.set_exception(exc)
                return failed
        payload = encode_action(data.name, data.pairs, action_id=data.action_id)
        if self.closed:
            data.future.set_exception(AMILinkDown(f"AMI link is closed; {data.name} not sent"))
            return data.future
        self.responses[data.action_id] = data
        self.transport.write(payload)
        return data.future

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.decoder.feed(data)
        except FrameTooLarge as exc:
            messages = exc.messages
            logger.error("AMI message over %d bytes; reopening the connection: %s", self.max_message_bytes, exc)
            self._deliver(messages)
            self.transport.abort()
            return
        for err in self.decoder.pop_errors():
            logger.warning("AMI bytes skipped: %s", err)
        if self.version is None and self.decoder.protocol_version:
            self.version = self.decoder.protocol_version
            logger.info("AMI protocol version %s", self.version)
        self._deliver(messages)

    def _deliver(self, messages: list[AMIMessage]) -> None:
        for msg in messages:
            action = self.responses.get(msg.action_id) if msg.action_id else None
            if action is not None:
                try:
                    if action.add_message(msg):
                        self.responses.pop(msg.action_id, None)
                except Exception:
                    logger.exception("AMI answer to %s could not be matched: %s", action.name,
                                     truncated(repr(msg.headers)))
                    self.responses.pop(msg.action_id, None)
            elif msg.kind == "event":
                self.factory.dispatch_ami(msg)
            else:
                logger.debug("AMI message nobody waits for: %s", truncated(repr(msg.headers)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.close()
            self.factory.connection_lost(exc)

    def close(self) -> None:
        """Fail every pending action (never re-send them) and close."""
        pending, self.responses = list(self.responses.values()), {}
        for action in pending:
            if not action.future.done():
                action.future.set_exception(AMILinkDown(f"AMI link closed before {action.name} was answered"))
        if not self.closed:
            self.closed = True
            self.transport.close()


class AMIClient(Manager):
    """An AMI connection that keeps itself up until ``close_and_wait()``."""

    def __init__(self, *, host: str, port: int, username: str, secret: str, ssl: bool = False,
                 loop: asyncio.AbstractEventLoop, listener: AMIListener | None = None,
                 backoff: Backoff = Backoff(), connect_timeout: float = 5.0, login_timeout: float = 10.0,
                 ping_interval: float = 5.0, ping_timeout: float = 5.0, action_timeout: float = 10.0,
                 rand: Callable[[], float] = random.random):
        super().__init__(host=host, port=port, username=username, secret=secret, ssl=ssl,
                         loop=loop, events="on", log=logger, protocol_factory=AMIProtocol,
                         ping_delay=ping_interval, ping_interval=ping_interval)
        self.ping_delay = self.ping_interval = ping_interval  # panoramisk casts to int
        self.listener = listener
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.login_timeout = login_timeout
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self._rand = rand
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[Any] | None = None
        self._closing = False
        self._resyncing = False
        self._held: list[AMIMessage] = []
        self._startup: tuple[str, str] | None = None
        self._uptime: int | None = None
        self._restart_seen = False
        self.attempts = 0
        self.logged_in = asyncio.Event()

    # -- actions ---------------------------------------------------------
    async def action(self, name: str, headers: Headers = (), *, timeout: float | None = None) -> Any:
        """Send an action; return its response, or for a list action every message of the list.

        Whether ``name`` is answered by one response or by a list is declared
        in ``ami_actions`` (a list's result is the start response, the items
        and the completing event).  Raises ``UnknownAMIAction`` (a ValueError)
        for an action without a declared shape and ``ValueError`` for a header
        holding CR, LF or NUL, both before anything is sent;
        ``AMILinkDown`` when not logged in or when the link drops;
        ``AMIActionTimeout`` after ``timeout`` seconds; ``AMIActionFailed`` on
        ``Response: Error``; ``AMIUnexpectedReply`` when a list action's answer
        starts no list.  Originate is always sent with ``Async: true``: its
        answer says it was queued and its outcome arrives later as the
        OriginateResponse event (with this action's ActionID) at the listener.
        """
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        spec = spec_for(name, pairs)
        if spec.name == "Originate":
            pairs = [(k, v) for k, v in pairs if k.lower() != "async"] + [("Async", "true")]
        encode_action(name, pairs)  # validate before anything is registered
        if not self.authenticated or self.protocol is None or self.protocol.closed:
            raise AMILinkDown(f"AMI is not connected; {name} not sent")
        action = DeclaredAction(spec.name, pairs, spec)
        future = self.protocol.send(action)
        limit = self.action_timeout if timeout is None else timeout
        try:
            result = await asyncio.wait_for(asyncio.shield(future), limit)
        except asyncio.TimeoutError:
            if self.protocol is not None:
                self.protocol.responses.pop(action.action_id, None)
            raise AMIActionTimeout(f"{name} got no answer from Asterisk within {limit:g} s") from None
        first = result[0] if spec.is_list else result
        if first.get("Response", "").lower() == "error":
            raise AMIActionFailed(spec.name, first.get("Message", "no reason given"), first)
        if spec.is_list and not _starts_list(first):
            raise AMIUnexpectedReply(f"{spec.name} answered without starting a list: {truncated(repr(first.headers))}")
        return result

    async def list_action(self, name: str, headers: Headers = (), *, timeout: float | None = None) -> list[AMIMessage]:
        """A list action's items: the events between ``EventList: start`` and the completing event."""
        if not spec_for(name, ()).is_list:
            raise ValueError(f"{name} is answered by one response, not a list; use action()")
        messages = await self.action(name, headers, timeout=timeout)
        return messages[1:-1]

    # -- connection loop -------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background (never raises if Asterisk is down)."""
        if self._task is None:
            self._closing = False
            self._task = self.loop.create_task(self._run(), name="ami-connect-loop")
            self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.critical("the AMI connect loop died; no more reconnects", exc_info=task.exception())

    async def _run(self) -> None:
        host, port = self.config["host"], self.config["port"]
        while not self._closing:
            logger.info("connecting to AMI at %s:%s", host, port)
            try:
                transport, protocol = await asyncio.wait_for(
                    self.loop.create_connection(AMIProtocol, host, port, ssl=self.config["ssl"] or None),
                    self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                await self._wait_before_retry(f"AMI at {host}:{port} unreachable ({exc or 'timeout'})")
                continue
            self._lost = self.loop.create_future()
            # Until the resync snapshot is delivered, events are held, not trusted.
            self._resyncing, self._held = True, []
            done: asyncio.Future[Any] = self.loop.create_future()
            done.set_result((transport, protocol))
            Manager.connection_made(self, done)
            why = await self._await_login(protocol)
            await self._lost
            self._lost = None
            if not self._closing:
                await self._wait_before_retry(why or "AMI connection lost")

    async def _await_login(self, protocol: AMIProtocol) -> str | None:
        """Give the peer ``login_timeout`` seconds to answer Login; close a silent one.

        Returns why the connection was given up, or None (answered, or lost).
        """
        login, lost = self.authenticated_future, self._lost
        if login is None or lost is None:
            return None
        await asyncio.wait([login, lost], timeout=self.login_timeout, return_when=asyncio.FIRST_COMPLETED)
        if login.done() or lost.done():
            return None
        what = "did not answer Login" if protocol.version else "sent no AMI banner and did not answer Login"
        logger.error("AMI peer at %s:%s %s within %.1f s; closing the connection", self.config["host"],
                     self.config["port"], what, self.login_timeout)
        protocol.transport.abort()
        return f"AMI login timed out ({what})"

    async def _wait_before_retry(self, why: str) -> None:
        delay = self.backoff.delay(self.attempts, self._rand)
        self.attempts += 1
        logger.warning("%s; retrying in %.1f s (attempt %d)", why, delay, self.attempts)
        await asyncio.sleep(delay)

    def login(self, future: "asyncio.Future[Any]") -> bool:
        self.authenticated_future = None
        if future.exception() is not None:
            exc = future.exception()
            log = logger.warning if isinstance(exc, AMILinkDown) else logger.error
            log("AMI login got no answer: %s", exc)
            return False
        response = future.result()
        self.authenticated = response.get("Response", "").lower() == "success"
        if not self.authenticated:
            # Asterisk closes the socket after a refused login; the loop retries.
            logger.error("AMI login as %s refused: %s", self.config["username"],
                         response.get("Message", "no reason given"))
            return False
        self.attempts = 0
        logger.info("AMI logged in as %s", self.config["username"])
        self._schedule_ping()
        self.loop.create_task(self._resync(), name="ami-resync")
        return True

    def send_awaiting_actions(self, *_: Any) -> None:
        """panoramisk re-sends actions queued across a reconnect; we never do."""

    def connection_lost(self, exc: Any) -> None:
        was_up = self.authenticated
        self._connected = False
        self.authenticated = False
        self.logged_in.clear()
        self._resyncing = False
        self._held.clear()
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        if not self._closing:
            logger.warning("AMI connection lost: %s", exc if isinstance(exc, Exception) else "closed by peer")
        if was_up and self.listener is not None:
            self._guarded(self.listener.ami_link_down)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def close_and_wait(self) -> None:
        """Close the socket and stop reconnecting."""
        self._closing = True
        if self.protocol is not None and not self.protocol.closed and self.authenticated:
            logoff = self.protocol.send({"Action": "Logoff"})
            logoff.add_done_callback(lambda f: f.cancelled() or f.exception())  # answer not awaited
        Manager.close(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # -- liveness --------------------------------------------------------
    def _schedule_ping(self) -> None:
        if self.pinger:
            self.pinger.cancel()
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)

    def ping(self) -> None:
        self.pinger = None
        if not self.authenticated:
            return
        task = self.loop.create_task(self.action("Ping", timeout=self.ping_timeout))
        task.add_done_callback(self._ping_answered)

    def _ping_answered(self, task: "asyncio.Task[Any]") -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None or isinstance(exc, AMIActionFailed):  # an answer, even an error, proves the link
            self._schedule_ping()
        elif isinstance(exc, AMIActionTimeout) and self.protocol is not None:
            logger.error("AMI link dead: no Ping answer within %.1f s; reconnecting", self.ping_timeout)
            self.protocol.transport.abort()

    # -- resync and restarts --------------------------------------------
    async def _resync(self) -> None:
        try:
            core = await self.action("CoreStatus")
            channels = await self.list_action("CoreShowChannels")
            queues = await self.list_action("QueueStatus")
            status = await self.list_action("Status")
        except Exception as exc:
            if isinstance(exc, AMILinkDown):
                return
            logger.error("AMI resync failed (%s); reconnecting", exc)
            if self.protocol is not None:
                self.protocol.transport.abort()
            return
        startup = (core.get("CoreStartupDate", ""), core.get("CoreStartupTime", ""))
        restarted = self._restart_seen or (self._startup is not None and startup != self._startup)
        if restarted:
            logger.warning("Asterisk restarted (started %s %s); dropping calls it no longer has", *startup)
        self._startup = startup
        self._restart_seen = False
        snapshot = AMISnapshot(tuple(channels), tuple(queues), tuple(status), restarted, core)
        logger.info("AMI resync: %d channels, %d queue entries", len(channels), len(queues))
        if self.listener is not None:
            self._guarded(self.listener.ami_snapshot, snapshot)
        held, self._held = self._held, []
        self._resyncing = False
        self.logged_in.set()
        for event in held:
            self._deliver_event(event)

    def _note_restart_signals(self, event: AMIMessage) -> None:
        name = event.name
        if name == "Shutdown":
            logger.warning("Asterisk is shutting down (%s, restart %s)", event.get("Shutdown"), event.get("Restart"))
            self._restart_seen = True
        elif name == "FullyBooted":
            try:
                uptime = int(event.get("Uptime", ""))
            except ValueError:
                return
            if self._uptime is not None and uptime < self._uptime:
                self._restart_seen = True
            self._uptime = uptime

    # -- guarded dispatch ------------------------------------------------
    def dispatch_ami(self, event: AMIMessage) -> None:
        self._note_restart_signals(event)
        if self._resyncing:
            self._held.append(event)
            return
        self._deliver_event(event)

    def _deliver_event(self, event: AMIMessage) -> None:
        with call_id_context(event.get("Linkedid") or event.get("Uniqueid")):
            if self.listener is not None:
                self._guarded(self.listener.ami_event, event)
            if self.patterns:
                self.dispatch(_as_panoramisk(event))

    def dispatch(self, event: Any) -> list[str]:
        matches = []
        event.manager = self
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                self._guarded(callback, self, event)
        return matches

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            ret = fn(*args)
        except Exception:
            logger.exception("AMI handler %s failed%s", getattr(fn, "__qualname__", fn), _about(args))
            return
        if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
            task = asyncio.ensure_future(ret, loop=self.loop)
            task.add_done_callback(lambda t: _log_task_failure(t, fn))


def _about(args: tuple[Any, ...]) -> str:
    for arg in args:
        name = getattr(arg, "name", None) or getattr(arg, "event", None)
        if isinstance(name, str) and name:
            return f" on {name} event"
    return ""


def _log_task_failure(task: "asyncio.Future[Any]", fn: Any) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("AMI handler %s failed", getattr(fn, "__qualname__", fn), exc_info=task.exception())
