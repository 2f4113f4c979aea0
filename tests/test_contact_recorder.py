"""Contact records from the tracker and the IVR: timing, numbers, and what is never erased."""

from __future__ import annotations

from acd.events import CallEnded, CallRecord, CallState, OfferRecord
from callcenter.contact_recorder import ContactRecorder, contact_from_call
from ivr_flows.commands import HandOff
from ivr_flows.state import PathEntry


def call(**over):
    base = dict(call_id="1795535416.0", direction="inbound", caller_channel="PJSIP/trunk-00000001",
                ani="5551001", caller_name="Zoë", dnis="4000", state=CallState.ENDED, arrived_at=1000.0,
                ivr_at=1000.5, queued_at=1010.0, offered_at=1010.0, answered_at=1013.0, ended_at=1073.0,
                queue="support", agent_interface="Local/6002@agents", agent_channel="Local/6002@agents-2;1",
                member_name="Agent 6002", cause=16, cause_txt="Normal Clearing",
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
    assert record.hangup_cause == "16 Normal Clearing" and record.agent == "Agent 6002"
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
