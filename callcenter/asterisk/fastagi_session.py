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
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

from twisted.internet import error
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
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
    AGIUnparsedLine,
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
    __slots__ = ("line", "name", "timeout", "deferred", "timer", "abandoned")

    def __init__(self, line: bytes, name: str, timeout: float) -> None:
        self.line = line
        self.name = name
        self.timeout = timeout
        self.deferred: Deferred[AGIReply] | None = None
        self.timer: IDelayedCall | None = None
        self.abandoned = False


def _command_name(line: bytes) -> str:
    """``GET DATA`` for logs: the verb words, never the caller's data."""
    words = line.decode("utf-8", "replace").split()
    verb = [w for w in words[:2] if w.isalpha() and w.isupper()] or words[:1]
    return " ".join(verb) or "?"


class FastAGIProtocol(Protocol):
    """One FastAGI connection from Asterisk.

    ``on_session(session)`` is called once the environment block is in.
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
    ) -> None:
        self._clock = clock
        self._on_session = on_session
        self.command_timeout = command_timeout
        self._env_timeout = env_timeout
        self._close_timeout = close_timeout
        self._decoder = AGIStreamDecoder(max_env_bytes=max_env_bytes, max_env_lines=max_env_lines)
        self.session: AGISession | None = None
        self._state = "new"  # new -> open -> closing -> closed
        self._writable = False
        self._discarding = False
        self._hungup = False
        self._queue: deque[_Command] = deque()
        self._in_flight: _Command | None = None
        self._env_timer: IDelayedCall | None = None
        self._close_timer: IDelayedCall | None = None
        self._hangup_waiters: list[Deferred[None]] = []
        self._closed_waiters: list[Deferred[None]] = []

    # -- state seen by the session ----------------------------------------

    @property
    def uniqueid(self) -> str:
        return self.session.env.uniqueid if self.session else "-"

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

    # -- Twisted callbacks --------------------------------------------------

    def connectionMade(self) -> None:
        self._state = "open"
        self._writable = True
        self._env_timer = self._clock.callLater(self._env_timeout, self._env_timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self._state in ("new", "closed") or self._discarding:
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
        for event in events:
            if self._state == "closed":
                break
            with self._call_context():
                try:
                    self._dispatch(event)
                except Exception:
                    logger.exception("call %s: FastAGI event %r not handled; aborting", self.uniqueid, event)
                    self.abort("internal error while handling a FastAGI event")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._state == "closed":
            return
        with self._call_context():
            logger.debug("call %s: FastAGI connection closed: %s", self.uniqueid, reason.getErrorMessage())
            self._state = "closed"
            self._writable = False
            self._cancel_timers()
            self._fail_pending(AGIConnectionLost(f"FastAGI connection closed: {reason.getErrorMessage()}"))
            waiters, self._hangup_waiters = self._hangup_waiters, []
            for d in waiters:
                d.errback(AGIConnectionLost("connection closed without HANGUP"))
            closed, self._closed_waiters = self._closed_waiters, []
            for d in closed:
                d.callback(None)

    # -- incoming messages ------------------------------------------------------

    def _dispatch(self, event: AGIEvent) -> None:
        if isinstance(event, AGIEnvironment):
            self._environment(event)
        elif isinstance(event, AGIHangupLine):
            self._mark_hungup()
        elif isinstance(event, AGIUnparsedLine):
            logger.warning("call %s: unexpected line from Asterisk skipped: %s", self.uniqueid, truncated(event.raw))
        elif isinstance(event, AGIResult) and event.provisional:
            logger.debug("call %s: interim reply %s", self.uniqueid, truncated(event.raw))
        else:
            self._deliver(event)

    def _environment(self, env: AGIEnvironment) -> None:
        if self._env_timer is not None and self._env_timer.active():
            self._env_timer.cancel()
        self._env_timer = None
        self.session = AGISession(self, env)
        with self._call_context():
            for line in env.malformed:
                logger.warning("call %s: environment line without colon skipped: %s", env.uniqueid, truncated(line))
            logger.debug("call %s: FastAGI session for script %r on %s", env.uniqueid, env.script, env.channel)
            if self._on_session is not None:
                self._on_session(self.session)

    def _mark_hungup(self) -> None:
        if self._hungup:
            logger.debug("call %s: repeated HANGUP from Asterisk", self.uniqueid)
            return
        self._hungup = True
        logger.info("call %s: Asterisk reports the channel hung up (dead AGI from now on)", self.uniqueid)
        waiters, self._hangup_waiters = self._hangup_waiters, []
        for d in waiters:
            d.callback(None)

    def _deliver(self, reply: AGIReply) -> None:
        command = self._in_flight
        if command is None:
            logger.warning("call %s: reply with no command in flight dropped: %s", self.uniqueid, truncated(reply.raw))
            return
        self._in_flight = None
        if command.timer is not None and command.timer.active():
            command.timer.cancel()
        command.timer = None
        if command.abandoned:
            logger.debug("call %s: reply to cancelled %s dropped", self.uniqueid, command.name)
        else:
            assert command.deferred is not None
            command.deferred.callback(reply)
        self._send_next()

    # -- commands ---------------------------------------------------------------

    def send_command(self, line: bytes, timeout: float | None = None) -> Deferred[AGIReply]:
        """Queue one encoded command line; fires with the reply it gets."""
        name = _command_name(line)
        if not self._writable:
            return fail(AGIConnectionLost(f"{name} not sent: the FastAGI connection is closed"))
        command = _Command(line, name, self.command_timeout if timeout is None else timeout)
        command.deferred = Deferred(lambda _d: self._cancel_command(command))
        self._queue.append(command)
        self._send_next()
        return command.deferred

    def _send_next(self) -> None:
        while self._in_flight is None and self._queue and self._writable:
            command = self._queue.popleft()
            self._in_flight = command
            command.timer = self._clock.callLater(command.timeout, self._command_timed_out, command)
            assert self.transport is not None
            self.transport.write(command.line)

    def _cancel_command(self, command: _Command) -> None:
        if command in self._queue:
            self._queue.remove(command)
        elif command is self._in_flight:
            # Asterisk will still answer it: keep the slot so that reply is
            # not handed to the next command.
            command.abandoned = True

    def _command_timed_out(self, command: _Command) -> None:
        command.timer = None
        if command is not self._in_flight:
            return
        with self._call_context():
            logger.warning(
                "call %s: no reply to %s within %.1f s; aborting the FastAGI session",
                self.uniqueid, command.name, command.timeout,
            )
            self._in_flight = None
            self._writable = False
            if not command.abandoned and command.deferred is not None:
                command.deferred.errback(AGITimeout(f"no reply to {command.name} within {command.timeout:g} s"))
            self.abort(f"no reply to {command.name} within {command.timeout:g} s")

    def _fail_pending(self, exc: Exception) -> None:
        pending = [self._in_flight] if self._in_flight is not None else []
        pending += list(self._queue)
        self._in_flight = None
        self._queue.clear()
        for command in pending:
            if command.timer is not None and command.timer.active():
                command.timer.cancel()
            command.timer = None
            if not command.abandoned and command.deferred is not None:
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
                if not command.abandoned and command.deferred is not None:
                    command.deferred.errback(AGIConnectionLost(f"{command.name} not sent: the session is ending"))
            assert self.transport is not None
            half_close = getattr(self.transport, "loseWriteConnection", None)
            if half_close is not None:
                half_close()
                self._close_timer = self._clock.callLater(self._close_timeout, self._close_timed_out)
            else:
                self.transport.loseConnection()
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
        self._env_timer = None
        logger.warning(
            "FastAGI connection from %s sent no complete environment within %.1f s (%d bytes); aborting",
            self._peer(), self._env_timeout, self._decoder.buffered,
        )
        self.abort("no environment")

    def _close_timed_out(self) -> None:
        self._close_timer = None
        with self._call_context():
            logger.warning("call %s: Asterisk did not close the FastAGI connection; aborting", self.uniqueid)
            self.abort("Asterisk did not close after the end of the session")

    def _cancel_timers(self) -> None:
        for name in ("_env_timer", "_close_timer"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)

    def _peer(self) -> str:
        try:
            peer = self.transport.getPeer()  # type: ignore[union-attr]
        except Exception:
            return "?"
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return f"{host}:{port}" if host is not None else str(peer)


class AGISession:
    """What an IVR handler gets: the call's environment and the commands.

    Every method returns a Deferred (``await`` it in a Twisted coroutine).
    Arguments with CR, LF or NUL raise ValueError at once.
    """

    def __init__(self, protocol: FastAGIProtocol, env: AGIEnvironment) -> None:
        self._protocol = protocol
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
        line = encode_command(*words)
        d = self._protocol.send_command(line, timeout)
        d.addCallback(_checked, _command_name(line))
        return d

    # -- helpers ----------------------------------------------------------------

    def answer(self) -> Deferred[None]:
        return self.command("ANSWER").addCallback(_hangup_on_minus_one, "ANSWER").addCallback(_none)

    def stream_file(self, name: str, escape_digits: str = "", *, timeout: float | None = None) -> Deferred[str]:
        """Play a file; fires with the escape digit pressed, or ``""``.  On
        ``result=-1``: AGIPlaybackFailed if the channel is up (the file is
        missing), AGIHangup if it is not (see :meth:`channel_up`)."""
        d = self.command("STREAM", "FILE", name, escape_digits, timeout=timeout)
        d.addCallback(self._minus_one, "STREAM FILE", "sound file missing or not playable")
        return d.addCallback(_digit_pressed)

    def control_stream_file(self, name: str, escape_digits: str = "", *,
                            timeout: float | None = None) -> Deferred[str]:
        """``CONTROL STREAM FILE`` with Asterisk's default skip, fast-forward
        (``#``) and rewind (``*``) keys; results as :meth:`stream_file`."""
        d = self.command("CONTROL", "STREAM", "FILE", name, escape_digits, timeout=timeout)
        d.addCallback(self._minus_one, "CONTROL STREAM FILE", "sound file missing or not playable")
        return d.addCallback(_digit_pressed)

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
        d.addCallback(self._minus_one, "GET DATA", "prompt missing or not playable")
        return d.addCallback(lambda reply: reply.result)

    def wait_for_digit(self, timeout_ms: int, *, timeout: float | None = None) -> Deferred[str]:
        """``WAIT FOR DIGIT``: the key pressed, ``""`` when ``timeout_ms``
        passed without one (``200 result=0``; ``-1`` waits for ever).  Its
        ``-1`` is a failure or a hang-up, told apart like the others.  The
        watchdog is ``command_timeout`` plus ``timeout_ms`` unless given."""
        if timeout is None:
            timeout = self._protocol.command_timeout + max(int(timeout_ms), 0) / 1000.0
        d = self.command("WAIT", "FOR", "DIGIT", int(timeout_ms), timeout=timeout)
        d.addCallback(self._minus_one, "WAIT FOR DIGIT", "failed on a live channel")
        return d.addCallback(_digit_pressed)

    def say_digits(self, digits: str | int, escape_digits: str = "", *,
                   timeout: float | None = None) -> Deferred[str]:
        """``SAY DIGITS``; ``result=-1`` with the channel up means a digit
        sound file is missing (AGIPlaybackFailed)."""
        d = self.command("SAY", "DIGITS", _word(digits), escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "SAY DIGITS", "digit sound files missing").addCallback(_digit_pressed)

    def say_number(self, number: int | str, escape_digits: str = "", *,
                   timeout: float | None = None) -> Deferred[str]:
        """``SAY NUMBER``; ``-1`` as for :meth:`say_digits`."""
        d = self.command("SAY", "NUMBER", _word(number), escape_digits, timeout=timeout)
        return d.addCallback(self._minus_one, "SAY NUMBER", "number sound files missing").addCallback(_digit_pressed)

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
        status = self.send("CHANNEL", "STATUS")
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

    def _minus_one(self, reply: AGIResult, name: str, why: str) -> AGIResult | Deferred[AGIResult]:
        """A reply other than ``result=-1`` passes; for ``-1``, :meth:`channel_up` decides."""
        if reply.result != "-1":
            return reply

        def decide(up: bool) -> NoReturn:
            if up:
                raise AGIPlaybackFailed(name, reply, why + "; the channel is up")
            raise AGIHangup(f"{name}: {reply.raw}, and the channel has hung up")

        return self.channel_up().addCallback(decide)

    def set_variable(self, name: str, value: str | int) -> Deferred[None]:
        """``SET VARIABLE NAME "value"`` (the value always quoted)."""
        return self.command("SET", "VARIABLE", name, QuotedArg(str(value))).addCallback(_none)

    def get_variable(self, name: str) -> Deferred[str | None]:
        """The variable's value, or None when it is not set."""
        d = self.command("GET", "VARIABLE", name)
        return d.addCallback(lambda reply: (reply.value or "") if reply.result == "1" else None)

    def exec_(self, app: str, *args: str | int, timeout: float | None = None) -> Deferred[int]:
        """Run a dialplan application; fires with its return value.  The
        arguments are joined with ``,`` (res_agi passes one option string)."""
        words: list[str | int] = ["EXEC", app]
        if args:
            words.append(",".join(str(arg) for arg in args))
        d = self.command(*words, timeout=timeout)
        return d.addCallback(_exec_result, f"EXEC {app}")

    def verbose(self, message: str, level: int = 1) -> Deferred[None]:
        return self.command("VERBOSE", message, int(level)).addCallback(_none)

    def hangup(self) -> Deferred[None]:
        """Hang the channel up; a channel already dead (511) is fine."""
        return self.command("HANGUP").addCallbacks(_none, _already_dead)

    def close(self) -> Deferred[None]:
        """End the session (half-close; see FastAGIProtocol.finish)."""
        return self._protocol.finish()

    def abort(self, reason: str) -> None:
        """Drop the connection now; pending commands fail."""
        self._protocol.abort(reason)


def _none(_: Any) -> None:
    return None


def _already_dead(failure: Failure) -> None:
    failure.trap(AGIDeadChannel)
    return None


def _checked(reply: AGIReply, name: str) -> AGIResult:
    if isinstance(reply, AGIErrorReply):
        if reply.code == 511:
            raise AGIDeadChannel(name, reply)
        raise AGICommandError(name, reply)
    return reply


def _hangup_on_minus_one(reply: AGIResult, name: str) -> AGIResult:
    """ANSWER: ``-1`` is ast_answer failing, i.e. the channel is gone."""
    if reply.result == "-1":
        raise AGIHangup(f"{name}: {reply.raw}")
    return reply


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
    "FastAGIProtocol",
]
