"""The AMI link: panoramisk's Manager, with the parts that break replaced.

What we keep from panoramisk 1.4: ``Manager`` (action registry, event
pattern registration) and ``Action``/``Message`` correlation.

What we replace, and why:

* connecting and reconnecting: panoramisk retries on a fixed 2 s timer and
  can schedule two reconnects at once; we run one connect loop with
  exponential backoff and jitter (first retry <= 1 s, cap 30 s) and log each
  attempt;
* event dispatch: in panoramisk an exception raised by one event handler
  propagates into ``data_received`` and kills the connection; here each
  handler is guarded, and the failure is logged with the event name and the
  call id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable

from panoramisk import Manager

from callcenter.backoff import Backoff
from callcenter.logging import call_id_context

logger = logging.getLogger(__name__)


class AMILinkDown(ConnectionError):
    """No authenticated AMI connection right now."""


class AMIClient(Manager):
    """An AMI connection that keeps itself up until ``close()``."""

    def __init__(self, *, host: str, port: int, username: str, secret: str, ssl: bool = False,
                 loop: asyncio.AbstractEventLoop, backoff: Backoff = Backoff(),
                 connect_timeout: float = 5.0, rand: Callable[[], float] = random.random):
        super().__init__(host=host, port=port, username=username, secret=secret, ssl=ssl,
                         loop=loop, events="on", log=logger)
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self._rand = rand
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[Any] | None = None
        self._closing = False
        self.attempts = 0

    # -- connection loop -------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background (never raises if Asterisk is down)."""
        if self._task is None:
            self._closing = False
            self._task = self.loop.create_task(self._run(), name="ami-connect-loop")

    async def _run(self) -> None:
        host, port = self.config["host"], self.config["port"]
        while not self._closing:
            logger.info("connecting to AMI at %s:%s", host, port)
            try:
                transport, protocol = await asyncio.wait_for(
                    self.loop.create_connection(self.config["protocol_factory"], host, port,
                                                ssl=self.config["ssl"] or None),
                    self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                delay = self.backoff.delay(self.attempts, self._rand)
                self.attempts += 1
                logger.warning("AMI at %s:%s unreachable (%s); retrying in %.1f s (attempt %d)",
                               host, port, exc or "timeout", delay, self.attempts)
                await asyncio.sleep(delay)
                continue
            self._lost = self.loop.create_future()
            done: asyncio.Future[Any] = self.loop.create_future()
            done.set_result((transport, protocol))
            Manager.connection_made(self, done)
            await self._lost
            self._lost = None
            if not self._closing:
                delay = self.backoff.delay(self.attempts, self._rand)
                self.attempts += 1
                logger.warning("AMI connection lost; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)

    def login(self, future: "asyncio.Future[Any]") -> bool:
        ok = super().login(future)
        if ok:
            self.attempts = 0
            logger.info("AMI logged in as %s", self.config["username"])
        else:
            logger.error("AMI login as %s refused: %s", self.config["username"],
                         future.result().get("Message", "no reason given"))
        return ok

    def connection_lost(self, exc: Any) -> None:
        # panoramisk schedules its own reconnect here; the loop in _run does it.
        self._connected = False
        self.authenticated = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        if not self._closing:
            logger.warning("AMI connection lost: %s", exc if isinstance(exc, Exception) else "closed")
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def close_and_wait(self) -> None:
        """Log off (best effort), close the socket and stop reconnecting."""
        self._closing = True
        Manager.close(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # -- guarded dispatch ------------------------------------------------
    def dispatch(self, event: Any) -> list[str]:
        matches = []
        event.manager = self
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                self._call_guarded(callback, event)
        return matches

    def _call_guarded(self, callback: Callable[..., Any], event: Any) -> None:
        call_id = event.get("Linkedid") or event.get("Uniqueid") or None
        with call_id_context(call_id):
            try:
                ret = callback(self, event)
            except Exception:
                logger.exception("AMI handler %r failed on %s event", getattr(callback, "__name__", callback),
                                 event.event)
                return
            if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
                task = asyncio.ensure_future(ret, loop=self.loop)
                task.add_done_callback(lambda t: self._log_task_failure(t, event.event))

    @staticmethod
    def _log_task_failure(task: "asyncio.Future[Any]", name: str) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("AMI handler for %s event failed", name, exc_info=task.exception())
