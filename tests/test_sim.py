"""Behaviour of the Asterisk simulator: its AMI server, its FastAGI client, its scenarios."""

from __future__ import annotations

import asyncio
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from callcenter.asterisk.ami_actions import ACTIONS
from callcenter.asterisk.ami_client import AMIClient
from callcenter.asterisk.ami_codec import AMIDecoder
from callcenter.sim import OriginateRequest, Simulator, SoundLibrary
from callcenter.sim.agi_codes import parse_args
from callcenter.sim.expressions import substitute
from callcenter.sim.originate import parse_callerid
from callcenter.sim.testing import ScriptedFastAGIFactory, ami_connection
from tests.util import asyncio_test

EPOCH = 1795535416.0
LOGIN = b"Action: Login\r\nActionID: l1\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n"
IVR = ["EXEC Playback beep", "GET DATA beep 3000 1", "SET VARIABLE CC_RESULT queue", "SET VARIABLE CC_QUEUE support"]


def make(scripts=(IVR,), **options) -> tuple[Simulator, task.Clock, ScriptedFastAGIFactory]:
    clock = task.Clock()
    agi = ScriptedFastAGIFactory([list(s) for s in scripts], clock)
    sim = Simulator(None, clock=clock, epoch=EPOCH, agi_server=agi, **options)
    sim.start()
    return sim, clock, agi


def read(transport) -> list:
    data = transport.value()
    transport.clear()
    return AMIDecoder().feed(data.split(b"\r\n", 1)[1] if data.startswith(b"Asterisk Call Manager/") else data)


def logged_in(sim: Simulator, events: str = "on"):
    proto, transport = ami_connection(sim)
    proto.dataReceived(LOGIN.replace(b"\r\n\r\n", f"\r\nEvents: {events}\r\n\r\n".encode()))
    transport.clear()
    return proto, transport


def names(sim: Simulator) -> list[str]:
    return sim.event_names()


def at(sim: Simulator, name: str, **where) -> float:
    """Clock time of the first event ``name`` whose headers match ``where``."""
    for when, message in sim.events:
        if message.name == name and all(message.get(k) == v for k, v in where.items()):
            return round(when, 4)
    raise AssertionError(f"no {name} {where}")


# --- AMI server ---------------------------------------------------------------

def test_banner_is_one_line_without_a_blank_line_after_it():
    sim, _, _ = make()
    _, transport = ami_connection(sim)
    assert transport.value() == b"Asterisk Call Manager/11.0.0\r\n"


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
def test_login_in_any_chunk_size_gets_accepted_then_fullybooted_and_successfulauth(chunk):
    sim, _, _ = make()
    proto, transport = ami_connection(sim)
    for start in range(0, len(LOGIN), chunk):
        proto.dataReceived(LOGIN[start:start + chunk])
    data = transport.value()
    assert data.startswith(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: l1\r\n"
                           b"Message: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nPrivilege: system,all\r\n"
                           b"Uptime: 0\r\nLastReload: 0\r\nStatus: Fully Booted\r\n\r\nEvent: SuccessfulAuth\r\n")
    assert [m.name for m in read(transport)] == ["Success", "FullyBooted", "SuccessfulAuth"]


def test_action_before_login_is_permission_denied_and_the_connection_stays_open():
    sim, _, _ = make()
    proto, transport = ami_connection(sim)
    transport.clear()
    proto.dataReceived(b"Action: Ping\r\nActionID: bad-20\r\n\r\n")
    assert transport.value() == b"Response: Error\r\nActionID: bad-20\r\nMessage: Permission denied\r\n\r\n"
    assert not transport.disconnecting


def test_wrong_secret_is_refused_one_second_later_and_the_socket_closed():
    sim, clock, _ = make()
    proto, transport = ami_connection(sim)
    transport.clear()
    proto.dataReceived(b"Action: Login\r\nActionID: bad-21\r\nUsername: cti\r\nSecret: wrong\r\n\r\n")
    clock.advance(0.999)
    assert transport.value() == b""
    clock.advance(0.001)
    assert transport.value() == b"Response: Error\r\nActionID: bad-21\r\nMessage: Authentication failed\r\n\r\n"
    assert transport.disconnecting


def test_ping_without_actionid_gets_a_response_without_actionid():
    sim, clock, _ = make()
    proto, transport = logged_in(sim, "off")
    clock.advance(0.5)
    proto.dataReceived(b"Action: Ping\r\n\r\n")
    assert transport.value() == b"Response: Success\r\nPing: Pong\r\nTimestamp: 1795535416.500000\r\n\r\n"


def test_unknown_action_gets_the_listcommands_hint_and_a_requestbadformat_event_elsewhere():
    sim, _, _ = make()
    watcher, watched = logged_in(sim)
    proto, transport = logged_in(sim, "off")
    proto.dataReceived(b"Action: FooBar\r\nActionID: act-28\r\n\r\n")
    assert transport.value() == (b"Response: Error\r\nActionID: act-28\r\nMessage: Invalid/unknown command: "
                                 b"FooBar. Use Action: ListCommands to show available commands.\r\n\r\n")
    event = read(watched)[-1]
    assert (event.name, event.get("RequestType"), event.get("Severity")) == ("RequestBadFormat", "Action: FooBar",
                                                                              "Error")


def test_empty_message_is_missing_action_without_actionid():
    sim, _, _ = make()
    proto, transport = logged_in(sim, "off")
    proto.dataReceived(b"\r\n")
    assert transport.value() == b"Response: Error\r\nMessage: Missing action in request\r\n\r\n"


def test_logoff_says_goodbye_and_closes():
    sim, _, _ = make()
    proto, transport = logged_in(sim)
    proto.dataReceived(b"Action: Logoff\r\nActionID: x\r\n\r\n")
    assert transport.value() == b"Response: Goodbye\r\nActionID: x\r\nMessage: Thanks for all the fish.\r\n\r\n"
    assert transport.disconnecting


def test_events_action_turns_events_off_and_on():
    sim, clock, _ = make()
    proto, transport = logged_in(sim)
    proto.dataReceived(b"Action: Events\r\nActionID: e1\r\nEventMask: off\r\n\r\n")
    assert transport.value() == b"Response: Success\r\nActionID: e1\r\nEvents: Off\r\n\r\n"
    transport.clear()
    sim.call("5551001", "Jane Doe")
    assert transport.value() == b""
    proto.dataReceived(b"Action: Events\r\nActionID: e2\r\nEventMask: call,agent\r\n\r\n")
    assert read(transport)[0].get("Events") == "On"
    clock.advance(0.6)
    received = {m.name for m in read(transport)}
    assert "Newstate" not in received and "AGIExecStart" not in received  # class agi is not on
    sim.advance(4)
    assert "QueueCallerJoin" in {m.name for m in read(transport)}


def test_list_actions_have_eventlist_start_complete_and_actionid_where_asterisk_puts_it():
    sim, _, _ = make()
    sim.add_member("support", "7001", name="Agent 7001")
    sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(5)
    proto, transport = logged_in(sim, "off")
    proto.dataReceived(b"Action: QueueStatus\r\nActionID: q1\r\nQueue: support\r\n\r\n")
    status = read(transport)
    assert [m.name for m in status] == ["Success", "QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete"]
    assert status[0].headers == (("Response", "Success"), ("ActionID", "q1"), ("EventList", "start"),
                                 ("Message", "Queue status will follow"))
    assert status[1].headers[-1] == ("ActionID", "q1") and status[2].headers[-1] == ("ActionID", "q1")
    assert status[2].get("Status") == "2" and status[3].get("Wait") == "3"
    assert status[4].headers == (("Event", "QueueStatusComplete"), ("ActionID", "q1"), ("EventList", "Complete"),
                                 ("ListItems", "3"))
    proto.dataReceived(b"Action: CoreShowChannels\r\nActionID: c1\r\n\r\n")
    channels = read(transport)
    assert [m.name for m in channels] == ["Success"] + ["CoreShowChannel"] * 4 + ["CoreShowChannelsComplete"]
    assert channels[1].headers[1] == ("ActionID", "c1") and channels[-1].get("ListItems") == "4"
    line = sim.calls[0].line.name
    proto.dataReceived(f"Action: Status\r\nActionID: s1\r\nChannel: {line}\r\nVariables: CC_QUEUE,NOPE\r\n\r\n"
                       .encode())
    one = read(transport)
    assert one[1].get("Privilege") == "Call" and one[1].getall("Variable") == ["CC_QUEUE=support", "NOPE=(null)"]
    assert one[2].headers == (("Event", "StatusComplete"), ("ActionID", "s1"), ("EventList", "Complete"),
                              ("ListItems", "1"), ("Items", "1"))
    proto.dataReceived(b"Action: QueueSummary\r\nActionID: u1\r\nQueue: support\r\n\r\n")
    summary = read(transport)
    assert summary[1].get("Callers") == "1" and summary[1].get("LongestHoldTime") == "3"
    assert sim.errors == []


def test_async_originate_answers_at_once_then_reports_with_originateresponse():
    sim, clock, _ = make()
    proto, transport = logged_in(sim)
    proto.dataReceived(b"Action: Originate\r\nActionID: o1\r\nChannel: Local/6002@sim-agents/n\r\n"
                       b"CallerID: \"Hotline\" <4000>\r\nContext: cc-outbound\r\nExten: 5552001\r\nPriority: 1\r\n"
                       b"Async: true\r\n\r\n")
    first = read(transport)
    assert first[0].headers == (("Response", "Success"), ("ActionID", "o1"),
                                ("Message", "Originate successfully queued"))
    assert "OriginateResponse" not in [m.name for m in first]
    sim.advance(1.1)
    reply = next(m for m in read(transport) if m.name == "OriginateResponse")
    assert (reply.get("ActionID"), reply.get("Response"), reply.get("Reason")) == ("o1", "Success", "4")
    assert reply.get("Channel") == "Local/6002@sim-agents-00000000;1"


def test_originate_to_a_missing_extension_fails_with_the_dial_string():
    sim, _, _ = make()
    proto, transport = logged_in(sim)
    proto.dataReceived(b"Action: Originate\r\nActionID: o2\r\nChannel: Local/9999@from-pstn\r\nContext: sim-caller"
                       b"\r\nExten: s\r\nPriority: 1\r\nAsync: true\r\n\r\n")
    reply = next(m for m in read(transport) if m.name == "OriginateResponse")
    assert (reply.get("Response"), reply.get("Reason"), reply.get("Channel"), reply.get("Uniqueid")) == \
        ("Failure", "0", "Local/9999@from-pstn", "<unknown>")
    proto.dataReceived(b"Action: Originate\r\nActionID: o3\r\nChannel: Local/9999@from-pstn\r\nContext: sim-caller"
                       b"\r\nExten: s\r\nPriority: 1\r\n\r\n")
    sync = read(transport)
    assert sync[0].headers == (("Response", "Error"), ("ActionID", "o3"), ("Message", "Originate failed"))
    assert "OriginateResponse" not in [m.name for m in sync]


def test_command_setvar_getvar_and_channel_errors():
    sim, _, _ = make()
    proto, transport = logged_in(sim, "off")
    proto.dataReceived(b"Action: Command\r\nActionID: c\r\nCommand: core show version\r\n\r\n")
    assert read(transport)[0].getall("Output")[0].startswith("Asterisk 22.10.1 built by")
    proto.dataReceived(b"Action: Command\r\nActionID: c2\r\nCommand: no such cli command\r\n\r\n")
    error = read(transport)[0]
    assert (error.name, error.get("Output")) == ("Error", "No such command 'no such cli command' (type 'core show "
                                                          "help no such' for other possible commands)")
    proto.dataReceived(b"Action: Getvar\r\nActionID: g\r\nVariable: AGENT_TALK_SECS\r\n\r\n")
    assert read(transport)[0].headers == (("Response", "Success"), ("ActionID", "g"), ("Variable", "AGENT_TALK_SECS"),
                                          ("Value", "30"))
    for action, message in [(b"Redirect\r\nChannel: Local/x-00000000;2\r\nContext: c\r\nExten: s\r\nPriority: 1",
                             "Channel does not exist: Local/x-00000000;2"),
                            (b"Hangup\r\nChannel: Local/x-00000000;2", "No such channel"),
                            (b"Setvar\r\nChannel: Local/x-00000000;2\r\nVariable: A\r\nValue: 1", "No such channel"),
                            (b"QueueAdd\r\nInterface: Local/6009@sim-agents/n", "'Queue' not specified."),
                            (b"QueuePause\r\nInterface: Local/9@sim-agents/n\r\nPaused: true", "Interface not found")]:
        proto.dataReceived(b"Action: " + action + b"\r\nActionID: e\r\n\r\n")
        reply = read(transport)[0]
        assert (reply.name, reply.get("Message")) == ("Error", message)


def test_queue_actions_answer_then_publish_member_events():
    sim, _, _ = make()
    proto, transport = logged_in(sim)
    proto.dataReceived(b"Action: QueueAdd\r\nActionID: a\r\nQueue: support\r\nInterface: Local/6001@sim-agents/n\r\n"
                       b"MemberName: Agent 6001\r\n\r\n")
    assert [m.name for m in read(transport)] == ["Success", "DeviceStateChange", "QueueMemberAdded",
                                                 "DeviceStateChange"]
    proto.dataReceived(b"Action: QueuePause\r\nActionID: p\r\nQueue: support\r\nInterface: Local/6001@sim-agents/n"
                       b"\r\nPaused: true\r\nReason: coffee\r\n\r\n")
    pause = read(transport)
    assert pause[0].get("Message") == "Interface paused successfully"
    assert pause[-1].name == "QueueMemberPause" and pause[-1].get("PausedReason") == "coffee"
    proto.dataReceived(b"Action: QueueRemove\r\nActionID: r\r\nQueue: support\r\nInterface: Local/6001@sim-agents/n"
                       b"\r\n\r\n")
    assert [m.name for m in read(transport)][:2] == ["Success", "QueueMemberRemoved"]


def act(proto, transport, name: str, **headers: str) -> list:
    """Send one action (ActionID ``t``) and read back everything written."""
    lines = [f"Action: {name}", "ActionID: t"] + [f"{k}: {v}" for k, v in headers.items()]
    proto.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
    return read(transport)


def test_argument_and_channel_errors_in_asterisk_22s_words():
    """Recorded from Asterisk 22.10.1 as the cti user (tests/test_real_asterisk_ami.py)."""
    sim, _, _ = make()
    proto, transport = logged_in(sim, "off")
    nobody = "PJSIP/nobody-00000001"
    for name, headers, message in [
        ("Setvar", {"Channel": nobody, "Variable": "A", "Value": "1"}, "No such channel"),
        ("QueuePause", {"Interface": "Local/6001@sim-agents/n"}, "Need 'Interface' and 'Paused' parameters."),
        ("QueuePause", {"Paused": "true"}, "Need 'Interface' and 'Paused' parameters."),
        ("QueuePenalty", {"Interface": "Local/6001@sim-agents/n"}, "Need 'Interface' and 'Penalty' parameters."),
        ("QueuePenalty", {"Interface": "Local/6991@sim-agents/n", "Penalty": "1"},
         "Invalid interface, queuename or penalty"),
        ("QueueLog", {"Queue": "support"}, "Need 'Queue' and 'Event' parameters."),
        ("Bridge", {"Channel1": nobody}, "Missing channel parameter in request"),
        ("Bridge", {"Channel1": nobody, "Channel2": nobody}, f"Channel1 does not exist: {nobody}"),
        ("Atxfer", {"Exten": "6001"}, "No channel specified"),
        ("Atxfer", {"Channel": nobody}, "No extension specified"),
        ("Atxfer", {"Channel": nobody, "Exten": "6001"}, "Channel specified does not exist"),
        ("BlindTransfer", {"Channel": nobody, "Exten": "6001"}, "Channel specified does not exist"),
        ("PlayDTMF", {"Channel": nobody, "Digit": "1"}, "Channel not found"),
        ("Hangup", {"Channel": "/[/"}, "Regex compile failed on: /[/"),
    ]:
        (reply,) = act(proto, transport, name, **headers)
        assert reply.headers == (("Response", "Error"), ("ActionID", "t"), ("Message", message)), (name, headers)
    (reply,) = act(proto, transport, "QueueLog", Queue="support", Event="CUSTOM", Message="hi")
    assert reply.get("Message") == "Event added successfully"


def test_queuepenalty_sets_the_penalty_and_publishes_queuememberpenalty():
    sim, _, _ = make()
    sim.add_member("support", "6001", name="Agent 6001")
    proto, transport = logged_in(sim)
    reply, event = act(proto, transport, "QueuePenalty", Interface="Local/6001@sim-agents/n", Penalty="3")
    assert reply.get("Message") == "Interface penalty set successfully"
    assert (event.name, event.get("Queue"), event.get("Penalty")) == ("QueueMemberPenalty", "support", "3")
    status = act(proto, transport, "QueueStatus", Queue="support")
    assert next(m for m in status if m.name == "QueueMember").get("Penalty") == "3"


def test_hangup_by_regex_is_a_list_of_the_channels_hung_up():
    """``Channel: /regex/``: EventList start, one ChannelHungup per channel (ActionID last), then the count."""
    sim, _, _ = make()
    call = sim.call("5552101", "Caller A", dnis="4100", hold=60)
    sim.advance(2)
    proto, transport = logged_in(sim, "off")
    reply = act(proto, transport, "Hangup", Channel="/cc-inbound/")
    assert reply[0].headers == (("Response", "Success"), ("ActionID", "t"), ("EventList", "start"),
                                ("Message", "Channels hung up will follow"))
    assert [m.headers for m in reply[1:-1]] == [
        (("Event", "ChannelHungup"), ("Channel", name), ("ActionID", "t"))
        for name in (call.line.peer.name, call.line.name)]
    assert reply[-1].headers == (("Event", "ChannelsHungupListComplete"), ("ActionID", "t"),
                                 ("EventList", "Complete"), ("ListItems", "2"))
    sim.advance(1)
    assert call.hungup and sim.errors == []


def _two_parked_callers(sim):
    first = sim.call("5552101", "Caller A", dnis="4100", hold=60)
    second = sim.call("5552102", "Caller B", dnis="4100", hold=60)
    sim.advance(2)
    return first.line, second.line, second


def test_ami_bridge_joins_two_channels_until_one_leaves():
    """As recorded (more/README.txt): BridgeCreate, MusicOnHoldStop, BridgeEnter x2; when one party hangs up
    the other leaves and goes on at the priority after the one it was in (the lab's [cc-wait])."""
    sim, _, _ = make(acd="lab")
    a, b, caller_b = _two_parked_callers(sim)
    proto, transport = logged_in(sim)
    reply = act(proto, transport, "Bridge", Channel1=a.name, Channel2=b.name)
    assert reply[0].headers == (("Response", "Success"), ("ActionID", "t"), ("Message", "Channels have been bridged"))
    assert [(m.name, m.get("Channel")) for m in reply[1:] if m.name != "VarSet"] == [
        ("BridgeCreate", None), ("MusicOnHoldStop", a.name), ("MusicOnHoldStop", b.name),
        ("BridgeEnter", a.name), ("BridgeEnter", b.name),
        ("NewConnectedLine", a.name), ("NewConnectedLine", b.name)]   # each now talks to the other's caller id
    assert next(m for m in reply if m.name == "NewConnectedLine").get("ConnectedLineNum") == "5552102"
    sim.advance(40)   # longer than their music on hold would have lasted
    assert a.bridge is b.bridge is not None
    (status,) = [m for m in act(proto, transport, "Status", Channel=a.name, Variables="BRIDGEPEER")
                 if m.name == "Status"]
    assert status.getall("Variable") == [f"BRIDGEPEER={b.name}"] and status.get("BridgeID")
    caller_b.hangup()
    sim.advance(1)
    after = [(m.name, m.get("Channel"), m.get("Context"), m.get("Priority")) for m in read(transport)
             if m.name in ("BridgeLeave", "Hangup", "BridgeDestroy", "Newexten")
             and m.get("Channel") in (a.name, b.name, None)]
    assert after[:5] == [("BridgeLeave", b.name, "cc-wait", "3"), ("Hangup", b.name, "cc-wait", "3"),
                         ("BridgeLeave", a.name, "cc-wait", "3"), ("BridgeDestroy", None, None, None),
                         ("Newexten", a.name, "cc-wait", "4")]   # the Goto after MusicOnHold
    assert a.bridge is None and not a.hungup and sim.errors == []


def test_atxfer_needs_a_feature_code_then_queues_its_digits():
    """No features.conf: 'No attended transfer feature code found' unless the channel has FEATUREMAP(atxfer)."""
    sim, _, _ = make()
    a, b, _ = _two_parked_callers(sim)
    proto, transport = logged_in(sim)
    act(proto, transport, "Bridge", Channel1=a.name, Channel2=b.name)
    (reply,) = act(proto, transport, "Atxfer", Channel=a.name, Exten="6001")
    assert reply.get("Message") == "No attended transfer feature code found"
    act(proto, transport, "Setvar", Channel=a.name, Variable="FEATUREMAP(atxfer)", Value="*2")
    reply = act(proto, transport, "Atxfer", Channel=a.name, Exten="6001", Context="transfer")
    assert reply[0].headers == (("Response", "Success"), ("ActionID", "t"), ("Message", "Atxfer successfully queued"))
    sim.advance(3)
    assert [m.get("Digit") for _, m in sim.events if m.name == "DTMFEnd" and m.get("Channel") == a.name] == \
        ["*", "2", "6", "0", "0", "1"]


def test_blindtransfer_sends_the_bridge_peer_away_and_playdtmf_queues_a_digit():
    sim, _, _ = make()
    a, b, _ = _two_parked_callers(sim)
    proto, transport = logged_in(sim)
    (reply,) = act(proto, transport, "BlindTransfer", Channel=a.name, Context="cc-hold", Exten="s")
    assert reply.get("Message") == "Transfer invalid"   # in no bridge
    act(proto, transport, "Bridge", Channel1=a.name, Channel2=b.name)
    reply = act(proto, transport, "BlindTransfer", Channel=a.name, Context="cc-hold", Exten="s")
    assert reply[0].get("Message") == "Transfer succeeded"
    sim.advance(1)
    assert b.context == "cc-hold" and a.bridge is None and b.bridge is None
    reply = act(proto, transport, "PlayDTMF", Channel=a.peer.name, Digit="5")
    assert reply[0].get("Message") == "DTMF successfully queued"
    sim.advance(1)
    assert any(m.name == "DTMFEnd" and m.get("Channel") == a.name and m.get("Digit") == "5" for _, m in sim.events)
    assert sim.errors == []


# --- calls on the clock -------------------------------------------------------

def test_full_call_ivr_queue_agent_answers_then_hangs_up_on_the_clock():
    """IVR (FastAGI) -> Queue(support) -> agent rings 1 s, answers, talks 4 s, hangs up: event times."""
    sim, _, agi = make()
    sim.agent("6001", ring=1, talk=4)
    sim.add_member("support", "6001", name="Agent 6001")
    call = sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(10)
    assert sim.errors == [] and call.hungup
    assert at(sim, "Newexten", Application="AGI") == 0.502
    assert at(sim, "AGIExecEnd", Command="EXEC Playback beep") == pytest.approx(0.502 + 3404 / 8000)
    assert at(sim, "DTMFEnd", Digit="1") == 2.2
    assert at(sim, "AGIExecEnd", Command="GET DATA beep 3000 1") == 2.2
    assert at(sim, "QueueCallerJoin") == 2.2
    assert at(sim, "AgentConnect") == 3.2
    assert at(sim, "AgentComplete") == pytest.approx(3.2 + 0.502 + 4)
    connect = next(m for _, m in sim.events if m.name == "AgentConnect")
    assert (connect.get("HoldTime"), connect.get("RingTime"), connect.get("Channel")) == ("1", "1", call.line.name)
    assert agi.connections[0].environment["agi_calleridname"] == "Jane Doe"
    assert agi.connections[0].lines[-1] == b"HANGUP"


def test_scripted_caller_answers_each_prompt_that_reads_digits():
    sim, _, agi = make([["EXEC Playback beep", "GET DATA beep 5000 2", "WAIT FOR DIGIT 5000",
                         "SET VARIABLE CC_RESULT done"]])
    sim.call("5551001", "Jane Doe", keys=["42", "#"], key_delay=0.5)
    sim.advance(10)
    replies = agi.connections[0].lines[-4:]
    assert replies == [b"200 result=42", b"200 result=35", b"200 result=1", b"HANGUP"]
    assert at(sim, "DTMFBegin", Digit="4") == pytest.approx(0.502 + 3404 / 8000 + 0.5)


def test_missing_prompts_answer_like_asterisk_22_with_the_channel_still_up():
    """GET DATA of a missing prompt: ``200 result=-1``; STREAM FILE: ``200 result=-1 endpos=0``
    (AGISTATUS=FAILURE); the channel stays up (CHANNEL STATUS 6) and WAIT FOR DIGIT reads
    the caller's key; ``beep&beep`` is one missing name for GET DATA, while Playback plays
    each file and answers 0 with PLAYBACKSTATUS=FAILED."""
    sounds = SoundLibrary(missing=frozenset({"custom/cc-main-menu", "custom/cc-welcome"}))
    sim, _, agi = make([["GET DATA custom/cc-main-menu 3000 1", 'STREAM FILE custom/cc-welcome ""',
                         "CHANNEL STATUS", "WAIT FOR DIGIT 3000", "GET DATA beep&beep 3000 1",
                         "EXEC Playback custom/cc-welcome&beep", "GET VARIABLE PLAYBACKSTATUS",
                         "GET DATA beep 3000 1", "SET VARIABLE CC_RESULT done"]], sounds=sounds)
    call = sim.call("5551001", "Jane Doe", keys=["7", "8"], key_delay=0.5)
    sim.advance(10)
    assert agi.connections[0].lines[-10:] == [
        b"200 result=-1", b"200 result=-1 endpos=0", b"200 result=6", b"200 result=55", b"200 result=-1",
        b"200 result=0", b"200 result=1 (FAILED)", b"200 result=8", b"200 result=1", b"HANGUP"]
    varsets = [(m.get("Variable"), m.get("Value")) for _, m in sim.events
               if m.name == "VarSet" and m.get("Channel") == call.line.name]
    assert ("AGISTATUS", "FAILURE") in varsets
    ends = [(m.get("Command"), m.get("ResultCode")) for _, m in sim.events if m.name == "AGIExecEnd"]
    assert ends[:2] == [("GET DATA custom/cc-main-menu 3000 1", "200"), ('STREAM FILE custom/cc-welcome ""', "-1")]
    assert sim.errors == []


def test_only_the_available_prompts_exist_when_a_set_is_given():
    """``available`` is the box's whole sound set; ``missing`` takes files out; ``&`` never names a file."""
    sounds = SoundLibrary(available=frozenset({"beep", "custom/cc-welcome"}), missing=frozenset({"beep"}))
    assert [sounds.exists(n) for n in ("custom/cc-welcome", "beep", "custom/cc-main-menu", "", "beep&beep")] == [
        True, False, False, False, False]
    assert SoundLibrary().exists("custom/anything")


def test_channel_status_right_after_a_hangup_minus_one_gets_hangup_then_511():
    """The caller leaves during GET DATA: ``-1``; a CHANNEL STATUS sent at once is read only
    after Asterisk wrote HANGUP (res_agi drains the channel first) and answers 511."""
    sim, _, agi = make([["GET DATA beep 10000 1", "CHANNEL STATUS", "NOOP"]])
    call = sim.call("5551001", "Jane Doe")
    sim.advance(2)
    call.hangup()
    sim.advance(2)
    assert agi.connections[0].lines[-5:] == [
        b"200 result=-1", b"HANGUP", b"511 Command Not Permitted on a dead channel or intercept routine",
        b"200 result=0", b"HANGUP"]


def test_hangup_causes_as_recorded():
    """Caller after the agent hung up 16; busy phone 17 (its ;1 half 0); legs after a ring timeout 0."""
    sim, _, _ = make()
    sim.add_member("support", "8001")
    sim.add_member("support", "7002")
    sim.add_member("support", "6003")
    sim.agent("6003", talk=1)
    call = sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(40)
    causes = {m.get("Channel"): m.get("Cause") for _, m in sim.events if m.name == "Hangup"}
    assert causes[call.line.name] == causes[call.phone.name] == "16"
    assert causes["Local/8001@sim-agents-00000001;2"] == "17" and causes["Local/8001@sim-agents-00000001;1"] == "0"
    assert causes["Local/7002@sim-agents-00000002;1"] == "0"
    assert sim.errors == []


def test_fastagi_port_refused_sends_the_caller_to_the_fallback_queue():
    """No FastAGI server: AGISTATUS=FAILURE, the CC_RESULT contract falls back to Queue(support)."""
    clock = task.Clock()
    sim = Simulator(None, clock=clock, epoch=EPOCH, agi_connector=lambda host, port, session: session.failed(
        "Connection refused"))
    sim.start()
    sim.agent("6001", talk=2)
    sim.add_member("support", "6001")
    sim.call("5551001", "Jane Doe")
    sim.advance(6)
    varsets = {(m.get("Variable"), m.get("Value")) for _, m in sim.events if m.name == "VarSet"}
    assert ("AGISTATUS", "FAILURE") in varsets and ("QUEUENAME", "support") in varsets
    assert "AGIExecStart" not in names(sim) and "AgentConnect" in names(sim)


@pytest.mark.parametrize("result, expected", [("done", None), ("queue", "sales"), ("bogus", "support")])
def test_cc_result_contract(result, expected):
    sim, _, _ = make([[f"SET VARIABLE CC_RESULT {result}", "SET VARIABLE CC_QUEUE sales"]])
    sim.call("5551001", "Jane Doe")
    sim.advance(3)
    joined = [m.get("Queue") for _, m in sim.events if m.name == "QueueCallerJoin"]
    assert joined == ([expected] if expected else [])


@pytest.mark.parametrize("moment, member, marker", [
    (1.0, True, "AGIExecEnd"),            # during the IVR (prompt playing)
    (3.0, False, "QueueCallerAbandon"),   # waiting in the queue, nobody to ring
    (3.5, True, "QueueCallerAbandon"),    # the agent phone rings (2.2 s .. 4.7 s)
    (6.0, True, "AgentComplete"),         # talking with the agent
])
def test_caller_hangup_at_any_point_ends_the_call_cleanly(moment, member, marker):
    sim, _, _ = make()
    sim.agent("6001", ring=2.5, talk=60)
    if member:
        sim.add_member("support", "6001")
    call = sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(moment)
    call.hangup()
    sim.advance(3)
    assert sim.errors == [] and sim.engine.channels == {}
    assert marker in names(sim)
    if marker == "AgentComplete":
        assert next(m for _, m in sim.events if m.name == "AgentComplete").get("Reason") == "caller"
    if marker == "QueueCallerAbandon":
        assert "AgentConnect" not in names(sim)


def test_no_answer_rings_the_next_member_after_the_timeout_and_retry():
    sim, _, _ = make()
    sim.add_member("support", "7001", name="Never")
    sim.add_member("support", "6002", name="Answers")
    sim.agent("6002", talk=2)
    sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(25)
    rna = next(m for _, m in sim.events if m.name == "AgentRingNoAnswer")
    assert (rna.get("MemberName"), rna.get("RingTime")) == ("Never", "15000")
    assert at(sim, "AgentRingNoAnswer") == pytest.approx(2.2 + 15)
    assert at(sim, "AgentCalled", MemberName="Answers") == pytest.approx(2.2 + 15 + 2)
    assert "AgentComplete" in names(sim) and sim.errors == []


def test_busy_member_then_manual_agent_answers_and_hangs_up():
    sim, _, _ = make()
    sim.add_member("support", "8001")
    sim.add_member("support", "6001")
    sim.agent("6001", mode="manual")
    sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(4)
    assert [m.get("DialStatus") for _, m in sim.events if m.name == "DialEnd"][-1] == "BUSY"
    assert "AgentConnect" not in names(sim)
    sim.answer("6001")
    sim.advance(1)
    assert "AgentConnect" in names(sim)
    sim.agent_hangup("6001")
    sim.advance(1)
    assert next(m for _, m in sim.events if m.name == "AgentComplete").get("Reason") == "agent"
    assert sim.engine.channels == {} and sim.errors == []


def test_daemon_driven_acd_setvar_and_redirect_into_dial():
    sim, clock, _ = make()
    proto, transport = logged_in(sim)
    call = sim.call("5552101", "ACD Caller A", dnis="4100", hold=60)
    sim.advance(2)
    line = call.line.name.encode()
    proto.dataReceived(b"Action: Setvar\r\nActionID: s\r\nChannel: " + line +
                       b"\r\nVariable: CC_AGENT_IFACE\r\nValue: Local/6001@sim-agents/n\r\n\r\n")
    proto.dataReceived(b"Action: Redirect\r\nActionID: r\r\nChannel: " + line +
                       b"\r\nContext: cc-connect\r\nExten: s\r\nPriority: 1\r\n\r\n")
    got = [m.name for m in read(transport)]
    assert got.index("MusicOnHoldStop") > got.index("Success")
    sim.advance(2)
    assert "DialEnd" in names(sim) and "BridgeEnter" in names(sim)


# --- hold: dual Redirect, then AMI Bridge (tests/test_real_asterisk_hold.py) ---------------

def _hold(proto, transport, caller, leg) -> list:
    return act(proto, transport, "Redirect", Channel=caller.name, Context="cc-hold", Exten="s", Priority="1",
               ExtraChannel=leg.name, ExtraContext="cc-agent-hold", ExtraExten="s", ExtraPriority="1")


def _trail(sim, since: int, *chans) -> list[str]:
    """Events about ``chans`` (by index) after event number ``since``, without VarSet."""
    names = [c.name for c in chans]
    out = []
    for _, m in sim.events[since:]:
        if m.is_event and m.get("Channel") in names and m.name != "VarSet":
            where = f"({m.get('Context')},{m.get('Priority')},{m.get('Application')})" if m.name == "Newexten" else ""
            out.append(f"{names.index(m.get('Channel'))}:{m.name}{where}")
    return out


def test_dual_redirect_of_a_dial_bridged_call_keeps_the_agent_leg_alive_in_cc_agent_hold():
    """Hold of a Dial() call: nobody hangs up, the agent leg waits in cc-agent-hold, Bridge joins them again."""
    sim, _, _ = make()
    sim.agent("6001", ring=1, talk=120)
    proto, transport = logged_in(sim)
    caller = sim.call("5552502", "Hold Caller", dnis="4100", hold=90).line
    sim.advance(1)
    act(proto, transport, "Setvar", Channel=caller.name, Variable="CC_AGENT_IFACE", Value="Local/6001@sim-agents/n")
    act(proto, transport, "Redirect", Channel=caller.name, Context="cc-connect", Exten="s", Priority="1")
    sim.advance(3)
    leg = caller.bridge.channels[0]
    read(transport)
    mark = len(sim.events)
    assert _hold(proto, transport, caller, leg)[0].get("Message") == "Dual Redirect successful"
    sim.advance(5)
    assert not leg.hungup and not caller.hungup and leg.peer.task is not None and not leg.peer.hungup
    assert (caller.context, caller.app, leg.context, leg.app) == ("cc-hold", "MusicOnHold", "cc-agent-hold", "Wait")
    trail = _trail(sim, mark, caller, leg)
    assert trail == ["0:Newexten(cc-hold,1,Dial)", "0:BridgeLeave", "0:Newexten(cc-hold,2,MusicOnHold)",
                     "0:MusicOnHoldStart", "1:Newexten(cc-agent-hold,1,AppDial)", "1:BridgeLeave",
                     "1:Newexten(cc-agent-hold,2,Wait)"]
    assert caller.get_var("DIALSTATUS") == "ANSWER" and sim.errors == []
    reply = act(proto, transport, "Bridge", Channel1=caller.name, Channel2=leg.name)
    assert reply[0].get("Message") == "Channels have been bridged"
    assert caller.bridge is leg.bridge is not None
    mark = len(sim.events)
    act(proto, transport, "Hangup", Channel=caller.name)
    sim.advance(1)
    assert "1:Newexten(cc-agent-hold,3,Hangup)" in _trail(sim, mark, caller, leg)
    assert sim.engine.channels == {} and sim.errors == []


def test_dual_redirect_of_a_queue_bridged_call_keeps_the_agent_leg_and_sends_no_agentcomplete():
    """Hold of a Queue() call: Queue() returns without AgentComplete; it comes (Reason caller) when the caller
    hangs up on hold, and the agent leg then still waits in cc-agent-hold, as on Asterisk 22.10.1."""
    sim, _, _ = make()
    sim.agent("6001", ring=1, talk=120)
    sim.add_member("support", "6001", name="Agent 6001")
    proto, transport = logged_in(sim)
    call = sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(5)
    caller = call.line
    leg = caller.bridge.channels[0]
    mark = len(sim.events)
    _hold(proto, transport, caller, leg)
    sim.advance(5)
    assert not leg.hungup and not caller.hungup
    assert (caller.context, caller.app, leg.context, leg.app) == ("cc-hold", "MusicOnHold", "cc-agent-hold", "Wait")
    trail = _trail(sim, mark, caller, leg)
    assert trail[0] == "0:Newexten(cc-hold,1,Queue)" and "1:Newexten(cc-agent-hold,1,AppQueue)" in trail
    assert "AgentComplete" not in names(sim)[mark:] and not [n for n in trail if "Hangup" in n]
    assert caller.get_var("QUEUENAME") == "support" and caller.get_var("DIALEDTIME")
    call.hangup()
    sim.advance(1)
    complete = [m for _, m in sim.events[mark:] if m.name == "AgentComplete"]
    assert [(m.get("Reason"), m.get("DestChannel")) for m in complete] == [("caller", leg.name)]
    assert caller.hungup and not leg.hungup and leg.app == "Wait" and sim.errors == []


def test_redirect_of_the_queue_agent_leg_alone_hangs_up_the_caller_with_agentcomplete_reason_caller():
    """As Asterisk 22.10.1 did: the leg runs its target, Queue() ends, AgentComplete after SoftHangupRequest."""
    sim, _, _ = make()
    sim.agent("6001", ring=1, talk=120)
    sim.add_member("support", "6001", name="Agent 6001")
    proto, transport = logged_in(sim)
    call = sim.call("5551001", "Jane Doe", digits="1")
    sim.advance(5)
    caller = call.line
    leg = caller.bridge.channels[0]
    mark = len(sim.events)
    act(proto, transport, "Redirect", Channel=leg.name, Context="cc-agent-hold", Exten="s", Priority="1")
    sim.advance(2)
    trail = _trail(sim, mark, caller, leg)
    assert trail.index("0:SoftHangupRequest") < trail.index("0:AgentComplete") < trail.index("0:Hangup")
    assert "1:Newexten(cc-agent-hold,2,Wait)" in trail and not [n for n in trail if n.startswith("1:Hangup")]
    assert next(m for _, m in sim.events[mark:] if m.name == "AgentComplete").get("Reason") == "caller"
    assert caller.hungup and not leg.hungup and leg.app == "Wait" and sim.errors == []


def test_hold_and_unhold_match_ami_hold_extrachannel_bridge():
    """The recorded hold of a Dial() call: dual Redirect, 4 s later AMI Bridge, the agent hangs up."""
    from tests.test_sim_vs_transcripts import Run, assert_same, raw, sequence_sends

    recording = raw("more/ami_hold_extrachannel_bridge.txt")
    run = Run(recording)
    sends = sequence_sends("more/ami_hold_extrachannel_bridge.sequence.txt")
    stream = run.replay_sends(sends, until=sends[-1][0] + 0.5)
    # other threads of Asterisk: the bridge's (BridgeDestroy, the agent leg leaving it) and the
    # Redirect's (the agent leg's BRIDGEPEER and first Newexten, before the caller's there)
    assert_same(stream, recording, moved=["BridgeDestroy @bridge#0", "BridgeDestroy @bridge#1",
                                          "BridgeLeave @Local/6001@sim-agents-#1;1",
                                          "Newexten(AppDial) @Local/6001@sim-agents-#1;1",
                                          "VarSet(BRIDGEPEER) @Local/6001@sim-agents-#1;1"])


def test_utf8_caller_name_is_c_escaped_on_ami_but_raw_in_the_agi_environment():
    sim, _, agi = make()
    sim.call("5551015", "Dan O'Neil? \"Zoë\"")
    sim.advance(1)
    newcallerid = next(m for _, m in sim.events if m.name == "NewCallerid")
    assert newcallerid.get("CallerIDName") == "Dan O\\'Neil\\? \\\"Zoë\\\""
    originate = next(m for _, m in sim.events if m.name == "OriginateResponse")
    assert originate.get("CallerIDName") == "Dan O'Neil? \"Zoë\""
    assert agi.connections[0].environment["agi_calleridname"] == "Dan O'Neil? \"Zoë\""
    assert "Zo\xeb".encode() in newcallerid.encode()


def test_click_to_dial_originate_through_the_api():
    sim, _, _ = make()
    sim.originate(OriginateRequest("Local/6002@sim-agents/n", "cc-outbound", "5552001", cid_num="4000",
                                   cid_name="Hotline", variables=[("__CUST_TALK_SECS", "4")], action_id="c2d"))
    sim.advance(12)
    assert [m.get("DialStatus") for _, m in sim.events if m.name == "DialEnd"] == ["ANSWER", "ANSWER"]
    assert sim.engine.channels == {} and sim.errors == []


def test_restart_hangs_calls_up_sends_shutdown_and_boots_again():
    sim, clock, _ = make()
    proto, transport = logged_in(sim)
    sim.call("5552001", "Waiting Caller", dnis="4100", hold=120)
    sim.advance(1)
    transport.clear()
    sim.shutdown(restart=True)
    assert [m.get("Cause") for m in read(transport) if m.name == "SoftHangupRequest"][:2] == ["4", "4"]
    sim.advance(1.1)
    assert [m.name for m in read(transport)] == ["Shutdown"]
    sim.advance(0.01)
    assert transport.disconnecting
    sim.advance(0.39)  # 1.5 s after the command the new process accepts; it boots 50 ms
    proto, transport = ami_connection(sim)
    proto.dataReceived(LOGIN)
    sim.advance(0.1)
    got = read(transport)
    # one VarSet per [globals] entry (the lab had three; the shipped contract adds its CTI_* ones)
    assert [m.name for m in got] == ["Success", "SuccessfulAuth"] + ["VarSet"] * len(sim.engine.file_globals) + [
        "FullyBooted"]
    assert [m.get("Variable") for m in got if m.name == "VarSet"][:3] == ["CTI_AGI_HOST", "AGENT_TALK_SECS",
                                                                          "AGENT_RING_SECS"]
    assert (got[-1].get("Uptime"), got[-1].headers[2]) == ("0", ("Status", "Fully Booted"))
    assert sim.engine.naming.local_pair("1", "x")[0].endswith("-00000000;1")


# --- real sockets -------------------------------------------------------------

class LineFastAGI(LineReceiver):
    """A tiny FastAGI server: answers the IVR with digit 1 -> queue support."""

    delimiter = b"\n"

    def __init__(self, log: list) -> None:
        self.log = log
        self.script = list(IVR)
        self.env = True
        self.sent = self.received = 0

    def lineReceived(self, line: bytes) -> None:
        self.received += len(line) + 1
        self.log.append(line)
        if self.env:
            self.env = bool(line)
            if self.env:
                return
        elif not line.startswith(b"200"):
            return
        if self.script:
            command = self.script.pop(0).encode() + b"\n"
            self.sent += len(command)
            self.transport.write(command)
        else:
            self.transport.loseWriteConnection()


def _in_sync(sim: Simulator, servers: list[LineFastAGI]) -> bool:
    for chan_call in sim.calls:
        session = chan_call.agi
        if session is None:
            continue
        if session.state == "connecting":
            return False
        written = sum(len(text.encode()) for way, text in session.transcript if way == "A->S")
        read_back = sum(len(text.encode()) + 1 for way, text in session.transcript if way == "S->A")
        server = servers[0] if servers else None
        if server is None or server.received != written or server.sent != read_back:
            return False
    return True


async def _run(sim: Simulator, clock: task.Clock, seconds: float, servers: list) -> None:
    """Advance the Clock timer by timer; between timers let real I/O settle."""
    end = clock.seconds() + seconds
    while True:
        for _ in range(500):
            if _in_sync(sim, servers):
                break
            await task.deferLater(reactor, 0.001, lambda: None)
        due = sim.next_timer()
        if due is None or due > end:
            clock.advance(max(0.0, end - clock.seconds()))
            return
        clock.advance(max(0.0, due - clock.seconds()))


@pytest_twisted.ensureDeferred
async def test_full_call_over_real_tcp_with_a_linereceiver_fastagi_server():
    log: list[bytes] = []
    servers: list[LineFastAGI] = []
    factory = protocol.Factory.forProtocol(lambda: servers.append(LineFastAGI(log)) or servers[-1])
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    clock = task.Clock()
    sim = Simulator(reactor, clock=clock, epoch=EPOCH, agi_port=port.getHost().port)
    try:
        sim.start()
        sim.agent("6001", ring=1, talk=4)
        sim.add_member("support", "6001", name="Agent 6001")
        call = sim.call("5551001", "Jane Doe", digits="1")
        await _run(sim, clock, 10, servers)
        assert sim.errors == [] and call.hungup
        assert log[:3] == [b"agi_network: yes", b"agi_network_script: ivr?dnis=4000",
                           b"agi_request: agi://127.0.0.1:%d/ivr?dnis=4000" % port.getHost().port]
        assert log[-5:] == [b"200 result=0", b"200 result=1", b"200 result=1", b"200 result=1", b"HANGUP"]
        assert at(sim, "AGIExecEnd", Command="GET DATA beep 3000 1") == 2.2
        assert at(sim, "AgentConnect") == 3.2
        assert at(sim, "AgentComplete") == pytest.approx(7.702)
    finally:
        sim.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_real_fastagi_port_closed_means_fallback_queue():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    clock = task.Clock()
    sim = Simulator(reactor, clock=clock, epoch=EPOCH, agi_port=closed_port)
    sim.start()
    try:
        sim.agent("6001", talk=1)
        sim.add_member("support", "6001")
        call = sim.call("5551001", "Jane Doe")
        sim.advance(0.6)
        for _ in range(200):
            if call.agi is not None and call.agi.state != "connecting":
                break
            await task.deferLater(reactor, 0.005, lambda: None)
        sim.advance(5)
        varsets = {(m.get("Variable"), m.get("Value")) for _, m in sim.events if m.name == "VarSet"}
        assert ("AGISTATUS", "FAILURE") in varsets and "AgentConnect" in names(sim)
    finally:
        sim.stop()


class _Collect(protocol.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason=None) -> None:
        self.closed.callback(None)


@pytest_twisted.ensureDeferred
async def test_ami_over_tcp_refuses_connections_while_restarting():
    clock = task.Clock()
    sim = Simulator(reactor, clock=clock, epoch=EPOCH)
    port = sim.start()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    try:
        client = await connectProtocol(endpoint, _Collect())
        client.transport.write(LOGIN)
        await task.deferLater(reactor, 0.05, lambda: None)
        assert client.data.startswith(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n")
        sim.shutdown(restart=True)
        sim.advance(0.05)
        await client.closed
        assert b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: True\r\n" in client.data
        with pytest.raises(Exception):
            await connectProtocol(endpoint, _Collect())
        sim.advance(1.5)
        again = await connectProtocol(endpoint, _Collect())
        assert again.data in (b"", b"Asterisk Call Manager/11.0.0\r\n")
        again.transport.loseConnection()
    finally:
        sim.stop()


class _Events:
    def __init__(self) -> None:
        self.events = []

    def ami_snapshot(self, snapshot) -> None:
        pass

    def ami_event(self, event) -> None:
        self.events.append(event)

    def ami_link_down(self) -> None:
        pass


@asyncio_test
async def test_the_daemons_client_gets_every_declared_action_answered_promptly():
    """Every action of callcenter/asterisk/ami_actions.py, sent by the daemon's AMIClient over TCP: the
    simulator answers each in the declared shape (one response, or a list up to its completing event)."""
    clock = task.Clock()
    sim = Simulator(reactor, clock=clock, epoch=EPOCH)
    port = sim.start()
    sim.add_member("support", "6001", name="Agent 6001")
    a, b, _ = _two_parked_callers(sim)
    events = _Events()
    loop = asyncio.get_running_loop()
    client = AMIClient(host="127.0.0.1", port=port, username="cti", secret="cti-secret", loop=loop,
                       listener=events, action_timeout=5)
    client.start()
    member = [("Queue", "sales"), ("Interface", "Local/6002@sim-agents/n")]
    requests = {   # in this order: the channel actions build on each other
        "Ping": [], "CoreStatus": [], "CoreShowChannels": [], "QueueStatus": [], "QueueSummary": [],
        "Status": [("Channel", a.name)],
        "QueueAdd": member, "QueuePause": member + [("Paused", "true"), ("Reason", "lunch")],
        "QueuePenalty": member + [("Penalty", "2")], "QueueLog": [("Queue", "sales"), ("Event", "CCTEST")],
        "QueueRemove": member,
        "Setvar": [("Channel", a.name), ("Variable", "FEATUREMAP(atxfer)"), ("Value", "*2")],
        "Getvar": [("Channel", a.name), ("Variable", "CALLERID(num)")],
        "PlayDTMF": [("Channel", a.name), ("Digit", "5")],
        "Bridge": [("Channel1", a.name), ("Channel2", b.name)],
        "Atxfer": [("Channel", a.name), ("Exten", "6001"), ("Context", "transfer")],
        "CancelAtxfer": [("Channel", a.name)],
        "BlindTransfer": [("Channel", a.name), ("Context", "cc-hold"), ("Exten", "s")],
        "Redirect": [("Channel", b.name), ("Context", "cc-wait"), ("Exten", "s"), ("Priority", "1")],
        "Hangup": [("Channel", a.name)],
        "Originate": [("Channel", "Local/6002@sim-agents/n"), ("Context", "cc-agent-hold"), ("Exten", "s")],
    }
    assert set(requests) | {"Login", "Logoff"} == {spec.name for spec in ACTIONS.values()}
    try:
        await asyncio.wait_for(client.logged_in.wait(), 5)
        for name, headers in requests.items():
            start = loop.time()
            result = await client.action(name, headers)
            assert loop.time() - start < 0.5, name
            if ACTIONS[name.lower()].is_list:
                assert result[0].get("EventList") == "start" and result[-1].name == ACTIONS[name.lower()].complete
            else:
                assert result.get("Response") == "Success", (name, result)
            sim.advance(0.5)
        assert result.get("Message") == "Originate successfully queued"
        sim.advance(3)
        for _ in range(100):
            if any(e.name == "OriginateResponse" for e in events.events):
                break
            await asyncio.sleep(0.01)
        outcome = next(e for e in events.events if e.name == "OriginateResponse")
        assert (outcome.action_id, outcome.get("Response")) == (result.action_id, "Success")
        assert sim.errors == []
    finally:
        await client.close_and_wait()
        sim.stop()


# --- small parts --------------------------------------------------------------

def test_dialplan_substitution_of_the_lab_expressions():
    values = {"PRE_WAIT": "", "DIGITS": "12"}
    info = {"CALLERID(num)": "5551001", "EXTEN": "4000"}
    assert substitute('${IF($["${PRE_WAIT}" = ""]?2:${PRE_WAIT})}', values.get, info.get) == "2"
    assert substitute('$["${DIGITS}" != ""]?SendDTMF(${DIGITS})', values.get, info.get) == "1?SendDTMF(12)"
    assert substitute("ANI=${CALLERID(num)} DNIS=${EXTEN} ${FILTER(ab,xaybz)}", values.get, info.get) == \
        "ANI=5551001 DNIS=4000 ab"


@pytest.mark.parametrize("expression, value", [
    ("$[${EPOCH} - ${since} >= 20]", "1"),                 # arithmetic before comparison, numbers
    ("$[${EPOCH} - ${since} >= 21]", "0"),
    ('$["${empty}" = "" | "${status}" = "ANSWER"]', "1"),   # | and & below the comparisons
    ("$[0${ring:0:3} > 0 & 0${ring:0:3} <= 120]", "1"),
    ("$[0${long:0:3} > 0 & 0${long:0:3} <= 120]", "0"),     # "500" is out of range
    ("${ring:0:2} ${long:-2} ${long:1:-1} ${long:9}", "01 00 0 "),
    ('$["10" < "9"]', "1"),                                 # quoted: compared as strings
    ("$[10 < 9]", "0"),
    ("$[(1 + 2) * 3 % 4]", "1"),
    ("$[7 / 2]", "3.5"),
    ("$[!0]", "1"),
    ('${REGEX("^Local/[0-9]+@sim-agents(/n)?$" Local/6001@sim-agents/n)}', "1"),
    ('${REGEX("^Local/[0-9]+@sim-agents(/n)?$" Local/6001@agents/n)}', "0"),
    ("$[support]", "support"),                              # one operand comes back as written
])
def test_dialplan_expressions_of_the_shipped_contract(expression, value):
    values = {"since": "1795535400", "empty": "", "status": "NOANSWER", "ring": "015", "long": "500"}
    builtins = {"EPOCH": "1795535420"}
    assert substitute(expression, values.get, builtins.get) == value


def test_callerid_parsing_as_recorded():
    assert parse_callerid('"Say \\"Hi\\" \\\\ Bob" <5551012>') == ("5551012", 'Say "Hi" \\ Bob')
    assert parse_callerid('"O"Brien \\ Co" <5551013>') == ("5551013", 'O"Brien  Co')
    assert parse_callerid('"Smith, John" <5551016>') == ("5551016", "Smith, John")


def test_agi_argument_parsing_like_res_agi():
    assert parse_args('SET VARIABLE CC_NOTE "hello world"') == ["SET", "VARIABLE", "CC_NOTE", "hello world"]
    assert parse_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert parse_args("EXEC Set CC_X=1") == ["EXEC", "Set", "CC_X=1"]
