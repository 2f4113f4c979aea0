"""FastAGI session: the Twisted protocol and the API given to IVR handlers.

Reply matching lives in :class:`FastAGIProtocol` and nowhere else:

* one command is on the wire at a time; the others wait in a FIFO queue;
* every ``1xx``/``2xx``/``5xx`` reply completes the command in flight, and
  only that one; ``1xx`` interim lines are skipped;
* ``HANGUP`` never completes a command: it sets :attr:`AGISession.hungup`
  (right after a result, while idle, at the end, twice in a row - all the
  same).  Commands sent after it still go to Asterisk, which answers them in
  dead-AGI mode (``200`` for NOOP/GET/SET VARIABLE/EXEC, ``511`` for ANSWER,
  STREAM FILE, GET DATA ...);
* a command cancelled by its caller keeps its place until its reply comes,
  so that reply is dropped instead of being given to the next command;
* each command on the wire has a watchdog (``command_timeout``, from the
  injected clock); when it fires the command fails with :class:`AGITimeout`
  and the session is aborted;
* ``connectionLost`` fails everything pending with :class:`AGIConnectionLost`
  and cancels every timer; a command sent afterwards fails at once.

``result=-1`` of a command that plays sound or reads keys is not by itself a
hang-up (res_agi.c): ``GET DATA`` answers ``200 result=-1`` when its prompt
cannot be opened (``ast_app_getdata_full`` returns ``ast_streamfile``'s -1),
``STREAM FILE`` ``200 result=-1 endpos=0`` (``ast_openstream`` failed),
``CONTROL STREAM FILE`` and ``SAY DIGITS/NUMBER`` ``200 result=-1`` when a
sound file is missing - all on a channel that is still up - and the same
replies when the caller hangs up while they run.  ``endpos`` does not tell
the two apart (a hang-up before the first frame also gives ``endpos=0``).
So the helpers decide on the evidence (:meth:`AGISession.channel_up`): a
``HANGUP`` already received means hang-up; otherwise one ``CHANNEL STATUS``
goes out and whichever comes first decides - its ``200 result=<state>``
(the channel is up: :class:`AGIPlaybackFailed`), a ``511`` or an inline
``HANGUP`` (:class:`AGIHangup`).  res_agi's command loop drains the channel
before it reads the next command, so once the channel has hung up Asterisk
writes ``HANGUP`` before it even reads ``CHANNEL STATUS``.  ``EXEC Playback``
answers ``200 result=0`` on a missing file (app_playback.c sets
PLAYBACKSTATUS=FAILED and returns 0), so :meth:`AGISession.exec_` never
takes a ``-1`` for a hang-up either.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import socket
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

from twisted.internet import error
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ISystemHandle
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from callcenter.asterisk.fastagi_protocol import (
    AGIEnvironment,
    AGIErrorReply,
    AGIEvent,
    AGIHangupLine,
    AGIProtocolError,
    AGIReply,
    AGIResult,
    AGIStreamDecoder,
    EnvironmentLimitError,
    MAX_ENV_BYTES,
    MAX_ENV_LINES,
    QuotedArg,
    encode_command,
    truncated,
)
from callcenter.logging import call_id_context

logger = logging.getLogger(__name__)

DEFAULT_COMMAND_TIMEOUT = 10.0
#: A connection must deliver its whole environment block within this time.
DEFAULT_ENV_TIMEOUT = 5.0
#: After we half-close, Asterisk answers with HANGUP and EOF at once; we
#: abort the connection if it has not closed within this time.
DEFAULT_CLOSE_TIMEOUT = 1.0


class AGIError(Exception):
    """Base of the FastAGI errors a handler may see."""


class AGICommandError(AGIError):
    """Asterisk refused a command: 510 unknown, 511 dead channel, 520 usage."""

    def __init__(self, command: str, reply: AGIErrorReply) -> None:
        self.command = command
        self.reply = reply
        self.code = reply.code
        self.message = reply.message
        self.usage = reply.usage
        text = f"{command}: {reply.code} {reply.message}"
        if reply.usage:
            text += " " + " / ".join(line for line in reply.usage if line)
        super().__init__(text)


class AGIHangup(AGIError):
    """The caller hung up (a ``result=-1`` that means hang-up, or 511)."""


class AGIDeadChannel(AGICommandError, AGIHangup):
    """511 Command Not Permitted on a dead channel or intercept routine."""


class AGICommandFailed(AGIError):
    """A command ran but failed (missing sound file, unknown application)."""

    def __init__(self, command: str, reply: AGIResult, why: str) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"{command}: {why} ({reply.raw})")


class AGIPlaybackFailed(AGICommandFailed):
    """A command that plays sound or reads keys answered ``-1`` while the
    channel is still up (CHANNEL STATUS said so): a sound file is missing or
    cannot be played, or WAIT FOR DIGIT failed.  Not a hang-up."""


class AGITimeout(AGIError):
    """No reply within the watchdog time; the session has been aborted."""


class AGIConnectionLost(AGIError, error.ConnectionClosed):
    """The FastAGI connection is closed (or closing): nothing can be sent and
    nothing more will be answered."""


class _Command:
    __slots__ = ("protocol", "line", "timeout", "convert", "deferred", "abandoned")

    def __init__(self, protocol: FastAGIProtocol, line: bytes, timeout: float, convert: _Convert | None) -> None:
        self.protocol = protocol
        self.line = line
        self.timeout = timeout
        self.convert = convert
        self.deferred: Deferred[Any] = Deferred(self.cancel)
        self.abandoned = False

    @property
    def name(self) -> str:
        return _command_name(self.line)

    def cancel(self, _: Deferred[Any]) -> None:
        self.protocol._cancel_command(self)


#: Turns a reply into what a command's Deferred fires with (or raises); gets
#: the command line too, for the error's text.
_Convert = Callable[[AGIReply, bytes], Any]


def _stream_socket(transport: object) -> socket.socket | None:
    """The socket of a TCP (or UNIX stream) transport, None for any other."""
    if not (isinstance(transport, FileDescriptor) and ISystemHandle.providedBy(transport)):
        return None
    handle = transport.getHandle()
    if not isinstance(handle, socket.socket) or handle.type != socket.SOCK_STREAM:
        return None
    return handle


def _command_name(line: bytes) -> str:
    """``GET DATA`` for logs: the verb words, never the caller's data."""
    words = line.decode("utf-8", "replace").split()
    verb = [w for w in words[:2] if w.isalpha() and w.isupper()] or words[:1]
    return " ".join(verb) or "?"


class Deadlines:
    """The timeouts of many FastAGI connections on one DelayedCall.

    A connection has one deadline at a time (the earliest of its own) and
    moves it with every command; a DelayedCall per connection (or a
    ``reset`` per command) costs the reactor a timer insertion, cancellation
    and wake-up for each.  Here a connection's deadline is an entry in a heap
    that stays where it is when the deadline moves later - when the entry
    comes due it finds the later deadline and goes back in - so a call with
    ten commands puts two entries in (connect, close) and schedules nothing.

    One DelayedCall waits for the earliest entry.  It wakes at most once per
    ``granularity`` seconds, so many deadlines close together are handled in
    one wake-up (at most ``granularity`` late); it is cancelled, and the heap
    emptied, whenever no connection has a deadline.
    """

    def __init__(self, clock: IReactorTime, granularity: float = 0.05) -> None:
        self._clock = clock
        self._granularity = granularity
        #: [due, order, protocol or None once the entry is void]
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._call: IDelayedCall | None = None
        self._call_at = math.inf
        self._not_before = -math.inf
        self._watched = 0

    @property
    def watched(self) -> int:
        """Connections with a deadline."""
        return self._watched

    def watch(self, proto: FastAGIProtocol, due: float) -> None:
        """``proto._deadline_passed(now)`` once ``due`` has passed, unless
        watched again (with another due time) or unwatched before."""
        if proto._due is None:
            self._watched += 1
        proto._due = due
        entry = proto._entry
        if entry is not None:
            if entry[0] <= due:
                return
            entry[2] = None
        entry = [due, next(self._order), proto]
        proto._entry = entry
        heapq.heappush(self._heap, entry)
        if due < self._call_at:
            self._arm(due)

    def unwatch(self, proto: FastAGIProtocol) -> None:
        if proto._due is None:
            return
        proto._due = None
        if proto._entry is not None:
            proto._entry[2] = None
            proto._entry = None
        self._watched -= 1
        if not self._watched:
            self._heap.clear()
            self._call_at = math.inf
            call, self._call = self._call, None
            if call is not None and call.active():
                call.cancel()

    def _arm(self, due: float) -> None:
        due = max(due, self._not_before)
        self._call_at = due
        delay = max(due - self._clock.seconds(), 0.0)
        if self._call is not None and self._call.active():
            self._call.reset(delay)
        else:
            self._call = self._clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._call = None
        self._call_at = math.inf
        now = self._clock.seconds()
        self._not_before = now + self._granularity
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            proto = entry[2]
            if proto is None:
                continue
            proto._entry = None
            due = proto._due
            if due is None:
                continue
            if due > now:
                # The deadline moved later since this entry went in.
                entry = [due, next(self._order), proto]
                proto._entry = entry
                heapq.heappush(heap, entry)
                continue
            self.unwatch(proto)
            try:
                proto._deadline_passed(now)
            except Exception:
                logger.exception("FastAGI timeout handling failed")
        if heap and heap[0][0] < self._call_at:
            self._arm(heap[0][0])


class FastAGIProtocol(Protocol):
    """One FastAGI connection from Asterisk.

    ``on_session(session)`` is called once the environment block is in.

    Its timeouts (the environment's, the watchdog of the command on the
    wire, the wait for Asterisk to close after ``finish()``) are deadlines in
    a :class:`Deadlines` shared with the other connections of the server, or
    one of its own.
    """

    def __init__(
        self,
        clock: IReactorTime,
        on_session: Callable[[AGISession], None] | None = None,
        *,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        env_timeout: float = DEFAULT_ENV_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        max_env_bytes: int = MAX_ENV_BYTES,
        max_env_lines: int = MAX_ENV_LINES,
        deadlines: Deadlines | None = None,
    ) -> None:
        self._clock = clock
        self._deadlines = deadlines if deadlines is not None else Deadlines(clock)
        self._on_session = on_session
        self.command_timeout = command_timeout
        self._env_timeout = env_timeout
        self._close_timeout = close_timeout
        self._decoder = AGIStreamDecoder(max_env_bytes=max_env_bytes, max_env_lines=max_env_lines)
        self.session: AGISession | None = None
        self._uniqueid = "-"
        #: Once the session is known: a context with its call id, for the
        #: protocol's own work (log lines, the callbacks of its Deferreds).
        self._context: contextvars.Context | None = None
        self._in_context = False
        self._state = "new"  # new -> open -> closing -> closed
        self._writable = False
        self._discarding = False
        self._hungup = False
        self._queue: deque[_Command] = deque()
        self._in_flight: _Command | None = None
        #: When the environment, the reply in flight and Asterisk's close are due.
        self._env_at: float | None = None
        self._command_at: float | None = None
        self._close_at: float | None = None
        #: The earliest of them, and its place in the Deadlines (theirs to manage).
        self._due: float | None = None
        self._entry: list[Any] | None = None
        self._hangup_waiters: list[Deferred[None]] = []
        self._closed_waiters: list[Deferred[None]] = []
        #: The socket of a TCP transport, while nothing waits in the transport's buffer.
        self._socket: socket.socket | None = None

    # -- state seen by the session ----------------------------------------

    @property
    def uniqueid(self) -> str:
        return self._uniqueid

    @property
    def hungup(self) -> bool:
        return self._hungup

    @property
    def can_send(self) -> bool:
        """True while commands can be sent."""
        return self._writable

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def when_hungup(self) -> Deferred[None]:
        """Fires at Asterisk's first ``HANGUP``; fails with AGIConnectionLost
        if the connection ends without one."""
        if self._hungup:
            return succeed(None)
        if self._state == "closed":
            return fail(AGIConnectionLost("connection closed without HANGUP"))
        d: Deferred[None] = Deferred(self._hangup_waiters.remove)
        self._hangup_waiters.append(d)
        return d

    def when_closed(self) -> Deferred[None]:
        """Fires once the connection is gone (``connectionLost``)."""
        if self._state == "closed":
            return succeed(None)
        d: Deferred[None] = Deferred(self._closed_waiters.remove)
        self._closed_waiters.append(d)
        return d

    @contextlib.contextmanager
    def _call_context(self) -> Iterator[None]:
        with call_id_context(self.session.env.uniqueid if self.session else None):
            yield

    def _in_call(self, work: Callable[..., None], *args: Any) -> None:
        """``work(*args)`` with the call id of the session in the log context."""
        context = self._context
        if context is None or self._in_context:
            work(*args)
            return
        self._in_context = True
        try:
            context.run(work, *args)
        finally:
            self._in_context = False

    # -- Twisted callbacks --------------------------------------------------

    def connectionMade(self) -> None:
        self._state = "open"
        self._writable = True
        self._socket = _stream_socket(self.transport)
        if self._socket is not None:
            # Like asyncio's transports: a command never waits for Nagle.
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._env_at = self._clock.seconds() + self._env_timeout
        self._watch()

    def dataReceived(self, data: bytes) -> None:
        if self._discarding or self._state == "new" or self._state == "closed":
            return
        try:
            events = self._decoder.feed(data)
        except EnvironmentLimitError as exc:
            logger.warning(
                "FastAGI connection from %s refused: %s (offending bytes %s)",
                self._peer(), exc, truncated(exc.offending, 80),
            )
            self._shut(AGIConnectionLost(f"environment refused: {exc}"), abort=False)
            return
        except AGIProtocolError as exc:
            with self._call_context():
                logger.warning(
                    "call %s: FastAGI stream broken: %s (offending bytes %s); aborting",
                    self.uniqueid, exc, truncated(exc.offending, 80),
                )
                self.abort(f"protocol error: {exc}")
            return
        if not events:
            return
        if self.session is None:
            # The environment comes first; the session it starts sets the call id.
            self._handle_all(events[:1])
            del events[0]
            if not events:
                return
        context = self._context
        if context is None or self._in_context:
            self._handle_all(events)
            return
        self._in_context = True
        try:
            context.run(self._handle_all, events)
        finally:
            self._in_context = False

    def _handle_all(self, events: list[AGIEvent]) -> None:
        for event in events:
            if self._discarding or self._state == "closed":
                break
            try:
                if event.__class__ is AGIResult and event.code >= 200:  # type: ignore[union-attr]
                    self._deliver(event)  # type: ignore[arg-type]
                else:
                    self._dispatch(event)
            except Exception:
                logger.exception("call %s: FastAGI event %r not handled; aborting", self._uniqueid, event)
                self.abort("internal error while handling a FastAGI event")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._state == "closed":
            return
        self._in_call(self._closed, reason)

    def _closed(self, reason: Failure) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("call %s: FastAGI connection closed: %s", self._uniqueid, reason.getErrorMessage())
        self._state = "closed"
        self._writable = False
        self._cancel_timers()
        if self._in_flight is not None or self._queue:
            self._fail_pending(AGIConnectionLost(f"FastAGI connection closed: {reason.getErrorMessage()}"))
        waiters, self._hangup_waiters = self._hangup_waiters, []
        for d in waiters:
            d.errback(AGIConnectionLost("connection closed without HANGUP"))
        closed, self._closed_waiters = self._closed_waiters, []
        for d in closed:
            d.callback(None)
        if self.session is not None:
            # The session and the protocol referred to each other: a cycle
            # only the garbage collector would free, for every call.
            self.session._protocol = _Gone(self._hungup, self.command_timeout)

    # -- incoming messages ------------------------------------------------------

    def _dispatch(self, event: AGIEvent) -> None:
        if isinstance(event, AGIResult):
            if event.code < 200:
                logger.debug("call %s: interim reply %s", self.uniqueid, truncated(event.raw))
            else:
                self._deliver(event)
        elif isinstance(event, AGIErrorReply):
            self._deliver(event)
        elif isinstance(event, AGIHangupLine):
            self._mark_hungup()
        elif isinstance(event, AGIEnvironment):
            self._environment(event)
        else:
            logger.warning("call %s: unexpected line from Asterisk skipped: %s", self.uniqueid, truncated(event.raw))

    def _environment(self, env: AGIEnvironment) -> None:
        self.session = AGISession(self, env)
        self._uniqueid = env.uniqueid
        with call_id_context(env.uniqueid):
            self._context = contextvars.copy_context()
        # A first command sent from on_session takes the environment's place
        # among the deadlines (a later one costs nothing there).
        self._env_at = None
        self._in_call(self._start, self.session)
        if self._command_at is None:
            self._watch()

    def _start(self, session: AGISession) -> None:
        env = session.env
        for line in env.malformed:
            logger.warning("call %s: environment line without colon skipped: %s", env.uniqueid, truncated(line))
        logger.debug("call %s: FastAGI session for script %r on %s", env.uniqueid, env.script, env.channel)
        if self._on_session is not None:
            # A first command sent from here takes the environment timer over.
            self._on_session(session)

    def _mark_hungup(self) -> None:
        if self._hungup:
            logger.debug("call %s: repeated HANGUP from Asterisk", self.uniqueid)
            return
        self._hungup = True
        # Every call ends this way; the server logs a hang-up that cut a script short.
        logger.debug("call %s: Asterisk reports the channel hung up (dead AGI from now on)", self.uniqueid)
        waiters, self._hangup_waiters = self._hangup_waiters, []
        for d in waiters:
            d.callback(None)

    def _deliver(self, reply: AGIReply) -> None:
        command = self._in_flight
        if command is None:
            logger.warning("call %s: reply with no command in flight dropped: %s", self.uniqueid, truncated(reply.raw))
            return
        self._in_flight = None
        if command.abandoned:
            logger.debug("call %s: reply to cancelled %s dropped", self.uniqueid, command.name)
        else:
            d = command.deferred
            if command.convert is None:
                d.callback(reply)
            else:
                try:
                    result = command.convert(reply, command.line)
                except Exception:
                    d.errback()
                else:
                    d.callback(result)
        # The callbacks usually sent the next command already, which moved
        # the watchdog; otherwise the next queued one goes now.
        if self._in_flight is None:
            self._send_next()
            if self._in_flight is None:
                self._command_at = None
                self._watch()

    # -- commands ---------------------------------------------------------------

    def send_command(self, line: bytes, timeout: float | None = None,
                     convert: _Convert | None = None) -> Deferred[Any]:
        """Queue one encoded command line; fires with the reply it gets, or
        with ``convert(reply, line)`` (failing with what that raises)."""
        if not self._writable:
            return fail(AGIConnectionLost(f"{_command_name(line)} not sent: the FastAGI connection is closed"))
        command = _Command(self, line, self.command_timeout if timeout is None else timeout, convert)
        d = command.deferred
        if self._in_flight is None and not self._queue:
            self._in_flight = command
            self._command_at = due = self._clock.seconds() + command.timeout
            entry = self._entry
            if entry is not None and entry[0] <= due and self._close_at is None and self._env_at is None:
                # Usual case: the deadlines need not hear of it (see Deadlines.watch).
                self._due = due
            else:
                self._watch()
            self._write(line)
        else:
            self._queue.append(command)
            self._send_next()
        return d

    def _send_next(self) -> None:
        while self._in_flight is None and self._queue and self._writable:
            command = self._queue.popleft()
            self._in_flight = command
            self._command_at = self._clock.seconds() + command.timeout
            self._watch()
            self._write(command.line)

    def _write(self, data: bytes) -> None:
        # A command line is short and the one before it has been answered,
        # so the socket takes it at once: transport.write() would buffer it
        # and wait a loop turn for the socket to be reported writable.
        if self._socket is not None:
            try:
                sent = self._socket.send(data)
            except OSError:  # full (EAGAIN) or gone: the transport finds out which
                sent = 0
            if sent == len(data):
                return
            # From now on everything goes through the transport, in order.
            self._socket = None
            data = data[sent:]
        assert self.transport is not None
        self.transport.write(data)

    def _cancel_command(self, command: _Command) -> None:
        if command in self._queue:
            self._queue.remove(command)
        elif command is self._in_flight:
            # Asterisk will still answer it: keep the slot so that reply is
            # not handed to the next command.
            command.abandoned = True

    # -- timers -------------------------------------------------------------------

    def _watch(self) -> None:
        """Tell the deadlines the earliest of ours, or that there is none."""
        due = self._command_at
        if self._env_at is not None or self._close_at is not None:
            due = min(at for at in (self._env_at, self._command_at, self._close_at) if at is not None)
        if due is None:
            self._deadlines.unwatch(self)
        else:
            self._deadlines.watch(self, due)

    def _deadline_passed(self, now: float) -> None:
        """Called by the deadlines at or after ``self._due``."""
        if self._env_at is not None and self._env_at <= now:
            self._env_at = None
            self._env_timed_out()
        elif self._close_at is not None and self._close_at <= now:
            self._close_at = None
            self._close_timed_out()
        elif self._command_at is not None and self._command_at <= now:
            self._command_at = None
            self._command_timed_out()
        if self._state != "closed" and not self._discarding:
            self._watch()

    def _command_timed_out(self) -> None:
        command = self._in_flight
        if command is None:
            return
        with self._call_context():
            logger.warning(
                "call %s: no reply to %s within %.1f s; aborting the FastAGI session",
                self.uniqueid, command.name, command.timeout,
            )
            self._in_flight = None
            self._writable = False
            if not command.abandoned:
                command.deferred.errback(AGITimeout(f"no reply to {command.name} within {command.timeout:g} s"))
            self.abort(f"no reply to {command.name} within {command.timeout:g} s")

    def _fail_pending(self, exc: Exception) -> None:
        pending = [self._in_flight] if self._in_flight is not None else []
        pending += list(self._queue)
        self._in_flight = None
        self._queue.clear()
        for command in pending:
            if not command.abandoned:
                command.deferred.errback(exc)

    # -- ending -------------------------------------------------------------------

    def finish(self) -> Deferred[None]:
        """End the session the way Asterisk expects: half-close our side
        (Asterisk then sends ``HANGUP`` and closes), and abort if it has not
        closed within ``close_timeout``.  Fires when the connection is gone."""
        if self._state == "closed":
            return succeed(None)
        done = self.when_closed()
        if self._state == "open":
            self._state = "closing"
            self._writable = False
            queued = list(self._queue)
            self._queue.clear()
            for command in queued:
                if not command.abandoned:
                    command.deferred.errback(AGIConnectionLost(f"{command.name} not sent: the session is ending"))
            assert self.transport is not None
            half_close = getattr(self.transport, "loseWriteConnection", None)
            if half_close is None:
                self.transport.loseConnection()
                return done
            try:
                # Nothing is buffered: shut the socket's sending side now
                # rather than a loop turn later from the transport.
                if self._socket is None:
                    raise OSError("data buffered in the transport")
                self._socket.shutdown(socket.SHUT_WR)
            except OSError:
                half_close()
            self._close_at = self._clock.seconds() + self._close_timeout
            self._watch()
        return done

    def abort(self, reason: str) -> None:
        """Drop the connection now; everything pending fails."""
        self._shut(AGIConnectionLost(f"FastAGI session aborted: {reason}"), abort=True)

    def _shut(self, exc: AGIConnectionLost, *, abort: bool) -> None:
        if self._state in ("new", "closed") or self._discarding:
            return
        self._state = "closing"
        self._writable = False
        self._discarding = True
        self._cancel_timers()
        self._fail_pending(exc)
        if self.transport is not None:
            if abort:
                self.transport.abortConnection()
            else:
                self.transport.loseConnection()

    def _env_timed_out(self) -> None:
        logger.warning(
            "FastAGI connection from %s sent no complete environment within %.1f s (%d bytes); aborting",
            self._peer(), self._env_timeout, self._decoder.buffered,
        )
        self.abort("no environment")

    def _close_timed_out(self) -> None:
        with self._call_context():
            logger.warning("call %s: Asterisk did not close the FastAGI connection; aborting", self.uniqueid)
            self.abort("Asterisk did not close after the end of the session")

    def _cancel_timers(self) -> None:
        self._env_at = self._command_at = self._close_at = None
        self._deadlines.unwatch(self)

    def _peer(self) -> str:
        try:
            peer = self.transport.getPeer()  # type: ignore[union-attr]
        except Exception:
            return "?"
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return f"{host}:{port}" if host is not None else str(peer)


class _Gone:
    """What a session talks to once its connection is gone."""

    can_send = False
    closed = True

    def __init__(self, hungup: bool, command_timeout: float) -> None:
        self.hungup = hungup
        self.command_timeout = command_timeout

    def when_hungup(self) -> Deferred[None]:
        return succeed(None) if self.hungup else fail(AGIConnectionLost("connection closed without HANGUP"))

    def when_closed(self) -> Deferred[None]:
        return succeed(None)

    def send_command(self, line: bytes, timeout: float | None = None,
                     convert: _Convert | None = None) -> Deferred[Any]:
        return fail(AGIConnectionLost(f"{_command_name(line)} not sent: the FastAGI connection is closed"))

    def finish(self) -> Deferred[None]:
        return succeed(None)

    def abort(self, reason: str) -> None:
        pass


class AGISession:
    """What an IVR handler gets: the call's environment and the commands.

    Every method returns a Deferred (``await`` it in a Twisted coroutine).
    Arguments with CR, LF or NUL raise ValueError at once.
    """

    def __init__(self, protocol: FastAGIProtocol, env: AGIEnvironment) -> None:
        self._protocol: FastAGIProtocol | _Gone = protocol
        self.env = env

    # -- the call ---------------------------------------------------------------

    @property
    def uniqueid(self) -> str:
        return self.env.uniqueid

    @property
    def channel(self) -> str:
        return self.env.channel

    @property
    def script(self) -> str:
        return self.env.script

    @property
    def params(self) -> Mapping[str, str]:
        return self.env.params

    @property
    def ani(self) -> str:
        """The caller's number; ``""`` when Asterisk has none (``unknown``)."""
        number = self.env.callerid
        return "" if number in ("", "unknown") else number

    @property
    def dnis(self) -> str:
        """The dialled number: ``?dnis=`` of the AGI URL, else agi_dnid, else
        the extension."""
        if self.params.get("dnis"):
            return self.params["dnis"]
        dnid = self.env.get("dnid")
        return dnid if dnid not in ("", "unknown") else self.env.get("extension")

    @property
    def hungup(self) -> bool:
        """True once Asterisk has sent ``HANGUP`` (dead-AGI mode)."""
        return self._protocol.hungup

    @property
    def connected(self) -> bool:
        """True while commands can be sent."""
        return self._protocol.can_send

    @property
    def closed(self) -> bool:
        """True once the connection is gone."""
        return self._protocol.closed

    def when_hungup(self) -> Deferred[None]:
        return self._protocol.when_hungup()

    def when_closed(self) -> Deferred[None]:
        return self._protocol.when_closed()

    # -- raw commands -----------------------------------------------------------

    def send(self, *words: str | int, timeout: float | None = None) -> Deferred[AGIReply]:
        """Send a command; fires with whatever reply it gets (2xx or 5xx)."""
        return self._protocol.send_command(encode_command(*words), timeout)

    def command(self, *words: str | int, timeout: float | None = None) -> Deferred[AGIResult]:
        """Send a command; fires with its AGIResult, fails with
        AGICommandError (AGIDeadChannel for 511) on a 5xx reply."""
        return self._protocol.send_command(encode_command(*words), timeout, _checked)

    # -- helpers ----------------------------------------------------------------

    def answer(self) -> Deferred[None]:
        return self._protocol.send_command(_ANSWER, None, _answered)

    def stream_file(self, name: str, escape_digits: str = "", *, timeout: float | None = None) -> Deferred[str]:
        """Play a file; fires with the escape digit pressed, or ``""``.  On
        ``result=-1``: AGIPlaybackFailed if the channel is up (the file is
        missing), AGIHangup if it is not (see :meth:`channel_up`)."""
        d = self.command("STREAM", "FILE", name, escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "STREAM FILE", "sound file missing or not playable", _digit_pressed)

    def control_stream_file(self, name: str, escape_digits: str = "", *,
                            timeout: float | None = None) -> Deferred[str]:
        """``CONTROL STREAM FILE`` with Asterisk's default skip, fast-forward
        (``#``) and rewind (``*``) keys; results as :meth:`stream_file`."""
        d = self.command("CONTROL", "STREAM", "FILE", name, escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "CONTROL STREAM FILE", "sound file missing or not playable",
                             _digit_pressed)

    def get_data(
        self,
        prompt: str,
        timeout_ms: int | None = None,
        max_digits: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Deferred[str]:
        """Play ``prompt`` and collect digits: fires with them, ``""`` on
        timeout.  On ``result=-1``: AGIPlaybackFailed if the channel is up
        (Asterisk could not open the prompt: ``ast_streamfile`` opens one
        file, so ``a&b`` is one missing name), AGIHangup if it is not.  The
        watchdog is ``command_timeout`` plus ``timeout_ms`` unless ``timeout``
        is given."""
        words: list[str | int] = ["GET", "DATA", prompt]
        if timeout_ms is not None or max_digits is not None:
            words.append(int(timeout_ms or 0))
        if max_digits is not None:
            words.append(int(max_digits))
        if timeout is None:
            timeout = self._protocol.command_timeout + (timeout_ms or 0) / 1000.0
        d = self.command(*words, timeout=timeout)
        return d.addCallback(self._minus_one, "GET DATA", "prompt missing or not playable", _result_text)

    def wait_for_digit(self, timeout_ms: int, *, timeout: float | None = None) -> Deferred[str]:
        """``WAIT FOR DIGIT``: the key pressed, ``""`` when ``timeout_ms``
        passed without one (``200 result=0``; ``-1`` waits for ever).  Its
        ``-1`` is a failure or a hang-up, told apart like the others.  The
        watchdog is ``command_timeout`` plus ``timeout_ms`` unless given."""
        if timeout is None:
            timeout = self._protocol.command_timeout + max(int(timeout_ms), 0) / 1000.0
        d = self.command("WAIT", "FOR", "DIGIT", int(timeout_ms), timeout=timeout)
        return d.addCallback(self._minus_one, "WAIT FOR DIGIT", "failed on a live channel", _digit_pressed)

    def say_digits(self, digits: str | int, escape_digits: str = "", *,
                   timeout: float | None = None) -> Deferred[str]:
        """``SAY DIGITS``; ``result=-1`` with the channel up means a digit
        sound file is missing (AGIPlaybackFailed)."""
        d = self.command("SAY", "DIGITS", _word(digits), escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "SAY DIGITS", "digit sound files missing", _digit_pressed)

    def say_number(self, number: int | str, escape_digits: str = "", *,
                   timeout: float | None = None) -> Deferred[str]:
        """``SAY NUMBER``; ``-1`` as for :meth:`say_digits`."""
        d = self.command("SAY", "NUMBER", _word(number), escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "SAY NUMBER", "number sound files missing", _digit_pressed)

    def channel_up(self) -> Deferred[bool]:
        """Whether the channel is still up, on the evidence Asterisk gives.

        False at once when Asterisk has sent ``HANGUP``.  Otherwise one
        ``CHANNEL STATUS`` goes out and the first answer decides: its
        ``200 result=<state>`` (state >= 0, 6 = up: True; ``-1``: False), a
        ``511`` (dead-AGI mode: False) or an inline ``HANGUP`` (False at once;
        the ``511`` that answers CHANNEL STATUS later is dropped, the command
        keeping its place in line).  Fails with AGIConnectionLost when the
        connection ends first, with AGICommandError on another 5xx.
        """
        if self.hungup:
            return succeed(False)
        status = self._protocol.send_command(_CHANNEL_STATUS)
        hungup = self.when_hungup()

        def cancel(_: Deferred[bool]) -> None:
            status.cancel()
            hungup.cancel()

        decided: Deferred[bool] = Deferred(cancel)

        def settle(outcome: bool | Failure) -> None:
            if decided.called:
                return
            if isinstance(outcome, Failure):
                decided.errback(outcome)
            else:
                decided.callback(outcome)

        def from_status(reply: AGIReply) -> None:
            hungup.cancel()
            try:
                up = _status_says_up(reply)
            except AGICommandError:
                settle(Failure())
            else:
                settle(up)

        def from_hangup(_: None) -> None:
            status.cancel()
            settle(False)

        def failed(failure: Failure) -> None:
            if not failure.check(CancelledError):
                settle(failure)

        status.addCallbacks(from_status, failed)
        hungup.addCallbacks(from_hangup, failed)
        return decided

    def _minus_one(self, reply: AGIResult, name: str, why: str,
                   then: Callable[[AGIResult], str]) -> str | Deferred[str]:
        """A reply other than ``result=-1`` gives ``then(reply)``; for ``-1``,
        :meth:`channel_up` decides which error it is."""
        if reply.result != "-1":
            return then(reply)

        def decide(up: bool) -> NoReturn:
            if up:
                raise AGIPlaybackFailed(name, reply, why + "; the channel is up")
            raise AGIHangup(f"{name}: {reply.raw}, and the channel has hung up")

        return self.channel_up().addCallback(decide)

    def set_variable(self, name: str, value: str | int) -> Deferred[None]:
        """``SET VARIABLE NAME "value"`` (the value always quoted)."""
        line = encode_command("SET", "VARIABLE", name, QuotedArg(str(value)))
        return self._protocol.send_command(line, None, _checked_none)

    def get_variable(self, name: str) -> Deferred[str | None]:
        """The variable's value, or None when it is not set."""
        return self._protocol.send_command(encode_command("GET", "VARIABLE", name), None, _variable_value)

    def exec_(self, app: str, *args: str | int, timeout: float | None = None) -> Deferred[int]:
        """Run a dialplan application; fires with its return value.  The
        arguments are joined with ``,`` (res_agi passes one option string)."""
        words: list[str | int] = ["EXEC", app]
        if args:
            words.append(",".join(str(arg) for arg in args))
        d = self.command(*words, timeout=timeout)
        return d.addCallback(_exec_result, f"EXEC {app}")

    def verbose(self, message: str, level: int = 1) -> Deferred[None]:
        return self._protocol.send_command(encode_command("VERBOSE", message, int(level)), None, _checked_none)

    def hangup(self) -> Deferred[None]:
        """Hang the channel up; a channel already dead (511) is fine."""
        return self._protocol.send_command(_HANGUP, None, _hung_up)

    def close(self) -> Deferred[None]:
        """End the session (half-close; see FastAGIProtocol.finish)."""
        return self._protocol.finish()

    def abort(self, reason: str) -> None:
        """Drop the connection now; pending commands fail."""
        self._protocol.abort(reason)


_ANSWER = encode_command("ANSWER")
_HANGUP = encode_command("HANGUP")
_CHANNEL_STATUS = encode_command("CHANNEL", "STATUS")


def _checked(reply: AGIReply, line: bytes) -> AGIResult:
    if isinstance(reply, AGIErrorReply):
        if reply.code == 511:
            raise AGIDeadChannel(_command_name(line), reply)
        raise AGICommandError(_command_name(line), reply)
    return reply


def _checked_none(reply: AGIReply, line: bytes) -> None:
    if reply.__class__ is not AGIResult:
        _checked(reply, line)


def _answered(reply: AGIReply, line: bytes) -> None:
    """ANSWER: ``-1`` is ast_answer failing, i.e. the channel is gone."""
    if _checked(reply, line).result == "-1":
        raise AGIHangup(f"ANSWER: {reply.raw}")


def _hung_up(reply: AGIReply, line: bytes) -> None:
    """HANGUP: a channel already dead (511) is hung up too."""
    if not (isinstance(reply, AGIErrorReply) and reply.code == 511):
        _checked(reply, line)


def _variable_value(reply: AGIReply, line: bytes) -> str | None:
    if reply.__class__ is not AGIResult:
        _checked(reply, line)
    return (reply.value or "") if reply.result == "1" else None  # type: ignore[union-attr]


def _result_text(reply: AGIResult) -> str:
    return reply.result


def _digit_pressed(reply: AGIResult) -> str:
    code = reply.result_int
    return chr(code) if code and code > 0 else ""


def _word(value: str | int) -> str:
    """A command word: a str (QuotedArg kept) as it is, an int as its digits."""
    return value if isinstance(value, str) else str(value)


def _status_says_up(reply: AGIReply) -> bool:
    """CHANNEL STATUS: ``200 result=<ast_channel_state>`` on a live channel,
    ``511`` once res_agi is in dead-AGI mode."""
    if isinstance(reply, AGIErrorReply):
        if reply.code == 511:
            return False
        raise AGICommandError("CHANNEL STATUS", reply)
    code = reply.result_int
    return code is not None and code >= 0


def _exec_result(reply: AGIResult, name: str) -> int:
    code = reply.result_int
    if code == -2:
        raise AGICommandFailed(name, reply, "no such application")
    return code if code is not None else 0


__all__ = [
    "AGICommandError",
    "AGICommandFailed",
    "AGIConnectionLost",
    "AGIDeadChannel",
    "AGIError",
    "AGIHangup",
    "AGIPlaybackFailed",
    "AGISession",
    "AGITimeout",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_ENV_TIMEOUT",
    "Deadlines",
    "FastAGIProtocol",
]
