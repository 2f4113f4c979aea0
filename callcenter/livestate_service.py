"""Starts the configured live-state backend and checks it answers."""

from __future__ import annotations

import logging

from callcenter.aio import as_deferred
from callcenter.config import RedisConfig
from callcenter.livestate import InProcessLiveState, LiveState, RedisLiveState
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)


class LiveStateService(AsyncService):
    name = "live-state"

    def __init__(self, config: RedisConfig):
        self._config = config
        self.state: LiveState | None = None

    async def start(self) -> None:
        if not self._config.enabled:
            self.state = InProcessLiveState()
            logger.info("live state in process (single daemon)")
            return
        state = RedisLiveState(self._config.url)
        try:
            await as_deferred(state.ping())
        except Exception as exc:
            await as_deferred(state.close())
            raise ConnectionError(f"Redis at {_redacted(self._config.url)} does not answer: {exc}") from exc
        self.state = state
        logger.info("live state in Redis at %s", _redacted(self._config.url))

    async def stop(self) -> None:
        if self.state is not None:
            await as_deferred(self.state.close())
            self.state = None


def _redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
