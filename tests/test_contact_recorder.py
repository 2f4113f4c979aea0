"""Contact records from the tracker and the IVR: timing, numbers, what is never erased, text that
never loses a record, and one agent id whichever path saw the call."""

from __future__ import annotations

import logging

import pytest
from twisted.internet.defer import fail

from acd import events as ev
from acd.events import CallEnded, CallRecord, CallState, OfferRecord
from callcenter.asterisk.ami_client import AMISnapshot
from callcenter.contact_recorder import ContactRecorder, contact_from_call
from crm_core.contact_codec import check_contact
from crm_core.errors import InvalidInput
from ivr_flows.commands import HandOff
from ivr_flows.state import PathEntry
from tests import test_call_tracker as tracker_tests
from tests.test_call_tracker import only

reply = tracker_tests._actions_reply


def call(**over):
    base = dict(call_id="1795535416.0", direction="inbound", caller_channel="PJSIP/trunk-00000001",
                ani="5551001", caller_name="Zoë", dnis="4000", state=CallState.ENDED, arrived_at=1000.0,
                ivr_at=1000.5, queued_at=1010.0, offered_at=1010.0, answered_at=1013.0, ended_at=1073.0,
                queue="support", agent_interface="Local/6002@agents", agent_channel="Local/6002@agents-2;1",
                member_name="Agent 6002", agent_id="6002", cause=16, cause_txt="Normal Clearing",
                offers=(OfferRecord("Local/6001@agents", "Local/6001@agents-1;1", "Agent 6001", "support",
                                    1010.0, 1012.0, "answered", 2.0),
                        OfferRecord("Local/6002@agents", "Local/6002@agents-2;1", "Agent 6002", "support",
                                    1030.0, 1031.5, "answered", 1.5)))
    base.update(over)
    return CallRecord(**base)


def test_timing_comes_from_the_first_answer():
    """Wait until the first answer, ring of the offer that answered first, talk to the end."""
    record = contact_from_call(call())
    assert (record.wait_seconds, record.ring_seconds, record.talk_seconds) == (3.0, 2.0, 60.0)
    assert record.hangup_cause == "16 Normal Clearing" and record.agent == "6002"      # never the member name
    assert record.started_at.isoformat() == "1970-01-01T00:16:40+00:00"


def test_unknown_numbers_are_left_out_not_cleared():
    """A tracker that does not know ANI/DNIS writes None, so the IVR's values stay."""
    record = contact_from_call(call(ani=None, dnis=None))
    assert record.ani is None and record.dnis is None


def test_unfinished_call_has_no_end_and_no_talk():
    """A call still up when the daemon stops is recorded without end, talk or cause."""
    record = contact_from_call(call(ended_at=None, cause=None, cause_txt=None, state=CallState.CONNECTED))
    assert record.ended_at is None and record.talk_seconds is None and record.hangup_cause is None


def test_ivr_write_uses_the_call_start_and_a_safe_customer_id():
    """The IVR's part is stamped with the call's arrival; odd customer ids are dropped, not fatal."""
    written = []
    recorder = ContactRecorder(written.append, lambda: 2000.0, lambda cid: 1000.0)
    path = [PathEntry("hotline", "main_menu", "enter"), PathEntry("hotline", "main_menu", "digits", "0")]
    recorder.ivr_finished("1795535416.0", "5551001", "4000", path, "queue",
                          HandOff("support", ("billing",), 5, "en"), "hotline:to_agent", "", customer_id="²")
    recorder.ivr_finished("1795535416.0", "5551001", "4000", path, "queue", None, "hotline:to_agent", "",
                          customer_id="42")
    first, second = written
    assert first.started_at.timestamp() == 1000.0 and first.customer_id is None
    assert first.queue == "support" and first.priority == 5 and first.skills == (("billing", 1),)
    assert [(s.node, s.digits) for s in first.ivr_path] == [("hotline:main_menu", None), ("hotline:main_menu", "0"),
                                                          ("end:hotline:to_agent", None)]
    assert second.customer_id == 42


def test_a_failing_writer_is_logged_not_raised(caplog):
    """The tracker and the IVR never see a write failure."""
    def broken(record):
        raise ConnectionError("CRM down")

    recorder = ContactRecorder(broken, lambda: 0.0)
    recorder.on_call_event(CallEnded("1795535416.0", 16, "Normal Clearing", 1073.0, call()))
    recorder.calls_unfinished([call()])
    assert "refused" in caplog.text


# -- a record is never lost for its text ---------------------------------------------------------

def recorder_into(written, fail=None):
    """A recorder whose writer runs check_contact, as the CRM writer does, and keeps what it took."""
    def log(record):
        if fail is not None:
            raise fail
        written.append(check_contact(record))

    return ContactRecorder(log, lambda: 2000.0)


def test_over_long_names_and_numbers_are_cut_to_the_columns_and_logged(caplog):
    """A 5000-character caller name and a 300-digit number: stored cut to 200 and 80, each cut logged."""
    written = []
    recorder = recorder_into(written)
    long = call(caller_name="Ж" * 5000, ani="1" * 300, dnis="4" * 81)
    with caplog.at_level(logging.WARNING, "callcenter.contact_recorder"):
        recorder.on_call_event(CallEnded(long.call_id, 16, "Normal Clearing", 1073.0, long))
    [record] = written
    assert (record.caller_name, record.ani, record.dnis) == ("Ж" * 200, "1" * 80, "4" * 80)
    assert recorder.refused == 0
    said = [(r.call_id, r.getMessage()) for r in caplog.records]
    assert said == [(long.call_id, f"contact record of call {long.call_id} changed to fit the CRM: {why}")
                    for why in ("ani: 300 characters, cut to 80", "dnis: 81 characters, cut to 80",
                                "caller_name: 5000 characters, cut to 200")]


def test_nul_and_control_characters_are_replaced_not_refused(caplog):
    """NUL cannot be stored anywhere and a name field takes no control characters: U+FFFD, logged.
    Control characters a caller name may hold (tab, escape) are kept as they are."""
    written = []
    recorder = recorder_into(written)
    odd = call(caller_name="Bob\x00\x1b[31m\tX", ani="55\x0001", queue="sup\x07port", agent_id="60\x0801")
    with caplog.at_level(logging.WARNING, "callcenter.contact_recorder"):
        recorder.calls_unfinished([odd])
    [record] = written
    assert (record.caller_name, record.ani, record.queue, record.agent) == (
        "Bob\ufffd\x1b[31m\tX", "55\ufffd01", "sup\ufffdport", "60\ufffd01")
    assert {r.getMessage().split(": ", 1)[1] for r in caplog.records} == {
        "ani: U+0000 cannot be stored there, replaced by U+FFFD",
        "caller_name: U+0000 cannot be stored there, replaced by U+FFFD",
        "queue: U+0007 cannot be stored there, replaced by U+FFFD",
        "agent: U+0008 cannot be stored there, replaced by U+FFFD"}
    assert all(r.call_id == odd.call_id for r in caplog.records)


def test_ivr_numbers_that_are_not_utf8_are_read_as_latin1_like_the_trackers():
    """The IVR's ANI from AGI (surrogate escapes) is stored as the tracker stores it: Latin-1 text."""
    written = []
    recorder = recorder_into(written)
    recorder.ivr_finished("1795535416.0", "55\udcff01", "4000", [], "queue", None, "hotline:to_agent", "")
    assert written[0].ani == "55ÿ01"


@pytest.mark.parametrize("failure", [ConnectionError("the CRM writer is not running"),
                                     InvalidInput("contact 1795535416.0: started_at", "is required")])
def test_a_write_that_is_not_taken_is_counted_and_logged_with_the_call_id(caplog, failure):
    """Whatever stops a record (writer down, a refusal fitting cannot fix), it is counted, never silent."""
    recorder = recorder_into([], fail=failure)
    with caplog.at_level(logging.ERROR, "callcenter.contact_recorder"):
        recorder.calls_unfinished([call()])
    assert recorder.refused == 1
    [error] = caplog.records
    assert error.call_id == "1795535416.0" and "refused" in error.getMessage()


def test_a_write_failing_later_is_counted_and_logged_with_the_call_id(caplog):
    """A Deferred from the writer that fails (journal write failed) counts as a refusal too."""
    recorder = ContactRecorder(lambda record: fail(InvalidInput("contact x: agent", "bad")), lambda: 0.0)
    with caplog.at_level(logging.ERROR, "callcenter.contact_recorder"):
        recorder.calls_unfinished([call()])
    assert recorder.refused == 1
    [error] = caplog.records
    assert error.call_id == "1795535416.0" and "not written: contact x: agent: bad" in error.getMessage()


# -- one agent id on every path ----------------------------------------------------------------

def records_of(events) -> list:
    """What the recorder writes for these tracker events (check_contact passes on each)."""
    written = []
    recorder = recorder_into(written)
    for event in events:
        recorder.on_call_event(event)
    return written


def ended_agent(h) -> str:
    [record] = records_of(h.events)
    return record.agent


def restart(*snapshots, at=100.0) -> tracker_tests.Harness:
    """A daemon started while the call was up: a fresh tracker resynced from each snapshot in turn."""
    h = tracker_tests.Harness()
    for i, snapshot in enumerate(snapshots):
        h.now = at + i
        h.tracker.ami_snapshot(snapshot)
    return h


def full_call_rows(**caller):
    timed = tracker_tests.session_messages("ami_full_call.session.txt")
    news = [m for _, m in timed if m.name == "Newchannel"]
    pick = lambda prefix, end: next(m for m in news if (m.get("Channel") or "").startswith(prefix)  # noqa: E731
                                    and (m.get("Channel") or "").endswith(end))
    return (tracker_tests._row(pick("Local/4000@from-pstn", ";2"), Application="Queue",
                               ApplicationData="support,t,,,600", Duration="00:00:20", BridgeId="b1", **caller),
            tracker_tests._row(pick("Local/4000@from-pstn", ";1"), Application="Wait", Duration="00:00:20"),
            tracker_tests._row(pick("Local/6001@sim-agents", ";1"), Application="AppQueue",
                               ApplicationData="(Outgoing Line)", Duration="00:00:12", BridgeId="b1"),
            tracker_tests._row(pick("Local/6001@sim-agents", ";2"), Application="Answer", Duration="00:00:12",
                               BridgeId="b2"))


MEMBER = tracker_tests._event(Event="QueueMember", Queue="support", Name="Agent 6001",
                              Location="Local/6001@sim-agents/n", StateInterface="Local/6001@sim-agents/n",
                              Status="2", Paused="0", InCall="1")


def test_the_agent_is_the_same_live_and_after_a_daemon_restart_mid_call():
    """Queue(support) answered by 6001: live events and a daemon started mid-call store the same agent,
    with the queue members known or not, never the member name "Agent 6001"."""
    live = tracker_tests.Harness().play(tracker_tests.session_messages("ami_full_call.session.txt"))
    assert only(live.of(ev.CallEnded)).record.member_name == "Agent 6001"
    gone = AMISnapshot((), (), (), False)
    with_members = restart(AMISnapshot(full_call_rows(), (MEMBER,), (), False), gone)
    without = restart(AMISnapshot(full_call_rows(), (), (), False), gone)
    assert ended_agent(live) == ended_agent(with_members) == ended_agent(without) == "6001"


def test_the_agent_is_the_same_live_after_a_reconnect_and_after_a_restart_on_real_snapshots():
    """ami_actions: redirected from sales into a Dial of 6002.  The live stream, a reconnect resync before
    6002 answered, and a restart from Asterisk's own CoreShowChannels rows all store 6002."""
    timed = tracker_tests.raw_messages("ami_actions.event_stream_during.txt")
    live = tracker_tests.Harness().play(timed)
    cut = next(i for i, (_, m) in enumerate(timed)
               if m.name == "DialBegin" and (m.get("DestChannel") or "").startswith("Local/6002"))
    reconnect = tracker_tests.Harness().play(timed[:cut])
    reconnect.tracker.ami_link_down()
    reconnect.tracker.ami_snapshot(AMISnapshot(reply("act-54"), (), (), False))
    reconnect.play(timed[cut:])
    restarted = restart(AMISnapshot(reply("act-44"), reply("act-42"), (), False),
                        AMISnapshot(reply("act-54"), (), (), False), AMISnapshot((), (), (), False))
    assert ended_agent(live) == ended_agent(reconnect) == ended_agent(restarted) == "6002"


def test_the_agent_of_a_pjsip_phone_is_the_same_live_and_after_a_restart():
    """A trunk caller answered by PJSIP/6001 (member "Ann"): 6001 from the events and from the rows."""
    call_id, trunk, leg = "1.10", "PJSIP/trunk-0000000a", "PJSIP/6001-0000000b"
    on_trunk = {"Channel": trunk, "Uniqueid": call_id, "Linkedid": call_id}
    script = [
        tracker_tests._event(Event="Newchannel", ChannelState="4", CallerIDNum="+4930123", Exten="4930999",
                             **on_trunk),
        tracker_tests._event(Event="QueueCallerJoin", Queue="support", Position="1", **on_trunk),
        tracker_tests._event(Event="Newchannel", Channel=leg, Uniqueid="1.11", Linkedid=call_id, ChannelState="0"),
        tracker_tests._event(Event="AgentCalled", DestChannel=leg, DestUniqueid="1.11", Queue="support",
                             Interface="PJSIP/6001", MemberName="Ann", **on_trunk),
        tracker_tests._event(Event="DialEnd", DestChannel=leg, DestUniqueid="1.11", DialStatus="ANSWER",
                             **on_trunk),
        tracker_tests._event(Event="Hangup", Cause="16", **on_trunk),
        tracker_tests._event(Event="Hangup", Channel=leg, Uniqueid="1.11", Linkedid=call_id, Cause="16"),
    ]
    live = tracker_tests.Harness().play((float(i), m) for i, m in enumerate(script))
    rows = (tracker_tests._row(script[0], Application="Queue", ApplicationData="support", BridgeId="b",
                               Duration="00:00:09"),
            tracker_tests._row(script[2], Application="AppQueue", BridgeId="b", Duration="00:00:05"))
    restarted = restart(AMISnapshot(rows, (), (), False), AMISnapshot((), (), (), False))
    assert ended_agent(live) == ended_agent(restarted) == "6001"


@pytest.mark.parametrize(("name", "agent", "transfers"), [
    ("more/ami_atxfer.txt", "6002", [("6002", "attended")]),
    ("more/ami_blind_transfer.txt", "6002", [("6002", "redirect")]),
    ("more/ami_hold_redirect.txt", "6001", []),
    ("more/ami_click2dial.txt", "6002", []),
    ("more/ami_acd_f_fallback_queue.txt", "6002", []),
])
def test_transfers_and_outbound_calls_name_agents_by_the_same_id(name, agent, transfers):
    """After an attended or redirect transfer the agent is the target's id, and so is the transfer's target."""
    [record] = records_of(tracker_tests.play(name).events)
    assert record.agent == agent
    assert [(t.to, t.kind) for t in record.transfers or ()] == transfers


def test_a_blind_transfer_keeps_its_extension_as_target():
    """BlindTransfer targets an extension, not an agent: exten@context stays the target."""
    [record] = records_of(tracker_tests.Harness().play(
        (float(i), m) for i, m in enumerate(tracker_tests._trunk_blind_transfer())).events)
    assert record.agent == "6002" and [(t.to, t.kind) for t in record.transfers] == [("6002@transfer", "blind")]


def test_a_redial_of_the_same_agent_after_a_resync_is_no_transfer():
    """Hold by Redirect re-dials 6001; after a reconnect resync named it from its channel, that is still
    6001 (no transfer), stored as on the live path."""
    timed = tracker_tests.raw_messages("more/ami_hold_redirect.txt")
    news = {m.get("Channel"): m for _, m in timed if m.name == "Newchannel"}
    cut = next(i for i, (at, _) in enumerate(timed) if at > 2.0)         # 6001 rings; answered unseen
    resynced = tracker_tests.Harness().play(timed[:cut])
    resynced.tracker.ami_link_down()
    row = tracker_tests._row
    resynced.tracker.ami_snapshot(AMISnapshot((
        row(news["Local/4100@cc-inbound-0000001a;1"], Application="Wait", Duration="00:00:03"),
        row(news["Local/4100@cc-inbound-0000001a;2"], Application="Dial", BridgeId="b1", Duration="00:00:03",
            ApplicationData="Local/6001@sim-agents/n,15"),
        row(news["Local/6001@sim-agents-0000001b;1"], Application="AppDial", BridgeId="b1", Duration="00:00:01"),
        row(news["Local/6001@sim-agents-0000001b;2"], Application="Answer", Duration="00:00:01")), (), (), False))
    resynced.play(timed[cut:])
    live = tracker_tests.play("more/ami_hold_redirect.txt")
    assert not resynced.of(ev.CallTransferred)
    [stored_live], [stored_resynced] = records_of(live.events), records_of(resynced.events)
    assert (stored_live.agent, stored_live.transfers) == (stored_resynced.agent, stored_resynced.transfers) == (
        "6001", None)
