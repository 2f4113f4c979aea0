"""A dedicated thread pool for blocking database work.

Functions run here are named ``thd_*`` by convention and must return plain,
frozen data: never live ORM objects or sessions.  ``drain()`` waits for every
job already submitted, so that a graceful stop loses no write.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DbPool:
    def __init__(self, reactor: Any, *, name: str = "db", size: int = 4):
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=size, name=name)
        self._pending: set[Deferred[Any]] = set()
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._pool.start()
            self._started = True

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Deferred[T]":
        if not self._started:
            raise RuntimeError("database pool is not running")
        d = deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)
        self._pending.add(d)

        def forget(result: Any) -> Any:
            self._pending.discard(d)
            return result

        return d.addBoth(forget)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        """Wait until every job submitted so far has finished."""
        while self._pending:
            await DeferredList(list(self._pending), consumeErrors=False)

    async def stop(self) -> None:
        await self.drain()
        if self._started:
            # The pool is idle now, so joining its threads returns at once.
            self._pool.stop()
            self._started = False
