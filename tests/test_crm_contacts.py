"""The contact log: one row per linkedid, writes merged per field, retries change nothing."""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm_core.contact_codec import check_contact, contact_from_json, contact_to_json, fit_contact
from crm_core.contacts import MERGED, iter_contacts, merge_values, row_values, thd_get_contact, thd_log_contacts
from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.errors import InvalidInput
from crm_core.models import contacts, ticket_contacts
from crm_core.records import ContactRecord, IvrStep, Transfer
from crm_core.tickets import NewTicket, thd_open_ticket
from tests.crm_servers import crm_engine, crm_engines, crm_templates, crm_url  # noqa: F401 (fixtures)

T0 = datetime(2026, 5, 4, 8, 30, tzinfo=timezone.utc)
_unique = itertools.count()
DB_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def full_record(linkedid="1714000000.1", **over) -> ContactRecord:
    record = ContactRecord(
        linkedid=linkedid, started_at=T0, direction="inbound", ani="+86 138 0013 8000", dnis="400-820-8820",
        caller_name="张伟", ivr_path=(IvrStep("welcome"), IvrStep("main_menu", "2"), IvrStep("account", "1234#")),
        self_service="to_agent", queue="billing", priority=3, skills=(("zh", 3), ("billing", 2)),
        enqueued_at=T0 + timedelta(seconds=20), offered_at=T0 + timedelta(seconds=31),
        answered_at=T0 + timedelta(seconds=35), ended_at=T0 + timedelta(seconds=300), wait_seconds=15.5,
        ring_seconds=4.0, talk_seconds=265.25, hold_seconds=30.0, wrapup_seconds=12.0, agent="1001",
        transfers=(Transfer("1002", "attended", T0 + timedelta(seconds=200)),), abandoned=False,
        hangup_cause="normal_clearing", disposition="billing_question", notes="客户询问账单\nasked about bill",
        revision=10)
    return dataclasses.replace(record, **over)


def stored_columns(engine, linkedid):
    with engine.connect() as conn:
        row = conn.execute(select(contacts).where(contacts.c.linkedid == linkedid)).one()
    return {name: getattr(row, name) for name in (*MERGED, "revision", "linkedid")}


def test_a_full_record_is_stored_exactly(crm_engine):
    """Every field of a contact comes back as written, E.164 derived from the ANI."""
    record = full_record()
    assert thd_log_contacts(crm_engine, [record], "CN") == 1
    assert thd_get_contact(crm_engine, record.linkedid) == dataclasses.replace(record, ani_e164="+8613800138000")


def test_writes_of_a_call_merge_into_one_row(crm_engine):
    """queued, answered, ended and wrap-up writes build one complete contact."""
    full = full_record()
    lid, start = full.linkedid, full.started_at
    writes = [
        ContactRecord(lid, start, direction="inbound", ani=full.ani, dnis=full.dnis, caller_name=full.caller_name,
                      ivr_path=full.ivr_path, self_service="to_agent", queue="billing", priority=3,
                      skills=full.skills, enqueued_at=full.enqueued_at, revision=1),
        ContactRecord(lid, start, offered_at=full.offered_at, answered_at=full.answered_at, agent="1001",
                      wait_seconds=15.5, ring_seconds=4.0, revision=2),
        ContactRecord(lid, start, ended_at=full.ended_at, talk_seconds=265.25, hold_seconds=30.0,
                      transfers=full.transfers, abandoned=False, hangup_cause="normal_clearing", revision=3),
        ContactRecord(lid, start, disposition="billing_question", notes=full.notes, wrapup_seconds=12.0,
                      revision=10),
    ]
    for write in writes:
        thd_log_contacts(crm_engine, [write], "CN")
    assert thd_get_contact(crm_engine, lid) == dataclasses.replace(full, ani_e164="+8613800138000")
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar() == 1


def test_retrying_a_batch_changes_nothing(crm_engine):
    """The same batch applied three times leaves the same rows (a retried write never duplicates)."""
    batch = [full_record(f"retry.{i}", revision=i + 1) for i in range(50)]
    thd_log_contacts(crm_engine, batch, "CN")
    before = [stored_columns(crm_engine, r.linkedid) for r in batch]
    thd_log_contacts(crm_engine, batch, "CN")
    thd_log_contacts(crm_engine, list(reversed(batch)), "CN")
    assert [stored_columns(crm_engine, r.linkedid) for r in batch] == before
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar() == 50


def test_a_late_older_write_fills_gaps_but_never_overwrites(crm_engine):
    """An older write arriving after a newer one adds what is missing and nothing else."""
    lid = "late.1"
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, agent="1002", disposition="sale", revision=5)], "CN")
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, agent="1001", queue="sales", revision=2)], "CN")
    got = thd_get_contact(crm_engine, lid)
    assert (got.agent, got.disposition, got.queue, got.revision) == ("1002", "sale", "sales", 5)


def test_none_never_erases_and_an_empty_string_clears(crm_engine):
    """A field left out keeps its value; writing '' clears a text field."""
    lid = "clear.1"
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, notes="first note", agent="1001", revision=1)], "CN")
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, disposition="done", revision=2)], "CN")
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, notes="", revision=3)], "CN")
    got = thd_get_contact(crm_engine, lid)
    assert (got.notes, got.agent, got.disposition) == ("", "1001", "done")


def test_e164_follows_the_ani_it_was_derived_from(crm_engine):
    """A newer ANI that is not a valid number replaces the old ANI and its E.164 together."""
    lid = "ani.1"
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, ani="13800138000", revision=1)], "CN")
    thd_log_contacts(crm_engine, [ContactRecord(lid, T0, ani="<unknown>", revision=2)], "CN")
    got = thd_get_contact(crm_engine, lid)
    assert (got.ani, got.ani_e164) == ("<unknown>", None)


def test_several_writes_of_one_call_in_one_batch(crm_engine):
    """A batch holding several writes of one call gives the row that committing them one by one gives."""
    def writes(lid):
        return [ContactRecord(lid, T0, queue="q1", revision=1), ContactRecord(lid, T0, agent="a", revision=3),
                ContactRecord(lid, T0, queue="q2", agent="old", notes="late", revision=2)]

    thd_log_contacts(crm_engine, writes("batch.1"), "CN")
    for write in writes("batch.2"):
        thd_log_contacts(crm_engine, [write], "CN")
    one, two = thd_get_contact(crm_engine, "batch.1"), thd_get_contact(crm_engine, "batch.2")
    assert one == dataclasses.replace(two, linkedid="batch.1")
    assert (one.queue, one.agent, one.notes, one.revision) == ("q1", "a", "late", 3)


def test_ticket_links_are_a_set_and_may_come_before_the_call(crm_engine):
    """Linking a ticket before the contact row exists works; repeated links don't double."""
    ticket = thd_open_ticket(crm_engine, NewTicket("fault", "no signal", "1001", linkedids=("link.1",)))
    thd_log_contacts(crm_engine, [ContactRecord("link.1", T0, ticket_ids=(ticket.id,), revision=1)], "CN")
    thd_log_contacts(crm_engine, [ContactRecord("link.1", T0, ticket_ids=(ticket.id,), revision=2)], "CN")
    assert thd_get_contact(crm_engine, "link.1").ticket_ids == (ticket.id,)
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ticket_contacts)).scalar() == 1


# -- the merge is order-independent under replay -------------------------------------------------

_text = st.none() | st.sampled_from(["", "a", "b", "张伟", "O'Brien", "x" * 64])
_time = st.none() | st.integers(0, 10**6).map(lambda s: T0 + timedelta(seconds=s))
_write = st.builds(
    lambda **kw: kw,
    queue=_text, agent=_text, disposition=st.none() | st.sampled_from(["sale", "x"]), notes=_text,
    caller_name=_text, ani=st.none() | st.sampled_from(["13800138000", "+1 415 555 2671", "1001", "<unknown>"]),
    answered_at=_time, talk_seconds=st.none() | st.floats(0, 1e5, allow_nan=False),
    abandoned=st.none() | st.booleans(), priority=st.none() | st.integers(-5, 5),
    ivr_path=st.none() | st.lists(st.builds(IvrStep, st.sampled_from(["a", "b"]),
                                            st.none() | st.text("0123456789#*", max_size=5)),
                                  max_size=3).map(tuple),
)


def _fold(records):
    expected = None
    for r in records:
        values = row_values(r, "CN")
        expected = values if expected is None else merge_values(expected, values)
    return expected


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replaying_writes_in_any_order_changes_nothing(crm_engines, backend):
    """Writes applied in order, then any of them again in any order and batching, leave the in-order fold."""
    engine = crm_engines(backend)

    @DB_SETTINGS
    @given(writes=st.lists(_write, min_size=1, max_size=6), replays=st.lists(st.integers(0, 5), max_size=8),
           seed=st.integers(0, 2**32))
    def replay(writes, replays, seed):
        _replay(engine, writes, replays, seed)

    replay()


def _replay(crm_engine, writes, replays, seed):
    lid = f"prop.{next(_unique)}"
    records = [ContactRecord(lid, T0, revision=i + 1, **w) for i, w in enumerate(writes)]
    for record in records:
        thd_log_contacts(crm_engine, [record], "CN")
    expected = _fold(records)
    assert stored_columns(crm_engine, lid) == expected
    again = [records[i % len(records)] for i in replays]
    random.Random(seed).shuffle(again)
    while again:
        cut = random.Random(seed + len(again)).randint(1, len(again))
        thd_log_contacts(crm_engine, again[:cut], "CN")
        again = again[cut:]
    assert stored_columns(crm_engine, lid) == expected


@given(writes=st.lists(_write, min_size=1, max_size=6))
def test_merge_is_idempotent_and_newest_wins_per_field(writes):
    """In Python: writes in order leave each field to the newest that set it; re-merging any is a no-op."""
    records = [ContactRecord("m.1", T0, revision=i + 1, **w) for i, w in enumerate(writes)]
    folded = _fold(records)
    for name in ("queue", "agent", "notes", "answered_at", "ivr_path"):
        setters = [row_values(r, "CN")[name] for r in records if getattr(r, name) is not None]
        assert folded[name] == (setters[-1] if setters else None)
    for r in records:
        assert merge_values(folded, row_values(r, "CN")) == folded


# -- bad input: stored exactly or refused ------------------------------------------------------

TRICKY = [
    "Robert'); DROP TABLE contacts;--",      # SQL-meaningful characters
    "100% _wild_ %s {0} \\N \\x00",           # LIKE wildcards, format strings, backslashes
    "\u202eevil\u202c",                        # right-to-left override
    "\u200fمحمد\u200e",                        # right-to-left marks around Arabic
    "bell\x07 esc\x1b[31m tab\t cr\r lf\n",   # control characters from a SIP display name
    "\x7f\x85\x9f",                            # DEL and C1 controls
    "😀🇨🇳 𠀀",                                 # astral characters
    "",                                        # empty
    "x" * 200,                                 # exactly at the limit
]


@pytest.mark.parametrize("name", TRICKY)
def test_tricky_caller_names_are_stored_exactly(crm_engine, name):
    """Caller names from the network are kept byte for byte, whatever they hold."""
    record = ContactRecord("tricky.1", T0, caller_name=name, ani=name[:80], dnis=name[:80], revision=1)
    thd_log_contacts(crm_engine, [check_contact(record)], "CN")
    got = thd_get_contact(crm_engine, "tricky.1")
    assert (got.caller_name, got.ani, got.dnis) == (name, name[:80], name[:80])


REFUSED = [
    (dict(caller_name="nul\x00inside"), "caller_name: NUL (U+0000) at position 3"),
    (dict(caller_name="\ud800"), "caller_name: lone surrogate U+D800"),
    (dict(caller_name="x" * 201), "caller_name: 201 characters, at most 200"),
    (dict(ani="1" * 81), "ani: 81 characters, at most 80"),
    (dict(notes="n" * 10001), "notes: 10001 characters, at most 10000"),
    (dict(notes="form\x0cfeed"), "notes: control character U+000C"),
    (dict(agent="10\x0701"), "agent: control character U+0007"),
    (dict(direction="sideways"), "direction: expected one of inbound, outbound, internal"),
    (dict(answered_at=datetime(2026, 1, 1)), "answered_at: needs a timezone"),
    (dict(talk_seconds=-1), "talk_seconds: expected 0 to 864000 seconds"),
    (dict(priority=2**20), "priority: expected -32768 to 32767"),
    (dict(skills=(("zh", 9),)), "skills[0] proficiency: expected 1 to 5"),
    (dict(ivr_path=(IvrStep(""),)), "ivr_path[0].node: must not be empty"),
    (dict(ticket_ids=(0,)), "ticket_ids[0]: expected 1 to"),
]


@pytest.mark.parametrize(("over", "message"), REFUSED)
def test_what_cannot_be_stored_exactly_is_refused_clearly(over, message):
    """Refusals name the call and the field, and say why."""
    with pytest.raises(InvalidInput) as info:
        check_contact(ContactRecord("bad.1", T0, revision=1, **over))
    assert str(info.value).startswith(f"contact bad.1: {message}")


FITTED = [
    (dict(caller_name="nul\x00inside"), dict(caller_name="nul\ufffdinside"),
     ["caller_name: U+0000 cannot be stored there, replaced by U+FFFD"]),
    (dict(caller_name="Zo\udceb"), dict(caller_name="Zoë"), ["caller_name: not valid UTF-8, read as Latin-1"]),
    (dict(caller_name="\ud800x"), dict(caller_name="\ufffdx"),
     ["caller_name: U+D800 cannot be stored there, replaced by U+FFFD"]),
    (dict(caller_name="x" * 201), dict(caller_name="x" * 200), ["caller_name: 201 characters, cut to 200"]),
    (dict(caller_name="\udcff" * 150), dict(caller_name="ÿ" * 150),
     ["caller_name: not valid UTF-8, read as Latin-1"]),
    (dict(ani="1" * 81, dnis="2" * 90), dict(ani="1" * 80, dnis="2" * 80),
     ["ani: 81 characters, cut to 80", "dnis: 90 characters, cut to 80"]),
    (dict(agent="10\x0701", queue="q" * 70), dict(agent="10\ufffd01", queue="q" * 64),
     ["queue: 70 characters, cut to 64", "agent: U+0007 cannot be stored there, replaced by U+FFFD"]),
    (dict(notes="form\x0cfeed\n"), dict(notes="form\ufffdfeed\n"),
     ["notes: U+000C cannot be stored there, replaced by U+FFFD"]),
    (dict(talk_seconds=-1, hold_seconds=float("nan")), dict(talk_seconds=0.0, hold_seconds=None),
     ["talk_seconds: -1 out of 0 to 864000 seconds, clamped to 0", "hold_seconds: not a number, left out"]),
    (dict(transfers=tuple(Transfer(f"t{i}\x00") for i in range(52))),
     dict(transfers=tuple(Transfer(f"t{i}\ufffd") for i in [*range(49), 51])),
     ["transfers: 52 entries, kept the first and the last 50"] +
     [f"transfers[{i}].to: U+0000 cannot be stored there, replaced by U+FFFD" for i in range(50)]),
    (dict(ivr_path=(IvrStep("n" * 65, "1\x00"),)), dict(ivr_path=(IvrStep("n" * 64, "1\ufffd"),)),
     ["ivr_path[0].node: 65 characters, cut to 64", "ivr_path[0].digits: U+0000 cannot be stored there, "
                                                    "replaced by U+FFFD"]),
    (dict(transfers=(Transfer(" "),)), dict(transfers=(Transfer("unknown"),)),
     ["transfers[0].to: empty, recorded as 'unknown'"]),
    (dict(customer_id=2**70, priority=2**20), dict(customer_id=None, priority=32767),
     ["priority: 1048576 out of range, clamped to 32767",
      f"customer_id: {2**70} cannot be a customer id, left out"]),
]


@pytest.mark.parametrize(("over", "fitted", "notes"), FITTED)
def test_fit_contact_changes_only_what_check_contact_would_refuse_and_says_so(over, fitted, notes):
    """Text from the network fits its column instead of losing the record: each change is named."""
    record = ContactRecord("fit.1", T0, revision=1, **over)
    got, said = fit_contact(record)
    assert got == dataclasses.replace(record, **fitted)
    assert list(said) == notes
    assert check_contact(got) is got


def test_fit_contact_leaves_a_storable_record_alone_and_what_it_cannot_fix_to_check_contact():
    """A full record is returned as it is; a bad linkedid or direction is not invented, still refused."""
    record = full_record()
    assert fit_contact(record) == (record, ())
    tricky = ContactRecord("tricky.1", T0, caller_name="bell\x07 esc\x1b[31m tab\t", revision=1)
    assert fit_contact(tricky) == (tricky, ())                # control characters a caller name may hold
    for bad in (ContactRecord("l" * 65, T0), ContactRecord("a\x00b", T0), ContactRecord("x", T0, direction="up")):
        assert fit_contact(bad) == (bad, ())
        with pytest.raises(InvalidInput):
            check_contact(bad)


@given(name=st.text(max_size=400), ani=st.text(max_size=120), agent=st.text(max_size=80),
       escaped=st.binary(max_size=250))
def test_fit_contact_always_gives_a_record_check_contact_takes(name, ani, agent, escaped):
    """Any text in the network-facing fields, valid Unicode or surrogate-escaped bytes, fits."""
    raw = escaped.decode("utf-8", "surrogateescape")
    record = ContactRecord("any.1", T0, caller_name=name + raw, ani=ani, dnis=raw, agent=agent, queue=raw[:70],
                           transfers=(Transfer(raw),), revision=1)
    got, said = fit_contact(record)
    assert check_contact(got) is got
    assert (got == record) == (not said)


def test_a_bad_linkedid_is_refused():
    for linkedid, message in [("", "linkedid: must not be empty"), ("l" * 65, "linkedid: 65 characters"),
                              ("a\nb", "linkedid: control character U+000A")]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            check_contact(ContactRecord(linkedid, T0))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_any_text_is_stored_exactly_or_refused(crm_engines, backend):
    """Arbitrary Unicode through the journal's JSON and the database: exact, or InvalidInput."""
    engine = crm_engines(backend)

    @DB_SETTINGS
    @given(name=st.text(max_size=220), notes=st.text(max_size=50))
    def roundtrip(name, notes):
        _roundtrip(engine, name, notes)

    roundtrip()


def _roundtrip(crm_engine, name, notes):
    record = ContactRecord(f"any.{next(_unique)}", T0, caller_name=name, notes=notes, revision=1)
    try:
        check_contact(record)
    except InvalidInput:
        return
    assert contact_from_json(contact_to_json(record, compact=True)) == record
    thd_log_contacts(crm_engine, [record], "CN")
    got = thd_get_contact(crm_engine, record.linkedid)
    assert (got.caller_name, got.notes) == (name, notes)


def test_json_round_trip_is_exact():
    """The journal's JSON form gives back the same record, every field."""
    record = full_record()
    assert contact_from_json(contact_to_json(record, compact=True)) == record
    assert contact_from_json(contact_to_json(record)) == record


# -- listing ----------------------------------------------------------------------------------

def test_listing_filters_by_time_and_by_number_in_any_format(crm_engine):
    """--since keeps later calls; --ani matches the caller's number however it is written."""
    customer = thd_create_customer(crm_engine, NewCustomer("王芳", phones=("13900139000",)), "CN")
    writes = [ContactRecord(f"list.{i}", T0 + timedelta(minutes=i), ani="13900139000" if i % 2 else "0755 8888 1234",
                            customer_id=customer if i % 2 else None, revision=1) for i in range(7)]
    thd_log_contacts(crm_engine, writes, "CN")
    everything = [c.linkedid for c in iter_contacts(crm_engine, region="CN", page=2)]
    assert everything == [f"list.{i}" for i in range(7)]
    since = [c.linkedid for c in iter_contacts(crm_engine, region="CN", since=T0 + timedelta(minutes=4), page=2)]
    assert since == ["list.4", "list.5", "list.6"]
    by_ani = [c.linkedid for c in iter_contacts(crm_engine, region="CN", ani="+86 139 0013 9000")]
    assert by_ani == ["list.1", "list.3", "list.5"]
    raw = [c.linkedid for c in iter_contacts(crm_engine, region="CN", ani="<unknown>")]
    assert raw == []
    assert len(list(iter_contacts(crm_engine, region="CN", limit=3, page=2))) == 3
