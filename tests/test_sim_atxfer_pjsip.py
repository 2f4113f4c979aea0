"""Simulated agent phones dialled as PJSIP endpoints (callcenter/sim/pjsip.py), and AMI Atxfer on such a leg.

The real Asterisk 22 lab dials its agents as ``PJSIP/600X`` from ``Dial(...,t)`` (cc-connect); there an
Atxfer's digits after the feature code are lost but the first (tests/test_real_asterisk_actions.py), so the
daemon sends one digit (``0`` = ``${CC_CONSULT_TO}`` in cc-consult).  The simulator does the same.
"""

from __future__ import annotations

import pytest

from acd import events as ev
from callcenter.asterisk import channel_vars as cv
from tests.test_sim_atxfer import Lab
from tests.test_sim_atxfer import _collect_abandoned_channel_threads  # noqa: F401

PJSIP = "PJSIP/{}"


def _devices(lab: Lab, device: str) -> list[str]:
    return [m.get("State") for m in lab.events("DeviceStateChange") if m.get("Device") == device]


def test_cc_connect_dials_a_pjsip_phone_that_rings_answers_and_hangs_up():
    """One channel PJSIP/6001-00000000 (no Local pair, no dialplan of its own): DialBegin with DialString
    6001, Ringing, Up, bridged with the caller; when the agent hangs up the caller goes too; the endpoint's
    device state follows."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=5)
    call, leg = lab.connected_call(iface=PJSIP)
    assert leg.name == "PJSIP/6001-00000000" and leg.context == "agent-phones" and leg.peer is None
    (begin,) = [m for m in lab.events("DialBegin") if m.get("Channel")]   # not the Originate's
    assert (begin.get("Channel"), begin.get("DestChannel"), begin.get("DialString")) == (
        call.line.name, leg.name, "6001")
    assert [m.get("ChannelStateDesc") for m in lab.events("Newstate") if m.get("Channel") == leg.name] == [
        "Ringing", "Up"]
    assert leg.bridge is call.line.bridge is not None
    lab.sim.advance(6)
    assert leg.hungup and call.hungup
    assert _devices(lab, "PJSIP/6001") == ["RINGING", "INUSE", "NOT_INUSE"]
    assert lab.timeline() == ["arrived", "queued moh", "offered 6001", "connected 6001", "wrap-up agent",
                              "ended 16"]
    assert lab.sim.errors == []


@pytest.mark.parametrize("phone, status", [("busy", "BUSY"), ("unregistered", "CHANUNAVAIL")])
def test_a_busy_or_unregistered_pjsip_phone_sends_the_caller_back_to_wait(phone, status):
    lab = Lab()
    if phone == "busy":
        lab.sim.agent("6001", mode="busy")
    else:
        lab.sim.unregister("6001")
    call = lab.sim.call("5552506", "Atxfer Caller", dnis="4100", hold=600)
    lab.sim.advance(1)
    lab.action("Setvar", Channel=call.line.name, Variable=cv.CC_AGENT_IFACE, Value="PJSIP/6001")
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_CONNECT, Exten="s", Priority="1")
    lab.sim.advance(1)
    statuses = [m.get("Value") for m in lab.events("VarSet") if m.get("Variable") == "DIALSTATUS" and m.get("Value")]
    assert statuses == [status]
    assert bool([m for m in lab.events("DialBegin") if m.get("Channel")]) is (phone == "busy")
    assert call.line.context == cv.CONTEXT_WAIT and lab.sim.errors == []


def test_a_manual_pjsip_phone_answers_and_hangs_up_when_told():
    lab = Lab()
    lab.sim.agent("6001", mode="manual")
    call = lab.sim.call("5552506", "Atxfer Caller", dnis="4100", hold=600)
    lab.sim.advance(1)
    lab.action("Setvar", Channel=call.line.name, Variable=cv.CC_AGENT_IFACE, Value="PJSIP/6001")
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_CONNECT, Exten="s", Priority="1")
    lab.sim.advance(5)
    mark = lab.clock.seconds()
    assert not lab.events("DialEnd", 1.0)
    lab.sim.answer("6001")
    lab.sim.advance(1)
    assert [m.get("DialStatus") for m in lab.events("DialEnd", mark)] == ["ANSWER"]
    lab.sim.agent_hangup("6001")
    lab.sim.advance(1)
    assert call.hungup and lab.sim.errors == []


def test_atxfer_with_a_four_digit_exten_on_a_pjsip_leg_transfers_nothing():
    """Only the first digit after the code arrives: '6' is no extension of cc-consult (it could become
    one: the digit timeout runs), three attempts, then Unhold and the music stops; no consultation."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=1, talk=300)
    call, leg = lab.connected_call(iface=PJSIP)
    mark = lab.clock.seconds()
    reply = lab.action("Atxfer", Channel=leg.name, Exten="6002", Context=cv.CONTEXT_CONSULT)
    assert reply[0].get("Message") == "Atxfer successfully queued"
    lab.sim.advance(5)
    assert [m.get("Digit") for m in lab.events("DTMFEnd", mark)] == ["*", "2", "6"]
    assert lab.timeline()[-1] == "held" and not lab.events("Unhold")
    lab.sim.advance(10)
    (unhold,) = lab.events("Unhold")
    assert unhold.get("Channel") == leg.name
    assert [m.get("Channel") for m in lab.events("MusicOnHoldStop", mark)] == [call.line.name]
    assert not [m for m in lab.events("Newchannel", mark)] and not lab.events("AttendedTransfer")
    assert leg.bridge is call.line.bridge and lab.timeline()[-2:] == ["held", "resumed"]
    lab.action("Hangup", Channel=leg.name)
    lab.sim.advance(1)
    assert lab.timeline()[-2:] == ["wrap-up agent", "ended 16"] and lab.sim.errors == []


def test_the_daemons_one_digit_atxfer_on_a_pjsip_leg_transfers_and_names_no_target():
    """Exten 0 with __CC_CONSULT_TO=6002: the consultation is made; when the PJSIP transferer hangs up,
    AttendedTransfer has no TransferTarget* (as Asterisk 22 sent it), and the tracker still finds 6002 by
    the consultation bridge."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=1, talk=20)
    call, leg = lab.connected_call(iface=PJSIP)
    lab.attended_transfer(leg)
    lab.sim.advance(3)
    assert [m.get("Digit") for m in lab.events("DTMFEnd")] == ["*", "2", "0"]
    lab.action("Hangup", Channel=leg.name, Cause="16")
    lab.sim.advance(1)
    (done,) = lab.events("AttendedTransfer")
    assert done.get("Result") == "Success" and done.get("TransfereeChannel") == call.line.name
    assert done.get("OrigTransfererChannel") == done.get("SecondTransfererChannel") == leg.name
    assert not [key for key, _ in done.headers if key.startswith("TransferTarget")]
    assert done.get("SecondBridgeNumChannels") == "0"
    assert lab.timeline()[-4:] == ["held", "consulting", "resumed", "transfer attended 6002"]
    lab.sim.advance(25)
    assert lab.timeline()[-2:] == ["wrap-up agent", "ended 16"]
    record = lab.tracker.of(ev.CallEnded)[0].record
    assert [(t.kind, t.from_agent_id, t.to_agent_id) for t in record.transfers] == [("attended", "6001", "6002")]
    assert lab.sim.engine.channels == {} and lab.sim.errors == []
