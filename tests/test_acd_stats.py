"""Queue and agent statistics: each figure, the empty cases, a restart, the chart window."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from acd.effects import AgentChanged
from acd.model import AgentState
from acd.stats import StatsBook, Window

READY, RESERVED, ON_CALL, WRAP_UP, NOT_READY, LOGGED_OUT = (
    AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP,
    AgentState.NOT_READY, AgentState.LOGGED_OUT)


@dataclass
class Row:
    queue: str | None
    agent: str | None
    wait_seconds: float
    talk_seconds: float | None
    hold_seconds: float | None
    wrapup_seconds: float | None
    abandoned: bool
    answered_at: float | None
    ended_at: float


ROWS = [
    Row("sales", "1001", 5.0, 100.0, 20.0, 10.0, False, 105.0, 235.0),
    Row("sales", "1002", 30.0, 200.0, 0.0, 10.0, False, 130.0, 340.0),
    Row("sales", None, 8.0, None, None, None, True, None, 8.0),
    Row("sales", None, 45.0, None, None, None, True, None, 145.0),
    Row("sales", None, 60.0, None, None, None, False, None, 260.0),     # sent to voicemail
    Row("billing", "1001", 12.0, 60.0, None, 5.0, False, 412.0, 477.0),
    Row(None, "1002", 0.0, 30.0, 0.0, 0.0, False, 500.0, 530.0),        # an outbound call, no queue
]


def feed_live(book: StatsBook, rows=ROWS) -> None:
    """What the daemon does as the calls of ``rows`` happen, event by event in time order."""
    events = []
    for row in rows:
        if row.queue is None:
            continue
        if row.abandoned:
            events.append((row.ended_at, book.abandoned, (row.queue, row.wait_seconds)))
        elif row.answered_at is not None:
            events.append((row.answered_at, book.answered, (row.queue, row.wait_seconds)))
            events.append((row.ended_at, book.handled, (row.queue, row.agent, row.talk_seconds or 0.0,
                                                        row.hold_seconds or 0.0, row.wrapup_seconds or 0.0)))
        else:
            events.append((row.ended_at, book.diverted, (row.queue, row.wait_seconds)))
    for at, count, args in sorted(events, key=lambda e: e[0]):
        count(*args, at)


def change(agent, previous, state, at, seconds, reason=None):
    return AgentChanged(agent=agent, state=state, reason=reason, previous=previous, previous_reason=None,
                        seconds_in_previous=seconds, at=at)


def test_service_level_counts_answered_within_threshold_over_answered_and_late_abandons():
    """SL = answered within 20 s / (answered + abandoned after 20 s); early hang-ups count neither way."""
    book = StatsBook()
    feed_live(book)
    sales = book.queue_figures("sales", now=600.0)
    assert (sales.answered, sales.abandoned) == (2, 2)
    assert (sales.answered_within_threshold, sales.abandoned_after_threshold) == (1, 1)
    assert sales.service_level == pytest.approx(1 / 3)


def test_asa_is_the_mean_wait_of_answered_calls_only():
    book = StatsBook()
    feed_live(book)
    assert book.queue_figures("sales", 600.0).asa == pytest.approx((5 + 30) / 2)


def test_aht_is_talk_plus_hold_plus_wrap_up_per_handled_call():
    book = StatsBook()
    feed_live(book)
    assert book.queue_figures("sales", 600.0).aht == pytest.approx((130 + 210) / 2)
    assert book.queue_figures("billing", 600.0).aht == pytest.approx(65.0)


def test_abandon_rate_is_abandoned_over_answered_plus_abandoned():
    book = StatsBook()
    feed_live(book)
    assert book.queue_figures("sales", 600.0).abandon_rate == pytest.approx(0.5)


def test_offered_counts_finished_calls_diverted_calls_and_callers_waiting_now():
    book = StatsBook()
    feed_live(book)
    sales = book.queue_figures("sales", 600.0, waiting_since=[570.0, 590.0])
    assert sales.offered == 2 + 2 + 1 + 2
    assert sales.waiting == 2
    assert sales.longest_wait == pytest.approx(30.0)


def test_agents_by_state_counts_the_states_given():
    book = StatsBook()
    figures = book.queue_figures("sales", 0.0, agent_states={"1001": READY, "1002": ON_CALL, "1003": READY})
    assert figures.agents_by_state == {READY: 2, ON_CALL: 1}


def test_a_queue_without_calls_has_none_for_every_ratio():
    """No calls: the ratios are None, not a ZeroDivisionError."""
    figures = StatsBook().queue_figures("empty", now=10.0)
    assert (figures.service_level, figures.asa, figures.aht, figures.abandon_rate) == (None, None, None, None)
    assert (figures.waiting, figures.longest_wait, figures.offered) == (0, 0.0, 0)
    assert figures.agents_by_state == {}


def test_only_early_abandons_give_no_service_level_but_a_full_abandon_rate():
    book = StatsBook()
    book.abandoned("q", 3.0, at=10.0)
    figures = book.queue_figures("q", 20.0)
    assert figures.service_level is None
    assert figures.abandon_rate == 1.0


def test_each_queue_has_its_threshold_and_unknown_queues_the_default():
    book = StatsBook({"vip": 10.0}, default_threshold=30.0)
    for queue in ("vip", "other"):
        book.answered(queue, 15.0, at=1.0)
    assert book.queue_figures("vip", 2.0).service_level == 0.0
    assert book.queue_figures("other", 2.0).service_level == 1.0
    assert book.queue_figures("other", 2.0).threshold == 30.0


def test_a_wait_exactly_at_the_threshold_is_within_it():
    book = StatsBook()
    book.answered("q", 20.0, at=1.0)
    book.abandoned("q", 20.0, at=2.0)
    figures = book.queue_figures("q", 3.0)
    assert (figures.answered_within_threshold, figures.abandoned_after_threshold) == (1, 0)


def test_agent_time_in_state_adds_up_finished_stints_and_the_current_one():
    book = StatsBook()
    book.agent_changed(change("1001", LOGGED_OUT, READY, at=0.0, seconds=0.0))
    book.agent_changed(change("1001", READY, RESERVED, at=30.0, seconds=30.0))
    book.agent_changed(change("1001", RESERVED, ON_CALL, at=40.0, seconds=10.0))
    book.agent_changed(change("1001", ON_CALL, WRAP_UP, at=140.0, seconds=100.0))
    book.agent_changed(change("1001", WRAP_UP, NOT_READY, at=160.0, seconds=20.0, reason="break"))
    figures = book.agent_figures("1001", now=460.0)
    assert figures.state is NOT_READY and figures.since == 160.0
    assert figures.seconds_by_state == {READY: 30.0, RESERVED: 10.0, ON_CALL: 100.0, WRAP_UP: 20.0,
                                        NOT_READY: 300.0}


def test_occupancy_is_call_time_over_call_ready_and_reserved_time_ignoring_not_ready():
    book = StatsBook()
    book.agent_changed(change("1001", LOGGED_OUT, READY, at=0.0, seconds=0.0))
    book.agent_changed(change("1001", READY, RESERVED, at=30.0, seconds=30.0))
    book.agent_changed(change("1001", RESERVED, ON_CALL, at=40.0, seconds=10.0))
    book.agent_changed(change("1001", ON_CALL, WRAP_UP, at=140.0, seconds=100.0))
    book.agent_changed(change("1001", WRAP_UP, NOT_READY, at=160.0, seconds=20.0, reason="break"))
    assert book.agent_figures("1001", now=10_000.0).occupancy == pytest.approx(120 / 160)


def test_agent_calls_handled_and_aht_come_from_handled_calls():
    book = StatsBook()
    feed_live(book)
    figures = book.agent_figures("1001", now=600.0)
    assert figures.calls_handled == 2
    assert figures.aht == pytest.approx((130 + 65) / 2)


def test_an_unknown_agent_has_no_state_and_none_for_ratios():
    figures = StatsBook().agent_figures("nobody", now=5.0)
    assert (figures.state, figures.since, figures.calls_handled) == (None, None, 0)
    assert (figures.aht, figures.occupancy, figures.seconds_by_state) == (None, None, {})


def test_an_agent_only_on_break_has_no_occupancy():
    book = StatsBook()
    book.agent_changed(change("1001", LOGGED_OUT, NOT_READY, at=0.0, seconds=0.0, reason="login"))
    assert book.agent_figures("1001", now=100.0).occupancy is None


def test_load_from_the_contact_log_gives_the_figures_fed_live():
    """After a restart, load(rows) rebuilds exactly what the live feed had counted."""
    live, loaded = StatsBook({"billing": 10.0}), StatsBook({"billing": 10.0})
    feed_live(live)
    loaded.load(reversed(ROWS))
    for queue in ("sales", "billing"):
        assert loaded.queue_figures(queue, 600.0, [590.0]) == live.queue_figures(queue, 600.0, [590.0])
        assert loaded.window(queue).points(600.0) == live.window(queue).points(600.0)
    for agent in ("1001", "1002"):
        assert loaded.agent_figures(agent, 600.0) == live.agent_figures(agent, 600.0)


def test_load_replaces_earlier_counts_and_skips_rows_before_the_day():
    book = StatsBook()
    feed_live(book)
    book.reset(at=200.0)
    book.load(ROWS)
    sales = book.queue_figures("sales", 600.0)
    assert (sales.answered, sales.abandoned, sales.offered) == (0, 0, 1)   # only the 260 s voicemail
    # 1001's sales call was answered at 105 (yesterday's answer) but ended at 235: handled today
    assert book.agent_figures("1001", 600.0).calls_handled == 2


def test_reset_starts_a_new_day_keeping_each_agents_state_timed_from_the_reset():
    book = StatsBook()
    feed_live(book)
    book.agent_changed(change("1001", LOGGED_OUT, READY, at=0.0, seconds=0.0))
    book.agent_changed(change("1001", READY, ON_CALL, at=50.0, seconds=50.0))
    book.reset(at=100.0)
    assert book.queue_figures("sales", 150.0).offered == 0
    figures = book.agent_figures("1001", now=150.0)
    assert (figures.state, figures.since, figures.calls_handled) == (ON_CALL, 100.0, 0)
    assert figures.seconds_by_state == {ON_CALL: 50.0}
    book.agent_changed(change("1001", ON_CALL, WRAP_UP, at=160.0, seconds=110.0))
    assert book.agent_figures("1001", now=160.0).seconds_by_state == {ON_CALL: 60.0, WRAP_UP: 0.0}


def test_dump_is_json_and_restore_gives_back_the_time_in_state():
    book = StatsBook()
    book.reset(at=0.0)
    book.agent_changed(change("1001", LOGGED_OUT, READY, at=0.0, seconds=0.0))
    book.agent_changed(change("1001", READY, ON_CALL, at=40.0, seconds=40.0))
    book.agent_changed(change("1002", LOGGED_OUT, NOT_READY, at=10.0, seconds=0.0, reason="login"))
    data = json.loads(json.dumps(book.dump()))
    restarted = StatsBook()
    restarted.restore(data)
    for agent in ("1001", "1002"):
        assert restarted.agent_figures(agent, 90.0) == book.agent_figures(agent, 90.0)
    restarted.agent_changed(change("1001", ON_CALL, WRAP_UP, at=100.0, seconds=60.0))
    assert restarted.agent_figures("1001", 100.0).seconds_by_state == {READY: 40.0, ON_CALL: 60.0,
                                                                       WRAP_UP: 0.0}


def test_restore_keeps_the_day_start_so_old_rows_stay_out():
    book = StatsBook()
    book.reset(at=200.0)
    restarted = StatsBook()
    restarted.restore(json.loads(json.dumps(book.dump())))
    restarted.load(ROWS)
    assert restarted.queue_figures("billing", 600.0).answered == 1
    assert restarted.queue_figures("sales", 600.0).answered == 0


def test_window_keeps_per_minute_waiting_max_and_service_level():
    window = Window(hours=1, threshold=20.0)
    window.waiting(3, at=0.0)
    window.waiting(7, at=30.0)
    window.answered(5.0, at=40.0)
    window.answered(25.0, at=50.0)
    window.abandoned(5.0, at=55.0)          # early: neither way
    window.waiting(1, at=61.0)
    window.abandoned(40.0, at=70.0)
    assert window.points(now=100.0) == [(0.0, 7, 0.5), (60.0, 1, 0.0)]


def test_window_memory_is_bounded_to_hours_times_sixty_buckets():
    window = Window(hours=2)
    for minute in range(10 * 60):
        window.waiting(minute % 5, at=minute * 60.0 + 1)
    assert len(window) == 120
    points = window.points(now=10 * 3600.0 - 1)
    assert len(points) == 120 and points[0][0] == (10 * 60 - 120) * 60.0


def test_window_points_leave_out_minutes_older_than_the_hours():
    window = Window(hours=1)
    window.waiting(2, at=0.0)
    window.waiting(4, at=3000.0)
    assert [p[0] for p in window.points(now=3500.0)] == [0.0, 3000.0]
    assert [p[0] for p in window.points(now=3600.0)] == [3000.0]


def test_window_updates_a_held_earlier_minute_and_drops_older_late_events():
    window = Window(hours=1)
    window.waiting(2, at=0.0)
    window.waiting(4, at=120.0)
    window.waiting(9, at=30.0)              # late, its minute is held
    window.waiting(9, at=70.0)              # late, no bucket for that minute
    assert window.points(now=130.0) == [(0.0, 9, None), (120.0, 4, None)]


def test_the_book_charts_each_queue_with_its_threshold():
    book = StatsBook({"vip": 10.0})
    book.answered("vip", 15.0, at=5.0)
    book.answered("sales", 15.0, at=5.0)
    book.queue_figures("vip", 6.0, waiting_since=[1.0, 2.0])
    assert book.window("vip").points(10.0) == [(0.0, 2, 0.0)]
    assert book.window("sales").points(10.0) == [(0.0, 0, 1.0)]


def test_combined_points_add_waiting_and_pool_the_calls_of_each_minute():
    from acd.stats import combined_points

    billing, tech = Window(hours=1, threshold=20.0), Window(hours=1, threshold=20.0)
    billing.waiting(2, at=0.0)
    billing.answered(5.0, at=10.0)            # within
    tech.waiting(3, at=20.0)
    tech.answered(30.0, at=30.0)              # late
    tech.waiting(1, at=70.0)
    assert combined_points([billing, tech], now=90.0) == [(0.0, 5, 0.5), (60.0, 1, None)]
    assert combined_points([billing, tech], now=90.0, since=60.0) == [(60.0, 1, None)]
    assert combined_points([], now=90.0) == []
    # only the last hour (60 minutes) is kept
    assert combined_points([billing, tech], now=60 * 60.0 + 5) == [(60.0, 1, None)]   # minute 0 is out
