"""Services with a real lifecycle.

Twisted's ``MultiService`` starts children synchronously and drops the
Deferreds they return, so a failing start is lost.  ``AsyncService`` has
coroutine ``start()``/``stop()`` hooks; ``AsyncMultiService`` starts children
one after the other, and when one fails it stops those already running (in
reverse order) and re-raises ``StartupError`` naming the child.  Stopping
runs the children in reverse order and logs, rather than hides, a child that
fails to stop, so the others still stop.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred, ensureDeferred

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """A service failed to start; ``service_name`` says which."""

    def __init__(self, service_name: str, cause: BaseException):
        self.service_name = service_name
        self.cause = cause
        super().__init__(f"{service_name} failed to start: {cause}")


class AsyncService(service.Service):
    """A service whose start and stop are coroutines (Twisted-flavoured)."""

    name: str

    async def start(self) -> None:
        """Acquire resources; raise to report a failed start."""

    async def stop(self) -> None:
        """Release everything ``start`` acquired; must not raise for a clean stop."""

    def startService(self) -> "Deferred[None]":  # noqa: N802 (Twisted API)
        service.Service.startService(self)  # not MultiService's: children start in start()
        d = ensureDeferred(self.start())

        def failed(f: Any) -> Any:
            self.running = 0
            return f

        return d.addErrback(failed)

    def stopService(self) -> "Deferred[None]":  # noqa: N802
        service.Service.stopService(self)
        return ensureDeferred(self.stop())


class AsyncMultiService(AsyncService, service.MultiService):
    """Children start in order and stop in reverse; failures propagate."""

    def __init__(self) -> None:
        service.MultiService.__init__(self)
        self._started: list[service.IService] = []

    async def start(self) -> None:
        for child in list(self):
            name = getattr(child, "name", None) or type(child).__name__
            try:
                await _maybe_deferred(child.startService())
            except Exception as exc:
                logger.error("%s failed to start: %s", name, exc)
                await self._stop_started()
                if isinstance(exc, StartupError):
                    raise
                raise StartupError(name, exc) from exc
            self._started.append(child)
            logger.debug("%s started", name)

    async def stop(self) -> None:
        await self._stop_started()

    async def _stop_started(self) -> None:
        while self._started:
            child = self._started.pop()
            name = getattr(child, "name", None) or type(child).__name__
            try:
                await _maybe_deferred(child.stopService())
                logger.debug("%s stopped", name)
            except Exception:
                logger.exception("%s failed to stop cleanly", name)

    def privilegedStartService(self) -> None:  # noqa: N802
        service.Service.privilegedStartService(self)


def _maybe_deferred(result: Any) -> "Deferred[Any]":
    if isinstance(result, Deferred):
        return result
    d: Deferred[Any] = Deferred()
    d.callback(result)
    return d
