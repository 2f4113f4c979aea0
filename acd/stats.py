"""Live statistics of queues and agents: what the wallboard and the supervisor see.

Pure: the daemon feeds a ``StatsBook`` with call outcomes and the
distributor's ``AgentChanged`` effects, and asks for frozen figures with the
time ``now``.  Counters run from the last ``reset(at)`` (the start of the
day); after a restart ``load(rows)`` rebuilds them from the contact log and
``restore(dump())`` gives back the agents' time in each state.

Definitions (``threshold`` is the queue's service-level time, 20 s unless set):

- ``offered``: calls whose wait is over (answered, abandoned, or sent to a
  fallback) plus the calls waiting now;
- ``service_level``: answered within the threshold / (answered + abandoned
  after the threshold); callers who hang up within the threshold count
  neither way;
- ``asa``: mean wait of the answered calls;
- ``aht``: mean talk + hold + wrap-up of the handled calls;
- ``abandon_rate``: abandoned / (answered + abandoned);
- an agent's ``occupancy``: (on-call + wrap-up) / (on-call + wrap-up + ready
  + reserved), i.e. the share of the time the agent was available to the
  ACD that went to calls; not-ready and logged-out time count neither way.

A ratio whose denominator is 0 is ``None``, never an error.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from acd.effects import AgentChanged
from acd.model import AgentState

#: Time that counts towards occupancy: working on calls, and available or ringing.
BUSY_STATES = (AgentState.ON_CALL, AgentState.WRAP_UP)
AVAILABLE_STATES = (AgentState.READY, AgentState.RESERVED)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    queue: str
    waiting: int
    longest_wait: float
    offered: int
    answered: int
    abandoned: int
    answered_within_threshold: int
    abandoned_after_threshold: int
    service_level: float | None
    asa: float | None
    aht: float | None
    abandon_rate: float | None
    agents_by_state: dict[AgentState, int]
    threshold: float = 20.0


@dataclass(frozen=True, slots=True)
class AgentFigures:
    agent: str
    state: AgentState | None          # None: no state change seen since the start of the day
    since: float | None
    calls_handled: int
    aht: float | None
    occupancy: float | None
    seconds_by_state: dict[AgentState, float]


class ContactRow(Protocol):
    """What ``StatsBook.load`` reads from a contact-log row."""

    queue: str | None
    agent: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    hold_seconds: float | None
    wrapup_seconds: float | None
    abandoned: bool
    answered_at: float | None
    ended_at: float


@dataclass(slots=True)
class _Handled:
    calls: int = 0
    seconds: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds

    @property
    def average(self) -> float | None:
        return self.seconds / self.calls if self.calls else None


@dataclass(slots=True)
class _QueueCounters:
    answered: int = 0
    abandoned: int = 0
    diverted: int = 0
    answered_within: int = 0
    abandoned_after: int = 0
    answered_wait: float = 0.0
    handled: _Handled = field(default_factory=_Handled)


@dataclass(slots=True)
class _AgentClock:
    state: AgentState
    since: float
    seconds: dict[AgentState, float] = field(default_factory=dict)


class StatsBook:
    """Counters per queue and per agent since the start of the day."""

    def __init__(self, thresholds: Mapping[str, float] | None = None, default_threshold: float = 20.0,
                 window_hours: float = 8.0) -> None:
        self.thresholds = dict(thresholds or {})
        self.default_threshold = default_threshold
        self.window_hours = window_hours
        self.since = -math.inf
        self._queues: dict[str, _QueueCounters] = {}
        self._agent_calls: dict[str, _Handled] = {}
        self._clocks: dict[str, _AgentClock] = {}
        self._windows: dict[str, Window] = {}

    def threshold(self, queue: str) -> float:
        return self.thresholds.get(queue, self.default_threshold)

    # -- call outcomes -------------------------------------------------------

    def answered(self, queue: str, wait_seconds: float, at: float) -> None:
        if at < self.since:
            return
        counters = self._queue(queue)
        counters.answered += 1
        counters.answered_wait += wait_seconds
        if wait_seconds <= self.threshold(queue):
            counters.answered_within += 1
        self.window(queue).answered(wait_seconds, at)

    def abandoned(self, queue: str, wait_seconds: float, at: float) -> None:
        if at < self.since:
            return
        counters = self._queue(queue)
        counters.abandoned += 1
        if wait_seconds > self.threshold(queue):
            counters.abandoned_after += 1
        self.window(queue).abandoned(wait_seconds, at)

    def diverted(self, queue: str, wait_seconds: float, at: float) -> None:
        """The caller left the queue for a fallback (voicemail, callback): offered, not answered."""
        if at < self.since:
            return
        self._queue(queue).diverted += 1

    def handled(self, queue: str, agent: str | None, talk_seconds: float, hold_seconds: float,
                wrapup_seconds: float, at: float) -> None:
        if at < self.since:
            return
        seconds = (talk_seconds or 0.0) + (hold_seconds or 0.0) + (wrapup_seconds or 0.0)
        self._queue(queue).handled.add(seconds)
        if agent is not None:
            self._agent_calls.setdefault(agent, _Handled()).add(seconds)

    # -- agents --------------------------------------------------------------

    def agent_changed(self, effect: AgentChanged) -> None:
        """Credit the time spent in the previous state; the new one runs from ``effect.at``."""
        clock = self._clocks.get(effect.agent)
        start = clock.since if clock is not None else self.since
        credited = max(0.0, min(effect.seconds_in_previous, effect.at - start))
        if clock is None:
            clock = self._clocks[effect.agent] = _AgentClock(effect.state, effect.at)
        if credited:
            previous = AgentState(effect.previous)
            clock.seconds[previous] = clock.seconds.get(previous, 0.0) + credited
        clock.state = AgentState(effect.state)
        clock.since = effect.at

    # -- figures -------------------------------------------------------------

    def queue_figures(self, queue: str, now: float, waiting_since: Iterable[float] = (),
                      agent_states: Mapping[str, AgentState] | None = None) -> QueueFigures:
        """The figures of ``queue`` now; ``waiting_since`` are the enqueue times of the callers
        waiting, ``agent_states`` the states of its members.  The waiting count also goes to the
        queue's chart window (``window(queue)``) for this minute."""
        waiting_since = list(waiting_since)
        counters = self._queues.get(queue) or _QueueCounters()
        self.window(queue).waiting(len(waiting_since), now)
        finished = counters.answered + counters.abandoned
        sl_base = counters.answered + counters.abandoned_after
        return QueueFigures(
            queue=queue,
            waiting=len(waiting_since),
            longest_wait=max(0.0, now - min(waiting_since)) if waiting_since else 0.0,
            offered=finished + counters.diverted + len(waiting_since),
            answered=counters.answered,
            abandoned=counters.abandoned,
            answered_within_threshold=counters.answered_within,
            abandoned_after_threshold=counters.abandoned_after,
            service_level=counters.answered_within / sl_base if sl_base else None,
            asa=counters.answered_wait / counters.answered if counters.answered else None,
            aht=counters.handled.average,
            abandon_rate=counters.abandoned / finished if finished else None,
            agents_by_state=dict(Counter(AgentState(s) for s in (agent_states or {}).values())),
            threshold=self.threshold(queue),
        )

    def agent_figures(self, agent: str, now: float) -> AgentFigures:
        calls = self._agent_calls.get(agent) or _Handled()
        clock = self._clocks.get(agent)
        seconds: dict[AgentState, float] = {}
        if clock is not None:
            seconds = dict(clock.seconds)
            seconds[clock.state] = seconds.get(clock.state, 0.0) + max(0.0, now - clock.since)
        busy = sum(seconds.get(s, 0.0) for s in BUSY_STATES)
        available = busy + sum(seconds.get(s, 0.0) for s in AVAILABLE_STATES)
        return AgentFigures(
            agent=agent,
            state=clock.state if clock else None,
            since=clock.since if clock else None,
            calls_handled=calls.calls,
            aht=calls.average,
            occupancy=busy / available if available else None,
            seconds_by_state=seconds,
        )

    def _queue(self, queue: str) -> _QueueCounters:
        counters = self._queues.get(queue)
        if counters is None:
            counters = self._queues[queue] = _QueueCounters()
        return counters

    def window(self, queue: str) -> Window:
        """The per-minute chart of ``queue`` (created on first use)."""
        window = self._windows.get(queue)
        if window is None:
            window = self._windows[queue] = Window(self.window_hours, self.threshold(queue))
        return window

    # -- a new day, a restart ------------------------------------------------

    def reset(self, at: float) -> None:
        """Start a new day at ``at``: counters to zero; agents keep their state, timed from ``at``."""
        self.since = at
        self._queues.clear()
        self._agent_calls.clear()
        for clock in self._clocks.values():
            clock.seconds.clear()
            clock.since = max(clock.since, at)

    def load(self, rows: Iterable[ContactRow]) -> None:
        """Rebuild the call counters from the contact log, as if fed live in time order.

        An answer counts at ``answered_at``, a handled call and an abandon at
        ``ended_at``; those before the start of the day are skipped, as live.
        Replaces what was counted before; the agents' time in state comes from
        ``restore``.  A row neither answered nor abandoned left for a fallback.
        """
        self._queues.clear()
        self._agent_calls.clear()
        self._windows.clear()
        events = []
        for row in rows:
            if row.queue is None:
                continue
            wait = row.wait_seconds or 0.0
            if row.abandoned:
                events.append((row.ended_at, self.abandoned, (row.queue, wait)))
            elif row.answered_at is not None:
                events.append((row.answered_at, self.answered, (row.queue, wait)))
                events.append((row.ended_at, self.handled, (
                    row.queue, row.agent, row.talk_seconds or 0.0, row.hold_seconds or 0.0,
                    row.wrapup_seconds or 0.0)))
            else:
                events.append((row.ended_at, self.diverted, (row.queue, wait)))
        events.sort(key=lambda event: event[0])       # the order they happened in: the chart needs it
        for at, count, args in events:
            count(*args, at)

    def dump(self) -> dict[str, Any]:
        """The agents' time-in-state accumulators as plain JSON-able data."""
        return {
            "since": None if self.since == -math.inf else self.since,
            "agents": {
                agent: {"state": clock.state.value, "since": clock.since,
                        "seconds": {state.value: s for state, s in clock.seconds.items()}}
                for agent, clock in self._clocks.items()
            },
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back what ``dump`` gave (in this process or an earlier one)."""
        since = data.get("since")
        self.since = -math.inf if since is None else float(since)
        self._clocks = {
            agent: _AgentClock(AgentState(entry["state"]), float(entry["since"]),
                               {AgentState(s): float(v) for s, v in entry.get("seconds", {}).items()})
            for agent, entry in data.get("agents", {}).items()
        }


@dataclass(slots=True)
class Bucket:
    """One minute of one queue: the most callers seen waiting, and the calls whose wait ended."""

    minute: int                       # minutes since the clock's epoch: ``int(at // 60)``
    waiting_max: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned_after: int = 0

    @property
    def service_level(self) -> float | None:
        base = self.answered + self.abandoned_after
        return self.answered_within / base if base else None


class Window:
    """Per-minute buckets of the last ``hours`` for a chart; at most ``hours * 60`` are kept.

    Minutes with nothing observed have no bucket.  An event for a minute older
    than the newest bucket updates that minute's bucket if it is still held,
    and is dropped otherwise.
    """

    def __init__(self, hours: float = 8.0, threshold: float = 20.0) -> None:
        self.hours = hours
        self.threshold = threshold
        self._buckets: deque[Bucket] = deque(maxlen=max(1, int(hours * 60)))

    def waiting(self, count: int, at: float) -> None:
        bucket = self._bucket(at)
        if bucket is not None:
            bucket.waiting_max = max(bucket.waiting_max, count)

    def answered(self, wait_seconds: float, at: float) -> None:
        bucket = self._bucket(at)
        if bucket is not None:
            bucket.answered += 1
            bucket.answered_within += wait_seconds <= self.threshold

    def abandoned(self, wait_seconds: float, at: float) -> None:
        bucket = self._bucket(at)
        if bucket is not None:
            bucket.abandoned_after += wait_seconds > self.threshold

    def points(self, now: float) -> list[tuple[float, int, float | None]]:
        """``(minute start, waiting max, service level)`` for each held minute of the last hours."""
        oldest = int(now // 60) - self._buckets.maxlen + 1
        return [(b.minute * 60.0, b.waiting_max, b.service_level) for b in self._buckets if b.minute >= oldest]

    def buckets(self, now: float, first_minute: int | None = None) -> list[Bucket]:
        """The held minutes of the last hours (from ``first_minute`` on, if given), oldest first."""
        oldest = int(now // 60) - self._buckets.maxlen + 1
        if first_minute is not None:
            oldest = max(oldest, first_minute)
        recent = []
        for bucket in reversed(self._buckets):      # the live chart asks for the last minutes only
            if bucket.minute < oldest:
                break
            recent.append(bucket)
        return recent[::-1]

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, at: float) -> Bucket | None:
        minute = int(at // 60)
        if not self._buckets or self._buckets[-1].minute < minute:
            self._buckets.append(Bucket(minute))
            return self._buckets[-1]
        for bucket in reversed(self._buckets):
            if bucket.minute == minute:
                return bucket
            if bucket.minute < minute:
                break
        return None


def combined_points(windows: Iterable[Window], now: float,
                    since: float | None = None) -> list[tuple[float, int, float | None]]:
    """One chart for several queues: ``(minute start, waiting, service level)`` per minute, oldest first.

    ``waiting`` is the sum of the queues' per-minute maxima (an upper bound of
    the callers waiting at once); the service level counts every queue's calls
    of that minute together.  Minutes before ``since`` are left out.
    """
    merged: dict[int, Bucket] = {}
    first = int(since // 60) if since is not None else None
    for window in windows:
        for b in window.buckets(now, first):
            into = merged.setdefault(b.minute, Bucket(b.minute))
            into.waiting_max += b.waiting_max
            into.answered += b.answered
            into.answered_within += b.answered_within
            into.abandoned_after += b.abandoned_after
    return [(m * 60.0, b.waiting_max, b.service_level) for m, b in sorted(merged.items())]
