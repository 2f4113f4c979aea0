"""AMI Atxfer on an agent leg the daemon put on hold and took back (dual Redirect, then AMI Bridge): the
attended transfer Asterisk 22.10.1 makes there (callcenter/sim/ami_bridge.py, atxfer.py), the engine-level
twin of tests/test_real_asterisk_actions.py::test_an_attended_transfer_after_a_hold_from_the_desktop.

Recorded twice on the real one: the consultation and its cancel as from a Dial bridge (the transferer back
in the AMI Bridge's bridge); the completion kicks the transferer out (BridgeLeave, the caller's
MusicOnHoldStop, BridgeMerge of the consultation INTO the AMI Bridge's bridge, the target's ``;1`` in it,
the BRIDGEPEERs, AttendedTransfer with OrigBridgeUniqueid that bridge, then only the transferer's
Hangup: no SoftHangupRequest, no Newexten in cc-agent-hold); the caller stays in that bridge and runs no
dialplan.  (TransferTarget* came in one run and not in the other: not checked.)
"""

from __future__ import annotations

import pytest

from callcenter.asterisk import channel_vars as cv
from tests.test_sim_atxfer import Lab
from tests.test_sim_atxfer import _collect_abandoned_channel_threads  # noqa: F401

IFACES = {"local": "Local/{}@sim-agents/n", "pjsip": "PJSIP/{}"}


def held_and_taken_back(phones: str):
    """6001 on a call through cc-connect, put on hold and taken back as the daemon does; 6002 answers."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=1, talk=300)
    call, leg = lab.connected_call(iface=IFACES[phones])
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_HOLD, Exten="s", Priority="1",
               ExtraChannel=leg.name, ExtraContext=cv.CONTEXT_AGENT_HOLD, ExtraExten="s", ExtraPriority="1")
    lab.sim.advance(2)
    lab.action("Bridge", Channel1=call.line.name, Channel2=leg.name, Tone="no")
    lab.sim.advance(1)
    assert leg.bridge is call.line.bridge and leg.bridge.ami and leg.owner is None
    return lab, call, leg


def _names(lab: Lab, since: float, *names: str, of=()) -> list[str]:
    """Those events since ``since``: all, or only the bridges' and those of the channels ``of``."""
    return [m.name for t, m in lab.sim.events if t >= since and m.name in names
            and (not of or m.get("Channel") in (None, *(c.name for c in of)))]


@pytest.mark.parametrize("phones", ["local", "pjsip"])
def test_an_atxfer_after_a_hold_consults_and_a_cancel_brings_the_agent_back(phones):
    """Atxfer: Hold on 6001, music for the caller, 6002 consulted in a new bridge; CancelAtxfer: 6001 back
    in the AMI Bridge's bridge, MusicOnHoldStop, Unhold, the consultation hung up; the caller never left
    that bridge, and runs no dialplan meanwhile."""
    lab, call, leg = held_and_taken_back(phones)
    bridge = call.line.bridge
    mark = lab.clock.seconds()
    lab.attended_transfer(leg)
    lab.sim.advance(3)
    consult = next(m for m in lab.events("DialEnd", mark) if (m.get("DestChannel") or "").startswith("Local/6002@"))
    assert consult.get("DialStatus") == "ANSWER" and leg.bridge is not bridge
    assert call.line.bridge is bridge and [c.name for c in bridge.channels] == [call.line.name]
    assert _names(lab, mark, "Hold", "MusicOnHoldStart") == ["Hold", "MusicOnHoldStart"]
    back = lab.clock.seconds()
    assert lab.action("CancelAtxfer", Channel=leg.name)[0].get("Message") == "CancelAtxfer successfully queued"
    lab.sim.advance(1)
    entered = [m for m in lab.events("BridgeEnter", back) if m.get("Channel") == leg.name]
    assert [m.get("BridgeUniqueid") for m in entered] == [bridge.uniqueid] and leg.bridge is bridge
    assert _names(lab, back, "BridgeEnter", "MusicOnHoldStop", "Unhold", "BridgeDestroy")[:4] == [
        "BridgeEnter", "MusicOnHoldStop", "Unhold", "BridgeDestroy"]     # then the target's own bridges
    assert {m.get("Variable"): m.get("Value") for m in lab.events("VarSet", back)
            if m.get("Channel") == call.line.name and m.get("Variable") == "BRIDGEPEER"} == {"BRIDGEPEER": leg.name}
    assert not lab.events("AttendedTransfer") and not [m for m in lab.events("Newexten", mark)
                                                       if m.get("Channel") in (call.line.name, leg.name)]
    assert not [c for c in lab.sim.engine.channels if "cc-consult" in c or "6002" in c]
    call.hangup()
    lab.sim.advance(2)
    assert lab.sim.engine.channels == {} and lab.sim.errors == []


@pytest.mark.parametrize("phones", ["local", "pjsip"])
def test_a_second_atxfer_completed_by_the_agent_hanging_up_merges_6002_into_the_ami_bridge(phones):
    """After a cancelled one, a second Atxfer; AMI Hangup of 6001 while consulting: BridgeLeave of 6001,
    MusicOnHoldStop, BridgeMerge into the AMI Bridge's bridge, AttendedTransfer Success (OrigBridgeUniqueid
    that bridge, the caller the transferee), and 6001's Hangup alone; the caller talks to the target's
    ``;1`` in that bridge; when the caller hangs up that ``;1`` is hung up with it."""
    lab, call, leg = held_and_taken_back(phones)
    bridge = call.line.bridge
    lab.attended_transfer(leg)
    lab.sim.advance(3)
    lab.action("CancelAtxfer", Channel=leg.name)
    lab.sim.advance(1)
    mark = lab.clock.seconds()
    lab.attended_transfer(leg)
    lab.sim.advance(3)
    assert [m.get("DialStatus") for m in lab.events("DialEnd", mark)
            if (m.get("DestChannel") or "").startswith("Local/6002@")] == ["ANSWER"]
    done_at = lab.clock.seconds()
    lab.action("Hangup", Channel=leg.name, Cause="16")
    lab.sim.advance(1)
    (done,) = lab.events("AttendedTransfer", done_at)
    assert (done.get("Result"), done.get("DestType"), done.get("TransfereeChannel")) == ("Success", "Bridge",
                                                                                        call.line.name)
    assert done.get("OrigBridgeUniqueid") == done.get("DestBridgeUniqueid") == bridge.uniqueid
    assert done.get("OrigTransfererChannel") == leg.name
    assert _names(lab, done_at, "BridgeLeave", "MusicOnHoldStop", "BridgeMerge", "AttendedTransfer", "Hangup",
                  "SoftHangupRequest", "Newexten", "Unhold", of=(leg, call.line)) == [
        "BridgeLeave", "MusicOnHoldStop", "BridgeMerge", "AttendedTransfer", "Hangup"]
    (merge,) = lab.events("BridgeMerge", done_at)
    assert merge.get("ToBridgeUniqueid") == bridge.uniqueid
    assert call.line.bridge is bridge and leg.hungup
    (target,) = [c for c in bridge.channels if c is not call.line]
    assert target.name.startswith("Local/0@cc-consult-") and target.half == 1
    assert call.line.get_var("BRIDGEPEER") == target.name
    assert not [m for m in lab.events("Newexten", done_at) if m.get("Channel") == call.line.name]
    assert lab.timeline()[-2:] == ["resumed", "transfer attended 6002"]
    gone = lab.clock.seconds()
    call.hangup()
    lab.sim.advance(2)
    assert [m.get("BridgeUniqueid") for m in lab.events("BridgeDestroy", gone)][0] == bridge.uniqueid
    assert target.hungup and lab.sim.engine.channels == {} and lab.sim.errors == []
