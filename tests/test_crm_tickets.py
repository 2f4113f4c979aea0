"""Tickets: the status lifecycle, and a history of every change (who, when, what)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from crm_core.models import tickets
from crm_core.tickets import (
    TRANSITIONS,
    NewTicket,
    check_transition,
    thd_change_ticket,
    thd_link_contact,
    thd_open_ticket,
    thd_ticket,
)
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

DUE = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def ticket(crm_engine):
    cid = thd_create_customer(crm_engine, NewCustomer("王芳", phones=("13900139000",)), "CN")
    return thd_open_ticket(crm_engine, NewTicket("fault", "宽带无法上网", "1001", customer_id=cid,
                                                 description="光猫红灯", priority="high", due_at=DUE,
                                                 linkedids=("1714.1",)))


def test_the_whole_lifecycle_is_recorded(crm_engine, ticket):
    """open → in_progress → resolved → reopened → resolved → closed, each step in the history."""
    steps = [("1002", "in_progress"), ("1002", "resolved"), ("1001", "reopened"), ("1003", "resolved"),
             ("1003", "closed")]
    for actor, status in steps:
        ticket = thd_change_ticket(crm_engine, ticket.id, actor, status=status)
    assert (ticket.status, ticket.version) == ("closed", 6)
    history = thd_ticket(crm_engine, ticket.id).history
    assert [(e.actor, e.action, e.old_value, e.new_value) for e in history] == [
        ("1001", "created", None, "fault: 宽带无法上网"), ("1001", "link_contact", None, "1714.1"),
        ("1002", "status", "open", "in_progress"), ("1002", "status", "in_progress", "resolved"),
        ("1001", "status", "resolved", "reopened"), ("1003", "status", "reopened", "resolved"),
        ("1003", "status", "resolved", "closed")]
    assert all(e.at.tzinfo is not None for e in history)


def test_every_field_change_is_one_history_entry(crm_engine, ticket):
    changed = thd_change_ticket(crm_engine, ticket.id, "sup1", priority="urgent", owner="1005",
                                due_at=DUE + timedelta(days=1), note="客户再次来电催促")
    assert (changed.priority, changed.owner, changed.due_at) == ("urgent", "1005", DUE + timedelta(days=1))
    events = [(e.action, e.old_value, e.new_value) for e in thd_ticket(crm_engine, ticket.id).history[2:]]
    assert events == [("priority", "high", "urgent"), ("owner", None, "1005"),
                      ("due_at", "2026-06-01T04:00:00+00:00", "2026-06-02T04:00:00+00:00"),
                      ("note", None, "客户再次来电催促")]
    unassigned = thd_change_ticket(crm_engine, ticket.id, "sup1", owner=None)
    assert unassigned.owner is None


def test_a_change_that_changes_nothing_records_nothing(crm_engine, ticket):
    again = thd_change_ticket(crm_engine, ticket.id, "1001", priority="high")
    assert again.version == ticket.version
    assert len(thd_ticket(crm_engine, ticket.id).history) == 2


@pytest.mark.parametrize("current", sorted(TRANSITIONS))
def test_transition_table_is_explicit(current):
    """Every move not in the table raises; every move in it passes."""
    for wanted in TRANSITIONS:
        if wanted in TRANSITIONS[current]:
            check_transition(1, current, wanted)
        else:
            with pytest.raises(InvalidTransition):
                check_transition(1, current, wanted)


def test_an_invalid_transition_leaves_nothing_half_applied(crm_engine, ticket):
    """closing then asking for in_progress fails, and the priority asked in the same call is not applied."""
    thd_change_ticket(crm_engine, ticket.id, "1001", status="closed")
    with pytest.raises(InvalidTransition, match=f"ticket {ticket.id}: cannot go from closed to in_progress"):
        thd_change_ticket(crm_engine, ticket.id, "1001", status="in_progress", priority="low")
    detail = thd_ticket(crm_engine, ticket.id)
    assert (detail.ticket.status, detail.ticket.priority, len(detail.history)) == ("closed", "high", 3)


def test_optimistic_check_refuses_a_stale_change(crm_engine, ticket):
    thd_change_ticket(crm_engine, ticket.id, "1002", status="in_progress", expected_version=ticket.version)
    with pytest.raises(Conflict):
        thd_change_ticket(crm_engine, ticket.id, "1003", status="resolved", expected_version=ticket.version)


def test_linking_contacts_is_idempotent_and_recorded(crm_engine, ticket):
    assert thd_link_contact(crm_engine, ticket.id, "1714.2", "1001") is True
    assert thd_link_contact(crm_engine, ticket.id, "1714.2", "1001") is False
    detail = thd_ticket(crm_engine, ticket.id)
    assert detail.linkedids == ("1714.1", "1714.2")
    assert [e.action for e in detail.history].count("link_contact") == 2


def test_bad_ticket_input_is_refused(crm_engine, ticket):
    with pytest.raises(InvalidInput, match="kind: expected one of complaint, consultation, fault, service_order"):
        thd_open_ticket(crm_engine, NewTicket("rant", "x", "1001"))
    with pytest.raises(InvalidInput, match="due_at: needs a timezone"):
        thd_open_ticket(crm_engine, NewTicket("fault", "x", "1001", due_at=datetime(2026, 1, 1)))
    with pytest.raises(InvalidInput, match="status: expected one of"):
        thd_change_ticket(crm_engine, ticket.id, "1001", status="done")
    with pytest.raises(NotFound):
        thd_change_ticket(crm_engine, 999999, "1001", status="closed")
    with pytest.raises(NotFound):
        thd_open_ticket(crm_engine, NewTicket("fault", "x", "1001", customer_id=999999))
    assert thd_ticket(crm_engine, 999999) is None


def test_a_ticket_opened_again_with_its_key_is_the_same_ticket(crm_engine):
    """The second open with an idempotency key answers the first ticket and writes no row, event or link."""
    new = NewTicket("complaint", "From the IVR", "ivr", linkedids=("1714.9",), idempotency_key="1714.9:hotline:c")
    first = thd_open_ticket(crm_engine, new)
    again = thd_open_ticket(crm_engine, dataclasses.replace(new, subject="changed on the retry"))
    assert again == first
    detail = thd_ticket(crm_engine, first.id)
    assert detail.ticket.subject == "From the IVR" and len(detail.history) == 2 and detail.linkedids == ("1714.9",)
    other = thd_open_ticket(crm_engine, dataclasses.replace(new, idempotency_key="1714.9:hotline:d"))
    assert other.id != first.id
    with pytest.raises(InvalidInput, match="idempotency_key: 201 characters"):
        thd_open_ticket(crm_engine, dataclasses.replace(new, idempotency_key="k" * 201))


def test_concurrent_opens_with_one_key_make_one_ticket(crm_engine):
    """Eight threads open the same key at once (a slow first write and its retries): one ticket, one id."""
    new = NewTicket("service_order", "Callback request", "ivr", idempotency_key="1714.10:hotline:cb")
    start = threading.Barrier(8)
    ids, errors = [], []

    def open_one():
        start.wait()
        try:
            ids.append(thd_open_ticket(crm_engine, new).id)
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(ids) == 8 and len(set(ids)) == 1
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 1
