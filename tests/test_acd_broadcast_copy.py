"""What a daemon that does not lead keeps of the leader's broadcast figures (``LeadersCopy``): rows aged by
its own clock, chart buckets merged per minute, all of them replaced by a full chart, old minutes dropped."""

from __future__ import annotations

from acd.stats import Bucket, combined_points
from callcenter.routing.codec import FiguresBroadcast
from callcenter.routing.leaders_copy import LeadersCopy

NOW = 1_700_000_000.0
MINUTE = int(NOW // 60)


def figures(chart, full, waiting=2, seconds=12.0):
    queues = ({"queue": "support", "waiting": waiting, "longest_wait": 30.0, "answered": 4},
              {"queue": "sales", "waiting": 0, "longest_wait": 0.0, "answered": 0})
    agents = ({"agent": "1001", "state": "on-call", "seconds": seconds, "occupancy": 0.5},
              {"agent": "1002", "state": "logged-out", "seconds": None, "occupancy": None})
    return FiguresBroadcast(queues, agents, chart, full)


def test_rows_are_aged_by_the_time_since_the_copy_arrived():
    """Time in state and the longest wait grow with the follower's clock; the rest is as broadcast."""
    copy = LeadersCopy(8.0)
    copy.take(figures({}, True), NOW)
    assert copy.agent_rows(NOW) == [dict(r) for r in figures({}, True).agents]
    later = NOW + 2.5
    assert [r["seconds"] for r in copy.agent_rows(later)] == [14.5, None]
    assert [(r["queue"], r["longest_wait"]) for r in copy.queue_rows(later)] == [("support", 32.5), ("sales", 0.0)]
    assert copy.queue_rows(later)[0]["answered"] == 4
    assert [r["seconds"] for r in copy.agent_rows(NOW - 5)] == [12.0, None]   # never younger than broadcast


def test_the_rows_given_out_are_copies():
    """A caller changing a row does not change the copy."""
    copy = LeadersCopy(8.0)
    copy.take(figures({}, True), NOW)
    copy.agent_rows(NOW)[0]["state"] = "ready"
    copy.queue_rows(NOW)[0]["waiting"] = 99
    assert copy.agent_rows(NOW)[0]["state"] == "on-call" and copy.queue_rows(NOW)[0]["waiting"] == 2


def test_latest_minutes_are_merged_and_a_full_chart_replaces_everything():
    copy = LeadersCopy(8.0)
    copy.take(figures({"support": (Bucket(MINUTE - 10, 1, 2, 2, 0), Bucket(MINUTE - 1, 3, 1, 0, 0))}, True), NOW)
    copy.take(figures({"support": (Bucket(MINUTE - 1, 4, 2, 1, 0), Bucket(MINUTE, 1, 0, 0, 1))}, False), NOW + 1)
    assert [(b.minute - MINUTE, b.waiting_max) for b in copy.held("support").buckets(NOW + 1)] == [
        (-10, 1), (-1, 4), (0, 1)]
    assert combined_points([copy.held("support")], NOW + 1, since=(MINUTE - 1) * 60) == [
        ((MINUTE - 1) * 60.0, 4, 0.5), (MINUTE * 60.0, 1, 0.0)]
    copy.take(figures({"sales": (Bucket(MINUTE, 2, 0, 0, 0),)}, True), NOW + 2)
    assert copy.held("support").buckets(NOW + 2) == []
    assert [b.minute for b in copy.held("sales").buckets(NOW + 2)] == [MINUTE]
    assert copy.held("never-sent").buckets(NOW) == []


def test_minutes_older_than_the_window_are_dropped():
    """A one-hour window keeps 60 minutes: older buckets are not shown, and are forgotten on the next take."""
    copy = LeadersCopy(1.0)
    copy.take(figures({"support": (Bucket(MINUTE - 59, 1, 0, 0, 0), Bucket(MINUTE - 60, 2, 0, 0, 0))}, True), NOW)
    assert [b.minute for b in copy.held("support").buckets(NOW)] == [MINUTE - 59]
    copy.take(figures({"support": ()}, False), NOW + 60)
    assert copy.held("support").buckets(NOW + 60) == []
