"""The CRM store as a daemon service: an engine and its thread pool."""

from __future__ import annotations

import logging
from typing import Any

from callcenter.config import CrmConfig
from callcenter.dbpool import DbPool
from callcenter.service import AsyncService
from crm_core.db import make_engine, thd_ping

logger = logging.getLogger(__name__)


class CrmService(AsyncService):
    """Opens the CRM database at start (a failure is reported) and, on stop,
    finishes every write already submitted before closing it."""

    name = "crm"

    def __init__(self, reactor: Any, config: CrmConfig, *, threads: int = 4):
        self._reactor = reactor
        self._config = config
        self.pool = DbPool(reactor, name="crm-db", size=threads)
        self.engine: Any = None

    async def start(self) -> None:
        self.pool.start()
        try:
            self.engine = await self.pool.run(make_engine, self._config.url)
            version = await self.pool.run(thd_ping, self.engine)
        except Exception:
            await self._close()
            raise
        logger.info("CRM database ready (%s)", version)

    async def stop(self) -> None:
        if self.pool.pending:
            logger.info("finishing %d pending CRM writes", self.pool.pending)
        await self._close()

    async def _close(self) -> None:
        await self.pool.drain()
        if self.engine is not None:
            await self.pool.run(self.engine.dispose)
            self.engine = None
        await self.pool.stop()
