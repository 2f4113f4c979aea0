"""CallTracker driven by the real Asterisk 22 recordings in tests/fixtures/asterisk-22/.

Each stream is decoded with AMIDecoder and fed in order.  The clock is the
recording's own: the per-read timestamps of a ``*.session.txt``, else the
per-message times of the ``*.sequence.txt`` (test_ami_codec checks that its
lines match the messages one for one), else a clock advanced 10 ms per
message.  Timelines read ``label@seconds detail``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Iterable

import pytest

from acd import events as ev
from acd.events import CallState
from callcenter.asterisk.ami_client import AMISnapshot
from callcenter.asterisk.ami_codec import AMIDecoder, AMIMessage
from callcenter.asterisk.call_model import agent_id
from callcenter.asterisk.call_tracker import ALLOWED, CallTracker
from tests import transcripts
from tests.transcripts import fixture

Timed = list[tuple[float, AMIMessage]]
_SESSION_BLOCK = re.compile(r"^ *\+(\d+\.\d+)s (A->C|C->A|----) (?:\[(\w+)\] )?")
_SEQUENCE_LINE = re.compile(r"^ *\+(\d+\.\d+) +(RESPONSE|EVENT) +(\S+)")
PER_MESSAGE = 0.01


# -- feeding the recordings ---------------------------------------------------

def session_messages(name: str, label: str | None = None) -> Timed:
    """Messages Asterisk sent on one connection of a session file, stamped with their read's time."""
    path = fixture(name)
    connections = transcripts.session_connections(path)
    connection = connections[0] if label is None else next(c for c in connections if c.label == label)
    times = []
    for line in path.read_text(encoding="utf-8").splitlines():
        block = _SESSION_BLOCK.match(line)
        if block and block.group(2) == "A->C" and (block.group(3) or connection.label) == connection.label:
            times.append(float(block.group(1)))
    assert len(times) == len(connection.received)
    decoder, timed = AMIDecoder(), []
    for at, data in zip(times, connection.received):
        timed += [(at, message) for message in decoder.feed(data)]
    return timed


def raw_messages(name: str) -> Timed:
    """A raw stream, timed by its .sequence.txt when it has times, else 10 ms per message."""
    path = fixture(name)
    messages = [m for data in transcripts.raw_connections(path) for m in AMIDecoder().feed(data)]
    sequence = transcripts.sequence_file(path)
    lines = [_SEQUENCE_LINE.match(line) for line in sequence.read_text(encoding="utf-8").splitlines()] \
        if sequence else []
    times = [(float(m.group(1)), m.group(3)) for m in lines if m]
    if len(times) != len(messages):
        return [(i * PER_MESSAGE, message) for i, message in enumerate(messages)]
    assert [name for _, name in times] == [m.name for m in messages]
    return [(at, message) for (at, _), message in zip(times, messages)]


class Harness:
    """A tracker with a hand-set clock and the list of what it emitted."""

    def __init__(self, **kwargs: float) -> None:
        self.now = 0.0
        self.events: list[object] = []
        self.tracker = CallTracker(self.events.append, lambda: self.now, **kwargs)

    def play(self, timed: Iterable[tuple[float, AMIMessage]]) -> Harness:
        for at, message in timed:
            self.now = at
            if message.kind == "event":
                self.tracker.ami_event(message)
        return self

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def call_events(self) -> list:
        return [e for e in self.events if hasattr(e, "call_id")]

    def timeline(self, times: bool = True) -> list[str]:
        return [_label(e, times) for e in self.call_events()]

    def assert_empty(self) -> None:
        assert dict(self.tracker.calls) == {}
        assert self.tracker.channel_count == 0


def play(name: str, timed: Timed | None = None) -> Harness:
    return Harness().play(raw_messages(name) if timed is None else timed)


def _agent(interface: str | None) -> str:
    found = re.match(r"(?:\w+/)?([^@/]+)", interface or "")
    return found.group(1) if found else "-"


def _label(e: object, times: bool) -> str:
    detail = {
        ev.CallQueued: lambda e: e.queue or "moh",
        ev.CallOffered: lambda e: _agent(e.agent_interface),
        ev.OfferFailed: lambda e: _agent(e.agent_interface),
        ev.CallConnected: lambda e: _agent(e.agent_interface),
        ev.CallDialedOut: lambda e: e.destination,
        ev.CallTransferred: lambda e: f"{e.kind} {_agent(e.to)}",
        ev.CallCompleted: lambda e: e.released_by,
        ev.CallEnded: lambda e: str(e.cause),
    }.get(type(e), lambda e: "")(e)
    name = {
        ev.CallArrived: "arrived", ev.CallEnteredIvr: "ivr", ev.CallQueued: "queued",
        ev.CallOffered: "offered", ev.CallConnected: "connected", ev.CallDialedOut: "dialing",
        ev.CallHeld: "held", ev.CallResumed: "resumed", ev.CallTransferred: "transfer",
        ev.CallConsulting: "consulting", ev.CallTransferCancelled: "transfer-cancelled",
        ev.CallCompleted: "wrap-up", ev.CallAbandoned: "abandoned", ev.CallEnded: "ended",
    }.get(type(e)) or getattr(e, "reason", type(e).__name__)
    text = f"{name}@{e.at:.1f}" if times else name
    return f"{text} {detail}" if detail else text


def only(items: list) -> object:
    assert len(items) == 1, items
    return items[0]


# -- the full IVR + Queue call --------------------------------------------------

def test_full_call_timeline_from_the_session_clock():
    """arrived -> ivr -> queued -> offered -> connected -> wrap-up -> ended at the recorded times."""
    h = Harness().play(session_messages("ami_full_call.session.txt"))
    assert h.timeline() == [
        "arrived@0.0", "ivr@0.5", "queued@2.2 support", "offered@2.2 6001", "connected@3.2 6001",
        "wrap-up@7.7 agent", "ended@7.7 16",
    ]
    h.assert_empty()


def test_full_call_carries_identity_durations_and_cause():
    """Caller is the ;2 hotline half; wait 1 s, ring 1 s, talk 4.5 s, Normal Clearing."""
    h = Harness().play(session_messages("ami_full_call.session.txt"))
    arrived = only(h.of(ev.CallArrived))
    assert (arrived.direction, arrived.caller_channel, arrived.ani, arrived.caller_name, arrived.dnis) == (
        "inbound", "Local/4000@from-pstn-00000000;2", "5551001", "Jane Doe", "4000")
    connected = only(h.of(ev.CallConnected))
    assert connected.wait_seconds == pytest.approx(1.0, abs=0.05)
    assert connected.ring_seconds == pytest.approx(1.0, abs=0.05)
    assert only(h.of(ev.CallCompleted)).talk_seconds == pytest.approx(4.5, abs=0.1)
    ended = only(h.of(ev.CallEnded))
    assert (ended.cause, ended.cause_txt) == (16, "Normal Clearing")
    record = ended.record
    assert (record.state, record.queue, record.agent_interface, record.member_name) == (
        CallState.ENDED, "support", "Local/6001@sim-agents/n", "Agent 6001")
    assert [o.outcome for o in record.offers] == ["answered"]
    assert record.arrived_at <= record.ivr_at <= record.queued_at <= record.offered_at <= record.answered_at
    assert record.ended_at == ended.at and not record.abandoned


def test_queue_member_events_become_agent_member_status():
    """QueueMemberAdded/Status give AgentMemberStatus with app_queue's state names."""
    h = Harness().play(session_messages("ami_full_call.session.txt"))
    assert [(m.interface, m.queue, m.status) for m in h.of(ev.AgentMemberStatus)] == [
        ("Local/6001@sim-agents/n", "support", "NOT_INUSE"),
        ("Local/6001@sim-agents/n", "support", "INUSE"),
        ("Local/6001@sim-agents/n", "support", "NOT_INUSE"),
    ]


@pytest.mark.parametrize("name", ["ami_hangup_mid_agi.txt", "ami_hangup_idle_agi.txt",
                                  "ami_hangup_agiexitonhangup.txt", "ami_agi_edge_call.txt"])
def test_caller_hanging_up_in_the_ivr_ends_the_call_in_the_ivr(name):
    """A hangup during or between AGI commands ends the call where it was: in the IVR."""
    h = play(name)
    assert h.timeline(times=False) == ["arrived", "ivr", "ended 16"]
    record = only(h.of(ev.CallEnded)).record
    assert record.ivr_at is not None and record.queued_at is None and not record.abandoned
    h.assert_empty()


# -- daemon-driven ACD ----------------------------------------------------------------

def test_acd_a_moh_wait_then_redirect_into_dial_connects():
    """Parked on MOH (queued, no queue), Redirect into Dial rings 6001, answered, agent hangs up."""
    h = Harness().play(session_messages("more/ami_acd_a_answer.session.txt"))
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@2.8 6001", "connected@3.8 6001",
        "wrap-up@8.3 agent", "ended@8.3 16",
    ]
    connected = only(h.of(ev.CallConnected))
    assert connected.wait_seconds == pytest.approx(3.0, abs=0.05)
    assert connected.ring_seconds == pytest.approx(1.0, abs=0.05)
    assert only(h.of(ev.CallOffered)).queue is None
    h.assert_empty()


def test_acd_b_noanswer_returns_to_waiting_then_caller_abandons():
    """7001 rings out after 15 s (noanswer), the caller waits again and hangs up: abandoned."""
    h = play("more/ami_acd_b_noanswer.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@2.8 7001", "noanswer@17.8 7001",
        "abandoned@24.3", "ended@24.3 16",
    ]
    assert only(h.of(ev.OfferFailed)).ring_seconds == pytest.approx(15.0, abs=0.01)
    assert only(h.of(ev.CallAbandoned)).wait_seconds == pytest.approx(23.5, abs=0.01)
    assert only(h.of(ev.CallEnded)).record.abandoned
    h.assert_empty()


def test_acd_c_busy_and_unavailable_offers_fail_then_6001_answers():
    """BUSY from 8001, CHANUNAVAIL (no DialBegin at all) for 9999, then 6001 connects."""
    h = play("more/ami_acd_c_busy_unavail_answer.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@2.8 8001", "busy@2.8 8001", "unavailable@4.8 9999",
        "offered@6.8 6001", "connected@7.8 6001", "wrap-up@11.3 agent", "ended@11.3 16",
    ]
    unavailable = h.of(ev.OfferFailed)[1]
    assert (unavailable.agent_interface, unavailable.agent_channel) == ("Local/9999@sim-agents/n", None)
    record = only(h.of(ev.CallEnded)).record
    assert [(o.agent_interface, o.outcome) for o in record.offers] == [
        ("Local/8001@sim-agents/n", "busy"), ("Local/9999@sim-agents/n", "unavailable"),
        ("Local/6001@sim-agents/n", "answered")]
    h.assert_empty()


def test_acd_d_caller_hanging_up_while_agent_rings_is_an_abandon():
    """The caller's ;1 half hangs up first: abandoned, then the ring ends as cancel."""
    h = play("more/ami_acd_d_caller_hangup_ringing.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@2.8 7001", "abandoned@6.3", "cancel@6.3 7001",
        "ended@6.3 16",
    ]
    assert only(h.of(ev.OfferFailed)).ring_seconds == pytest.approx(3.5, abs=0.01)
    h.assert_empty()


def test_acd_e_caller_hanging_up_on_music_on_hold_is_an_abandon():
    """Nobody redirected the caller; the hangup in MOH is an abandon after 3.5 s."""
    h = play("more/ami_acd_e_caller_hangup_moh.txt")
    assert h.timeline() == ["arrived@0.3", "queued@0.8 moh", "abandoned@4.3", "ended@4.3 16"]
    assert only(h.of(ev.CallAbandoned)).wait_seconds == pytest.approx(3.5, abs=0.01)


def test_acd_f_moh_timeout_falls_back_to_the_queue():
    """MOH times out after 30 s; Queue(support) skips paused 6001 and connects 6002."""
    h = play("more/ami_acd_f_fallback_queue.txt")
    assert h.timeline() == [
        "arrived@0.8", "queued@1.3 moh", "queued@31.3 support", "offered@31.3 6002",
        "connected@32.3 6002", "wrap-up@35.8 agent", "ended@35.8 16",
    ]
    offered = only(h.of(ev.CallOffered))
    assert (offered.queue, offered.member_name) == ("support", "Agent 6002")
    assert only(h.of(ev.CallConnected)).wait_seconds == pytest.approx(31.0, abs=0.01)
    paused = [(m.interface, m.paused, m.reason) for m in h.of(ev.AgentMemberStatus) if m.paused]
    assert paused == [("Local/6001@sim-agents/n", True, "coffee")]
    assert [(r.interface, r.queue) for r in h.of(ev.AgentMemberRemoved)] == [
        ("Local/6001@sim-agents/n", "support"), ("Local/6002@sim-agents/n", "support")]


def test_acd_g_reroute_while_ringing_cancels_the_first_offer():
    """The daemon redirects the caller while 7001 rings: cancel, then 6001 answers."""
    h = play("more/ami_acd_g_reroute_while_ringing.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@2.8 7001", "cancel@6.8 7001", "offered@6.8 6001",
        "connected@7.8 6001", "wrap-up@11.3 agent", "ended@11.3 16",
    ]
    assert not only(h.of(ev.CallEnded)).record.abandoned


# -- queue redirect, transfers, holds ------------------------------------------------

def test_redirect_of_a_queued_caller_is_not_an_abandon():
    """QueueCallerAbandon after a Redirect is only a queue exit: the caller goes on to 6002."""
    h = play("ami_actions.event_stream_during.txt")
    assert h.timeline(times=False) == [
        "arrived", "ivr", "queued sales", "offered 7001", "noanswer 7001", "offered 7001", "cancel 7001",
        "offered 6002", "connected 6002", "wrap-up customer", "ended 16",
    ]
    assert not h.of(ev.CallAbandoned)
    noanswer = h.of(ev.OfferFailed)[0]
    assert noanswer.ring_seconds == 15.0          # AgentRingNoAnswer RingTime: 15000 (ms)
    offered = h.of(ev.CallOffered)
    assert [o.queue for o in offered] == ["sales", "sales", None]
    record = only(h.of(ev.CallEnded)).record
    assert [o.outcome for o in record.offers] == ["noanswer", "cancel", "answered"]
    assert (record.queue, record.agent_interface, record.abandoned) == ("sales", "Local/6002@sim-agents/n", False)
    paused = [(m.paused, m.reason) for m in h.of(ev.AgentMemberStatus) if m.queue == "support"]
    assert (True, "lunch") in paused
    h.assert_empty()


def test_redirect_of_the_bridged_caller_to_another_agent_is_a_redirect_transfer():
    """Setvar + Redirect into cc-connect: 6001's talk ends (redirect), 6002 is offered and answers."""
    h = play("more/ami_blind_transfer.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@1.8 6001", "connected@2.8 6001", "wrap-up@4.8 redirect",
        "transfer@4.8 redirect 6002", "offered@4.8 6002", "connected@5.8 6002", "wrap-up@12.3 agent",
        "ended@12.3 16",
    ]
    transfer = only(h.of(ev.CallTransferred))
    assert (transfer.from_agent, transfer.to) == ("Local/6001@sim-agents/n", "Local/6002@sim-agents/n")
    assert (transfer.from_agent_id, transfer.to_agent_id) == ("6001", "6002")
    assert only(h.of(ev.CallEnded)).record.transfers == (ev.TransferRecord(
        "redirect", "Local/6001@sim-agents/n", "Local/6002@sim-agents/n", transfer.at, "6001", "6002"),)


def test_redirect_transfer_does_not_depend_on_the_order_of_the_old_leg_hangup():
    """Pair by channel: the new DialBegin may come before the old agent leg's BridgeLeave/Hangup."""
    timed = raw_messages("more/ami_blind_transfer.txt")
    begin = next(i for i, (_, m) in enumerate(timed)
                 if m.name == "DialBegin" and (m.get("DestChannel") or "").startswith("Local/6002"))
    leave = next(i for i, (_, m) in enumerate(timed)
                 if m.name == "BridgeLeave" and (m.get("Channel") or "").startswith("Local/6001"))
    reordered = timed[:leave] + [timed[begin]] + timed[leave:begin] + timed[begin + 1:]
    assert Harness().play(reordered).timeline() == play("more/ami_blind_transfer.txt").timeline()


def test_attended_transfer_moves_the_call_to_the_consulted_agent():
    """Atxfer: held while 6001 consults 6002, resumed and transferred when 6001 hangs up."""
    h = play("more/ami_atxfer.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@1.8 6001", "connected@2.8 6001", "held@5.1",
        "consulting@5.3", "resumed@13.3", "transfer@13.3 attended 6002", "wrap-up@16.8 agent", "ended@16.8 16",
    ]
    assert only(h.of(ev.CallResumed)).held_seconds == pytest.approx(8.24, abs=0.01)
    record = only(h.of(ev.CallEnded)).record
    assert (record.agent_interface, record.agent_channel) == (
        "Local/6002@sim-agents/n", "Local/6002@sim-agents-00000027;1")
    assert [t.kind for t in record.transfers] == ["attended"]
    assert only(h.of(ev.CallCompleted)).agent_interface == "Local/6002@sim-agents/n"


def test_attended_transfer_without_target_fields_finds_the_consulted_agent_by_its_bridge():
    """A real Asterisk 22 with a PJSIP transferer raised AttendedTransfer without the TransferTarget*
    fields (the consultation bridge already empty): the target is who was in the second bridge."""
    timed = [(at, m if m.name != "AttendedTransfer" else AMIMessage(
        [(k, v) for k, v in m.headers if not k.startswith("TransferTarget")])) for at, m in
        raw_messages("more/ami_atxfer.txt")]
    stripped = next(m for _, m in timed if m.name == "AttendedTransfer")
    assert stripped.get("TransferTargetUniqueid") is None and stripped.get("SecondBridgeUniqueid")
    h = Harness().play(timed)
    assert h.timeline() == play("more/ami_atxfer.txt").timeline()
    record = only(h.of(ev.CallEnded)).record
    assert record.agent_interface == "Local/6002@sim-agents/n"
    assert [(t.kind, t.to_agent_id) for t in record.transfers] == [("attended", "6002")]


@pytest.mark.parametrize("name", ["more/ami_atxfer_nofeature.txt", "more/ami_atxfer_no_t_option.txt"])
def test_atxfer_that_transfers_nothing_leaves_the_call_with_its_agent(name):
    """A refused or ignored Atxfer changes nothing: one agent, no transfer."""
    h = play(name)
    assert h.timeline(times=False) == [
        "arrived", "queued moh", "offered 6001", "connected 6001", "wrap-up agent", "ended 16"]


def test_hold_by_redirect_drops_the_agent_leg():
    """Redirecting the bridged caller to MOH hangs 6001 up (wrap-up redirect); unhold re-dials 6001."""
    h = play("more/ami_hold_redirect.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@1.8 6001", "connected@2.8 6001", "held@4.8",
        "wrap-up@4.8 redirect", "offered@8.8 6001", "connected@9.8 6001", "wrap-up@20.3 agent",
        "ended@20.3 16",
    ]
    record = only(h.of(ev.CallEnded)).record
    assert record.transfers == ()          # the same agent again is no transfer
    assert [(hold.started_at, hold.ended_at) for hold in record.holds] == [(4.807, 4.807)]


def test_hold_with_extrachannel_and_bridge_keeps_the_agent():
    """Both legs redirected, rejoined by the AMI Bridge action: held 4 s, same conversation."""
    h = play("more/ami_hold_extrachannel_bridge.txt")
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@1.8 6001", "connected@2.8 6001", "held@4.8",
        "resumed@8.8", "wrap-up@17.3 agent", "ended@17.3 16",
    ]
    assert only(h.of(ev.CallResumed)).held_seconds == pytest.approx(4.0, abs=0.01)
    assert only(h.of(ev.CallCompleted)).talk_seconds == pytest.approx(14.5, abs=0.02)


def _trunk_blind_transfer() -> list[AMIMessage]:
    call, trunk, a1, a2 = "1.10", "PJSIP/trunk-0000000a", "PJSIP/6001-0000000b", "PJSIP/6002-0000000c"
    on_trunk = {"Channel": trunk, "Uniqueid": call, "Linkedid": call}
    return [
        _event(Event="Newchannel", ChannelState="4", CallerIDNum="+4930123", CallerIDName=r"Acme \\ Co\'s",
               Exten="4930999", **on_trunk),
        _event(Event="Newexten", Exten="4930999", Application="Answer", **on_trunk),
        _event(Event="QueueCallerJoin", Queue="support", Position="2", **on_trunk),
        _event(Event="Newchannel", Channel=a1, Uniqueid="1.11", Linkedid=call, ChannelState="0"),
        _event(Event="AgentCalled", DestChannel=a1, DestUniqueid="1.11", Queue="support",
               Interface="PJSIP/6001", MemberName="Ann", **on_trunk),
        _event(Event="DialBegin", DestChannel=a1, DestUniqueid="1.11", DialString="PJSIP/6001", **on_trunk),
        _event(Event="DialEnd", DestChannel=a1, DestUniqueid="1.11", DialStatus="ANSWER", **on_trunk),
        _event(Event="BlindTransfer", Result="Success", TransfereeChannel=trunk, TransfereeUniqueid=call,
               TransfereeLinkedid=call, Extension="6002", Context="transfer"),
        _event(Event="Hangup", Channel=a1, Uniqueid="1.11", Linkedid=call, Cause="16"),
        _event(Event="Newchannel", Channel=a2, Uniqueid="1.12", Linkedid=call, ChannelState="0"),
        _event(Event="DialBegin", DestChannel=a2, DestUniqueid="1.12", DialString="6002", **on_trunk),
        _event(Event="DialEnd", DestChannel=a2, DestUniqueid="1.12", DialStatus="ANSWER", **on_trunk),
        _event(Event="SoftHangupRequest", Cause="16", **on_trunk),
        _event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **on_trunk),
        _event(Event="Hangup", Channel=a2, Uniqueid="1.12", Linkedid=call, Cause="16"),
    ]


def test_trunk_call_with_a_blind_transfer():
    """A PJSIP trunk caller (not originated) is the caller at once; BlindTransfer is a blind transfer."""
    trunk = "PJSIP/trunk-0000000a"
    h = Harness().play((float(i), m) for i, m in enumerate(_trunk_blind_transfer()))
    assert h.timeline() == [
        "arrived@0.0", "queued@2.0 support", "offered@4.0 6001", "connected@6.0 6001", "wrap-up@7.0 transfer",
        "transfer@7.0 blind 6002", "offered@10.0 6002", "connected@11.0 6002", "wrap-up@13.0 customer",
        "ended@14.0 16",
    ]
    arrived = only(h.of(ev.CallArrived))
    assert (arrived.caller_channel, arrived.ani, arrived.caller_name, arrived.dnis) == (
        trunk, "+4930123", "Acme \\ Co's", "4930999")
    assert only(h.of(ev.CallTransferred)).to == "6002@transfer"
    assert [o.agent_interface for o in only(h.of(ev.CallEnded)).record.offers] == ["PJSIP/6001", "PJSIP/6002"]
    h.assert_empty()


# -- outbound, supervisor, names --------------------------------------------------------

def test_click_to_dial_is_an_outbound_call():
    """Originate agent 6002 -> cc-outbound dials 5552001: outbound, customer hangs up."""
    h = play("more/ami_click2dial.txt")
    assert h.timeline() == [
        "arrived@0.3", "dialing@1.3 5552001", "connected@3.3 6002", "wrap-up@7.8 customer", "ended@7.8 16"]
    arrived = only(h.of(ev.CallArrived))
    assert (arrived.direction, arrived.caller_channel, arrived.ani, arrived.dnis) == (
        "outbound", "Local/6002@sim-agents-00000010;1", "4000", "5552001")
    connected = only(h.of(ev.CallConnected))
    assert connected.agent_interface == "Local/6002@sim-agents/n"
    assert connected.ring_seconds == pytest.approx(2.0, abs=0.01)
    assert only(h.of(ev.CallEnded)).record.direction == "outbound"
    h.assert_empty()


def test_failed_click_to_dial_never_becomes_a_call():
    """Agent phone not answering or busy: the originate fails before any call exists."""
    h = play("more/ami_click2dial_fail.txt")
    assert h.call_events() == []
    h.assert_empty()


def test_chanspy_legs_are_not_calls_and_leave_the_spied_call_alone():
    """Three ChanSpy supervisors: still one call, same agent, same timeline."""
    h = Harness()
    seen = []
    for at, message in raw_messages("more/ami_chanspy.txt"):
        h.play([(at, message)])
        seen.append(len(h.tracker.calls))
    assert max(seen) == 1
    assert h.timeline() == [
        "arrived@0.3", "queued@0.8 moh", "offered@1.8 6001", "connected@2.8 6001",
        "wrap-up@33.3 agent", "ended@33.3 16",
    ]
    record = only(h.of(ev.CallEnded)).record
    assert (record.agent_channel, record.transfers, record.holds) == ("Local/6001@sim-agents-00000016;1", (), ())
    h.assert_empty()


def test_caller_names_are_c_unescaped_and_non_utf8_bytes_read_as_latin1(caplog):
    """AMI's C-escaped names come back as sent; a name whose bytes are not UTF-8 (ISO-8859-1) is read as
    Latin-1, valid text, and the log says so with the call id."""
    with caplog.at_level(logging.INFO, "callcenter.asterisk.call_tracker"):
        h = play("more/ami_utf8_callerid.txt")
    arrived = h.of(ev.CallArrived)
    assert [a.caller_name for a in arrived] == [
        "张伟", "Zoë Müller", 'Say "Hi" \\ Bob', 'O"Brien  Co', "Dan O'Neil?", "Smith, John", "Zoë Lätin1"]
    assert arrived[-1].caller_name.encode("latin-1") == b"Zo\xeb L\xe4tin1"
    ended = {e.call_id: e.record for e in h.of(ev.CallEnded)}
    assert ended[arrived[-1].call_id].caller_name == "Zoë Lätin1"
    said = [(r.call_id, r.getMessage()) for r in caplog.records if "Latin-1" in r.getMessage()]
    assert said == [(arrived[-1].call_id, f"call {arrived[-1].call_id}: caller name is not valid UTF-8; "
                                          "kept as Latin-1: 'Zoë Lätin1'")]
    first = h.of(ev.CallEnded)[0].record
    assert (first.caller_name, first.member_name, first.agent_id) == ("王芳 (VIP)", "Агент 6001", "6001")
    h.assert_empty()


@pytest.mark.parametrize(("headers", "name", "number"), [
    ({"CallerIDName": "Caf\udce9 \\x00", "CallerIDNum": "55\udcff01"}, "Café \\x00", "55ÿ01"),
    ({"CallerIDName": "nul\x00 and \\a bell", "CallerIDNum": "1\x002"}, "nul\x00 and \a bell", "1\x002"),
])
def test_non_utf8_names_and_numbers_become_text_on_every_path(headers, name, number):
    """Live (Newchannel, NewCallerid) and resync give the same valid text for the same AMI bytes."""
    call, trunk = "3.1", "PJSIP/trunk-00000031"
    on_trunk = {"Channel": trunk, "Uniqueid": call, "Linkedid": call}
    live = Harness().play([(0.0, _event(Event="Newchannel", ChannelState="4", Exten="4000", **headers, **on_trunk)),
                           (1.0, _event(Event="Newexten", Exten="4000", Application="Answer", **on_trunk))])
    renamed = Harness().play([
        (0.0, _event(Event="Newchannel", ChannelState="4", Exten="4000", CallerIDName="x", **on_trunk)),
        (1.0, _event(Event="Newexten", Exten="4000", Application="Answer", **on_trunk)),
        (2.0, _event(Event="NewCallerid", **headers, **on_trunk))])
    resynced = Harness()
    resynced.tracker.ami_snapshot(AMISnapshot((_event(Event="CoreShowChannel", Application="Queue", Exten="4000",
                                                      Duration="00:00:05", **headers, **on_trunk),), (), (), False))
    for h in (live, renamed, resynced):
        record = h.tracker.get(call)
        assert (record.caller_name, record.ani) == (name, number)
        for text in (record.caller_name, record.ani):
            text.encode("utf-8")                 # valid Unicode: no surrogate escapes left


# -- restart, resync, link loss, orphans -------------------------------------------------

def test_core_restart_hangups_are_no_abandon_and_restart_is_reported():
    """'core restart now': Cause 0 hangups (shutdown) end the call without abandon; resync reports it."""
    h = Harness().play(session_messages("more/ami_restart_core.session.txt", "before"))
    assert h.timeline() == ["arrived@0.3", "queued@0.8 moh", "ended@2.8 0"]
    assert only(h.of(ev.CallEnded)).cause_txt == "Unknown"
    h.now = 3.927
    h.tracker.ami_link_down()
    h.now = 7.436
    h.tracker.ami_snapshot(AMISnapshot((), (), (), True))
    assert h.events[-2:] == [ev.AsteriskRestarted((), 7.436), ev.CallsResynced((), 7.436)]
    h.assert_empty()


def test_restart_drops_the_calls_asterisk_lost():
    """Link lost before the hangups arrived: a restart resync ends and drops the call."""
    before = session_messages("more/ami_restart_core.session.txt", "before")
    h = Harness().play((at, m) for at, m in before if at < 2.8)
    call_id = only(h.of(ev.CallArrived)).call_id
    h.now = 3.9
    h.tracker.ami_link_down()
    assert h.tracker.get(call_id).confirmed is False
    h.now = 7.4
    h.tracker.ami_snapshot(AMISnapshot((), (), (), True))
    ended = only(h.of(ev.CallEnded))
    assert (ended.call_id, ended.cause, ended.record.state) == (call_id, None, CallState.ENDED)
    assert only(h.of(ev.AsteriskRestarted)).dropped_call_ids == (call_id,)
    assert not h.of(ev.CallAbandoned)
    h.assert_empty()


def _actions_reply(action_id: str) -> tuple[AMIMessage, ...]:
    connection = transcripts.raw_connections(fixture("ami_actions.raw_recv.txt"))[1]
    return tuple(m for m in AMIDecoder().feed(connection) if m.action_id == action_id and m.kind == "event")


def test_resync_rebuilds_a_call_from_core_show_channels_and_queue_status():
    """CoreShowChannel + QueueEntry: the queued caller with 7001 ringing, ages from Duration/Wait."""
    h = Harness()
    h.now = 100.0
    h.tracker.ami_snapshot(AMISnapshot(_actions_reply("act-44"), _actions_reply("act-42"),
                                       _actions_reply("act-45"), False))
    resynced = only(h.of(ev.CallsResynced))
    call = only(resynced.calls)
    assert resynced.call_ids == ("1795535457.12",)
    assert (call.caller_channel, call.ani, call.caller_name, call.dnis, call.direction) == (
        "Local/4000@from-pstn-00000006;2", "5551004", "Sales Caller", "4000", "inbound")
    assert (call.state, call.queue, call.arrived_at, call.queued_at, call.offered_at) == (
        CallState.OFFERED, "sales", 81.0, 83.0, 100.0)
    assert [(m.interface, m.status) for m in h.of(ev.AgentMemberStatus)] == [("Local/7001@sim-agents/n", "INUSE")]
    assert h.tracker.channel_count == 4


def test_resync_follows_the_call_and_ends_it_when_asterisk_no_longer_has_it():
    """After the Redirect the call is bridged with 6002; a snapshot without it ends it (cause unknown)."""
    h = Harness()
    h.now = 100.0
    h.tracker.ami_snapshot(AMISnapshot(_actions_reply("act-44"), _actions_reply("act-42"), (), False))
    h.now = 102.0
    h.tracker.ami_snapshot(AMISnapshot(_actions_reply("act-54"), (), (), False))
    call = only(h.of(ev.CallsResynced)[-1].calls)
    assert (call.state, call.agent_channel, call.answered_at) == (
        CallState.CONNECTED, "Local/6002@sim-agents-00000009;1", 101.0)
    stopped = only(h.of(ev.OfferFailed))                 # 7001 stopped ringing while we were away
    assert (stopped.agent_interface, stopped.reason) == ("Local/7001@sim-agents/n", "cancel")
    h.now = 103.0
    h.tracker.ami_snapshot(AMISnapshot((), (), (), False))
    ended = only(h.of(ev.CallEnded))
    assert (ended.cause, ended.cause_txt, ended.at) == (None, None, 103.0)
    assert h.events[-1] == ev.CallsResynced((), 103.0)
    h.assert_empty()


def test_link_loss_keeps_calls_unconfirmed_until_the_snapshot():
    """Calls survive a lost link (unconfirmed), are confirmed by the resync, and go on as before."""
    timed = raw_messages("ami_actions.event_stream_during.txt")
    cut = [i for i, (_, m) in enumerate(timed) if m.name == "AgentCalled"][1] + 1
    h = Harness().play(timed[:cut])
    call_id = only(h.of(ev.CallArrived)).call_id
    h.tracker.ami_link_down()
    assert h.tracker.calls[call_id].confirmed is False
    h.tracker.ami_snapshot(AMISnapshot(_actions_reply("act-44"), _actions_reply("act-42"), (), False))
    assert h.tracker.calls[call_id].confirmed is True
    assert only(h.of(ev.CallsResynced)).calls[0].state is CallState.OFFERED
    h.play(timed[cut:])
    assert h.timeline() == play("ami_actions.event_stream_during.txt").timeline()
    h.assert_empty()


def _row(newchannel: AMIMessage, **extra: str) -> AMIMessage:
    """A CoreShowChannel row for a channel first seen in a Newchannel event."""
    headers = [(k, v) for k, v in newchannel.headers if k != "Event"]
    return AMIMessage([("Event", "CoreShowChannel"), *headers, *extra.items()])


def test_resync_ends_the_conversation_of_an_agent_who_left_during_the_outage():
    """Connected before the outage, only the caller's channels after it: wrap-up at the resync."""
    timed = session_messages("ami_full_call.session.txt")
    h = Harness().play((at, m) for at, m in timed if at < 5.0)
    callers = [m for _, m in timed if m.name == "Newchannel" and "from-pstn" in (m.get("Channel") or "")]
    h.tracker.ami_link_down()
    h.now = 6.0
    h.tracker.ami_snapshot(AMISnapshot(tuple(_row(m, Application="Wait", Duration="00:00:06", BridgeId="")
                                             for m in callers), (), (), False))
    completed = only(h.of(ev.CallCompleted))
    assert (completed.released_by, completed.at) == ("agent", 6.0)
    assert only(h.of(ev.CallsResynced)).calls[0].state is CallState.WRAP_UP
    assert h.tracker.channel_count == 2


def test_resync_of_a_call_answered_in_queue_while_the_daemon_was_away_keeps_its_queue():
    """No QueueEntry once an agent answered: the caller's Queue() application data names the queue."""
    timed = session_messages("ami_full_call.session.txt")
    news = [m for _, m in timed if m.name == "Newchannel"]
    caller = next(m for m in news if "from-pstn" in (m.get("Channel") or ""))
    leg = next(m for m in news if (m.get("Channel") or "").startswith("Local/6001@") and
               (m.get("Channel") or "").endswith(";1"))
    h = Harness()
    h.now = 50.0
    h.tracker.ami_snapshot(AMISnapshot((
        _row(caller, Application="Queue", ApplicationData="support,t,,,600", Duration="00:00:20", BridgeId="b1"),
        _row(leg, Application="AppQueue", ApplicationData="(Outgoing Line)", Duration="00:00:12", BridgeId="b1")),
        (), (), False))
    call = only(only(h.of(ev.CallsResynced)).calls)
    assert (call.state, call.queue, call.answered_at) == (CallState.CONNECTED, "support", 38.0)


def test_reap_drops_calls_without_events_for_orphan_after_seconds():
    """A call whose hangups were never seen is ended (cause unknown) after orphan_after, not before."""
    timed = session_messages("ami_full_call.session.txt")
    h = Harness(orphan_after=3600.0).play((at, m) for at, m in timed if at < 3.0)
    call_id = only(h.of(ev.CallArrived)).call_id
    assert h.tracker.reap(3000.0) == [] and call_id in h.tracker.calls
    assert h.tracker.reap(3605.0) == [call_id]
    ended = only(h.of(ev.CallEnded))
    assert (ended.call_id, ended.cause, ended.at) == (call_id, None, 3605.0)
    h.assert_empty()


def test_reap_also_forgets_calls_that_were_never_announced():
    """An originate that never did anything a caller does is dropped silently."""
    h = Harness(orphan_after=10.0)
    h.play((at, m) for at, m in raw_messages("more/ami_click2dial.txt") if at < 1.0)
    assert h.call_events() == [] and h.tracker.channel_count == 2
    assert h.tracker.reap(100.0) == []
    h.assert_empty()


# -- state machine and robustness -----------------------------------------------------

def _event(**headers: str) -> AMIMessage:
    return AMIMessage([("Event", headers.pop("Event")), *headers.items()])


def test_invalid_transition_is_logged_with_the_call_id_and_ignored(caplog):
    """A QueueCallerJoin for a connected call changes nothing and logs a warning."""
    timed = session_messages("ami_full_call.session.txt")
    h = Harness().play((at, m) for at, m in timed if at < 5.0)
    call_id = only(h.of(ev.CallArrived)).call_id
    before, emitted = h.tracker.get(call_id), len(h.events)
    with caplog.at_level(logging.WARNING, "callcenter.asterisk.call_tracker"):
        h.tracker.ami_event(_event(Event="QueueCallerJoin", Channel="Local/4000@from-pstn-00000000;2",
                                   Uniqueid="1795535416.1", Linkedid=call_id, Queue="vip", Position="3"))
    assert len(h.events) == emitted
    assert h.tracker.get(call_id) == before
    assert before.state is CallState.CONNECTED and before.queue == "support"
    warning = only([r for r in caplog.records if r.levelno == logging.WARNING])
    assert warning.call_id == call_id and "connected -> queued" in warning.getMessage()


def test_transition_table_is_closed_and_every_state_can_end():
    """ENDED is terminal and reachable from every other state."""
    assert ALLOWED[CallState.ENDED] == frozenset()
    assert all(CallState.ENDED in ALLOWED[state] for state in CallState if state is not CallState.ENDED)
    assert set(ALLOWED) == set(CallState)


GARBAGE = [
    AMIMessage([("Event", "Newchannel")]),
    AMIMessage([("Event", "Hangup"), ("Uniqueid", "no.such")]),
    AMIMessage([("Event", "Hangup")]),
    AMIMessage([]),
    AMIMessage([("Response", "Success")]),
    _event(Event="DialBegin", Channel="x", Uniqueid="1.1"),
    _event(Event="DialEnd", Uniqueid="no.such", DestUniqueid="", DialStatus="???"),
    _event(Event="AgentRingNoAnswer", Uniqueid="no.such", DestUniqueid="2.2", RingTime="abc"),
    _event(Event="AttendedTransfer", Result="Success", TransfereeUniqueid="no.such"),
    _event(Event="BlindTransfer", Result="Success"),
    _event(Event="QueueCallerJoin", Uniqueid="no.such", Position="first"),
    _event(Event="ChanSpyStart"),
    _event(Event="QueueMemberStatus", Queue="q", Interface="PJSIP/1", Status="99"),
    _event(Event="QueueMemberRemoved"),
    _event(Event="VarSet", Variable="DIALSTATUS", Value="CHANUNAVAIL", Uniqueid="no.such"),
    _event(Event="MusicOnHoldStart", Linkedid="no.such"),
    _event(Event="Newchannel", Channel="PJSIP/trunk-00000001", Uniqueid="9.1", Linkedid="9.1",
           ChannelState="4", CallerIDNum="<unknown>", CallerIDName="\\"),
    _event(Event="Newexten", Channel="PJSIP/trunk-00000001", Uniqueid="9.1", Linkedid="9.1", Exten="s"),
    _event(Event="Hangup", Channel="PJSIP/trunk-00000001", Uniqueid="9.1", Linkedid="9.1", Cause="x"),
]


def test_garbage_and_unknown_events_never_raise(caplog):
    """Missing headers, unknown ids and junk values are skipped without an exception."""
    h = Harness()
    with caplog.at_level(logging.ERROR):
        h.play((float(i), message) for i, message in enumerate(GARBAGE))
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert h.timeline(times=False) == ["arrived", "ended None"]   # the half-described trunk call
    arrived = only(h.of(ev.CallArrived))
    assert (arrived.ani, arrived.caller_name, arrived.dnis) == (None, "\\", None)
    assert h.of(ev.AgentMemberStatus)[0].status == "UNKNOWN"
    h.now = 50.0
    h.tracker.ami_snapshot(AMISnapshot((_event(Event="CoreShowChannel", Channel="SIP/x-1", Uniqueid="7.7",
                                               Duration="ab:cd"),), (), (), False))
    assert h.tracker.get("7.7").arrived_at == 50.0      # an unreadable Duration counts as 0
    h.tracker.ami_snapshot(AMISnapshot((), (), (), False))
    h.assert_empty()


def test_duplicate_newchannel_and_events_after_the_end_change_nothing():
    """A repeated Newchannel is idempotent; a replayed Hangup after CallEnded is ignored."""
    timed = session_messages("ami_full_call.session.txt")
    first = next(i for i, (_, m) in enumerate(timed) if m.name == "Newchannel")
    last_hangup = max(i for i, (_, m) in enumerate(timed) if m.name == "Hangup")
    doubled = timed[:first + 1] + [timed[first]] + timed[first + 1:] + [timed[last_hangup]]
    assert Harness().play(doubled).timeline() == Harness().play(timed).timeline()


def test_a_failing_consumer_does_not_stop_tracking(caplog):
    """emit raising is logged; the tracker still reaches the end of the call."""
    seen = []

    def consumer(event):
        seen.append(event)
        raise RuntimeError("consumer bug")

    now = [0.0]
    tracker = CallTracker(consumer, lambda: now[0])
    with caplog.at_level(logging.ERROR):
        for at, message in raw_messages("more/ami_acd_a_answer.txt"):
            now[0] = at
            tracker.ami_event(message)
    assert [type(e).__name__ for e in seen][-1] == "CallEnded"
    assert dict(tracker.calls) == {} and tracker.channel_count == 0


def test_every_call_event_is_logged_with_its_call_id(caplog):
    """Each emitted call event has a log record carrying call_id."""
    with caplog.at_level(logging.INFO, "callcenter.asterisk.call_tracker"):
        h = play("more/ami_acd_b_noanswer.txt")
    logged = [(r.call_id, r.getMessage()) for r in caplog.records if r.levelno == logging.INFO]
    for event in h.call_events():
        assert (event.call_id, repr(event)) in logged


def test_records_are_frozen_snapshots():
    """calls and get() hand out frozen records; the mapping is read-only."""
    timed = session_messages("ami_full_call.session.txt")
    h = Harness().play((at, m) for at, m in timed if at < 5.0)
    calls = h.tracker.calls
    record = next(iter(calls.values()))
    with pytest.raises(Exception):
        record.state = CallState.ENDED          # type: ignore[misc]
    with pytest.raises(TypeError):
        calls["x"] = record                     # type: ignore[index]
    assert replace(record, state=CallState.ENDED) != h.tracker.get(record.call_id)


@pytest.mark.parametrize("path", transcripts.raw_ami_streams(), ids=transcripts.name_of)
def test_every_recording_leaves_no_call_and_no_channel_behind(path, caplog):
    """Bounded state: after each recorded stream the tracker holds nothing, without any error."""
    with caplog.at_level(logging.WARNING, "callcenter.asterisk.call_tracker"):
        h = play(transcripts.name_of(path))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    h.assert_empty()
    assert len(h.of(ev.CallArrived)) == len(h.of(ev.CallEnded))


# -- one agent id ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("Local/6001@agents/n", "6001"),                     # queue member interface, Dial target (shipped config)
    ("Local/6001@agents", "6001"),
    ("Local/6001@agents-00000003;1", "6001"),            # the channel that rang it, either half
    ("Local/6001@agents-00000003;2", "6001"),
    ("Local/6001@sim-agents/n", "6001"),                 # the lab's contexts
    ("Local/7001@sim-agents-0000000a;1", "7001"),
    ("Local/6002@transfer-00000021;1", "6002"),          # an attended transfer's target
    ("6001@sim-agents/n", "6001"),                       # DialBegin DialString of a Dial() (no technology)
    ("PJSIP/6001", "6001"),                              # StateInterface, a phone dialled directly
    ("PJSIP/6001-0000000a", "6001"),
    ("PJSIP/6001/sip:6001@192.0.2.5:5060", "6001"),
    ("SIP/6001-00000001", "6001"),
    ("PJSIP/agent-6001", "agent-6001"),                  # an endpoint name with a dash keeps it
    ("PJSIP/agent-6001-0000000b", "agent-6001"),
    ("Local/nosuch-00000000;1", "nosuch"),
    ("", None),
    (None, None),
])
def test_agent_id_of_every_interface_and_channel_form(name, expected):
    """The agent id is the extension of a Local interface or channel, the endpoint of any other."""
    assert agent_id(name) == expected


_AGENT_HEADERS = ("Interface", "StateInterface", "Location", "Channel", "DestChannel", "DialString",
                  "TransferTargetChannel", "AppData", "ApplicationData")
_AGENT_CONTEXT = re.compile(r"^(?:Local/)?(\d+)@(?:sim-agents|agents|transfer)\b")


def _agent_names_in_transcripts() -> dict[str, str]:
    found = {}
    for path in transcripts.raw_ami_streams():
        for data in transcripts.raw_connections(path):
            for message in AMIDecoder().feed(data):
                for key, value in message.headers:
                    value = value.split(",", 1)[0] if key in ("AppData", "ApplicationData") else value
                    agent = _AGENT_CONTEXT.match(value)
                    if key in _AGENT_HEADERS and agent:
                        found[value] = agent.group(1)
    return found


def test_agent_id_of_every_agent_name_in_the_transcripts():
    """Every interface, dial string and channel name of an agent Asterisk 22 sent gives its extension."""
    found = _agent_names_in_transcripts()
    forms = {re.sub(r"[0-9a-f]{8}(;[12])$", r"N\1", name.split("@", 1)[1]) for name in found}
    assert {"sim-agents/n", "sim-agents-N;1", "sim-agents-N;2", "transfer-N;1", "transfer-N;2"} <= forms
    assert {name: agent_id(name) for name in found} == found


def test_events_carry_the_agent_id_next_to_the_interface_and_member_name():
    """Offers, answers, wrap-ups and queue members give the agent id; the member name stays as it was."""
    h = Harness().play(session_messages("ami_full_call.session.txt"))
    offered, connected = only(h.of(ev.CallOffered)), only(h.of(ev.CallConnected))
    assert (offered.agent_interface, offered.member_name, offered.agent_id) == (
        "Local/6001@sim-agents/n", "Agent 6001", "6001")
    assert connected.agent_id == only(h.of(ev.CallCompleted)).agent_id == "6001"
    assert {m.agent_id for m in h.of(ev.AgentMemberStatus)} == {"6001"}
    record = only(h.of(ev.CallEnded)).record
    assert (record.agent_id, record.member_name, [o.agent_id for o in record.offers]) == ("6001", "Agent 6001",
                                                                                         ["6001"])
    busy = play("more/ami_acd_c_busy_unavail_answer.txt")
    assert [(f.reason, f.agent_id) for f in busy.of(ev.OfferFailed)] == [("busy", "8001"), ("unavailable", "9999")]
    outbound = play("more/ami_click2dial.txt")
    assert only(outbound.of(ev.CallDialedOut)).agent_id == only(outbound.of(ev.CallEnded)).record.agent_id == "6002"
    removed = play("more/ami_acd_f_fallback_queue.txt").of(ev.AgentMemberRemoved)
    assert [r.agent_id for r in removed] == ["6001", "6002"]
