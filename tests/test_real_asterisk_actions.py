"""Agent and supervisor actions on a real Asterisk 22, asked from the agent desktop's websocket.

The daemon (``callcenter run``) routes a SIPp caller to agent 6001 through its ACD.  The test logs in
to the daemon's desktop port as 6001 (``POST /api/login``, then ``/ws`` with the session cookie, as the
browser does), gets the screen pop, and asks for hold and take-back, blind and attended transfer,
click-to-dial or, as a supervisor, to listen.  Each request's ``result`` frame only says the daemon sent
it on; the checks are on what Asterisk did (the observer's events), on the ``call`` frames the desktop
then receives, and on the stored contact record.
"""

from __future__ import annotations

import pytest

from tests.desktop_client import DesktopClient
from tests.real_asterisk import until
from tests.test_real_asterisk_acd import (  # noqa: F401
    AGENTS, acd, acd_daemon, dial_end, hang_up, record_of,
)

pytestmark = pytest.mark.real_asterisk

SUPERVISOR = "sup1"      # role supervisor, phone 6002


def password(login):
    return f"pw-{login}-secret"


@pytest.fixture(scope="module")
def accounts(acd_daemon):  # noqa: F811
    """Desktop passwords for the agents and a supervisor, in the daemon's CRM store."""
    from sqlalchemy import create_engine

    from crm_core.acd_config import NewAgent, thd_save_agent

    engine = create_engine(acd_daemon.crm_url)
    try:
        for agent in AGENTS:
            thd_save_agent(engine, NewAgent(agent, f"Agent {agent}", password=password(agent),
                                            interface=f"PJSIP/{agent}", skills=(("english", 3),),
                                            queues=(("support", 0), ("slow", 0)), groups=("floor-1",)))
        thd_save_agent(engine, NewAgent(SUPERVISOR, "Supervisor One", password=password(SUPERVISOR),
                                        interface="PJSIP/6002", role="supervisor", groups=("floor-1",)))
    finally:
        engine.dispose()


def desktop(daemon, login):
    return DesktopClient(daemon.desktop_port, login, password(login))


def on_call(lab, daemon, ani, agent="6001"):
    """``agent`` logged in from the desktop, ready, and connected to a new caller; the pop seen."""
    lab.phone(agent, "answer")
    client = desktop(daemon, agent)
    client.wait_type("snapshot")
    client.ok("login", queues=["support"], ready=True)
    client.wait_type("agent", state="ready")
    caller = lab.call(ani, "4060")
    pop = client.wait_type("pop", timeout=30)
    assert pop["ani"] == ani and pop["queue"] == "support" and pop["dnis"] == "4060"
    dial_end(lab, caller, agent, "ANSWER")
    client.wait_type("call", call_id=pop["call_id"], state="connected")
    return client, caller


def event(lab, name, timeout=15.0, since=0, **where):
    return lab.observer.wait_event(lambda e: e.get("Event") == name and all(
        (e.get(k) or "").startswith(v) if k.endswith("Channel") else e.get(k) == v for k, v in where.items()),
        timeout, f"{name} {where}", since=since)


def test_hold_and_unhold_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """hold: the caller hears music in cc-hold, the agent leg waits in cc-agent-hold, the desktop gets
    ``held``; unhold bridges them again and the desktop gets ``resumed``; the record has the hold time."""
    client, caller = on_call(lab, acd, "+8613900002001")
    with client:
        mark, since = lab.observer.mark(), client.mark()
        assert client.ok("hold")["call_id"] == caller.linkedid
        event(lab, "MusicOnHoldStart", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/trunk-")
        event(lab, "Newexten", since=mark, Linkedid=caller.linkedid, Context="cc-agent-hold", Channel="PJSIP/6001-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="held")
        refused = client.request("hold")
        assert not refused["ok"] and "hold" in refused["error"]
        mark, since = lab.observer.mark(), client.mark()
        client.ok("unhold")
        event(lab, "BridgeEnter", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/trunk-")
        event(lab, "BridgeEnter", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/6001-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="resumed")
        hang_up(caller)
        client.wait_type("call", call_id=caller.linkedid, state="ended")
        record = record_of(acd, caller.linkedid)
        assert record.agent == "6001" and record.hold_seconds is not None and record.hold_seconds > 0


def test_an_attended_transfer_after_a_hold_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """hold, unhold, then an attended transfer to 6002, cancelled, and another one completed: the agent leg
    keeps its transfer features in the bridge the AMI Bridge made (Asterisk keeps Dial's feature flags on
    the channel), so the Atxfer consults 6002, the cancel brings 6001 back into that bridge, and 6001's
    hangup during the second consultation transfers the caller to 6002."""
    lab.phone("6002", "answer")
    client, caller = on_call(lab, acd, "+8613900002007")
    with client:
        since = client.mark()
        client.ok("hold")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="held")
        mark = lab.observer.mark()
        client.ok("unhold")
        rejoined = event(lab, "BridgeEnter", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/6001-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="resumed")
        mark, since = lab.observer.mark(), client.mark()
        client.ok("transfer", target="6002", kind="attended")
        event(lab, "DialEnd", 20, since=mark, DialStatus="ANSWER", DestChannel="Local/6002@agents-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="consulting")
        mark = lab.observer.mark()
        client.ok("cancel_transfer")
        back = event(lab, "BridgeEnter", since=mark, Channel="PJSIP/6001-")
        assert back["BridgeUniqueid"] == rejoined["BridgeUniqueid"]
        event(lab, "Hangup", since=mark, Channel="PJSIP/6002-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="resumed")
        states = [f["state"] for f in client.frames[since:] if f.get("type") == "call"]
        assert states == ["held", "consulting", "transfer-cancelled", "resumed"], states
        mark, since = lab.observer.mark(), client.mark()
        client.ok("transfer", target="6002", kind="attended")
        event(lab, "DialEnd", 20, since=mark, DialStatus="ANSWER", DestChannel="Local/6002@agents-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="consulting")
        client.ok("hangup")
        done = event(lab, "AttendedTransfer", since=mark, Result="Success")
        assert done["OrigBridgeUniqueid"] == rejoined["BridgeUniqueid"]
        client.wait_type("call", since=since, call_id=caller.linkedid, state="transferred")
        # the caller talks to 6002 in that same bridge; 6001's leg is gone
        event(lab, "Hangup", since=mark, Channel="PJSIP/6001-")
        channels = {c["Channel"]: c.get("BridgeId") for c in lab.observer.action("CoreShowChannels")
                    if c.get("Event") == "CoreShowChannel" and c.get("Linkedid") == caller.linkedid}
        trunk = next(bridge for name, bridge in channels.items() if name.startswith("PJSIP/trunk-"))
        assert trunk == rejoined["BridgeUniqueid"] and not any(name.startswith("PJSIP/6001-") for name in channels)
        assert any(name.startswith("PJSIP/6002-") for name in channels), channels
        hang_up(caller)
        record = record_of(acd, caller.linkedid)
        assert [(t.kind, t.to) for t in record.transfers or ()] == [("attended", "6002")], record.transfers
        assert record.hold_seconds, record


def test_a_blind_transfer_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """transfer kind blind to 6002: the caller is Redirected to cc-transfer,6002, which rings and connects
    6002; 6001's desktop gets ``transferred`` and 6001 goes to wrap-up; the record lists the transfer."""
    lab.phone("6002", "answer")
    client, caller = on_call(lab, acd, "+8613900002002")
    with client:
        mark, since = lab.observer.mark(), client.mark()
        client.ok("transfer", target="6002", kind="blind")
        event(lab, "DialEnd", since=mark, Linkedid=caller.linkedid, DialStatus="ANSWER",
              DestChannel="Local/6002@agents-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="transferred")
        client.wait(lambda f: f.get("type") == "agent" and f.get("state") in ("wrap-up", "ready"), 10,
                    "6001 off the call", since)
        hang_up(caller)
        record = record_of(acd, caller.linkedid)
        assert [t.to for t in record.transfers or ()] == ["6002"]
        assert [t.kind for t in record.transfers] == ["redirect"]     # moved by AMI Redirect into a Dial


def test_an_attended_transfer_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """transfer kind attended to 6002: Atxfer on 6001's leg; the caller hears music while 6001 consults
    6002 (cc-consult dials 6002, who answers); 6001 hangs up from the desktop, which completes the
    transfer: Asterisk's AttendedTransfer succeeds, the caller talks to 6002, the desktop gets ``held``
    then ``transferred``, and the record lists an attended transfer from 6001 to 6002."""
    lab.phone("6002", "answer")
    client, caller = on_call(lab, acd, "+8613900002005")
    with client:
        mark, since = lab.observer.mark(), client.mark()
        client.ok("transfer", target="6002", kind="attended")
        event(lab, "MusicOnHoldStart", since=mark, Linkedid=caller.linkedid, Channel="PJSIP/trunk-")
        consult = event(lab, "DialEnd", 20, since=mark, DialStatus="ANSWER", DestChannel="Local/6002@agents-")
        assert consult["Channel"].startswith("Local/0@cc-consult-")    # cc-consult dials CC_CONSULT_TO
        client.wait_type("call", since=since, call_id=caller.linkedid, state="held")
        mark = lab.observer.mark()
        client.ok("hangup")
        done = event(lab, "AttendedTransfer", since=mark, Result="Success")
        assert done["TransfereeChannel"].startswith("PJSIP/trunk-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="transferred")
        hang_up(caller)
        record = record_of(acd, caller.linkedid)
        assert [(t.kind, t.to) for t in record.transfers or ()] == [("attended", "6002")], record.transfers
        assert record.agent in ("6001", "6002")


def test_an_attended_transfer_cancelled_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """cancel_transfer while 6001 consults 6002: refused before the transfer; then CancelAtxfer on 6001's
    leg (Asterisk answers "CancelAtxfer successfully queued" whether a transfer runs or not, so the daemon
    checks).  Asterisk reads the abort code (DTMFEnd ``*``, ``0``), moves 6001 back into the caller's
    bridge, stops the caller's music, ``Unhold``, destroys the consultation bridge and hangs up the
    consulted legs, with no AttendedTransfer; the desktop gets ``consulting``, ``transfer-cancelled``,
    ``resumed``; the record keeps 6001 as the agent, with no transfer and the hold time."""
    lab.phone("6002", "answer")
    client, caller = on_call(lab, acd, "+8613900002006")
    with client:
        agent_leg = dial_end(lab, caller, "6001", "ANSWER")["DestChannel"]
        refused = client.request("cancel_transfer")
        assert not refused["ok"] and refused["error"] == "no attended transfer in progress on the call"
        mark, since = lab.observer.mark(), client.mark()
        client.ok("transfer", target="6002", kind="attended")
        event(lab, "DialEnd", 20, since=mark, DialStatus="ANSWER", DestChannel="Local/6002@agents-")
        client.wait_type("call", since=since, call_id=caller.linkedid, state="consulting")
        consult_leg = event(lab, "BridgeEnter", since=mark, Channel="PJSIP/6001-")
        caller_bridge = event(lab, "BridgeEnter", Linkedid=caller.linkedid, Channel="PJSIP/trunk-")["BridgeUniqueid"]
        assert consult_leg["BridgeUniqueid"] != caller_bridge
        mark = lab.observer.mark()
        assert client.ok("cancel_transfer")["call_id"] == caller.linkedid
        back = event(lab, "BridgeEnter", since=mark, Channel="PJSIP/6001-")
        assert back["BridgeUniqueid"] == caller_bridge and back["Channel"] == agent_leg
        event(lab, "MusicOnHoldStop", since=mark, Channel="PJSIP/trunk-")
        event(lab, "Unhold", since=mark, Channel=agent_leg)
        event(lab, "BridgeDestroy", since=mark, BridgeUniqueid=consult_leg["BridgeUniqueid"])
        event(lab, "Hangup", since=mark, Channel="PJSIP/6002-")
        event(lab, "Hangup", since=mark, Channel="Local/0@cc-consult-")
        digits = [e.get("Digit") for e in lab.observer.events[mark:] if e.get("Event") == "DTMFEnd"
                  and e.get("Channel") == agent_leg]
        assert digits[:2] == ["*", "0"]
        client.wait_type("call", since=since, call_id=caller.linkedid, state="resumed")
        states = [f["state"] for f in client.frames[since:] if f.get("type") == "call"]
        assert states == ["held", "consulting", "transfer-cancelled", "resumed"], states
        assert lab.observer.find(lambda e: e.get("Event") == "AttendedTransfer", since=mark) is None
        assert acd.agent("6001")["call_id"] == caller.linkedid
        hang_up(caller)
        client.wait_type("call", call_id=caller.linkedid, state="ended")
        record = record_of(acd, caller.linkedid)
        assert record.agent == "6001" and not record.transfers and record.hold_seconds, record


def test_click_to_dial_from_the_desktop(lab, acd, accounts):  # noqa: F811
    """dial: Originate of 6001's phone into cc-outbound; once 6001 answers, the carrier dials the
    customer, who answers; the outbound call is in the contact log with agent 6001."""
    lab.phone("6001", "answer")
    lab.customer("answer")
    with desktop(acd, "6001") as client:
        client.ok("login", queues=["support"], ready=False)
        client.ok("not_ready", reason="outbound")
        mark = lab.observer.mark()
        client.ok("dial", number="555 2003")
        answered = event(lab, "DialEnd", since=mark, DialStatus="ANSWER", DestChannel="PJSIP/carrier-")
        assert answered["Channel"].startswith("PJSIP/6001-")
        refused = client.request("dial", number="0; Hangup")
        assert not refused["ok"] and "is not a number that can be dialled" in refused["error"]
        lab.observer.action("Hangup", Channel=answered["Channel"])
        record = record_of(acd, answered["Linkedid"])
        assert record.direction == "outbound" and record.agent == "6001" and record.answered_at is not None


def test_a_supervisor_listens_from_the_wallboard_desktop(lab, acd, accounts):  # noqa: F811
    """spy mode listen from the supervisor's desktop (same group as 6001): the supervisor's phone (6002)
    rings, answers, and ChanSpy spies on 6001's leg.  An agent may not spy."""
    lab.phone("6002", "answer")
    client, caller = on_call(lab, acd, "+8613900002004")
    with client, desktop(acd, SUPERVISOR) as supervisor:
        supervisor.wait_type("wallboard")
        mark = lab.observer.mark()
        assert supervisor.ok("spy", agent="6001", mode="listen")["call_id"] == caller.linkedid
        spy = event(lab, "ChanSpyStart", since=mark, SpyeeChannel="PJSIP/6001-")
        assert spy["SpyerChannel"].startswith("PJSIP/6002-")
        refused = supervisor.request("spy", agent="6001", mode="steal")
        assert not refused["ok"] and "unknown mode" in refused["error"]
        refused = client.request("spy", agent="6001", mode="listen")
        assert not refused["ok"] and "supervisors" in refused["error"]
        hang_up(caller)
