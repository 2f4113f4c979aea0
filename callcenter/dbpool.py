"""A dedicated thread pool for blocking database work.

Functions run here are named ``thd_*`` by convention and must return plain,
frozen data: never live ORM objects or sessions.  ``drain()`` waits for every
job already submitted to *finish on its thread* (cancelling the Deferred a
caller holds, e.g. by a timeout, does not hide a job still running), so a
graceful stop loses no write and the final ``ThreadPool.stop()`` joins idle
threads only.  The pool also stops its threads when the reactor shuts down,
so a stop cut short by its deadline never leaves the process hanging on them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DbPool:
    def __init__(self, reactor: Any, *, name: str = "db", size: int = 4):
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=size, name=name)
        self._pending: set[Deferred[Any]] = set()
        self._started = False
        self._trigger: Any = None

    def start(self) -> None:
        if not self._started:
            self._pool.start()
            self._started = True
            add_trigger = getattr(self._reactor, "addSystemEventTrigger", None)
            if add_trigger is not None:
                self._trigger = add_trigger("during", "shutdown", self._stop_threads)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Deferred[T]":
        """Run ``fn`` on the pool; the returned Deferred may be cancelled without
        losing track of the job, which still runs to its end."""
        if not self._started:
            raise RuntimeError("database pool is not running")
        job = deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)
        self._pending.add(job)
        result: Deferred[T] = Deferred()

        def finished(outcome: Any) -> None:
            self._pending.discard(job)
            if result.called:  # the caller gave up (cancelled or timed out)
                if isinstance(outcome, Failure):
                    logger.warning("abandoned database job %s failed: %s",
                                   getattr(fn, "__name__", fn), outcome.getErrorMessage())
                return
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

        job.addBoth(finished)
        return result

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        """Wait until every job submitted so far has finished on its thread."""
        while self._pending:
            await DeferredList(list(self._pending), consumeErrors=True)

    def _stop_threads(self) -> None:
        if self._started:
            self._pool.stop()
            self._started = False

    async def stop(self) -> None:
        await self.drain()
        if self._trigger is not None:
            self._reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        # The pool is idle now, so joining its threads returns at once.
        self._stop_threads()
