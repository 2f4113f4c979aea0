"""FastAGI server: routes each session to the handler of its script.

``agi://host:4573/ivr?dnis=4000`` runs ``handlers["ivr"](session)``.  A handler
is a Twisted coroutine function (``async def``, awaiting the session's
Deferreds), or returns a Deferred, or None.

Failure is contained per call (the agid ``agi_fail`` pattern): an unknown
script, a handler that raises or whose Deferred fails sends the caller to the
dialplan's fallback path with ``SET VARIABLE CC_RESULT "fallback"`` - unless
the channel has already hung up - and the session is closed.  The error is
logged with the call's Uniqueid.

Stopping: :meth:`FastAGIServerFactory.shutdown` refuses new connections,
cancels the running handlers (each of them then takes the fallback path) and
aborts what is still open after ``grace`` seconds; ``stopFactory`` (run when
the listening port stops) aborts every session at once.  Either way no
DelayedCall of ours is left behind.  Call ``shutdown()`` before
``port.stopListening()`` to give the calls their grace period.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Union

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.python.failure import Failure

from callcenter.asterisk.channel_vars import CC_RESULT, RESULT_FALLBACK
from callcenter.asterisk.fastagi_session import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_ENV_TIMEOUT,
    AGIConnectionLost,
    AGIHangup,
    AGISession,
    Deadlines,
    FastAGIProtocol,
)
from callcenter.logging import call_id_context

logger = logging.getLogger(__name__)

HandlerResult = Union[Deferred[Any], Coroutine[Any, Any, Any], None]
Handler = Callable[[AGISession], HandlerResult]

#: Seconds a graceful shutdown waits for sessions before aborting them.
DEFAULT_SHUTDOWN_GRACE = 2.0


def run_handler(handler: Handler, session: AGISession) -> Deferred[Any]:
    """Call a handler and turn whatever it gives back into a Deferred."""
    try:
        result = handler(session)
    except Exception:
        return fail()
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(result)
    return succeed(result)


class FastAGIServerFactory(ServerFactory):
    """Builds one FastAGIProtocol per Asterisk connection."""

    noisy = False  # the listening service logs start and stop itself

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        clock: IReactorTime,
        *,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        env_timeout: float = DEFAULT_ENV_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self._handlers = dict(handlers)
        self._clock = clock
        self._protocol_options = {
            "command_timeout": command_timeout,
            "env_timeout": env_timeout,
            "close_timeout": close_timeout,
            # One timer for the timeouts of every connection.
            "deadlines": Deadlines(clock),
        }
        self._protocols: set[FastAGIProtocol] = set()
        self._runs: dict[AGISession, Deferred[Any]] = {}
        self._stopping = False
        self._grace_timer: IDelayedCall | None = None
        self._drained: list[Deferred[None]] = []

    @property
    def active_sessions(self) -> int:
        return len(self._protocols)

    # -- connections -----------------------------------------------------------

    def startFactory(self) -> None:
        self._stopping = False

    def buildProtocol(self, addr: IAddress) -> FastAGIProtocol | None:
        if self._stopping:
            logger.warning("FastAGI connection from %s refused: the server is stopping", addr)
            return None
        proto = FastAGIProtocol(self._clock, self._session_started, **self._protocol_options)
        proto.factory = self
        self._protocols.add(proto)
        proto.when_closed().addBoth(self._forget, proto)
        return proto

    def _forget(self, _: object, proto: FastAGIProtocol) -> None:
        self._protocols.discard(proto)
        if proto.session is not None:
            self._runs.pop(proto.session, None)
        if not self._protocols:
            if self._grace_timer is not None and self._grace_timer.active():
                self._grace_timer.cancel()
            self._grace_timer = None
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)

    # -- one call ----------------------------------------------------------------

    def _session_started(self, session: AGISession) -> None:
        # Called by the protocol with the call id already in the log context.
        handler = self._handlers.get(session.script)
        if self._stopping:
            logger.warning("call %s: server stopping; caller sent to the fallback path", session.uniqueid)
            run = self._fallback(session)
        elif handler is None:
            logger.warning(
                "call %s: no FastAGI handler for script %r (request %r); caller sent to the fallback path",
                session.uniqueid, session.script, session.env.request,
            )
            run = self._fallback(session)
        else:
            logger.info(
                "call %s: FastAGI script %r for %s (ANI %r, DNIS %r)",
                session.uniqueid, session.script, session.channel, session.ani, session.dnis,
            )
            run = run_handler(handler, session)
            run.addCallbacks(self._handler_done, self._handler_failed, (session,), None, (session,))
        run.addErrback(self._run_broken, session)
        if not session.closed:
            self._runs[session] = run

    def _handler_done(self, _: object, session: AGISession) -> Deferred[None]:
        return session.close()

    def _handler_failed(self, failure: Failure, session: AGISession) -> Deferred[None]:
        with call_id_context(session.uniqueid):
            if failure.check(AGIHangup):
                logger.info("call %s: caller hung up during script %r: %s",
                            session.uniqueid, session.script, failure.getErrorMessage())
                return session.close()
            if failure.check(AGIConnectionLost):
                logger.info("call %s: FastAGI connection ended during script %r: %s",
                            session.uniqueid, session.script, failure.getErrorMessage())
                return session.close()
            if failure.check(CancelledError):
                logger.warning("call %s: script %r cancelled (server stopping); caller sent to the fallback path",
                               session.uniqueid, session.script)
            else:
                logger.error(
                    "call %s: FastAGI script %r failed; caller sent to the fallback path",
                    session.uniqueid, session.script,
                    exc_info=(failure.type, failure.value, failure.getTracebackObject()),
                )
        return self._fallback(session)

    def _fallback(self, session: AGISession) -> Deferred[None]:
        if session.hungup or not session.connected:
            return session.close()
        d = session.set_variable(CC_RESULT, RESULT_FALLBACK)
        d.addErrback(self._fallback_not_set, session)
        d.addBoth(lambda _: session.close())
        return d

    def _fallback_not_set(self, failure: Failure, session: AGISession) -> None:
        with call_id_context(session.uniqueid):
            logger.warning("call %s: could not set %s=%s: %s",
                           session.uniqueid, CC_RESULT, RESULT_FALLBACK, failure.getErrorMessage())

    def _run_broken(self, failure: Failure, session: AGISession) -> None:
        with call_id_context(session.uniqueid):
            if failure.check(CancelledError):
                logger.debug("call %s: session end cancelled", session.uniqueid)
            else:
                logger.error("call %s: FastAGI session ended badly", session.uniqueid,
                             exc_info=(failure.type, failure.value, failure.getTracebackObject()))
            session.abort("session ended badly")

    # -- stopping ------------------------------------------------------------------

    def shutdown(self, grace: float = DEFAULT_SHUTDOWN_GRACE) -> Deferred[None]:
        """Refuse new connections, cancel the running handlers (their calls
        take the fallback path) and abort what is still open after ``grace``
        seconds.  Fires when every connection is gone."""
        self._stopping = True
        if not self._protocols:
            return succeed(None)
        d: Deferred[None] = Deferred(self._drained.remove)
        self._drained.append(d)
        logger.info("FastAGI server stopping: %d session(s) open", len(self._protocols))
        for run in list(self._runs.values()):
            run.cancel()
        if self._protocols:
            if grace > 0:
                if self._grace_timer is None:
                    self._grace_timer = self._clock.callLater(grace, self._abort_all, "shutdown grace period over")
            else:
                self._abort_all("server stopping")
        return d

    def stopFactory(self) -> None:
        """The listening port stopped: abort every session now."""
        self._stopping = True
        if self._grace_timer is not None and self._grace_timer.active():
            self._grace_timer.cancel()
        self._grace_timer = None
        self._abort_all("server stopped")

    def _abort_all(self, reason: str) -> None:
        self._grace_timer = None
        for proto in list(self._protocols):
            proto.abort(reason)


__all__ = [
    "DEFAULT_SHUTDOWN_GRACE",
    "FastAGIServerFactory",
    "Handler",
    "run_handler",
]
