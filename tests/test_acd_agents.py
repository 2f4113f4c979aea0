"""Agent lifecycle in the distributor: login, ready/not ready, pending requests, wrap-up, refusals."""

from __future__ import annotations

import pytest

from acd import agent_fsm
from acd.agent_fsm import Agent
from acd.distributor import Distributor
from acd.errors import AcdError, InvalidTransition, UnknownAgent
from acd.inputs import (Answered, DeviceBusy, EndWrapUp, Enqueue, ExtendWrapUp, Gone, Login, Logout,
                        Missed, Released, SetNotReady, SetReady)
from acd.model import TRANSITIONS, AgentState, QueueRules
from tests.test_acd_helpers import Run, agent, setup

READY, NOT_READY, LOGGED_OUT = AgentState.READY, AgentState.NOT_READY, AgentState.LOGGED_OUT
RESERVED, ON_CALL, WRAP_UP = AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP

SETUP = setup([QueueRules("sales", wrap_up_seconds=10), QueueRules("support", wrap_up_seconds=0),
               QueueRules("billing")],
              [agent("1001", "sales", "support"), agent("1002", "sales"),
               agent("1003", "sales", interface=None)])


def on_call(run: Run, t: float, name: str = "1001", call: str = "c1", queue: str = "sales") -> None:
    """Given ``name`` logged in ready and talking on ``call`` since ``t``."""
    run.login(t, name)
    run.at(t, Enqueue(call, queue), Answered(call, name))
    assert run.state(name) is ON_CALL


def refused(run: Run, command, t: float, error: type[AcdError] = AcdError) -> str:
    """``command`` raises ``error`` and leaves the whole distributor as it was."""
    before = run.distributor.snapshot(t)
    with pytest.raises(error) as caught:
        run.distributor.handle(command, t)
    assert run.distributor.snapshot(t) == before
    return str(caught.value)


# -- the state machine --------------------------------------------------------

@pytest.mark.parametrize("start,to", [(s, t) for s in AgentState for t in AgentState
                                      if t not in TRANSITIONS[s]])
def test_a_move_outside_the_table_raises_and_changes_nothing(start, to):
    """Every move the transition table does not list raises InvalidTransition."""
    record = Agent("1001", since=5.0, order=0, state=start)
    with pytest.raises(InvalidTransition, match="1001"):
        agent_fsm.move(record, to, None, 9.0)
    assert (record.state, record.since) == (start, 5.0)


def test_a_move_reports_the_time_spent_in_the_previous_state():
    """AgentChanged carries the old state, its reason and how long it lasted."""
    record = Agent("1001", since=5.0, order=0, state=NOT_READY, reason="lunch")
    change = agent_fsm.move(record, READY, None, 65.0)
    assert (change.previous, change.previous_reason, change.seconds_in_previous, change.at) == (
        NOT_READY, "lunch", 60.0, 65.0)


# -- login --------------------------------------------------------------------

def test_login_ready_or_not_ready():
    """Login ready makes the agent ready; otherwise not ready with reason login."""
    run = Run(SETUP)
    run.at(3, Login("1001", ready=True), Login("1002"))
    assert run.timeline() == ["1001@3 ready", "1002@3 not-ready login"]
    view = run.distributor.agent("1001")
    assert (view.interface, view.queues, view.idle_since) == ("PJSIP/1001", ("sales", "support"), 3)


def test_login_of_an_unknown_agent_is_refused():
    """Only agents of the setup may log in."""
    assert "9999" in refused(Run(SETUP), Login("9999", "PJSIP/9999"), 0, UnknownAgent)


def test_login_needs_an_interface_from_the_command_or_the_profile():
    """No interface anywhere: refused; given in the command: used."""
    run = Run(SETUP)
    assert "interface" in refused(run, Login("1003"), 0)
    run.at(0, Login("1003", "SIP/desk-12", ready=True))
    assert run.distributor.agent("1003").interface == "SIP/desk-12"


def test_login_queues_must_be_the_agents_own():
    """Queues outside the profile, or unknown to the setup, are refused; a subset is fine."""
    run = Run(SETUP)
    assert "billing" in refused(run, Login("1002", queues=("sales", "billing")), 0)
    assert "nowhere" in refused(run, Login("1002", queues=("nowhere",)), 0)
    run.at(0, Login("1001", queues=("support",)))
    assert run.distributor.agent("1001").queues == ("support",)


def test_login_again_while_idle_updates_the_phone_and_queues():
    """A second login of an idle agent changes interface and queues, and may make it ready."""
    run = Run(SETUP)
    run.at(0, Login("1001"))
    assert run.at(5, Login("1001", "PJSIP/laptop", ("sales",), ready=True))[0].state is READY
    view = run.distributor.agent("1001")
    assert (view.interface, view.queues) == ("PJSIP/laptop", ("sales",))


def test_login_again_during_a_call_is_refused():
    """An agent on a call cannot change its login."""
    run = Run(SETUP)
    on_call(run, 0)
    assert "on-call" in refused(run, Login("1001", queues=("sales",)), 1)


# -- ready, not ready, logout -------------------------------------------------

def test_logged_out_agent_cannot_change_readiness():
    """SetReady, SetNotReady and Logout need a logged-in agent."""
    run = Run(SETUP)
    for command in (SetReady("1001"), SetNotReady("1001", "break"), Logout("1001")):
        assert "not logged in" in refused(run, command, 0)
    assert "7777" in refused(run, SetReady("7777"), 0, UnknownAgent)


def test_ready_not_ready_and_logout_apply_at_once_when_idle():
    """From ready or not ready, each request is one transition; repeating it does nothing."""
    run = Run(SETUP)
    run.login(0, "1001", ready=False)
    run.at(10, SetReady("1001"), SetReady("1001"), SetNotReady("1001", "lunch"),
           SetNotReady("1001", "lunch"), SetNotReady("1001", "training"), Logout("1001"))
    assert run.timeline() == ["1001@0 not-ready login", "1001@10 ready", "1001@10 not-ready lunch",
                              "1001@10 not-ready training", "1001@10 logged-out"]
    assert run.distributor.agent("1001").queues == ()


def test_not_ready_during_a_call_applies_after_wrap_up():
    """SetNotReady on a call is pending; wrap-up still happens, then not ready with that reason."""
    run = Run(SETUP)
    on_call(run, 0)
    assert run.at(5, SetNotReady("1001", "lunch")) == []
    assert run.distributor.agent("1001").pending is NOT_READY
    run.at(30, Released("c1", "1001"))
    run.at(100)
    assert run.timeline(since=30) == ["1001@30 wrap-up", "1001@40 not-ready lunch"]
    assert run.distributor.agent("1001").pending is None


def test_logout_during_a_call_applies_after_wrap_up():
    """Logout on a call: the agent finishes the call and its wrap-up, then is logged out."""
    run = Run(SETUP)
    on_call(run, 0)
    run.at(5, Logout("1001"))
    run.at(30, Released("c1", "1001"), EndWrapUp("1001"))
    assert run.timeline(since=30) == ["1001@30 wrap-up", "1001@30 logged-out"]


def test_ready_during_a_call_cancels_a_pending_request():
    """SetReady while on a call clears a pending not-ready: after wrap-up the agent is ready."""
    run = Run(SETUP)
    on_call(run, 0)
    run.at(5, SetNotReady("1001", "lunch"), SetReady("1001"))
    run.at(30, Released("c1", "1001"))
    run.at(100)
    assert run.timeline(since=30) == ["1001@30 wrap-up", "1001@40 ready"]


def test_not_ready_while_ringing_applies_when_the_offer_ends():
    """A request while the phone rings waits for the offer to end, missed or abandoned."""
    run = Run(SETUP)
    run.login(0, "1001", "1002")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "sales"), SetNotReady("1001", "lunch"),
           Logout("1002"))
    assert (run.state("1001"), run.state("1002")) == (RESERVED, RESERVED)
    run.at(4, Missed("c1", "1001", "busy"))
    run.at(6, Gone("c2"))
    assert run.timeline(since=4) == ["1001@4 not-ready lunch", "1002@6 logged-out"]
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c1"]


# -- wrap-up ------------------------------------------------------------------

def test_wrap_up_ends_by_timer():
    """Released starts the queue's wrap-up; its timer makes the agent ready and counts the call."""
    run = Run(SETUP)
    on_call(run, 0)
    run.at(30, Released("c1", "1001"))
    view = run.distributor.agent("1001")
    assert (view.state, view.wrap_up_until, view.calls_handled, view.call_id) == (WRAP_UP, 40, 1, "c1")
    assert run.distributor.next_deadline() == 40
    run.at(50)
    assert run.timeline(since=30) == ["1001@30 wrap-up", "1001@40 ready"]
    view = run.distributor.agent("1001")
    assert (view.idle_since, view.call_id, view.wrap_up_until) == (40, None, None)


def test_wrap_up_extended_then_ended_early():
    """ExtendWrapUp pushes the end back; EndWrapUp ends it at once."""
    run = Run(SETUP)
    on_call(run, 0)
    run.at(30, Released("c1", "1001"))
    run.at(35, ExtendWrapUp("1001", 30))
    assert run.distributor.next_deadline() == 70
    run.at(60, EndWrapUp("1001"))
    assert run.timeline(since=30) == ["1001@30 wrap-up", "1001@60 ready"]
    assert run.distributor.next_deadline() is None


def test_extending_wrap_up_is_refused_outside_wrap_up_or_out_of_bounds():
    """Extend needs wrap-up, a positive time, and at most an hour ahead."""
    run = Run(SETUP)
    on_call(run, 0)
    refused(run, ExtendWrapUp("1001", 10), 1, InvalidTransition)
    run.at(30, Released("c1", "1001"))
    assert "positive" in refused(run, ExtendWrapUp("1001", 0), 31)
    assert "3600" in refused(run, ExtendWrapUp("1001", 3600), 31)
    refused(run, EndWrapUp("1002"), 31, InvalidTransition)


def test_queue_without_wrap_up_goes_straight_to_ready():
    """wrap_up_seconds 0: released agents are ready at once (or their pending state)."""
    run = Run(SETUP)
    on_call(run, 0, queue="support")
    run.at(20, Released("c1", "1001"))
    assert run.timeline(since=20) == ["1001@20 ready"]
    run.at(21, Enqueue("c2", "support"), Answered("c2", "1001"), Logout("1001"))
    run.at(25, Released("c2", "1001"))
    assert run.timeline(since=25) == ["1001@25 logged-out"]
    assert run.distributor.agent("1001").calls_handled == 2


def test_call_facts_out_of_order_are_refused_and_change_nothing():
    """Answered, Missed and Released for a call the agent does not hold raise and change nothing."""
    run = Run(SETUP)
    run.login(0, "1001", "1002")
    run.at(1, Enqueue("c1", "sales"))                         # rings 1001
    refused(run, Answered("c1", "1002"), 2)
    refused(run, Missed("c1", "1002", "noanswer"), 2)
    refused(run, Released("c1", "1001"), 2, InvalidTransition)
    refused(run, Answered("c9", "1001"), 2)
    refused(run, EndWrapUp("1001"), 2, InvalidTransition)
    run.at(3, Answered("c1", "1001"))
    refused(run, Answered("c1", "1001"), 4)
    refused(run, Released("c1", "1002"), 4, InvalidTransition)


# -- idle time and the phone --------------------------------------------------

def test_idle_since_is_kept_when_an_offer_is_abandoned():
    """A caller hanging up while the agent rings does not send the agent to the back of the line."""
    run = Run(SETUP)
    run.login(0, "1001")
    run.login(5, "1002")
    run.at(10, Enqueue("c1", "sales"), Gone("c1"))
    assert run.distributor.agent("1001").idle_since == 0
    run.at(11, Enqueue("c2", "sales"))
    assert run.offers() == ["offer@10 c1 1001", "offer@11 c2 1001"]


def test_device_busy_keeps_the_state():
    """DeviceBusy flags the agent's phone; its state does not change."""
    run = Run(SETUP)
    run.login(0, "1001")
    assert run.at(1, DeviceBusy("1001", True)) == []
    view = run.distributor.agent("1001")
    assert (view.state, view.device_busy) == (READY, True)


def test_a_distributor_lists_every_configured_agent():
    """Agents never logged in are listed, logged out, from the start."""
    d = Distributor(SETUP, 0)
    assert [(a.agent, a.state) for a in d.agents()] == [
        ("1001", LOGGED_OUT), ("1002", LOGGED_OUT), ("1003", LOGGED_OUT)]
    assert d.agent("nobody") is None
