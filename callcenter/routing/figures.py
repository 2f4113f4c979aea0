"""Live queue and agent figures, fed by the ACD and the call tracker, rebuilt from the contact log.

What counts where:

* a call the daemon routed: answered (wait = ACD wait) when its agent
  answers, abandoned when the caller hangs up while it waits or rings,
  diverted when it leaves for a fallback; handled (talk + hold + wrap-up) when
  the agent's wrap-up ends.  The queue is the ACD queue of the call;
* a call answered by Asterisk's own ``Queue()`` (a queue with engine
  ``asterisk``, or the fallback queue): from the tracker's events with the
  queue Asterisk reported;
* agents' time in each state: from the distributor's ``AgentChanged``.

On start (and at each local midnight) the day's counters are rebuilt from the
contact log (``CrmStore.contact_figures``), so the figures survive a daemon
restart; the agents' time-in-state accumulators travel with the ACD snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from acd import effects as fx
from acd import events as ev
from acd.model import AgentState
from acd.stats import AgentFigures, QueueFigures, StatsBook

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Row:
    """A contact-log row with epoch seconds, as ``StatsBook.load`` wants it."""

    queue: str | None
    agent: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    hold_seconds: float | None
    wrapup_seconds: float | None
    abandoned: bool | None
    answered_at: float | None
    ended_at: float


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def start_of_day(now: float) -> float:
    """Local midnight before ``now`` (the machine's time zone)."""
    local = datetime.fromtimestamp(now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class AcdFigures:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.book = StatsBook()
        self._talk: dict[str, tuple[str, float, float]] = {}    # agent -> (queue, talk, hold) of its last call
        self._asterisk_calls: dict[str, str] = {}               # call -> queue, for calls Queue() answered
        self.day = start_of_day(clock())
        self.book.reset(self.day)

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        self.book.thresholds = dict(thresholds)

    def load(self, rows: Any) -> int:
        """The day's counters from contact-log rows (``ContactFigure``); how many rows were read."""
        converted = []
        for row in rows:
            ended = _epoch(getattr(row, "ended_at", None))
            if ended is None:
                continue
            converted.append(_Row(row.queue, row.agent, row.wait_seconds, row.talk_seconds, row.hold_seconds,
                                  row.wrapup_seconds, row.abandoned, _epoch(row.answered_at), ended))
        self.book.load(converted)
        return len(converted)

    def roll_over(self, now: float) -> bool:
        """A new day began: counters to zero; True if so."""
        day = start_of_day(now)
        if day <= self.day:
            return False
        self.day = day
        self.book.reset(day)
        return True

    # -- fed by the ACD (leader) -----------------------------------------------------------------
    def routed_answered(self, queue: str, wait: float) -> None:
        self.book.answered(queue, wait, self._clock())

    def routed_abandoned(self, queue: str, wait: float) -> None:
        self.book.abandoned(queue, wait, self._clock())

    def on_effect(self, effect: Any) -> None:
        if isinstance(effect, fx.AgentChanged):
            self.book.agent_changed(effect)
            done = (effect.previous is AgentState.WRAP_UP and effect.state is not AgentState.WRAP_UP) or \
                (effect.previous is AgentState.ON_CALL and effect.state is not AgentState.WRAP_UP)
            if done:
                queue, talk, hold = self._talk.pop(effect.agent, (None, 0.0, 0.0))
                wrap = effect.seconds_in_previous if effect.previous is AgentState.WRAP_UP else 0.0
                if queue is not None:
                    self.book.handled(queue, effect.agent, talk, hold, wrap, effect.at)
        elif isinstance(effect, fx.Fallback):
            self.book.diverted(effect.queue, effect.wait_seconds, self._clock())

    def conversation_ended(self, agent: str, queue: str, talk: float, hold: float) -> None:
        """Before the distributor hears of it: counted as handled when the agent's wrap-up ends."""
        self._talk[agent] = (queue, talk, hold)

    # -- calls answered by Asterisk's own queues ----------------------------------------------------
    def on_call_event(self, event: Any, routed: Callable[[str], bool], queue_of: Callable[[str], str | None]) -> None:
        if isinstance(event, ev.CallConnected):
            queue = queue_of(event.call_id)
            if queue is not None and not routed(event.call_id):
                self._asterisk_calls[event.call_id] = queue
                self.book.answered(queue, event.wait_seconds, event.at)
        elif isinstance(event, ev.CallAbandoned):
            if event.queue is not None and not routed(event.call_id):
                self.book.abandoned(event.queue, event.wait_seconds, event.at)
        elif isinstance(event, ev.CallCompleted):
            queue = self._asterisk_calls.pop(event.call_id, None)
            if queue is not None:
                self.book.handled(queue, event.agent_id, event.talk_seconds, 0.0, 0.0, event.at)

    # -- figures ---------------------------------------------------------------------------------
    def queue_figures(self, queue: str, waiting_since: list[float], agent_states: dict[str, AgentState]) -> QueueFigures:
        return self.book.queue_figures(queue, self._clock(), waiting_since, agent_states)

    def agent_figures(self, agent: str) -> AgentFigures:
        return self.book.agent_figures(agent, self._clock())
