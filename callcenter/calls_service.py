"""Call tracking as a daemon service: the tracker, its consumers and the orphan reaper.

The tracker (``callcenter.asterisk.call_tracker``) turns AMI into typed call
events; this service hands each event to its consumers in order (contact
records now; the ACD and the desktops subscribe the same way) and reaps
orphaned calls on a timer.  A consumer that raises is logged with the call
id and the others still get the event.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from twisted.internet.task import LoopingCall

from acd.events import CallState
from callcenter.asterisk.call_tracker import CallTracker
from callcenter.logging import call_id_context
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

Consumer = Callable[[Any], None]


class CallsService(AsyncService):
    name = "calls"

    def __init__(self, reactor: Any, *, reap_every: float = 60.0):
        self._reactor = reactor
        self._consumers: list[Consumer] = []
        self._at_stop: list[Callable[[list[Any]], None]] = []
        self.tracker = CallTracker(self._fan_out, reactor.seconds)
        self._reap_every = reap_every
        self._reaper: LoopingCall | None = None

    def subscribe(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def at_stop(self, consumer: Callable[[list[Any]], None]) -> None:
        """``consumer(calls)`` gets the calls still up when the daemon stops."""
        self._at_stop.append(consumer)

    def call_started(self, call_id: str) -> float | None:
        call = self.tracker.get(call_id)
        return None if call is None else call.arrived_at

    def _fan_out(self, event: Any) -> None:
        for consumer in self._consumers:
            with call_id_context(getattr(event, "call_id", None)):
                try:
                    consumer(event)
                except Exception:
                    logger.exception("call event consumer %s failed on %s",
                                     getattr(consumer, "__qualname__", consumer), type(event).__name__)

    def waiting_calls(self, queue: str) -> int:
        """Callers waiting in ``queue`` now (``ivr_flows.ports.QueueStatsPort``)."""
        return sum(1 for c in self.tracker.calls.values()
                   if c.queue == queue and c.state in (CallState.QUEUED, CallState.OFFERED))

    def _reap(self) -> None:
        try:
            reaped = self.tracker.reap(self._reactor.seconds())
            if reaped:
                logger.warning("reaped %d orphaned call(s)", len(reaped))
        except Exception:  # a LoopingCall stops for good on an exception
            logger.exception("reaping orphaned calls failed")

    async def start(self) -> None:
        self._reaper = LoopingCall(self._reap)
        self._reaper.clock = self._reactor
        self._reaper.start(self._reap_every, now=False)

    async def stop(self) -> None:
        if self._reaper is not None and self._reaper.running:
            self._reaper.stop()
        self._reaper = None
        live = list(self.tracker.calls.values())
        if live:
            logger.info("stopping with %d call(s) up; recording them as they are", len(live))
        for consumer in self._at_stop:
            try:
                consumer(live)
            except Exception:
                logger.exception("recording unfinished calls failed")
