"""The AMI link as a daemon service."""

from __future__ import annotations

from typing import Any

from callcenter.aio import as_deferred, loop_of
from callcenter.asterisk.ami_client import AMIClient, AMIListener
from callcenter.backoff import Backoff
from callcenter.config import AsteriskConfig
from callcenter.service import AsyncService


class AMILinkService(AsyncService):
    """Keeps one AMI connection up from start to stop.

    Starting does not wait for Asterisk: the daemon serves FastAGI and the
    desktop while the link connects and retries in the background.
    """

    name = "ami"

    def __init__(self, reactor: Any, config: AsteriskConfig, listener: AMIListener | None = None,
                 backoff: Backoff = Backoff()):
        self._reactor = reactor
        self._listener = listener
        self._config = config
        self._backoff = backoff
        self.client: AMIClient | None = None

    async def start(self) -> None:
        self.client = AMIClient(host=self._config.ami_host, port=self._config.ami_port,
                                username=self._config.ami_user, secret=self._config.ami_secret,
                                ssl=self._config.ami_tls, loop=loop_of(self._reactor),
                                listener=self._listener, backoff=self._backoff)
        self.client.start()

    async def stop(self) -> None:
        if self.client is not None:
            await as_deferred(self.client.close_and_wait())
            self.client = None
