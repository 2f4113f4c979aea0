"""Who gets which call: strategies, penalties, skills, priorities, and the waiting-time rules."""

from __future__ import annotations

import pytest

from acd.errors import AcdError
from acd.inputs import (Answered, ConfigChanged, DeviceBusy, Enqueue, Gone, Login, Missed, Released,
                        SetNotReady, SetReady)
from acd.model import QueueRules
from tests.test_acd_helpers import Run, agent, setup

FR = {"fr": 3}


def answer_and_release(run: Run, t: float, call: str, name: str) -> None:
    run.at(t, Answered(call, name), Released(call, name))


# -- strategies ---------------------------------------------------------------

def test_longest_idle_takes_the_agent_free_the_longest():
    """longest-idle: the agent ready the earliest gets the call."""
    run = Run(setup([QueueRules("sales")], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1002")
    run.login(1, "1003")
    run.login(2, "1001")
    run.at(5, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    assert run.offers() == ["offer@5 c1 1002", "offer@5 c2 1003"]


def test_fewest_calls_then_longest_idle():
    """fewest-calls: the agent with fewest handled calls, though others idle longer; ties to the longest idle."""
    rules = QueueRules("sales", strategy="fewest-calls", wrap_up_seconds=0)
    run = Run(setup([rules], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"))
    answer_and_release(run, 2, "c1", "1001")               # 1001: 1 call, idle since 2
    run.login(3, "1003")
    run.login(4, "1002")
    run.at(5, Enqueue("c2", "sales"), Enqueue("c3", "sales"), Enqueue("c4", "sales"))
    assert run.offers() == ["offer@1 c1 1001", "offer@5 c2 1003", "offer@5 c3 1002", "offer@5 c4 1001"]


def test_best_skill_takes_the_highest_proficiency():
    """best-skill: the highest sum of proficiency over the call's skills, ties to the longest idle."""
    rules = QueueRules("sales", strategy="best-skill", skills=(("de", 1), ("fr", 1)))
    run = Run(setup([rules], [agent("1001", "sales", skills={"fr": 5, "de": 1}),
                              agent("1002", "sales", skills={"fr": 4, "de": 4, "es": 5}),
                              agent("1003", "sales", skills={"fr": 2, "de": 2})]))
    run.login(0, "1001", "1003", "1002")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "sales"), Enqueue("c3", "sales"))
    assert run.offers() == ["offer@1 c1 1002", "offer@1 c2 1001", "offer@1 c3 1003"]


def test_round_robin_goes_around_in_login_order():
    """round-robin: the next member after the last one picked, in login order, wrapping around."""
    rules = QueueRules("sales", strategy="round-robin", wrap_up_seconds=0)
    run = Run(setup([rules], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1003", "1001", "1002")
    for t in range(1, 6):
        run.at(t, Enqueue(f"c{t}", "sales"))
        name = run.distributor.calls()[0].agent
        answer_and_release(run, t, f"c{t}", name)
    assert [line.split()[-1] for line in run.offers()] == ["1003", "1001", "1002", "1003", "1001"]


def test_round_robin_skips_busy_members():
    """round-robin: a member that is not free is skipped, the turn goes on after the one picked."""
    rules = QueueRules("sales", strategy="round-robin", wrap_up_seconds=0)
    run = Run(setup([rules], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1001", "1002", "1003")
    run.at(1, Enqueue("c1", "sales"))                 # 1001
    run.at(2, SetNotReady("1002", "break"), Enqueue("c2", "sales"))
    assert run.offers() == ["offer@1 c1 1001", "offer@2 c2 1003"]


def test_lowest_penalty_first():
    """A member with a lower penalty in the queue is asked before one idle for longer."""
    run = Run(setup([QueueRules("sales")], [agent("1001", ("sales", 5)), agent("1002", ("sales", 1))]))
    run.login(0, "1001")
    run.login(50, "1002")
    run.at(60, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    assert run.offers() == ["offer@60 c1 1002", "offer@60 c2 1001"]


def test_agents_without_the_skills_are_not_offered():
    """The call's required skills at their minimum proficiency decide who may take it."""
    rules = QueueRules("sales", skills=(("fr", 3),))
    run = Run(setup([rules], [agent("1001", "sales", skills={"fr": 2}),
                              agent("1002", "sales", skills={"de": 5}),
                              agent("1003", "sales", skills={"fr": 3})]))
    run.login(0, "1001", "1002")
    run.at(1, Enqueue("c1", "sales"))
    assert run.offers() == []
    run.login(2, "1003")
    run.at(3, Enqueue("c2", "sales", skills=(("de", 4),)))
    assert run.offers() == ["offer@2 c1 1003", "offer@3 c2 1002"]


# -- calls: who goes first ----------------------------------------------------

def test_sticky_agent_is_preferred_when_free():
    """A call with a preferred agent goes to that agent when it is eligible, else by strategy."""
    run = Run(setup([QueueRules("sales")], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1001", "1002", "1003")
    run.at(1, Enqueue("c1", "sales", preferred_agent="1003"))
    run.at(2, Enqueue("c2", "sales", preferred_agent="1003"))
    run.at(3, Enqueue("c3", "sales", preferred_agent="nobody"))
    assert run.offers() == ["offer@1 c1 1003", "offer@2 c2 1001", "offer@3 c3 1002"]


def test_vip_priority_before_older_normal_calls():
    """A freed agent takes the highest priority first, then the longest waiting."""
    run = Run(setup([QueueRules("sales", wrap_up_seconds=0)], [agent("1001", "sales")]))
    run.login(0, "1001")
    run.at(0, Enqueue("busy", "sales"), Answered("busy", "1001"))
    run.at(1, Enqueue("old", "sales"))
    run.at(2, Enqueue("older-vip", "sales", priority=10))
    run.at(3, Enqueue("vip", "sales", priority=10))
    run.at(4, Enqueue("callback", "sales", kind="callback"))
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["older-vip", "vip", "old", "callback"]
    assert run.distributor.waiting("sales")[-1].priority == -1
    for t, call in ((10, "busy"), (20, "older-vip"), (30, "vip"), (40, "old")):
        run.at(t, Released(call, "1001"))
        if call != "old":
            run.at(t, Answered(run.distributor.agent("1001").call_id, "1001"))
    assert run.offers()[1:] == ["offer@10 older-vip 1001", "offer@20 vip 1001",
                                "offer@30 old 1001", "offer@40 callback 1001"]


def test_a_freed_agent_serves_all_its_queues_in_service_order():
    """An agent in two queues takes the best call of either."""
    run = Run(setup([QueueRules("sales"), QueueRules("support")],
                    [agent("1001", "sales", "support")]))
    run.at(0, Enqueue("s1", "sales"), Enqueue("t1", "support", priority=1), Enqueue("s2", "sales"))
    run.login(1, "1001")
    assert run.offers() == ["offer@1 t1 1001"]


def test_fairness_longest_idle_spreads_calls():
    """With longest-idle, a stream of calls is shared evenly among equal agents."""
    names = ("1001", "1002", "1003")
    run = Run(setup([QueueRules("sales", wrap_up_seconds=0)], [agent(n, "sales") for n in names]))
    run.login(0, *names)
    for t in range(1, 31):
        run.at(t, Enqueue(f"c{t}", "sales"))
        name = run.distributor.calls()[0].agent
        answer_and_release(run, t + 0.5, f"c{t}", name)
    assert [run.distributor.agent(n).calls_handled for n in names] == [10, 10, 10]


def test_device_busy_agent_is_skipped_until_its_phone_is_free():
    """A ready agent on a direct call gets no offer; when its phone is free it takes the waiting call."""
    run = Run(setup([QueueRules("sales")], [agent("1001", "sales")]))
    run.login(0, "1001")
    run.at(1, DeviceBusy("1001", True), Enqueue("c1", "sales"))
    assert run.offers() == []
    run.at(30, DeviceBusy("1001", False))
    assert run.offers() == ["offer@30 c1 1001"]


def test_every_free_pair_is_matched_in_one_step():
    """When one input frees several agents for several calls, all are matched at once."""
    names = ("1001", "1002", "1003")
    sales = QueueRules("sales", skills=(("de", 1),))
    run = Run(setup([sales], [agent(n, "sales") for n in names]))
    run.login(0, *names)
    run.at(1, *(Enqueue(f"c{i}", "sales") for i in range(4)))
    assert run.offers() == []
    new = setup([sales], [agent(n, "sales", skills={"de": 2}) for n in names])
    run.at(2, ConfigChanged(new))
    assert run.offers() == ["offer@2 c0 1001", "offer@2 c1 1002", "offer@2 c2 1003"]
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c3"]


def test_enqueue_defaults_and_refusals():
    """Skills and priority default from the queue; unknown queue or a known call id are refused."""
    rules = QueueRules("sales", skills=(("fr", 2),), callback_priority=-5)
    run = Run(setup([rules], []))
    run.at(0, Enqueue("c1", "sales"), Enqueue("cb", "sales", kind="callback", callback_id="k1"))
    c1, cb = run.distributor.calls()
    assert (c1.skills, c1.priority, c1.queues, c1.enqueued_at) == ((("fr", 2),), 0, ("sales",), 0)
    assert (cb.priority, cb.kind, cb.callback_id) == (-5, "callback", "k1")
    with pytest.raises(AcdError, match="nowhere"):
        run.distributor.handle(Enqueue("c2", "nowhere"), 1)
    with pytest.raises(AcdError, match="c1"):
        run.distributor.handle(Enqueue("c1", "sales"), 1)
    assert len(run.distributor.calls()) == 2


# -- waiting-time rules -------------------------------------------------------

def test_relaxation_lowers_the_minimum_after_relax_after():
    """After relax_after the call takes agents down to relaxed_proficiency."""
    rules = QueueRules("sales", skills=(("fr", 4), ("de", 1)), relax_after=30, relaxed_proficiency=2)
    run = Run(setup([rules], [agent("1001", "sales", skills={"fr": 2, "de": 1})]))
    run.login(0, "1001")
    run.at(10, Enqueue("c1", "sales"))
    run.at(50)
    assert run.timeline(since=10) == ["relaxed@40 c1", "1001@40 reserved", "offer@40 c1 1001"]
    assert run.distributor.calls()[0].skills == (("de", 1), ("fr", 2))
    assert run.distributor.calls()[0].relaxed


def test_overflow_adds_the_other_queue_with_its_own_skills():
    """After overflow_after, members of overflow_to with that queue's skills may take the call."""
    sales = QueueRules("sales", skills=(("fr", 4),), overflow_after=20, overflow_to="support")
    support = QueueRules("support", skills=(("fr", 1),))
    run = Run(setup([sales, support], [agent("2001", "support", skills={"fr": 1}),
                                       agent("2002", "support", skills={"de": 5})]))
    run.login(0, "2001", "2002")
    run.at(5, Enqueue("c1", "sales"))
    assert run.distributor.next_deadline() == 25
    run.at(40)
    assert run.timeline(since=5) == ["overflow@25 c1 support", "2001@25 reserved", "offer@25 c1 2001"]
    assert run.distributor.calls()[0].queues == ("sales", "support")


def test_overflowed_call_waits_in_both_queues():
    """An overflowed call is listed as waiting in its queue and in the overflow queue."""
    sales = QueueRules("sales", overflow_after=20, overflow_to="support")
    run = Run(setup([sales, QueueRules("support")], []))
    run.at(0, Enqueue("c1", "sales"), Enqueue("t1", "support"))
    run.at(30)
    assert [c.call_id for c in run.distributor.waiting("support")] == ["c1", "t1"]
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c1"]


def test_original_queue_members_come_before_overflow_members():
    """Once overflowed, a call still goes to its own queue's members first."""
    sales = QueueRules("sales", overflow_after=0, overflow_to="support")
    run = Run(setup([sales, QueueRules("support")], [agent("2001", "support"), agent("1001", "sales")]))
    run.login(0, "2001")
    run.login(5, "1001", ready=False)
    run.at(6, Enqueue("x", "support"), Answered("x", "2001"), SetReady("1001"),
           Enqueue("c1", "sales"))
    run.at(7, Released("x", "2001"))                        # 2001 in wrap-up
    assert run.offers() == ["offer@6 x 2001", "offer@6 c1 1001"]


def test_max_wait_sends_the_caller_to_the_fallback():
    """At max_wait a waiting call leaves with Fallback max-wait and the queue's action."""
    rules = QueueRules("sales", max_wait=60, on_max_wait="callback")
    run = Run(setup([rules], []))
    run.at(10, Enqueue("c1", "sales"))
    run.at(100)
    assert run.timeline() == ["fallback@70 c1 max-wait callback"]
    assert run.distributor.calls() == ()
    fallback = run.log[0][1]
    assert (fallback.wait_seconds, fallback.queue) == (60, "sales")


def test_max_wait_while_ringing_leaves_when_the_offer_fails():
    """A call ringing at max wait keeps ringing; if missed, it then leaves instead of waiting again."""
    rules = QueueRules("sales", max_wait=20, ring_seconds=30)
    run = Run(setup([rules], [agent("1001", "sales"), agent("1002", "sales")]))
    run.login(0, "1001", "1002")
    run.at(10, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    run.at(11, Missed("c2", "1002", "busy"))
    run.at(32)
    assert [(c.call_id, c.agent) for c in run.distributor.calls()] == [("c1", "1001")]
    run.at(33, Missed("c1", "1001", "noanswer"))
    assert run.timeline(since=12) == ["fallback@30 c2 max-wait voicemail",
                                      "1001@33 not-ready missed", "fallback@33 c1 max-wait voicemail"]


def test_no_agents_wait_keeps_the_call():
    """no_agents=wait: the call waits even when nobody with the skills is logged in."""
    run = Run(setup([QueueRules("sales", no_agents="wait")], [agent("1001", "sales")]))
    assert run.at(0, Enqueue("c1", "sales")) == []
    run.login(9, "1001")
    assert run.offers() == ["offer@9 c1 1001"]


def test_no_agents_fallback_drops_the_call_at_once():
    """no_agents=fallback: with no logged-in member having the skills, the call falls back at once."""
    rules = QueueRules("sales", skills=(("fr", 3),), no_agents="fallback", on_max_wait="voicemail")
    run = Run(setup([rules], [agent("1001", "sales", skills={"fr": 2}),
                              agent("1002", "sales", skills={"fr": 3})]))
    run.login(0, "1001")
    assert run.timeline(since=1) == []
    run.at(1, Enqueue("c1", "sales"))
    assert run.timeline(since=1) == ["fallback@1 c1 no-agents voicemail"]
    assert run.distributor.calls() == ()


def test_no_agents_counts_busy_and_not_ready_members():
    """Any logged-in member with the skills, even not ready or on a call, makes the call wait."""
    rules = QueueRules("sales", no_agents="fallback")
    run = Run(setup([rules], [agent("1001", "sales")]))
    run.login(0, "1001", ready=False)
    assert run.at(1, Enqueue("c1", "sales")) == []
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c1"]


def test_no_agents_overflow_overflows_at_once():
    """no_agents=overflow: the overflow queue is added on arrival; without one the call waits."""
    sales = QueueRules("sales", no_agents="overflow", overflow_to="support", overflow_after=60)
    lone = QueueRules("lone", no_agents="overflow")
    run = Run(setup([sales, QueueRules("support"), lone], [agent("2001", "support")]))
    run.login(0, "2001")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "lone"))
    assert run.timeline(since=1) == ["overflow@1 c1 support", "2001@1 reserved", "offer@1 c1 2001"]
    assert [c.call_id for c in run.distributor.waiting("lone")] == ["c2"]


def test_gone_while_waiting_removes_the_call():
    """A caller hanging up in the queue is simply forgotten; unknown calls are ignored."""
    run = Run(setup([QueueRules("sales", max_wait=60)], []))
    run.at(0, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    assert run.at(5, Gone("c1"), Gone("never-seen")) == []
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c2"]
    run.at(100)
    assert run.timeline() == ["fallback@60 c2 max-wait voicemail"]


def test_missed_call_goes_back_to_the_head_of_the_queue():
    """A missed call keeps its place: it is served before calls that came after it."""
    run = Run(setup([QueueRules("sales")], [agent("1001", "sales"), agent("1002", "sales")]))
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    run.at(10, Missed("c1", "1001", "busy"))
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c1", "c2"]
    run.at(11, Login("1002", ready=True))
    assert run.offers() == ["offer@1 c1 1001", "offer@11 c1 1002"]
    assert run.distributor.calls()[0].tried == ("1001",)
