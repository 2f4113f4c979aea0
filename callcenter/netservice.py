"""A listening TCP service whose start fails loudly (port in use, bad address)."""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory

from callcenter.service import AsyncService

logger = logging.getLogger(__name__)


class ListenService(AsyncService):
    """Listens on ``bind:port`` with ``factory``; ``port`` 0 picks a free port.

    On stop it first lets the factory wind down its open sessions (its
    ``shutdown()``, if it has one: refuse new ones, finish or abort the
    rest), then stops listening.
    """

    def __init__(self, name: str, reactor: Any, bind: str, port: int, factory: Factory):
        self.name = name
        self._reactor = reactor
        self._bind = bind
        self._port = port
        self.factory = factory
        self.listening: IListeningPort | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self.listening is None:
            raise RuntimeError(f"{self.name} is not listening")
        host = self.listening.getHost()
        return host.host, host.port

    async def start(self) -> None:
        endpoint_cls = TCP6ServerEndpoint if ":" in self._bind else TCP4ServerEndpoint
        endpoint = endpoint_cls(self._reactor, self._port, interface=self._bind)
        self.listening = await endpoint.listen(self.factory)
        logger.info("%s listening on %s:%d", self.name, *self.address)

    async def stop(self) -> None:
        shutdown = getattr(self.factory, "shutdown", None)
        try:
            if shutdown is not None:
                await shutdown()
        finally:
            if self.listening is not None:
                await self.listening.stopListening()
                self.listening = None
