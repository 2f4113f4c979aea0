"""Agent and supervisor actions on a real Asterisk 22, sent through the daemon and checked by what Asterisk did.

The daemon (``callcenter run``) routes a SIPp caller to agent 6001 through its ACD; the test then asks the
daemon, over its control socket (the same ``CallActions`` the desktop uses), to hold and take back the
caller, transfer it blind, dial a customer, or let a supervisor listen.  Each check is on
Asterisk's events (observer) and on the stored contact record.
"""

from __future__ import annotations

import pytest

from tests.real_asterisk import until
from tests.test_real_asterisk_acd import acd, acd_daemon, dial_end, hang_up, login, record_of  # noqa: F401

pytestmark = pytest.mark.real_asterisk


def connected_to_6001(lab, daemon, ani):
    lab.phone("6001", "answer")
    login(daemon, "6001")
    caller = lab.call(ani, "4060")
    dial_end(lab, caller, "6001", "ANSWER")
    until(lambda: daemon.agent("6001")["state"] == "on-call", 10, "6001 on the call")
    return caller


def ok(answer):
    assert answer["ok"], answer
    return answer


def event(lab, name, timeout=15.0, since=0, **where):
    return lab.observer.wait_event(lambda e: e.get("Event") == name and all(
        (e.get(k) or "").startswith(v) if k.endswith("Channel") else e.get(k) == v for k, v in where.items()),
        timeout, f"{name} {where}", since=since)


def test_hold_and_unhold_keep_both_legs_and_the_hold_is_recorded(lab, acd):  # noqa: F811
    """calls.hold: the caller hears music in cc-hold, the agent leg waits in cc-agent-hold; calls.unhold
    bridges them again; the contact record has the hold time."""
    caller = connected_to_6001(lab, acd, "+8613900002001")
    mark = lab.observer.mark()
    ok(acd.control("calls.hold", agent="6001"))
    event(lab, "MusicOnHoldStart", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/trunk-")
    event(lab, "Newexten", since=mark, Linkedid=caller.linkedid, Context="cc-agent-hold", Channel="PJSIP/6001-")
    refused = acd.control("calls.hold", agent="6001")
    assert not refused["ok"] and "hold" in refused["error"]
    mark = lab.observer.mark()
    ok(acd.control("calls.unhold", agent="6001"))
    event(lab, "BridgeEnter", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/trunk-")
    event(lab, "BridgeEnter", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/6001-")
    hang_up(caller)
    record = record_of(acd, caller.linkedid)
    assert record.agent == "6001" and record.hold_seconds is not None and record.hold_seconds > 0


def test_a_blind_transfer_to_another_agent(lab, acd):  # noqa: F811
    """calls.transfer kind blind to 6002: the caller is Redirected to cc-transfer,6002, which rings and
    connects 6002; the contact record lists the transfer."""
    lab.phone("6002", "answer")
    caller = connected_to_6001(lab, acd, "+8613900002002")
    mark = lab.observer.mark()
    ok(acd.control("calls.transfer", agent="6001", target="6002", kind="blind"))
    event(lab, "DialEnd", since=mark, Linkedid=caller.linkedid, DialStatus="ANSWER", DestChannel="Local/6002@agents-")
    until(lambda: acd.agent("6001")["state"] in ("wrap-up", "ready"), 10, "6001 off the call")
    hang_up(caller)
    record = record_of(acd, caller.linkedid)
    assert [t.to for t in record.transfers or ()] == ["6002"]


def test_click_to_dial_rings_the_agent_first_then_the_customer(lab, acd):  # noqa: F811
    """calls.dial: Originate of 6001's phone into cc-outbound; once 6001 answers, the carrier dials the
    customer, who answers; the outbound call is in the contact log with agent 6001."""
    lab.phone("6001", "answer")
    lab.customer("answer")
    login(acd, "6001", ready=False, reason="outbound")
    mark = lab.observer.mark()
    ok(acd.control("calls.dial", agent="6001", number="555 2003"))
    answered = event(lab, "DialEnd", since=mark, DialStatus="ANSWER", DestChannel="PJSIP/carrier-")
    assert answered["Channel"].startswith("PJSIP/6001-")
    refused = acd.control("calls.dial", agent="6001", number="0; Hangup")
    assert not refused["ok"] and "is not a number that can be dialled" in refused["error"]
    lab.observer.action("Hangup", Channel=answered["Channel"])
    record = record_of(acd, answered["Linkedid"])
    assert record.direction == "outbound" and record.agent == "6001" and record.answered_at is not None


def test_a_supervisor_listens_to_an_agents_call(lab, acd):  # noqa: F811
    """calls.spy mode listen: the supervisor's phone (6002) rings, answers, and ChanSpy spies on 6001's leg."""
    lab.phone("6002", "answer")
    caller = connected_to_6001(lab, acd, "+8613900002004")
    mark = lab.observer.mark()
    ok(acd.control("calls.spy", supervisor="6002", agent="6001", mode="listen"))
    spy = event(lab, "ChanSpyStart", since=mark, SpyeeChannel="PJSIP/6001-")
    assert spy["SpyerChannel"].startswith("PJSIP/6002-")
    refused = acd.control("calls.spy", supervisor="6002", agent="6001", mode="steal")
    assert not refused["ok"] and "unknown mode" in refused["error"]
    hang_up(caller)
