"""The daemon-driven ACD contract of asterisk_conf/extensions.conf, as the simulator runs it.

Everything goes through the simulator's AMI the way the routing daemon does it
(callcenter/routing/service.py): the global ``CTI_ACD_BEAT`` set with
``Setvar`` without a Channel, ``Setvar CC_AGENT_IFACE``/``CC_RING_SECS`` plus
``Redirect`` into ``cc-connect``, ``Redirect`` into ``cc-acd-exit``,
``QueueAdd``/``QueuePause`` for the fallback queue.  The [globals] of the
ACD are shortened (a music pass of 1 s, a dead daemon after 3 s) through
``Simulator(dialplan_globals=...)``; the clock is a ``task.Clock``, so each
timeline is exact.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from twisted.internet import task

from callcenter.asterisk import channel_vars as cv
from callcenter.asterisk.ami_codec import AMIDecoder
from callcenter.sim import Simulator
from callcenter.sim.dialplan import CONTRACT_ACD, CONTRACT_GLOBALS
from callcenter.sim.testing import ScriptedFastAGIFactory, ami_connection

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "asterisk_conf" / "extensions.conf"
RECORDED_F = ROOT / "tests" / "fixtures" / "asterisk-22" / "more" / "ami_acd_f_fallback_queue.txt"
EPOCH = 1795535416.0
ACD_IVR = ["SET VARIABLE CC_RESULT acd"]
SHORT = {"CTI_ACD_CHECK_SECS": "1", "CTI_ACD_DEAD_SECS": "3", "CTI_ACD_MAX_WAIT_SECS": "60",
         "CTI_AGENT_RING_SECS": "2"}


@pytest.fixture(autouse=True)
def _collect_abandoned_channel_threads():
    """A test ends with channels still in their dialplan: their generators run ``finally`` blocks
    when collected.  Collect them here, not at some later point (CPython 3.11.7 reports a
    SystemError when that happens inside the ast.parse pytest runs to show a failure)."""
    yield
    gc.collect()


class Lab:
    """A simulator with the shipped ACD on short times, a FastAGI script per session, one AMI link."""

    def __init__(self, scripts=(ACD_IVR,), **globals_: str) -> None:
        self.clock = task.Clock()
        self.agi = ScriptedFastAGIFactory([list(s) for s in scripts], self.clock)
        self.sim = Simulator(None, clock=self.clock, epoch=EPOCH, agi_server=self.agi,
                             dialplan_globals={**SHORT, **globals_})
        self.sim.start()
        self.ami, self.out = ami_connection(self.sim)
        self.action("Login", Username="cti", Secret="cti-secret")

    def action(self, name: str, **headers: str) -> list:
        """Send one action; the response, then the events it caused."""
        lines = [f"Action: {name}", "ActionID: t"] + [f"{k}: {v}" for k, v in headers.items()]
        self.out.clear()
        self.ami.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = self.out.value()
        self.out.clear()
        return AMIDecoder().feed(data.split(b"\r\n", 1)[1] if data.startswith(b"Asterisk Call Manager/") else data)

    def waiting_caller(self):
        """Given a caller the IVR handed to the ACD (CC_RESULT=acd), now in cc-wait."""
        call = self.sim.call("5551001", "Jane Doe", hold=600)
        self.sim.advance(1)
        assert call.line.context == cv.CONTEXT_WAIT
        return call

    def beat(self, seconds: float, every: float = 1.0) -> None:
        """The routing daemon's heartbeat for ``seconds``: a new CTI_ACD_BEAT value every ``every`` s."""
        for n in range(int(seconds / every)):
            self.action("Setvar", Variable=cv.ACD_BEAT, Value=f"daemon-1-{self.clock.seconds():.0f}-{n}")
            self.sim.advance(every)

    def connect(self, caller, iface: str, ring: str | None = None) -> list:
        """The daemon's offer: Setvar CC_AGENT_IFACE (and CC_RING_SECS), Redirect to cc-connect,s,1."""
        self.action("Setvar", Channel=caller.name, Variable=cv.CC_AGENT_IFACE, Value=iface)
        if ring is not None:
            self.action("Setvar", Channel=caller.name, Variable=cv.CC_RING_SECS, Value=ring)
        return self.action("Redirect", Channel=caller.name, Context=cv.CONTEXT_CONNECT, Exten="s", Priority="1")

    def at(self, name: str, **where: str) -> float:
        """Clock time of the first event ``name`` whose headers match ``where``."""
        for when, message in self.sim.events:
            if message.name == name and all(message.get(k) == v for k, v in where.items()):
                return round(when, 3)
        raise AssertionError(f"no {name} {where}")

    def names(self, since: float = 0.0) -> list[str]:
        return [m.name for t, m in self.sim.events if m.is_event and t >= since]

    def path(self, chan, since: float = 0.0) -> list[str]:
        """Where ``chan``'s dialplan went: ``context,priority App`` per Newexten."""
        return [f"{m.get('Context')},{m.get('Priority')} {m.get('Application')}" for t, m in self.sim.events
                if m.name == "Newexten" and m.get("Channel") == chan.name and t >= since]

    def called(self) -> list[str]:
        return [m.get("MemberName") for _, m in self.sim.events if m.name == "AgentCalled"]


# --- the caller waits while the daemon beats ----------------------------------------------

def test_a_caller_with_cc_result_acd_waits_in_cc_wait_with_music_in_passes_of_check_secs():
    lab = Lab()
    call = lab.waiting_caller()
    lab.beat(2)
    entered = lab.at("Newexten", Channel=call.line.name, Context="cc-wait", Priority="1")
    starts = [round(t - entered, 3) for t, m in lab.sim.events
              if m.name == "MusicOnHoldStart" and m.get("Channel") == call.line.name]
    assert starts == [0.0, 1.0, 2.0]
    assert "QueueCallerJoin" not in lab.names() and lab.sim.errors == []


def test_a_moving_heartbeat_keeps_the_caller_in_cc_wait():
    lab = Lab()
    call = lab.waiting_caller()
    lab.beat(20)
    assert call.line.context == "cc-wait" and call.line.app == "MusicOnHold"
    assert "QueueCallerJoin" not in lab.names()


def test_without_a_heartbeat_the_caller_reaches_the_fallback_queue_after_the_dead_time():
    lab = Lab()
    call = lab.waiting_caller()
    lab.sim.advance(5)
    entered = lab.at("Newexten", Channel=call.line.name, Context="cc-wait", Priority="1")
    joined = lab.at("QueueCallerJoin", Channel=call.line.name, Queue="support")
    assert joined - entered == pytest.approx(3.0)
    assert lab.path(call.line, since=joined - 0.001)[-4:] == [
        "cc-wait,13 NoOp", "cc-wait,14 Goto", "cc-fallback,1 NoOp", "cc-fallback,2 Queue"]


def test_a_heartbeat_that_stops_sends_the_caller_away_dead_secs_after_its_last_move():
    lab = Lab()
    call = lab.waiting_caller()
    lab.beat(6)
    last_beat = lab.clock.seconds() - 1.0
    lab.sim.advance(6)
    joined = lab.at("QueueCallerJoin", Channel=call.line.name)
    # seen at the first music pass after the move, fallen back once EPOCH says 3 s more
    assert last_beat + 3.0 <= joined <= last_beat + 3.0 + 2.0


def test_the_total_acd_wait_limit_applies_even_with_a_heartbeat():
    lab = Lab(CTI_ACD_MAX_WAIT_SECS="5")
    call = lab.waiting_caller()
    lab.beat(8)
    entered = lab.at("Newexten", Channel=call.line.name, Context="cc-wait", Priority="1")
    assert lab.at("QueueCallerJoin", Channel=call.line.name) - entered == pytest.approx(5.0)


def test_a_reload_resets_the_beat_and_that_counts_as_a_move_not_a_death():
    """CTI_ACD_BEAT is in [globals] (empty): 'core reload' sets it back, which cc-wait sees as one more move."""
    lab = Lab()
    call = lab.waiting_caller()
    lab.beat(2)                                   # moves seen by the passes at 1.5 and 2.5 s
    lab.action("Command", Command="core reload")  # at 3 s: seen at 3.5 s
    assert lab.sim.engine.globals[cv.ACD_BEAT] == ""
    lab.sim.advance(3.2)
    assert call.line.context == "cc-wait"         # 3 s after the last beat, but not after the reload
    lab.sim.advance(1)
    assert lab.at("QueueCallerJoin", Channel=call.line.name) == pytest.approx(6.502)


# --- global variables over AMI ----------------------------------------------------------

def test_setvar_without_channel_sets_a_global_the_dialplan_reads():
    lab = Lab()
    call = lab.waiting_caller()
    reply, varset = lab.action("Setvar", Variable=cv.ACD_BEAT, Value="d1-7")
    assert reply.headers == (("Response", "Success"), ("ActionID", "t"), ("Message", "Variable Set"))
    assert [(k, varset.get(k)) for k in ("Event", "Channel", "Uniqueid", "Variable", "Value")] == [
        ("Event", "VarSet"), ("Channel", "none"), ("Uniqueid", "none"), ("Variable", cv.ACD_BEAT), ("Value", "d1-7")]
    (got,) = lab.action("Getvar", Variable=cv.ACD_BEAT)
    assert (got.get("Response"), got.get("Value")) == ("Success", "d1-7")
    (on_channel,) = lab.action("Getvar", Channel=call.line.name, Variable=cv.ACD_BEAT)
    assert on_channel.get("Value") == "d1-7"          # ${CTI_ACD_BEAT}: no channel variable, so the global
    lab.sim.advance(1)
    seen = [m.get("Value") for _, m in lab.sim.events if m.name == "VarSet" and m.get("Variable") == "beat_seen"]
    assert seen[-1] == "d1-7"


def test_a_channel_variable_of_the_same_name_hides_the_global():
    lab = Lab()
    call = lab.waiting_caller()
    lab.action("Setvar", Variable="CTI_AGENT_RING_SECS", Value="9")
    lab.action("Setvar", Channel=call.line.name, Variable="CTI_AGENT_RING_SECS", Value="3")
    assert lab.action("Getvar", Variable="CTI_AGENT_RING_SECS")[0].get("Value") == "9"
    assert lab.action("Getvar", Channel=call.line.name, Variable="CTI_AGENT_RING_SECS")[0].get("Value") == "3"


def test_setvar_of_a_function_without_channel_is_refused_except_global():
    lab = Lab()
    (reply,) = lab.action("Setvar", Variable="CALLERID(num)", Value="1")
    assert reply.headers == (("Response", "Error"), ("ActionID", "t"), ("Message", "Variable not set"))
    reply, varset = lab.action("Setvar", Variable="GLOBAL(CTI_ACD_DEAD_SECS)", Value="7")
    assert reply.get("Message") == "Variable Set" and varset.get("Variable") == "CTI_ACD_DEAD_SECS"
    assert lab.sim.engine.globals["CTI_ACD_DEAD_SECS"] == "7"


# --- the daemon connects an agent ----------------------------------------------------------

@pytest.mark.parametrize("ring, seconds", [
    ("4", 4.0),        # the queue's ring time
    (None, 2.0),       # not set: CTI_AGENT_RING_SECS
    ("0", 2.0),        # out of 1-120: CTI_AGENT_RING_SECS
    ("500", 2.0),
    ("7 s", 7.0),      # FILTERed to digits
])
def test_setvar_and_redirect_ring_the_agent_for_cc_ring_secs(ring, seconds):
    lab = Lab()
    caller = lab.waiting_caller().line
    reply = lab.connect(caller, "Local/7001@sim-agents/n", ring)
    assert reply[0].get("Message") == "Redirect successful"
    lab.sim.advance(seconds + 1)
    rung = lab.at("DialBegin", Channel=caller.name)
    assert lab.at("DialEnd", Channel=caller.name, DialStatus="NOANSWER") - rung == pytest.approx(seconds)
    dial = next(m for _, m in lab.sim.events if m.name == "Newexten" and m.get("Application") == "Dial")
    assert dial.get("AppData") == f"Local/7001@sim-agents/n,{seconds:g},t"


def test_an_agent_who_answers_is_bridged_with_the_caller():
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=30)
    caller = lab.waiting_caller().line
    lab.connect(caller, "Local/6001@sim-agents/n", "15")
    lab.sim.advance(3)
    assert lab.at("DialEnd", Channel=caller.name, DialStatus="ANSWER")
    assert caller.bridge is not None and len(caller.bridge.channels) == 2
    lab.beat(10)
    assert caller.bridge is not None   # the heartbeat loop is not running meanwhile


@pytest.mark.parametrize("phone, status, dial_events", [
    ("noanswer", "NOANSWER", ["DialBegin", "DialState", "DialEnd"]),
    ("busy", "BUSY", ["DialBegin", "DialEnd"]),
    ("unregistered", "CHANUNAVAIL", []),      # no DialBegin, no DialEnd (more/README.txt, Local/9999)
    ("direct-call", "BUSY", ["DialBegin", "DialEnd"]),
])
def test_an_unanswered_busy_or_unreachable_agent_sends_the_caller_back_to_cc_wait(phone, status, dial_events):
    lab = Lab()
    exten = {"noanswer": "7001", "busy": "8001"}.get(phone, "6001")
    if phone == "unregistered":
        lab.sim.unregister(exten)
    if phone == "direct-call":
        lab.sim.direct_call(exten)
    caller = lab.waiting_caller().line
    offered = lab.clock.seconds()
    lab.beat(1)
    lab.connect(caller, f"Local/{exten}@sim-agents/n", "3")
    lab.beat(5)
    dials = [m.name for t, m in lab.sim.events if m.name.startswith("Dial") and m.get("Channel") == caller.name]
    assert dials == dial_events
    statuses = [m.get("Value") for _, m in lab.sim.events
                if m.name == "VarSet" and m.get("Channel") == caller.name and m.get("Variable") == "DIALSTATUS"]
    assert statuses[-1] == status
    path = lab.path(caller, since=offered)
    back = path.index("cc-wait,1 NoOp", path.index("cc-connect,6 Dial"))
    assert path[back - 2:back] == ["cc-connect,7 NoOp", "cc-connect,8 Goto"]
    assert caller.context == "cc-wait" and caller.app == "MusicOnHold" and not caller.hungup
    assert "QueueCallerJoin" not in lab.names() and lab.sim.errors == []


def test_an_interface_of_another_shape_is_not_dialled():
    lab = Lab()
    caller = lab.waiting_caller().line
    since = lab.clock.seconds()
    lab.connect(caller, "Local/6001@cc-spy/n")
    lab.sim.advance(0.5)
    assert lab.path(caller, since)[:4] == ["cc-connect,1 NoOp", "cc-connect,2 Set", "cc-connect,3 GotoIf",
                                           "cc-wait,1 NoOp"]
    assert "DialBegin" not in lab.names(since)


def test_cc_connect_t_is_the_same_as_cc_connect():
    lab = Lab()
    caller = lab.waiting_caller().line
    lab.action("Setvar", Channel=caller.name, Variable=cv.CC_AGENT_IFACE, Value="Local/7001@sim-agents/n")
    since = lab.clock.seconds()
    lab.action("Redirect", Channel=caller.name, Context="cc-connect-t", Exten="s", Priority="1")
    lab.sim.advance(0.5)
    assert lab.path(caller, since)[:2] == ["cc-connect-t,1 Goto", "cc-connect,1 NoOp"]


# --- the daemon gives up: cc-acd-exit ----------------------------------------------------

def test_acd_exit_queue_sends_the_caller_to_the_fallback_queue():
    lab = Lab()
    caller = lab.waiting_caller().line
    lab.action("Redirect", Channel=caller.name, Context=cv.CONTEXT_ACD_EXIT, Exten="queue", Priority="1")
    lab.sim.advance(0.5)
    assert lab.path(caller)[-4:] == ["cc-acd-exit,1 NoOp", "cc-acd-exit,2 Goto", "cc-fallback,1 NoOp",
                                     "cc-fallback,2 Queue"]
    assert lab.at("QueueCallerJoin", Channel=caller.name, Queue="support")


def test_acd_exit_voicemail_plays_the_last_resort_announcement_then_hangs_up():
    lab = Lab()
    call = lab.waiting_caller()
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_ACD_EXIT, Exten="voicemail", Priority="1")
    lab.sim.advance(5)
    assert lab.path(call.line)[-5:] == ["cc-acd-exit,2 Goto", "cc-last-resort,1 NoOp", "cc-last-resort,2 GotoIf",
                                        "cc-last-resort,3 Playback", "cc-last-resort,4 Hangup"]
    assert call.hungup


def test_acd_exit_voicemail_with_a_mailbox_leaves_a_message():
    lab = Lab(CTI_LAST_RESORT_MAILBOX="6000@default")
    call = lab.waiting_caller()
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_ACD_EXIT, Exten="voicemail", Priority="1")
    lab.sim.advance(1)
    assert lab.path(call.line)[-1] == "cc-last-resort,5 VoiceMail"


@pytest.mark.parametrize("answer, outcome", [(["SET VARIABLE CC_RESULT done"], "hung up"),
                                              ([], "fallback queue")])
def test_acd_exit_callback_asks_the_daemon_then_hangs_up_or_falls_back(answer, outcome):
    lab = Lab(scripts=(ACD_IVR, answer))
    call = lab.waiting_caller()
    lab.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_ACD_EXIT, Exten="callback", Priority="1")
    lab.sim.advance(2)
    second = lab.agi.connections[1]
    assert second.environment["agi_network_script"] == "callback-offer"
    cleared = [m.get("Value") for _, m in lab.sim.events
               if m.name == "VarSet" and m.get("Channel") == call.line.name and m.get("Variable") == "CC_RESULT"]
    assert cleared[:2] == ["acd", ""]
    if outcome == "hung up":
        assert call.hungup and "QueueCallerJoin" not in lab.names()
        assert lab.path(call.line)[-1] == "cc-acd-exit,6 Hangup"
    else:
        assert lab.at("QueueCallerJoin", Channel=call.line.name, Queue="support")


# --- the fallback queue, Asterisk's own -------------------------------------------------

def test_the_fallback_queue_never_rings_a_paused_member():
    """As the daemon keeps it (README "Safety net"): QueueAdd, then QueuePause with the not-ready reason."""
    lab = Lab()
    for exten in ("6001", "6002", "6003"):
        lab.sim.agent(exten, ring=1, talk=30)
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", MemberName="Agent 6001")
    lab.action("QueuePause", Queue="support", Interface="Local/6001@sim-agents/n", Paused="true", Reason="coffee")
    lab.action("QueueAdd", Queue="support", Interface="Local/6003@sim-agents/n", MemberName="Agent 6003",
               Paused="true", Reason="logged-out")
    lab.action("QueueAdd", Queue="support", Interface="Local/6002@sim-agents/n", MemberName="Agent 6002")
    lab.waiting_caller()
    lab.sim.advance(30)
    assert lab.called() == ["Agent 6002"]
    assert [m.get("MemberName") for _, m in lab.sim.events if m.name == "AgentConnect"] == ["Agent 6002"]


def test_the_fallback_queue_waits_while_every_member_is_paused_then_rings_the_one_unpaused():
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=30)
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", Paused="yes", Reason="lunch")
    lab.waiting_caller()
    lab.sim.advance(20)
    assert lab.called() == [] and "QueueCallerJoin" in lab.names()
    lab.action("QueuePause", Interface="Local/6001@sim-agents/n", Paused="false")
    lab.sim.advance(3)
    assert lab.called() == ["Local/6001@sim-agents/n"]


def test_the_fallback_queue_skips_phones_on_a_direct_call_or_unregistered():
    lab = Lab()
    for exten in ("6001", "6002", "6003", "6004"):
        lab.sim.agent(exten, ring=1, talk=30)
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", MemberName="Direct",
               StateInterface="PJSIP/6001")
    lab.action("QueueAdd", Queue="support", Interface="Local/6004@sim-agents/n", MemberName="Direct too")
    lab.action("QueueAdd", Queue="support", Interface="Local/6003@sim-agents/n", MemberName="Gone")
    lab.action("QueueAdd", Queue="support", Interface="Local/6002@sim-agents/n", MemberName="Free")
    lab.sim.direct_call("6001")
    lab.sim.direct_call("6004")
    lab.sim.unregister("6003")
    lab.waiting_caller()
    lab.sim.advance(30)
    assert lab.called() == ["Free"]


def test_the_fallback_queue_returns_after_its_timeout_to_the_last_resort():
    lab = Lab(CTI_FALLBACK_WAIT_SECS="8")
    lab.sim.agent("7001")
    lab.sim.add_member("support", "7001", name="Never")
    call = lab.waiting_caller()
    lab.sim.advance(20)
    joined = lab.at("QueueCallerJoin", Channel=call.line.name)
    left = lab.at("QueueCallerLeave", Channel=call.line.name)
    assert left - joined == pytest.approx(8.0)
    statuses = [m.get("Value") for _, m in lab.sim.events
                if m.name == "VarSet" and m.get("Variable") == "QUEUESTATUS"]
    assert statuses == ["TIMEOUT"]
    assert "cc-last-resort,3 Playback" in lab.path(call.line) and call.hungup
    assert "QueueCallerAbandon" not in lab.names() and lab.sim.errors == []


# --- QueueAdd / QueuePause as app_queue.c answers them ------------------------------------

def test_queueadd_takes_paused_penalty_membername_stateinterface_and_reason():
    lab = Lab()
    reply, *events = lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", Penalty="3",
                                Paused="yes", MemberName="Agent 6001", StateInterface="PJSIP/6001", Reason="lunch")
    assert reply.get("Message") == "Added interface to queue"
    added = next(m for m in events if m.name == "QueueMemberAdded")
    assert {k: added.get(k) for k in ("MemberName", "Interface", "StateInterface", "Penalty", "Paused",
                                      "PausedReason", "Status")} == {
        "MemberName": "Agent 6001", "Interface": "Local/6001@sim-agents/n", "StateInterface": "PJSIP/6001",
        "Penalty": "3", "Paused": "1", "PausedReason": "lunch", "Status": "1"}
    devices = [(m.get("Device"), m.get("State")) for m in events if m.name == "DeviceStateChange"]
    assert ("Queue:support_pause_Local/6001@sim-agents/n", "INUSE") in devices
    assert ("Queue:support_avail", "NOT_INUSE") not in devices     # a paused member makes nobody available


@pytest.mark.parametrize("penalty, expected", [("", "0"), ("7", "7"), (" 5x", "5"), ("-2", "0"), ("x", "0")])
def test_queueadd_penalty_is_read_like_sscanf_and_never_negative(penalty, expected):
    lab = Lab()
    events = lab.action("QueueAdd", Queue="sales", Interface="Local/6001@sim-agents/n", Penalty=penalty)
    assert next(m for m in events if m.name == "QueueMemberAdded").get("Penalty") == expected


def test_queueadd_of_an_existing_member_is_already_there_whatever_the_case():
    lab = Lab()
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n")
    for interface in ("Local/6001@sim-agents/n", "LOCAL/6001@SIM-AGENTS/N"):
        (reply,) = lab.action("QueueAdd", Queue="support", Interface=interface, Paused="true")
        assert reply.headers == (("Response", "Error"), ("ActionID", "t"),
                                 ("Message", "Unable to add interface: Already there"))
    (reply,) = lab.action("QueueAdd", Queue="nosuch", Interface="Local/6001@sim-agents/n")
    assert reply.get("Message") == "Unable to add interface to queue: No such queue"
    assert len(lab.sim.queue("support").members) == 1


def test_queuepause_in_one_queue_or_in_every_queue_of_the_interface():
    lab = Lab()
    for queue in ("support", "sales"):
        lab.action("QueueAdd", Queue=queue, Interface="Local/6001@sim-agents/n", MemberName="Agent 6001")
    reply, *events = lab.action("QueuePause", Queue="sales", Interface="Local/6001@sim-agents/n", Paused="1",
                                Reason="training")
    assert reply.get("Message") == "Interface paused successfully"
    assert [(m.get("Queue"), m.get("Paused"), m.get("PausedReason")) for m in events
            if m.name == "QueueMemberPause"] == [("sales", "1", "training")]
    reply, *events = lab.action("QueuePause", Interface="Local/6001@sim-agents/n", Paused="no")
    assert reply.get("Message") == "Interface unpaused successfully"
    assert sorted(m.get("Queue") for m in events if m.name == "QueueMemberPause") == ["sales", "support"]
    assert all(m.get("Paused") == "0" and m.get("PausedReason") == "" for m in events
               if m.name == "QueueMemberPause")


@pytest.mark.parametrize("headers, message", [
    ({"Interface": "Local/6999@sim-agents/n", "Paused": "true"}, "Interface not found"),
    ({"Queue": "vip", "Interface": "Local/6001@sim-agents/n", "Paused": "true"}, "Interface not found"),
    ({"Interface": "Local/6001@sim-agents/n"}, "Need 'Interface' and 'Paused' parameters."),
])
def test_queuepause_errors(headers, message):
    lab = Lab()
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n")
    (reply,) = lab.action("QueuePause", **headers)
    assert reply.headers == (("Response", "Error"), ("ActionID", "t"), ("Message", message))


# --- phones that cannot take a call, as queue members see them ---------------------------

def _statuses(lab: Lab, since: float) -> list[tuple[str, str, str]]:
    return [(m.get("Queue"), m.get("MemberName"), m.get("Status")) for t, m in lab.sim.events
            if m.name == "QueueMemberStatus" and t >= since]


def _devices(lab: Lab, since: float) -> list[tuple[str, str]]:
    return [(m.get("Device"), m.get("State")) for t, m in lab.sim.events
            if m.name == "DeviceStateChange" and t >= since and not m.get("Device").startswith("Queue:")]


def test_a_direct_call_makes_the_phone_in_use_for_its_members_until_it_ends():
    lab = Lab()
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", MemberName="By Local")
    lab.action("QueueAdd", Queue="sales", Interface="PJSIP/6001", MemberName="By endpoint")
    lab.sim.direct_call("6001", seconds=10)
    assert _devices(lab, 0) == [("Local/6001@sim-agents", "INUSE"), ("PJSIP/6001", "INUSE")]
    assert _statuses(lab, 0) == [("support", "By Local", "2"), ("sales", "By endpoint", "2")]
    assert lab.action("QueueStatus", Queue="support")[2].get("Status") == "2"
    lab.sim.advance(10)
    assert _statuses(lab, 10) == [("support", "By Local", "1"), ("sales", "By endpoint", "1")]
    assert _devices(lab, 10) == [("Local/6001@sim-agents", "NOT_INUSE"), ("PJSIP/6001", "NOT_INUSE")]


def test_an_unregistered_phone_is_unavailable_then_back_when_it_registers():
    lab = Lab()
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", MemberName="By Local")
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@agents/n", MemberName="By state",
               StateInterface="PJSIP/6001")
    lab.sim.unregister("6001")
    assert _statuses(lab, 0) == [("support", "By Local", "4"), ("support", "By state", "5")]
    assert ("PJSIP/6001", "UNAVAILABLE") in _devices(lab, 0)
    summary = lab.action("QueueSummary", Queue="support")[1]
    assert (summary.get("LoggedIn"), summary.get("Available")) == ("0", "0")
    lab.sim.advance(1)
    lab.sim.register("6001")
    assert _statuses(lab, 1) == [("support", "By Local", "1"), ("support", "By state", "1")]


def test_a_member_following_an_endpoint_sees_it_ring_and_talk():
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=3)
    lab.action("QueueAdd", Queue="sales", Interface="Local/6001@sim-agents/n", StateInterface="PJSIP/6001")
    caller = lab.waiting_caller().line
    lab.connect(caller, "Local/6001@sim-agents/n")
    lab.sim.advance(6)
    assert [s for _, _, s in _statuses(lab, 0)] == ["6", "2", "1"]
    assert [state for device, state in _devices(lab, 0) if device == "PJSIP/6001"] == [
        "RINGING", "INUSE", "NOT_INUSE"]


def test_a_call_already_ringing_keeps_going_when_the_phone_starts_a_direct_call():
    """A channel keeps the extension it entered: only the next call to the phone is busy."""
    lab = Lab()
    lab.sim.agent("6001", mode="manual")
    caller = lab.waiting_caller().line
    lab.connect(caller, "Local/6001@sim-agents/n", "30")
    lab.sim.advance(1)
    lab.sim.direct_call("6001")
    lab.sim.answer("6001")
    lab.sim.advance(1)
    assert lab.at("DialEnd", Channel=caller.name, DialStatus="ANSWER")
    assert lab.sim.errors == []


def test_queue_member_status_carries_the_recorded_fields():
    recorded = [m for m in AMIDecoder(max_message_bytes=10**7).feed(RECORDED_F.read_bytes())
                if m.name == "QueueMemberStatus"][0]
    lab = Lab()
    lab.action("QueueAdd", Queue="support", Interface="Local/6001@sim-agents/n", MemberName="Agent 6001")
    lab.sim.direct_call("6001")
    simulated = next(m for _, m in lab.sim.events if m.name == "QueueMemberStatus")
    assert [k for k, _ in simulated.headers] == [k for k, _ in recorded.headers]


# --- the simulator's contexts are the shipped ones ----------------------------------------

def _shipped_contexts() -> dict[str, dict[str, list[tuple[str, str, str | None]]]]:
    """[context] -> exten -> [(app, data, label)] of asterisk_conf/extensions.conf."""
    contexts: dict[str, dict[str, list]] = {}
    context = exten = None
    for raw in SHIPPED.read_text().splitlines():
        line = re.sub(r"(?<!\\);.*$", "", raw).strip()
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1]
            contexts[context] = {}
            continue
        match = re.match(r"(exten|same)\s*=>\s*(.*)$", line)
        if not match or context is None:
            continue
        rest = match.group(2)
        if match.group(1) == "exten":
            exten, _, rest = rest.partition(",")
            contexts[context][exten] = []
        priority, _, call = rest.partition(",")
        label = re.search(r"\((\w+)\)", priority)
        app, _, data = call.partition("(")
        contexts[context][exten].append((app, data[:-1] if data.endswith(")") else data,
                                         label.group(1) if label else None))
    return contexts


@pytest.mark.parametrize("context", sorted(CONTRACT_ACD))
def test_the_simulated_acd_contexts_are_the_shipped_ones(context):
    shipped = _shipped_contexts()[context]
    simulated = {exten: [(s.app, s.data, s.label) for s in steps] for exten, steps in CONTRACT_ACD[context]}
    if context == "cc-connect":   # the simulated phones are Local/<digits>@sim-agents
        shipped = {exten: [(app, data.replace("@agents(", "@(sim-)?agents("), label)
                           for app, data, label in steps] for exten, steps in shipped.items()}
    if context == "cc-callback":  # the simulated customers are Local/<number>@sim-customer
        from callcenter.sim.dialplan import SIM_CUSTOMER_DIAL

        shipped = {exten: [(app, SIM_CUSTOMER_DIAL if app == "Dial" else data, label) for app, data, label in steps]
                   for exten, steps in shipped.items()}
    assert simulated == shipped


def test_the_contract_globals_default_to_the_shipped_ones():
    text = SHIPPED.read_text()
    block = text[text.index("\n[globals]\n"):text.index("\n[from-pstn]\n")]
    shipped = dict((k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in block.splitlines()[2:])
                   if k.strip() and not k.strip().startswith(";"))
    assert {k: shipped[k] for k in CONTRACT_GLOBALS} == CONTRACT_GLOBALS
    lab = Lab()
    assert all(lab.sim.engine.globals[k] == v for k, v in SHORT.items())
