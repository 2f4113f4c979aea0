"""The FastAGI client connection: Asterisk connects to the FastAGI server under test.

One :class:`AgiClientProtocol` per AGI() call.  It reads the server's
commands line by line (``\\n``; like res_agi's fgets, a ``\\r`` stays part
of the command) and notices the server's end of script both as a half-close
(IHalfCloseableProtocol.readConnectionLost, a ``shutdown(SHUT_WR)``) and as a
full close.  :func:`tcp_connector` opens it over TCP with res_agi's 2 s
connect limit (MAX_AGI_CONNECT); a refused port makes AGI() fail at once
(AGISTATUS=FAILURE).
"""

from __future__ import annotations

import logging

from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from zope.interface import implementer

logger = logging.getLogger(__name__)

MAX_AGI_CONNECT = 2.0
MAX_LINE = 2048  # AGI_BUF_LEN


@implementer(IHalfCloseableProtocol)
class AgiClientProtocol(Protocol):
    def __init__(self, session) -> None:
        self.session = session
        self._buffer = b""
        self._ended = False

    def connectionMade(self) -> None:
        self.session.connected(self)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.session.line_received(line[:MAX_LINE].decode("utf-8", "surrogateescape"))

    def readConnectionLost(self) -> None:
        self._end()

    def writeConnectionLost(self) -> None:
        """The server no longer reads; Asterisk would just fail its writes."""

    def connectionLost(self, reason=None) -> None:
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.session.connection_closed()

    def send(self, text: str) -> None:
        if self.transport is not None:
            self.transport.write(text.encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


def tcp_connector(reactor):
    """A connector(host, port, session) that dials the FastAGI server over TCP."""

    def connect(host: str, port: int, session) -> None:
        endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=MAX_AGI_CONNECT)
        d = connectProtocol(endpoint, AgiClientProtocol(session))

        def failed(failure):
            session.failed(failure.getErrorMessage())

        d.addErrback(failed)

    return connect
