"""Running the service tree under a reactor, with a graceful stop.

SIGTERM and SIGINT stop the reactor (Twisted installs the handlers); before
it shuts down, the root service stops its children in reverse order, which
flushes pending CRM writes and closes every socket.  The whole stop is capped
at ``stop_timeout`` seconds so that the process always exits within 5 s.
"""

from __future__ import annotations

import logging
import signal
from typing import Any, Callable

from twisted.application.service import IService
from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeout
from twisted.python.failure import Failure

from callcenter.aio import loop_of

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1


def run_until_stopped(root: IService, reactor: Any, *, stop_timeout: float = 4.0,
                      run_for: float | None = None, on_sighup: Callable[[], Any] | None = None,
                      on_started: Callable[[], Any] | None = None) -> int:
    """Start ``root``, run the reactor until a signal (or ``run_for`` seconds),
    stop ``root`` and return the process exit code.  SIGHUP calls ``on_sighup``
    on the reactor thread (the IVR flows reload)."""
    outcome = {"code": EXIT_OK}
    if on_sighup is not None:
        def hangup() -> None:
            logger.info("SIGHUP: reloading")
            try:
                on_sighup()
            except Exception:
                logger.exception("reload on SIGHUP failed")

        loop_of(reactor).add_signal_handler(signal.SIGHUP, hangup)

    def startup_failed(failure: Failure) -> None:
        logger.error("startup failed: %s", failure.getErrorMessage())
        outcome["code"] = EXIT_STARTUP_FAILED
        if reactor.running:
            reactor.stop()

    starting: dict[str, Any] = {}

    def start() -> None:
        d = root.startService()
        d.addCallback(lambda _: logger.info("callcenter running; stop with SIGTERM or Ctrl-C"))
        if on_started is not None:
            d.addCallback(lambda _: on_started())
        d.addErrback(startup_failed)
        if run_for is not None:
            d.addCallback(lambda _: reactor.callLater(run_for, reactor.stop) if reactor.running else None)
        starting["d"] = d

    def shutdown() -> Any:
        if not root.running:
            return None
        logger.info("stopping")
        d = Deferred()
        pending_start = starting.get("d")
        if pending_start is not None and not pending_start.called:
            # A stop during start-up waits for the start to finish (or fail), then stops what started.
            logger.info("start-up still in progress; stopping once it is done")
            pending_start.addBoth(lambda _: None).addBoth(d.callback)
        else:
            d.callback(None)
        d.addCallback(lambda _: root.stopService() if root.running else None)
        d.addTimeout(stop_timeout, reactor)

        def report(failure: Failure) -> None:
            if failure.check(DeferredTimeout):
                logger.error("services did not stop within %.1f s; exiting anyway", stop_timeout)
            else:
                logger.error("error while stopping: %s", failure.getErrorMessage())

        d.addCallbacks(lambda _: logger.info("stopped cleanly"), report)
        return d

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.run()
    return outcome["code"]
