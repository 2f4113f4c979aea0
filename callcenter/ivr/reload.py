"""The flow set as a service: load at start, then hot reload on change.

* ``start`` loads and validates every flow file; invalid flows fail the
  start with every error (the daemon does not answer calls with flows it
  cannot trust; the dialplan's fallback queue keeps taking calls);
* a polling watcher (``check()``, driven by a LoopingCall on the injected
  clock) notices an added, removed or written file and reloads;
* ``reload()`` is also what SIGHUP calls;
* a reload validates first: a valid set is swapped in atomically, an invalid
  edit is refused, its errors are logged, and the old set keeps answering.

The file work (the watcher's stat calls, reading and validating the files,
reading the latest stored version and writing a new one into the history)
blocks, and the history only grows, so it runs on a thread of the service's
own pool (``callcenter.dbpool``, one thread: looks at the files never
overlap).  Back on the reactor thread, the prepared set is swapped in with
one assignment (:meth:`FlowRegistry.commit`); a poll that comes while a
reload is running is skipped, a SIGHUP reload waits for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from callcenter.dbpool import DbPool
from callcenter.service import AsyncService
from ivr_flows.model import FlowError
from ivr_flows.registry import FlowRegistry, Prepared, ReloadResult

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 2.0


class FlowsInvalid(Exception):
    """The flow files do not validate; every error is in the message."""

    def __init__(self, result: ReloadResult) -> None:
        self.result = result
        lines = "\n".join(str(e) for e in result.errors)
        super().__init__(f"{len(result.errors)} error(s) in the IVR flows:\n{lines}")


def thd_look(registry: FlowRegistry, last: tuple | None, force: bool) -> tuple[tuple, Prepared | None]:
    """On the service's thread: the files' fingerprint, and the prepared set when they changed
    since ``last`` (or always, with ``force``)."""
    fingerprint = registry.fingerprint()
    if not force and fingerprint == last:
        return fingerprint, None
    return fingerprint, registry.prepare()


class FlowService(AsyncService):
    name = "ivr-flows"

    def __init__(self, registry: FlowRegistry, clock: IReactorTime, interval: float = DEFAULT_POLL_INTERVAL,
                 *, pool: DbPool | None = None) -> None:
        """``clock`` drives the watcher; the file work runs on ``pool`` (default: a pool of one thread
        on ``clock``, which must then be the reactor)."""
        self.registry = registry
        self._clock = clock
        self._interval = interval
        self._pool = pool if pool is not None else DbPool(clock, name="ivr-flows", size=1)
        self._lock = DeferredLock()
        self._fingerprint: tuple | None = None
        self._loop: LoopingCall | None = None

    async def start(self) -> None:
        self._pool.start()
        try:
            self._fingerprint, prepared = await self._pool.run(thd_look, self.registry, None, True)
            result = self.registry.commit(prepared)  # type: ignore[arg-type]
            if not result.ok:
                raise FlowsInvalid(result)
        except BaseException:
            await self._pool.stop()
            raise
        logger.info("IVR flows loaded from %s: %s", self.registry.flows_dir, _versions(result))
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=False)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        await self.settled()
        await self._pool.stop()

    def _poll(self) -> None:
        def failed(failure: Failure) -> None:  # a LoopingCall stops for good on an exception
            logger.error("IVR flow watcher: check failed; still watching: %s", failure.getErrorMessage(),
                         exc_info=(failure.type, failure.value, failure.getTracebackObject()))

        self.check().addErrback(failed)

    def settled(self) -> "Deferred[None]":
        """Fires once no reload is running."""
        return self._lock.run(lambda: None)

    def check(self) -> "Deferred[ReloadResult | None]":
        """Reload when a watched file changed since the last look (nothing while a reload runs)."""
        if self._lock.locked:
            return succeed(None)
        return self._lock.run(lambda: ensureDeferred(self._refresh(force=False)))

    def reload(self) -> "Deferred[ReloadResult]":
        """Validate the files and swap them in, or keep the old set (SIGHUP).  Never fails: a reload
        that breaks is logged and reported as refused."""
        d = self._lock.run(lambda: ensureDeferred(self._refresh(force=True)))

        def failed(failure: Failure) -> ReloadResult:
            logger.error("IVR flow reload failed, the previous flows keep answering calls: %s",
                         failure.getErrorMessage(),
                         exc_info=(failure.type, failure.value, failure.getTracebackObject()))
            error = FlowError(str(self.registry.flows_dir), 1, 1, f"reload failed: {failure.getErrorMessage()}")
            return ReloadResult(False, (error,), (), self.registry.current_versions())

        return d.addErrback(failed)

    async def _refresh(self, *, force: bool) -> ReloadResult | None:
        fingerprint, prepared = await self._pool.run(thd_look, self.registry, self._fingerprint, force)
        self._fingerprint = fingerprint
        if prepared is None:
            return None
        result = self.registry.commit(prepared)
        _log(result)
        return result


def _log(result: ReloadResult) -> None:
    if result.ok:
        if result.changed:
            logger.info("IVR flows reloaded: %s changed (%s)", ", ".join(result.changed), _versions(result))
        else:
            logger.info("IVR flows reloaded: nothing changed")
    else:
        logger.error("IVR flow edit refused, the previous flows keep answering calls (%s); %d error(s):\n%s",
                     _versions(result), len(result.errors), "\n".join(str(e) for e in result.errors))


def _versions(result: ReloadResult) -> str:
    return ", ".join(f"{name} v{version}" for name, version in sorted(result.versions.items())) or "none"


def flows_service(flows_dir: str | Path, routes_path: str | Path | None, clock: Any,
                  interval: float = DEFAULT_POLL_INTERVAL) -> FlowService:
    """A FlowService over a FlowRegistry of ``flows_dir`` (history in ``flows_dir/.history``)."""
    return FlowService(FlowRegistry(flows_dir, routes_path), clock, interval)
