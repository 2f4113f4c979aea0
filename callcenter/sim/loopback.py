"""In-memory connections for the FastAGI client: no sockets, no reactor spinning.

``loopback_connector(factory)`` connects each AGI() call straight to a
protocol built by ``factory`` (a FastAGI server under test, or a scripted
one).  Bytes are handed over through the simulator's scheduler, so a
whole call runs on a ``task.Clock`` without waiting for real I/O.  Both
transports support ``loseWriteConnection`` (a half-close, as the lab's
FastAGI server did) and ``loseConnection``.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHalfCloseableProtocol

from callcenter.sim.agi_client import AgiClientProtocol


class LoopbackTransport:
    """One direction of an in-memory connection (enough ITransport for line protocols)."""

    disconnecting = False

    def __init__(self, scheduler, host: IPv4Address, peer: IPv4Address) -> None:
        self.scheduler = scheduler
        self.host, self.peer_address = host, peer
        self.protocol = None
        self.other: LoopbackTransport | None = None
        self.write_closed = False
        self.closed = False
        self.sent = 0

    def write(self, data: bytes) -> None:
        if self.write_closed or self.closed or not data:
            return
        self.sent += len(data)
        self.scheduler.soon(self.other._receive, bytes(data))

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))

    def _receive(self, data: bytes) -> None:
        if not self.closed and self.protocol is not None:
            self.protocol.dataReceived(data)

    def loseWriteConnection(self) -> None:
        if self.write_closed or self.closed:
            return
        self.write_closed = True
        self.scheduler.soon(self.other._read_closed)

    def _read_closed(self) -> None:
        if self.closed:
            return
        if IHalfCloseableProtocol.providedBy(self.protocol):
            self.protocol.readConnectionLost()
        else:
            self.loseConnection()

    def loseConnection(self) -> None:
        if self.closed:
            return
        self.disconnecting = True
        self.scheduler.soon(self._lost)
        self.scheduler.soon(self.other._lost)

    abortConnection = loseConnection

    def _lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.protocol is not None:
            self.protocol.connectionLost(Failure(ConnectionDone()))

    def getHost(self) -> IPv4Address:
        return self.host

    def getPeer(self) -> IPv4Address:
        return self.peer_address


def loopback_connector(factory):
    """A connector(host, port, session) linking every AGI() to ``factory.buildProtocol``."""
    counter = iter(range(40000, 60000))

    def connect(host: str, port: int, session) -> None:
        scheduler = session.engine.scheduler
        client_address = IPv4Address("TCP", "127.0.0.1", next(counter))
        server_address = IPv4Address("TCP", host, port)
        server = factory.buildProtocol(client_address)
        client = AgiClientProtocol(session)
        client_side = LoopbackTransport(scheduler, client_address, server_address)
        server_side = LoopbackTransport(scheduler, server_address, client_address)
        client_side.other, server_side.other = server_side, client_side
        client_side.protocol, server_side.protocol = client, server
        client.makeConnection(client_side)
        server.makeConnection(server_side)

    return connect
