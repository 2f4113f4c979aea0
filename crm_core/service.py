"""The CRM store as a daemon service: engine, thread pool, schema, contact writer.

Start order: thread pool, engine and a ping (an unreachable database fails
the start, naming the CRM), schema upgrade to the latest migration, then
the journal (an unusable journal fails the start too) whose pending
records are replayed in the background.  Stop refuses new contact
records, flushes the journal for up to ``stop_timeout`` seconds (what is
left stays in the journal for the next start), finishes every job already
submitted to the pool and closes the database.
"""

from __future__ import annotations

import logging
from typing import Any

from callcenter.config import CrmConfig
from callcenter.dbpool import DbPool
from callcenter.service import AsyncService
from crm_core.api import CrmStore
from crm_core.db import make_engine, thd_ping
from crm_core.journal import Journal
from crm_core.migrate import thd_upgrade
from crm_core.writer import ContactWriter

logger = logging.getLogger(__name__)


class CrmService(AsyncService):
    """Opens the CRM database at start (a failure is reported) and, on stop,
    finishes every write already submitted before closing it."""

    name = "crm"

    def __init__(self, reactor: Any, config: CrmConfig, *, threads: int = 4, stop_timeout: float = 3.0,
                 migrate: bool = True):
        self._reactor = reactor
        self._config = config
        self._stop_timeout = stop_timeout
        self._migrate = migrate
        self.pool = DbPool(reactor, name="crm-db", size=threads)
        self.engine: Any = None
        self.writer: ContactWriter | None = None
        self.store: CrmStore | None = None

    async def start(self) -> None:
        self.pool.start()
        try:
            self.engine = await self.pool.run(make_engine, self._config.url)
            version = await self.pool.run(thd_ping, self.engine)
            if self._migrate:
                revision = await self.pool.run(thd_upgrade, self.engine)
                logger.info("CRM schema at revision %s", revision)
            writer = ContactWriter(self._reactor, Journal(self._config.journal), self.pool, self.engine,
                                   self._config.default_region)
            await writer.start()
        except Exception:
            await self._close()
            raise
        self.writer = writer
        self.store = CrmStore(self.pool, self.engine, self._config.default_region)
        logger.info("CRM database ready (%s)", version)

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.stop(self._stop_timeout)
            self.writer = None
        if self.pool.pending:
            logger.info("finishing %d pending CRM writes", self.pool.pending)
        await self._close()

    async def _close(self) -> None:
        self.store = None
        await self.pool.drain()
        if self.engine is not None:
            await self.pool.run(self.engine.dispose)
            self.engine = None
        await self.pool.stop()
