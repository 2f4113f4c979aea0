"""FastAGI server: routes each session to the handler of its script.

``agi://host:4573/ivr?dnis=4000`` runs ``handlers["ivr"](session)``.  A handler
is a Twisted coroutine function (``async def``, awaiting the session's
Deferreds), or returns a Deferred, or None.

Failure is contained per call (the agid ``agi_fail`` pattern): an unknown
script, a handler that raises or whose Deferred fails sends the caller to the
dialplan's fallback path with ``SET VARIABLE CC_RESULT "fallback"`` - unless
the channel has already hung up - and the session is closed.  The error is
logged with the call's Uniqueid.

Only the Asterisk hosts in ``allowed_peers`` (IP addresses or networks;
loopback by default) may start sessions: a connection from any other IP
address is closed as it is accepted, before a byte is read, and logged at
WARNING - at most once a minute per host and ten times a minute in all, with
the count of what was held back, so that a scanner cannot flood the log.
Connections without an IP address (UNIX sockets, in-memory transports in
tests) are not filtered.

Stopping: :meth:`FastAGIServerFactory.shutdown` refuses new connections,
cancels the running handlers (each of them then takes the fallback path) and
aborts what is still open after ``grace`` seconds; ``stopFactory`` (run when
the listening port stops) aborts every session at once.  Either way no
DelayedCall of ours is left behind.  Call ``shutdown()`` before
``port.stopListening()`` to give the calls their grace period.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Union

from twisted.internet.address import IPv4Address, IPv6Address
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
#: The Asterisk hosts allowed by default: this machine.
DEFAULT_ALLOWED_PEERS = ("127.0.0.1", "::1")

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_peer(entry: str) -> IPNetwork:
    """``10.0.0.0/8``, ``192.0.2.7`` or ``2001:db8::/32`` as a network; raises
    ValueError saying what is wrong (host bits set, not an address, ...)."""
    if "%" in entry:
        raise ValueError(f"{entry!r}: a zone index (%...) is not supported; give the address without it")
    try:
        return ipaddress.ip_network(entry)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.ip_network(entry, strict=False)
            raise ValueError(f"{entry!r} has host bits set; the network is {network}") from None
        raise ValueError(
            f"expected an IP address or network such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32, got {entry!r}"
        ) from None


class AllowedPeers:
    """The IP addresses and networks allowed to open FastAGI sessions."""

    #: Decisions remembered per host (Asterisk servers are few; scanners are not).
    MAX_REMEMBERED = 1024

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = tuple(parse_peer(entry) for entry in entries)
        self._known: dict[str, bool] = {}

    def allows(self, addr: object) -> bool:
        """True for an allowed IP peer, and for any peer without an IP address."""
        if not isinstance(addr, (IPv4Address, IPv6Address)):
            return True
        known = self._known.get(addr.host)
        if known is None:
            known = self._match(addr.host)
            if len(self._known) >= self.MAX_REMEMBERED:
                self._known.clear()
            self._known[addr.host] = known
        return known

    def _match(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # An IPv4 client of a dual-stack (::) listener: ::ffff:10.1.2.3.
            candidates.append(address.ipv4_mapped)
        return any(candidate in network for candidate in candidates for network in self.networks)


class RefusalLog:
    """WARNING lines for refused peers, rate-limited: one per host per
    ``interval`` seconds and ``burst`` per ``interval`` in all; the refusals
    held back are counted in the next line."""

    def __init__(self, clock: IReactorTime, *, interval: float = 60.0, burst: int = 10,
                 max_hosts: int = 1024) -> None:
        self._clock = clock
        self._interval = interval
        self._burst = burst
        self._max_hosts = max_hosts
        #: host -> [time of its last line, refusals since]
        self._hosts: OrderedDict[str, list[float]] = OrderedDict()
        self._window_start = -interval
        self._window_lines = 0
        self._held_back = 0

    def refused(self, addr: IPv4Address | IPv6Address) -> None:
        now = self._clock.seconds()
        host = addr.host
        seen = self._hosts.get(host)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return
        if now - self._window_start >= self._interval:
            self._window_start, self._window_lines = now, 0
        if self._window_lines >= self._burst:
            self._held_back += 1
            return
        self._window_lines += 1
        notes = []
        if seen is not None and seen[1]:
            notes.append(f"{int(seen[1])} more from this host since its last report")
        if self._held_back:
            notes.append(f"{self._held_back} from other hosts not reported")
            self._held_back = 0
        self._hosts[host] = [now, 0]
        self._hosts.move_to_end(host)
        if len(self._hosts) > self._max_hosts:
            self._hosts.popitem(last=False)
        peer = f"[{host}]:{addr.port}" if isinstance(addr, IPv6Address) else f"{host}:{addr.port}"
        logger.warning("FastAGI connection from %s refused: not an allowed peer (asterisk.agi_allowed_peers)%s",
                       peer, f" ({'; '.join(notes)})" if notes else "")


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
        allowed_peers: Iterable[str] = DEFAULT_ALLOWED_PEERS,
    ) -> None:
        self._handlers = dict(handlers)
        self._clock = clock
        self._peers = AllowedPeers(allowed_peers)
        self._refusals = RefusalLog(clock)
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
        if not self._peers.allows(addr):
            # None: the listening port closes the socket before reading from it.
            self._refusals.refused(addr)  # type: ignore[arg-type]
            return None
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
    "DEFAULT_ALLOWED_PEERS",
    "DEFAULT_SHUTDOWN_GRACE",
    "AllowedPeers",
    "FastAGIServerFactory",
    "Handler",
    "RefusalLog",
    "parse_peer",
    "run_handler",
]
