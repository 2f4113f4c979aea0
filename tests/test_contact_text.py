"""From AMI bytes to the stored contact record: no caller name or number can lose a record.

A real recording (``ami_full_call.txt``: Queue(support) answered by 6001)
is replayed with the caller's name and number replaced by arbitrary bytes:
invalid UTF-8, NUL, control characters, C escapes, thousands of bytes.
Every byte string the AMI codec accepts as a header value goes (any byte
but the LF that ends a line).  The messages go through the call tracker
and the contact recorder into the CRM writer the daemon uses (journal
first, then SQLite).  Each call must end as a stored record whose text is
what the bytes say (UTF-8, else Latin-1; NUL replaced; cut to the column)
or as a refusal that is logged with the call id and counted; never in
silence.
"""

from __future__ import annotations

import itertools
import logging

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor

from callcenter.asterisk.ami_codec import AMIDecoder, unescape_c
from callcenter.asterisk.call_tracker import CallTracker
from callcenter.config import CrmConfig
from callcenter.contact_recorder import ContactRecorder
from crm_core.contacts import thd_get_contact
from crm_core.service import CrmService
from tests import transcripts
from tests.crm_servers import crm_templates  # noqa: F401 (fixture)

RECORDING = transcripts.raw_connections(transcripts.fixture("ami_full_call.txt"))[0]
CALL_ID = b"1795535416."
_calls = itertools.count(1)

#: Pieces that make trouble: bytes that are not UTF-8, NUL and other controls, C escapes, CJK.
_PIECES = st.sampled_from([
    b"\x00", b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f", "张伟".encode(), "Zoë".encode(),
    b"\\", b"\\n", b"\\\\", b'\\"', b"\\x00", b"\x1b[31m", b"\r", b"\t", b"\x07", b"\x7f", b"\x85",
    b"<unknown>", b"Jane", b" ", b"+86",
])
AMI_VALUE = st.one_of(
    st.binary(max_size=60),
    st.lists(_PIECES | st.binary(max_size=6), max_size=40).map(b"".join),
    # long, but short enough that every message carrying it (LocalBridge names it six times) stays under the
    # AMI decoder's 64 KiB frame limit: the property is about the bytes the codec accepts
    st.tuples(_PIECES | st.binary(min_size=1, max_size=5), st.integers(40, 800)).map(lambda t: t[0] * t[1]),
).map(lambda value: value.replace(b"\n", b""))


def text_of(raw: bytes) -> str:
    """What the bytes say: UTF-8 when they are UTF-8, else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def stored_form(text: str | None, limit: int) -> str | None:
    return None if text is None else text.replace("\x00", "\ufffd")[:limit]


def expected_name(raw: bytes) -> str | None:
    return None if raw in (b"", b"<unknown>") else stored_form(unescape_c(text_of(raw)), 200)


def expected_number(raw: bytes) -> str | None:
    return None if raw in (b"", b"<unknown>") else stored_form(text_of(raw), 80)


@pytest.fixture
def crm(tmp_path, crm_templates):  # noqa: F811
    """The daemon's CRM service (writer, journal, SQLite), started and stopped around the test."""
    url = crm_templates.sqlite(tmp_path / "crm.db")
    svc = CrmService(reactor, CrmConfig(url=url, journal=str(tmp_path / "contacts.journal")))
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())


def replay(svc: CrmService, recorder: ContactRecorder, name: bytes, number: bytes) -> str:
    """The recorded call, as a new call with this caller name and number; returns its call id."""
    n = next(_calls)
    call_id = f"{1800000000 + n}."
    data = (RECORDING.replace(CALL_ID, call_id.encode())
            .replace(b"Name: Jane Doe\r\n", b"Name: " + name + b"\r\n")
            .replace(b"Num: 5551001\r\n", b"Num: " + number + b"\r\n"))
    clock = [float(n * 1000)]
    tracker = CallTracker(recorder.on_call_event, lambda: clock[0])
    for message in AMIDecoder().feed(data):
        clock[0] += 0.01
        if message.kind == "event":
            tracker.ami_event(message)
    assert dict(tracker.calls) == {}
    return call_id + "0"


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(name=AMI_VALUE, number=AMI_VALUE)
@pytest_twisted.ensureDeferred
async def test_any_caller_name_and_number_end_in_a_stored_record_or_a_counted_refusal(crm, caplog, name, number):
    """AMI bytes -> tracker -> recorder -> journal -> SQLite: the record is stored with the text the
    bytes say, or its refusal is logged with the call id and counted."""
    recorder = ContactRecorder(crm.writer.log, reactor.seconds)
    refused_before = crm.writer.refused
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        call_id = replay(crm, recorder, name, number)
        await crm.writer.wait_flushed()
    stored = thd_get_contact(crm.engine, call_id)
    refusals = recorder.refused + crm.writer.refused - refused_before
    if stored is None:
        assert refusals >= 1, "a record neither stored nor counted as refused"
        assert any(r.levelno >= logging.ERROR and r.call_id == call_id for r in caplog.records)
    else:
        assert refusals == 0
        assert (stored.caller_name, stored.ani) == (expected_name(name), expected_number(number))
        assert (stored.agent, stored.queue, stored.dnis) == ("6001", "support", "4000")
        changed = [r for r in caplog.records if "changed to fit the CRM" in r.getMessage()]
        assert all(r.call_id == call_id for r in changed)
        cut = len(stored.caller_name or "") == 200 and len(unescape_c(text_of(name))) > 200
        assert cut == any("caller_name:" in r.getMessage() and "cut to 200" in r.getMessage() for r in changed)
    assert stored is not None, "a caller's name or number alone never costs the record"


@pytest_twisted.ensureDeferred
async def test_a_record_the_crm_refuses_is_logged_and_counted(crm, caplog):
    """The other outcome: a record the writer refuses is counted on the recorder and the writer, and
    logged with its call id (here a linkedid longer than the CRM's key)."""
    recorder = ContactRecorder(crm.writer.log, reactor.seconds)
    long_id = b"1" * 70 + b"."
    data = RECORDING.replace(CALL_ID, long_id)
    tracker = CallTracker(recorder.on_call_event, reactor.seconds)
    with caplog.at_level(logging.ERROR):
        for message in AMIDecoder().feed(data):
            if message.kind == "event":
                tracker.ami_event(message)
        await crm.writer.wait_flushed()
    assert (recorder.refused, crm.writer.refused) == (1, 1)
    call_id = long_id.decode() + "0"
    assert {r.name for r in caplog.records if r.call_id == call_id} == {"crm_core.writer",
                                                                        "callcenter.contact_recorder"}


@pytest_twisted.ensureDeferred
async def test_the_stored_agent_is_the_login_of_the_crm_agents_table_known_or_not(crm):
    """6001 is in the CRM's agents table: the stored agent finds it by login.  The same call answered by
    an agent the CRM does not know is stored all the same, with that agent's login."""
    from sqlalchemy import insert, select

    from crm_core.models import agents, contacts

    with crm.engine.begin() as conn:
        conn.execute(insert(agents).values(login="6001", display_name="Li Na", interface="PJSIP/6001"))
    recorder = ContactRecorder(crm.writer.log, reactor.seconds)
    known = replay(crm, recorder, b"Jane Doe", b"5551001")
    unknown_data = RECORDING.replace(CALL_ID, b"1799999999.").replace(b"6001", b"6077")
    tracker = CallTracker(recorder.on_call_event, reactor.seconds)
    for message in AMIDecoder().feed(unknown_data):
        if message.kind == "event":
            tracker.ami_event(message)
    await crm.writer.wait_flushed()
    with crm.engine.connect() as conn:
        rows = conn.execute(select(contacts.c.linkedid, contacts.c.agent, agents.c.display_name)
                            .select_from(contacts.outerjoin(agents, agents.c.login == contacts.c.agent))
                            .where(contacts.c.linkedid.in_([known, "1799999999.0"]))).all()
    assert {r.linkedid: (r.agent, r.display_name) for r in rows} == {known: ("6001", "Li Na"),
                                                                      "1799999999.0": ("6077", None)}
    assert recorder.refused == 0
