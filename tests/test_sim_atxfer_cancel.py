"""AMI CancelAtxfer on the simulator: the abort of an attended transfer (callcenter/sim/atxfer.py).

What Asterisk 22.10.1 did, recorded through the desktop on the lab (tests/test_real_asterisk_actions.py):
the reply is "CancelAtxfer successfully queued" whenever the channel exists, transfer or not; the
transferer reads the abort code (two DTMFEnd), goes back to the caller's bridge, the caller's music
stops, both BRIDGEPEERs, ``Unhold``, then the consultation bridge goes and the consulted legs are hung
up; no AttendedTransfer.  Without a transfer the two digits are read and nothing else happens.
Agents are PJSIP phones, as on the lab; everything runs on a ``task.Clock``.
"""

from __future__ import annotations

from tests.test_sim_atxfer import Lab
from tests.test_sim_atxfer import _collect_abandoned_channel_threads  # noqa: F401

PJSIP = "PJSIP/{}"


def consulting_lab(target_mode: str = "answer"):
    """6001 connected to a caller, consulting 6002 (answered, or still ringing)."""
    lab = Lab(CTI_AGENT_RING_SECS="60")
    lab.sim.agent("6001", ring=1, talk=300)
    if target_mode == "answer":
        lab.sim.agent("6002", ring=1, talk=300)
    else:
        lab.sim.agent("6002", mode="noanswer")
    call, leg = lab.connected_call(iface=PJSIP)
    lab.attended_transfer(leg)
    lab.sim.advance(6 if target_mode == "answer" else 4.5)
    return lab, call, leg


def shape(lab: Lab, since: float, leg, call) -> list[str]:
    """The events the recording pins, channels named by role (agent, caller, consult;1, bridge)."""
    names = {leg.name: "agent", call.line.name: "caller"}
    out = []
    for t, m in lab.sim.events:
        if t < since or m.name not in ("DTMFEnd", "BridgeLeave", "BridgeEnter", "MusicOnHoldStop", "Unhold",
                                       "BridgeDestroy", "AttendedTransfer", "VarSet"):
            continue
        if m.name == "VarSet" and m.get("Variable") != "BRIDGEPEER":
            continue
        chan = m.get("Channel") or ""
        who = names.get(chan) or ("consult;1" if "@cc-consult-" in chan and chan.endswith(";1") else chan)
        out.append(f"{m.name} {who}" if chan else m.name)
    return out


def test_cancelatxfer_answers_as_asterisk_does():
    """No Channel, an unknown one, and a channel without a transfer (queued all the same)."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    call, leg = lab.connected_call(iface=PJSIP)
    replies = [lab.action("CancelAtxfer")[0], lab.action("CancelAtxfer", Channel="PJSIP/nosuch-0001")[0],
               lab.action("CancelAtxfer", Channel=leg.name)[0]]
    assert [(r.get("Response"), r.get("Message")) for r in replies] == [
        ("Error", "No channel specified"), ("Error", "Channel specified does not exist"),
        ("Success", "CancelAtxfer successfully queued")]


def test_without_a_transfer_the_abort_code_is_read_and_dropped():
    """Two DTMFEnd on the agent leg (*, 0, Received, 0 ms) and nothing reaches the caller."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    call, leg = lab.connected_call(iface=PJSIP)
    mark = lab.clock.seconds()
    lab.action("CancelAtxfer", Channel=leg.name)
    lab.sim.advance(3)
    assert [(m.get("Channel"), m.get("Digit"), m.get("Direction"), m.get("DurationMs"))
            for m in lab.events("DTMFEnd", mark)] == [(leg.name, "*", "Received", "0"), (leg.name, "0", "Received", "0")]
    assert not lab.events("DTMFBegin", mark) and leg.bridge is call.line.bridge
    assert lab.timeline()[-1] == "connected 6001"


def test_an_abort_while_consulting_gives_the_caller_back_to_the_agent():
    """The recorded order; the consulted legs hung up; the call stays 6001's, held then resumed."""
    lab, call, leg = consulting_lab()
    assert leg.owner is not None and leg.bridge is not call.line.bridge
    mark = lab.clock.seconds()
    lab.action("CancelAtxfer", Channel=leg.name)
    lab.sim.advance(3)
    assert shape(lab, mark, leg, call)[:11] == [
        "DTMFEnd agent", "DTMFEnd agent", "BridgeLeave agent", "BridgeEnter agent", "MusicOnHoldStop caller",
        "VarSet caller", "VarSet agent", "Unhold agent", "VarSet consult;1", "BridgeLeave consult;1",
        "BridgeDestroy"]
    assert "AttendedTransfer" not in shape(lab, mark, leg, call)
    assert leg.bridge is call.line.bridge and not leg.hungup
    assert not [c for c in lab.sim.engine.channels if "cc-consult" in c or "6002" in c]
    assert lab.timeline()[-4:] == ["held", "consulting", "transfer-cancelled", "resumed"]
    lab.action("Hangup", Channel=leg.name)
    lab.sim.advance(1)
    assert lab.timeline()[-2:] == ["wrap-up agent", "ended 16"] and lab.sim.errors == []


def test_an_abort_while_the_target_rings_cancels_its_dial():
    """The same rebridge; the consultation's Dial ends CANCEL."""
    lab, call, leg = consulting_lab("noanswer")
    mark = lab.clock.seconds()
    lab.action("CancelAtxfer", Channel=leg.name)
    lab.sim.advance(3)
    assert shape(lab, mark, leg, call)[:8] == [
        "DTMFEnd agent", "DTMFEnd agent", "BridgeLeave agent", "BridgeEnter agent", "MusicOnHoldStop caller",
        "VarSet caller", "VarSet agent", "Unhold agent"]
    assert "CANCEL" in [m.get("DialStatus") for m in lab.events("DialEnd", mark)]
    assert not lab.events("AttendedTransfer") and leg.bridge is call.line.bridge
    assert not [c for c in lab.sim.engine.channels if "cc-consult" in c or "6002" in c]
    assert lab.sim.errors == []


def test_a_second_abort_after_the_first_is_only_digits():
    lab, call, leg = consulting_lab()
    lab.action("CancelAtxfer", Channel=leg.name)
    lab.sim.advance(3)
    mark = lab.clock.seconds()
    assert lab.action("CancelAtxfer", Channel=leg.name)[0].get("Message") == "CancelAtxfer successfully queued"
    lab.sim.advance(3)
    assert [m.name for t, m in lab.sim.events if t >= mark and m.name not in ("RTCPSent",)] == ["DTMFEnd", "DTMFEnd"]
