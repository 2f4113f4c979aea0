"""What a daemon that does not lead keeps of the leader's broadcast figures.

The leader broadcasts its queue and agent rows and each queue's chart buckets
(``AcdService._publish_figures``); another daemon keeps the last copy here and
answers its wallboards, REST calls and chart from it, ageing the times in
state and the longest waits by its own clock since the copy arrived.
"""

from __future__ import annotations

from typing import Any, Iterable

from acd.stats import Bucket
from callcenter.routing import codec


def _steady(rows: list[dict[str, Any]], *moving: str) -> list[dict[str, Any]]:
    """``rows`` without the fields that change by themselves as time passes."""
    return [{k: v for k, v in row.items() if k not in moving} for row in rows]


class _Minutes:
    """One queue's chart buckets as broadcast by the leader (``combined_points`` reads it like a Window)."""

    def __init__(self, hours: float) -> None:
        self._held = max(1, int(hours * 60))
        self._buckets: dict[int, Bucket] = {}

    def put(self, buckets: Iterable[Bucket], now: float) -> None:
        for bucket in buckets:
            self._buckets[bucket.minute] = bucket
        oldest = int(now // 60) - self._held + 1
        for minute in [m for m in self._buckets if m < oldest]:
            del self._buckets[minute]

    def buckets(self, now: float, first_minute: int | None = None) -> list[Bucket]:
        oldest = int(now // 60) - self._held + 1
        if first_minute is not None:
            oldest = max(oldest, first_minute)
        return [self._buckets[m] for m in sorted(self._buckets) if m >= oldest]


class LeadersCopy:
    """What a daemon that does not lead knows of the leader's figures: its last broadcast rows (with the
    time they arrived, to age them) and each queue's chart buckets."""

    def __init__(self, hours: float) -> None:
        self._hours = hours
        self._queues: tuple[dict[str, Any], ...] = ()
        self._agents: tuple[dict[str, Any], ...] = ()
        self._at = 0.0
        self._windows: dict[str, _Minutes] = {}

    def take(self, message: codec.FiguresBroadcast, now: float) -> None:
        self._queues, self._agents, self._at = message.queues, message.agents, now
        if message.full_chart:
            self._windows = {}
        for queue, buckets in message.chart.items():
            self.window(queue).put(buckets, now)

    def window(self, queue: str) -> _Minutes:
        found = self._windows.get(queue)
        if found is None:
            found = self._windows[queue] = _Minutes(self._hours)
        return found

    def held(self, queue: str) -> _Minutes:
        """The buckets of ``queue`` (none for a queue the leader never sent)."""
        return self._windows.get(queue) or _Minutes(self._hours)

    def queue_rows(self, now: float) -> list[dict[str, Any]]:
        since = max(0.0, now - self._at)
        return [dict(row, longest_wait=round(row["longest_wait"] + since, 1)) if row["waiting"] else dict(row)
                for row in self._queues]

    def agent_rows(self, now: float) -> list[dict[str, Any]]:
        since = max(0.0, now - self._at)
        return [dict(row, seconds=round(row["seconds"] + since, 1)) if row["seconds"] is not None else dict(row)
                for row in self._agents]
