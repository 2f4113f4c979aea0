"""Helpers to drive the simulator in tests and benchmarks (cf. panoramisk/testing.py).

* :class:`ScriptedFastAGI`: a FastAGI server that plays a fixed script (the
  way the lab's recording server did): after the environment, send each
  command once the previous reply arrived; a number is a pause in seconds on
  the clock; at the end it half-closes (``shutdown(SHUT_WR)``).
* :func:`ami_connection`: an AMI session of the simulator on a
  ``StringTransport``, to feed actions and read the raw bytes back.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

Script = Iterable[str | float]


class ScriptedFastAGI(Protocol):
    """One FastAGI connection that plays ``script``; ``lines`` has everything Asterisk sent."""

    def __init__(self, script: Script, clock) -> None:
        self.script = list(script)
        self.clock = clock
        self.buffer = b""
        self.environment: dict[str, str] = {}
        self.lines: list[bytes] = []
        self.sent: list[str] = []
        self._in_env = True
        self._in_usage = False

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.lines.append(line)
            self._line(line)

    def _line(self, line: bytes) -> None:
        if self._in_env:
            if line:
                key, _, value = line.decode("utf-8", "surrogateescape").partition(": ")
                self.environment[key] = value
                return
            self._in_env = False
            self._next()
            return
        if line.startswith(b"520-"):
            self._in_usage = True
            return
        if self._in_usage:
            if line.startswith(b"520 "):
                self._in_usage = False
                self._next()
            return
        if line[:3] in (b"200", b"510", b"511", b"520"):
            self._next()

    def _next(self) -> None:
        if not self.script:
            self.transport.loseWriteConnection()
            return
        item = self.script.pop(0)
        if isinstance(item, (int, float)):
            self.clock.callLater(item, self._next)
            return
        self.sent.append(item)
        self.transport.write(item.encode("utf-8", "surrogateescape") + b"\n")


class ScriptedFastAGIFactory(Factory):
    """Hands out one script per connection, in order (the last one is reused)."""

    def __init__(self, scripts: list[Script], clock) -> None:
        self.scripts = [list(script) for script in scripts]
        self.clock = clock
        self.connections: list[ScriptedFastAGI] = []

    def buildProtocol(self, addr) -> ScriptedFastAGI:
        index = min(len(self.connections), len(self.scripts) - 1)
        protocol = ScriptedFastAGI(self.scripts[index], self.clock)
        protocol.factory = self
        self.connections.append(protocol)
        return protocol


def ami_connection(simulator) -> tuple[Protocol, StringTransport]:
    """A new AMI connection to ``simulator`` on a StringTransport (the banner is already there)."""
    transport = StringTransport()
    protocol = simulator.server.factory.buildProtocol(None)
    protocol.makeConnection(transport)
    return protocol, transport
