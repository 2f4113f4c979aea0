"""FastAGI: only the Asterisk hosts of asterisk.agi_allowed_peers may start sessions.

Refused peers are closed as they are accepted (buildProtocol returns None, so
the listening port closes the socket before reading from it) and logged at
WARNING, rate-limited per host and in all.
"""

from __future__ import annotations

import logging
import socket

import pytest
import pytest_twisted
from twisted.internet import error, task
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from callcenter.asterisk.fastagi_server import AllowedPeers, FastAGIServerFactory, RefusalLog, parse_peer
from callcenter.asterisk.fastagi_session import FastAGIProtocol
from tests.test_fastagi import FakeAsterisk, env_block

LOG = "callcenter.asterisk.fastagi_server"


def v4(host: str, port: int = 40000) -> IPv4Address:
    return IPv4Address("TCP", host, port)


def v6(host: str, port: int = 40000) -> IPv6Address:
    return IPv6Address("TCP", host, port)


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG and "not an allowed peer" in r.getMessage()]


# ---------------------------------------------------------------------------
# Which peers


def test_by_default_only_this_machine_may_connect():
    """Default: 127.0.0.1 and ::1; any other IP address is refused."""
    peers = AllowedPeers(("127.0.0.1", "::1"))
    assert peers.allows(v4("127.0.0.1")) and peers.allows(v6("::1"))
    assert not peers.allows(v4("127.0.0.2")) and not peers.allows(v4("10.0.0.5"))
    assert not peers.allows(v6("2001:db8::1"))


def test_addresses_and_networks_of_both_families():
    """Single addresses and CIDR networks, IPv4 and IPv6."""
    peers = AllowedPeers(["192.0.2.7", "10.1.0.0/16", "2001:db8:40::/48", "fd00::5"])
    assert peers.allows(v4("192.0.2.7")) and not peers.allows(v4("192.0.2.8"))
    assert peers.allows(v4("10.1.255.3")) and not peers.allows(v4("10.2.0.1"))
    assert peers.allows(v6("2001:db8:40:7::1")) and not peers.allows(v6("2001:db8:41::1"))
    assert peers.allows(v6("fd00::5")) and not peers.allows(v6("fd00::6"))
    assert not peers.allows(v4("127.0.0.1"))


def test_ipv4_client_of_a_dual_stack_listener_is_matched_by_its_ipv4_address():
    """::ffff:10.1.2.3 (an IPv4 peer seen on a '::' socket) matches 10.0.0.0/8."""
    peers = AllowedPeers(["10.0.0.0/8"])
    assert peers.allows(v6("::ffff:10.1.2.3"))
    assert not peers.allows(v6("::ffff:192.0.2.1"))


def test_peers_without_an_ip_address_are_not_filtered():
    """UNIX sockets and in-memory test transports have no IP address to check."""
    peers = AllowedPeers(["10.0.0.0/8"])
    assert peers.allows(None) and peers.allows(UNIXAddress("/run/agi.sock"))


@pytest.mark.parametrize("entry, reason", [
    ("asterisk.example.com", "expected an IP address or network"),
    ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; the network is 10.0.0.0/8"),
    ("10.0.0.0/33", "expected an IP address or network"),
    ("fe80::1%eth0", "zone index"),
])
def test_a_bad_entry_says_what_is_wrong(entry, reason):
    """parse_peer (used by the factory) refuses what is not an address or network."""
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_peer(entry)
    with pytest.raises(ValueError):
        FastAGIServerFactory({}, task.Clock(), allowed_peers=[entry])


# ---------------------------------------------------------------------------
# Refusing at connect time


def test_a_refused_peer_gets_no_protocol_and_a_warning_with_its_address(caplog):
    """buildProtocol returns None (the port closes the socket unread) and logs the peer."""
    factory = FastAGIServerFactory({"ivr": lambda s: None}, task.Clock(), allowed_peers=["10.0.0.0/8"])
    factory.doStart()
    with caplog.at_level(logging.WARNING, LOG):
        assert factory.buildProtocol(v4("127.0.0.1", 51515)) is None
        assert factory.buildProtocol(v6("2001:db8::9", 4242)) is None
    assert refusals(caplog) == [
        "FastAGI connection from 127.0.0.1:51515 refused: not an allowed peer (asterisk.agi_allowed_peers)",
        "FastAGI connection from [2001:db8::9]:4242 refused: not an allowed peer (asterisk.agi_allowed_peers)",
    ]
    assert factory.active_sessions == 0
    assert isinstance(factory.buildProtocol(v4("10.20.30.40")), FastAGIProtocol)


def test_refusals_are_logged_once_a_minute_per_host_with_the_count_held_back(caplog):
    """A peer retrying every second is reported once a minute, with how many were not."""
    clock = task.Clock()
    log = RefusalLog(clock)
    with caplog.at_level(logging.WARNING, LOG):
        for _ in range(30):
            log.refused(v4("192.0.2.66", 1000))
            clock.advance(1)
        assert len(refusals(caplog)) == 1
        for _ in range(31):
            log.refused(v4("192.0.2.66", 1001))
            clock.advance(1)
    lines = refusals(caplog)
    assert len(lines) == 2
    assert lines[1] == ("FastAGI connection from 192.0.2.66:1001 refused: not an allowed peer "
                        "(asterisk.agi_allowed_peers) (59 more from this host since its last report)")


def test_a_scan_from_many_hosts_logs_ten_lines_a_minute_then_counts(caplog):
    """A sweep from 500 addresses cannot flood the log: 10 lines a minute, the rest counted."""
    clock = task.Clock()
    log = RefusalLog(clock)
    with caplog.at_level(logging.WARNING, LOG):
        for i in range(500):
            log.refused(v4(f"198.51.{100 + i // 250}.{i % 250}", 2000))
        assert len(refusals(caplog)) == 10
        clock.advance(60)
        log.refused(v4("203.0.113.1", 3000))
    lines = refusals(caplog)
    assert len(lines) == 11
    assert lines[-1].endswith("(490 from other hosts not reported)")


# ---------------------------------------------------------------------------
# Over real TCP


@pytest.fixture
def reactor():
    from twisted.internet import reactor as installed

    return installed


class Watcher(Protocol):
    """A client that sends an AGI environment at once and records what comes back."""

    def __init__(self) -> None:
        self.received = b""
        self.reason = None
        self.done: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(env_block())

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason=None) -> None:
        self.reason = reason
        self.done.callback(None)


async def _listen_and_call(reactor, factory, host: str, endpoint_cls, *, watch: bool = False):
    """One FakeAsterisk call (and, with ``watch``, one Watcher connection) to ``factory``."""
    port = reactor.listenTCP(0, factory, interface=host)
    try:
        endpoint = endpoint_cls(reactor, host, port.getHost().port, timeout=5)
        client = FakeAsterisk(env_block(), {b"ANSWER\n": b"200 result=0\n"})
        await connectProtocol(endpoint, client)
        await client.done
        watcher = Watcher()
        if watch:
            await connectProtocol(endpoint, watcher)
            await watcher.done
        return client, watcher
    finally:
        await factory.shutdown()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_with_the_default_a_loopback_asterisk_runs_its_session(reactor):
    """Default allowed peers: a session from 127.0.0.1 runs its script."""
    seen = []

    async def ivr(session):
        seen.append(session.uniqueid)
        await session.answer()

    factory = FastAGIServerFactory({"ivr": ivr}, reactor)
    client, _ = await _listen_and_call(reactor, factory, "127.0.0.1", TCP4ClientEndpoint)
    assert client.received == b"ANSWER\n"
    assert seen[0] == "1795535416.1"


@pytest_twisted.ensureDeferred
async def test_a_loopback_client_is_refused_when_only_10_0_0_0_8_is_allowed(reactor, caplog):
    """The connection is closed before a byte is read: no protocol, no session, no command sent."""
    started = []
    built = []
    factory = FastAGIServerFactory({"ivr": started.append}, reactor, allowed_peers=["10.0.0.0/8"])
    build = factory.buildProtocol
    factory.buildProtocol = lambda addr: built.append(build(addr)) or built[-1]  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, LOG):
        client, watcher = await _listen_and_call(reactor, factory, "127.0.0.1", TCP4ClientEndpoint, watch=True)
    assert built == [None, None]
    assert started == [] and factory.active_sessions == 0
    assert client.received == b"" and watcher.received == b""
    assert watcher.reason.check(error.ConnectionDone, error.ConnectionLost)
    (line,) = refusals(caplog)  # the second refusal of the same host within a minute is not logged
    assert line.startswith("FastAGI connection from 127.0.0.1:")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest_twisted.ensureDeferred
async def test_an_ipv6_entry_admits_an_ipv6_asterisk(reactor):
    """allowed_peers ['::1']: a session over IPv6 loopback runs; ['2001:db8::/32'] refuses it."""
    seen = []

    async def ivr(session):
        seen.append(session.uniqueid)
        await session.answer()

    factory = FastAGIServerFactory({"ivr": ivr}, reactor, allowed_peers=["::1"])
    client, _ = await _listen_and_call(reactor, factory, "::1", TCP6ClientEndpoint)
    assert client.received == b"ANSWER\n" and seen

    seen.clear()
    factory = FastAGIServerFactory({"ivr": ivr}, reactor, allowed_peers=["2001:db8::/32"])
    client, _ = await _listen_and_call(reactor, factory, "::1", TCP6ClientEndpoint)
    assert client.received == b"" and seen == []


# ---------------------------------------------------------------------------
# Wiring


def test_the_daemon_takes_its_allowed_peers_from_the_config(tmp_path):
    """build_root gives asterisk.agi_allowed_peers to the FastAGI server."""
    from twisted.internet import reactor as installed

    from callcenter.app import build_root
    from callcenter.config import build_config

    cfg = build_config({
        "asterisk": {"ami_secret": "s", "agi_allowed_peers": ["10.1.0.0/16", "2001:db8::/32"]},
        "crm": {"url": f"sqlite:///{tmp_path / 'cc.db'}", "journal": str(tmp_path / "j")},
    }, environ={})
    factory = build_root(cfg, installed).fastagi.factory
    assert factory.buildProtocol(v4("127.0.0.1")) is None
    assert isinstance(factory.buildProtocol(v4("10.1.2.3")), FastAGIProtocol)
    assert isinstance(factory.buildProtocol(v6("2001:db8::77")), FastAGIProtocol)
    factory.doStop()
