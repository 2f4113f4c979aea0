"""The flow set as a service: load at start, then hot reload on change.

* ``start`` loads and validates every flow file; invalid flows fail the
  start with every error (the daemon does not answer calls with flows it
  cannot trust; the dialplan's fallback queue keeps taking calls);
* a polling watcher (``check()``, driven by a LoopingCall on the injected
  clock) notices an added, removed or written file and reloads;
* ``reload()`` is also what SIGHUP calls;
* a reload validates first: a valid set is swapped in atomically, an invalid
  edit is refused, its errors are logged, and the old set keeps answering.

Files are small and few, so loading runs on the reactor thread; it takes
milliseconds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from callcenter.service import AsyncService
from ivr_flows.registry import FlowRegistry, ReloadResult

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 2.0


class FlowsInvalid(Exception):
    """The flow files do not validate; every error is in the message."""

    def __init__(self, result: ReloadResult) -> None:
        self.result = result
        lines = "\n".join(str(e) for e in result.errors)
        super().__init__(f"{len(result.errors)} error(s) in the IVR flows:\n{lines}")


class FlowService(AsyncService):
    name = "ivr-flows"

    def __init__(self, registry: FlowRegistry, clock: IReactorTime,
                 interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.registry = registry
        self._clock = clock
        self._interval = interval
        self._fingerprint: tuple | None = None
        self._loop: LoopingCall | None = None

    async def start(self) -> None:
        self._fingerprint = self.registry.fingerprint()
        result = self.registry.reload()
        if not result.ok:
            raise FlowsInvalid(result)
        logger.info("IVR flows loaded from %s: %s", self.registry.flows_dir, _versions(result))
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=False)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _poll(self) -> None:
        try:
            self.check()
        except Exception:  # a LoopingCall stops for good on an exception
            logger.exception("IVR flow watcher: check failed; still watching")

    def check(self) -> ReloadResult | None:
        """Reload when a watched file changed since the last look."""
        fingerprint = self.registry.fingerprint()
        if fingerprint == self._fingerprint:
            return None
        self._fingerprint = fingerprint
        return self.reload()

    def reload(self) -> ReloadResult:
        """Validate the files and swap them in, or keep the old set (SIGHUP)."""
        self._fingerprint = self.registry.fingerprint()
        result = self.registry.reload()
        if result.ok:
            if result.changed:
                logger.info("IVR flows reloaded: %s changed (%s)", ", ".join(result.changed), _versions(result))
            else:
                logger.info("IVR flows reloaded: nothing changed")
        else:
            logger.error("IVR flow edit refused, the previous flows keep answering calls (%s); %d error(s):\n%s",
                         _versions(result), len(result.errors), "\n".join(str(e) for e in result.errors))
        return result


def _versions(result: ReloadResult) -> str:
    return ", ".join(f"{name} v{version}" for name, version in sorted(result.versions.items())) or "none"


def flows_service(flows_dir: str | Path, routes_path: str | Path | None, clock: IReactorTime,
                  interval: float = DEFAULT_POLL_INTERVAL) -> FlowService:
    """A FlowService over a FlowRegistry of ``flows_dir`` (history in ``flows_dir/.history``)."""
    return FlowService(FlowRegistry(flows_dir, routes_path), clock, interval)
