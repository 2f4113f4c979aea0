"""Callbacks in the CRM (SQLite and PostgreSQL): idempotent creation, due callbacks, the claim two daemons race
for, outcomes with retry spacing and exhaustion, stale claims, cancelling, the IVR's request, the store's
wrappers and `callcenter callbacks`."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from click.testing import CliRunner
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from twisted.internet import reactor

from callcenter.cli import cli
from callcenter.config import CrmConfig
from callcenter.crm_ports import CrmCustomerPort
from crm_core.acd_config import NewAgent, thd_change_queue, thd_save_agent
from crm_core.callbacks import (
    thd_callback,
    thd_callback_outcome,
    thd_callbacks,
    thd_cancel_callback,
    thd_claim_callback,
    thd_create_callback,
    thd_due_callbacks,
    thd_release_stale_claims,
)
from crm_core.contacts import thd_log_contacts
from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.db import make_engine
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import callbacks, tickets
from crm_core.records import ContactRecord
from crm_core.service import CrmService
from crm_core.tickets import NewTicket, thd_open_ticket
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
S = timedelta(seconds=1)


def owed(engine, number="13812345678", queue="support", **kwargs):
    return thd_create_callback(engine, number, queue, not_before=kwargs.pop("not_before", T0), **kwargs)


def test_a_new_callback_is_pending_and_due_with_the_queues_attempts(crm_engine):
    thd_change_queue(crm_engine, "complaints", callback_retries=5)
    cid = thd_create_customer(crm_engine, NewCustomer("王芳"), "CN")
    ticket = thd_open_ticket(crm_engine, NewTicket("service_order", "Callback", "ivr", customer_id=cid))
    made = owed(crm_engine, queue="complaints", customer_id=cid, ticket_id=ticket.id, origin_linkedid="1714.7",
                priority=3)
    assert (made.status, made.attempts, made.max_attempts, made.next_attempt_at) == ("pending", 0, 5, T0)
    assert (made.customer_id, made.ticket_id, made.origin_linkedid, made.priority) == (cid, ticket.id, "1714.7", 3)
    assert owed(crm_engine, queue="unconfigured").max_attempts == 3
    assert owed(crm_engine, max_attempts=1).max_attempts == 1
    assert thd_callback(crm_engine, made.id) == made
    with pytest.raises(NotFound, match="no customer 999999"):
        owed(crm_engine, customer_id=999999)
    with pytest.raises(NotFound, match="no ticket 999999"):
        owed(crm_engine, ticket_id=999999)
    for kwargs, field in [({"number": ""}, "number"), ({"queue": "x" * 65}, "queue"), ({"max_attempts": 0},
                          "max_attempts"), ({"not_before": datetime(2026, 3, 2)}, "not_before")]:
        with pytest.raises(InvalidInput) as caught:
            owed(crm_engine, **kwargs)
        assert caught.value.field == field


def test_creating_with_a_used_key_answers_the_first_callback(crm_engine):
    """Idempotent per key, also when eight threads create with the same key at once."""
    first = owed(crm_engine, key="1714.1:hotline:support_callback")
    again = owed(crm_engine, number="other", key="1714.1:hotline:support_callback")
    assert again == first

    results, errors = [], []
    barrier = threading.Barrier(8)

    def create():
        try:
            barrier.wait(10)
            results.append(owed(crm_engine, key="1714.2:hotline:support_callback"))
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len({r.id for r in results}) == 1 and len(results) == 8
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(callbacks)).scalar() == 2
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(callbacks).values(number="1", queue="q", next_attempt_at=T0,
                                                  idempotency_key="1714.1:hotline:support_callback"))


def test_due_callbacks_are_pending_due_and_unclaimed_the_longest_due_first(crm_engine):
    later = owed(crm_engine, not_before=T0 + 60 * S)
    first = owed(crm_engine, not_before=T0 - 60 * S)
    second = owed(crm_engine)
    claimed = owed(crm_engine, not_before=T0 - 120 * S)
    cancelled = owed(crm_engine)
    thd_claim_callback(crm_engine, claimed.id, "cc-a", T0, T0 + 30 * S)
    thd_cancel_callback(crm_engine, cancelled.id)
    assert [c.id for c in thd_due_callbacks(crm_engine, T0)] == [first.id, second.id]
    assert [c.id for c in thd_due_callbacks(crm_engine, T0, limit=1)] == [first.id]
    assert [c.id for c in thd_due_callbacks(crm_engine, T0 + 60 * S)] == [first.id, second.id, later.id]
    assert thd_due_callbacks(crm_engine, T0 - 61 * S) == ()


@pytest.mark.parametrize("daemons", [2, 8])
def test_daemons_racing_for_a_callback_exactly_one_claims_it(crm_engine, daemons):
    """All claim the same due callback at the same moment from their own threads: one wins, the rest get None."""
    target = owed(crm_engine)
    won, errors = [], []
    barrier = threading.Barrier(daemons)

    def claim(owner: str) -> None:
        try:
            barrier.wait(10)
            got = thd_claim_callback(crm_engine, target.id, owner, T0, T0 + 30 * S)
            if got is not None:
                won.append(got)
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"cc-{i}",)) for i in range(daemons)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    [winner] = won
    assert (winner.status, winner.claim_until) == ("dialing", T0 + 30 * S)
    assert thd_callback(crm_engine, target.id) == winner
    assert thd_due_callbacks(crm_engine, T0) == ()


def test_a_claim_needs_a_due_pending_callback_and_a_future_end(crm_engine):
    future = owed(crm_engine, not_before=T0 + 60 * S)
    assert thd_claim_callback(crm_engine, future.id, "cc-a", T0, T0 + 30 * S) is None
    assert thd_claim_callback(crm_engine, 999999, "cc-a", T0, T0 + 30 * S) is None
    due = owed(crm_engine)
    with pytest.raises(InvalidInput, match="until: the claim must end after now"):
        thd_claim_callback(crm_engine, due.id, "cc-a", T0, T0)
    assert thd_claim_callback(crm_engine, due.id, "cc-a", T0, T0 + 30 * S).claimed_by == "cc-a"
    assert thd_claim_callback(crm_engine, due.id, "cc-b", T0 + 40 * S, T0 + 70 * S) is None  # still dialing


def test_an_unanswered_attempt_comes_back_after_the_spacing_until_the_attempts_run_out(crm_engine):
    """Timeline: noanswer@0 -> due@600; busy@600 -> failed (max 2 attempts); answered ends a callback."""
    cb = owed(crm_engine, max_attempts=2)
    thd_claim_callback(crm_engine, cb.id, "cc-a", T0, T0 + 30 * S)
    after = thd_callback_outcome(crm_engine, cb.id, "cc-a", "noanswer", "1714.50", T0 + 20 * S, 600)
    assert (after.status, after.attempts, after.last_outcome, after.last_linkedid) == \
        ("pending", 1, "noanswer", "1714.50")
    assert (after.next_attempt_at, after.claimed_by, after.claim_until) == (T0 + 620 * S, None, None)
    assert thd_due_callbacks(crm_engine, T0 + 619 * S) == ()
    assert thd_claim_callback(crm_engine, cb.id, "cc-b", T0 + 619 * S, T0 + 650 * S) is None
    assert thd_claim_callback(crm_engine, cb.id, "cc-b", T0 + 620 * S, T0 + 650 * S) is not None
    last = thd_callback_outcome(crm_engine, cb.id, "cc-b", "busy", "1714.90", T0 + 625 * S, 600)
    assert (last.status, last.attempts, last.last_outcome) == ("failed", 2, "busy")
    assert thd_due_callbacks(crm_engine, T0 + 10000 * S) == ()

    ok = owed(crm_engine)
    thd_claim_callback(crm_engine, ok.id, "cc-a", T0, T0 + 30 * S)
    done = thd_callback_outcome(crm_engine, ok.id, "cc-a", "answered", "1714.60", T0 + 10 * S, 600)
    assert (done.status, done.attempts, done.last_outcome) == ("done", 1, "answered")


def test_only_the_daemon_holding_the_claim_may_report(crm_engine):
    cb = owed(crm_engine)
    with pytest.raises(InvalidInput, match=f"callback {cb.id} is not claimed by cc-a \\(it is pending\\)"):
        thd_callback_outcome(crm_engine, cb.id, "cc-a", "answered", None, T0, 600)
    thd_claim_callback(crm_engine, cb.id, "cc-a", T0, T0 + 30 * S)
    with pytest.raises(InvalidInput, match="is not claimed by cc-b \\(it is claimed by cc-a\\)"):
        thd_callback_outcome(crm_engine, cb.id, "cc-b", "answered", None, T0, 600)
    with pytest.raises(InvalidInput, match="outcome: expected one of answered, noanswer, busy, failed"):
        thd_callback_outcome(crm_engine, cb.id, "cc-a", "hungup", None, T0, 600)
    with pytest.raises(NotFound, match="no callback 999999"):
        thd_callback_outcome(crm_engine, 999999, "cc-a", "answered", None, T0, 600)
    assert thd_callback(crm_engine, cb.id).status == "dialing"
    # a late report of the owner whose claim ran out, before anyone released it, still counts
    assert thd_callback_outcome(crm_engine, cb.id, "cc-a", "answered", None, T0 + 60 * S, 600).status == "done"


def test_a_claim_that_expired_goes_back_to_pending_for_another_daemon(crm_engine):
    """A daemon died mid-dial: after its claim ran out the callback is released (attempt not counted), another
    daemon claims it, and the dead daemon's late report is refused."""
    cb = owed(crm_engine)
    other = owed(crm_engine)
    thd_claim_callback(crm_engine, cb.id, "cc-dead", T0, T0 + 30 * S)
    thd_claim_callback(crm_engine, other.id, "cc-alive", T0, T0 + 90 * S)
    assert thd_release_stale_claims(crm_engine, T0 + 30 * S) == ()
    assert thd_release_stale_claims(crm_engine, T0 + 31 * S) == (cb.id,)
    released = thd_callback(crm_engine, cb.id)
    assert (released.status, released.attempts, released.claimed_by, released.claim_until) == ("pending", 0, None, None)
    assert thd_callback(crm_engine, other.id).status == "dialing"
    assert [c.id for c in thd_due_callbacks(crm_engine, T0 + 31 * S)] == [cb.id]
    assert thd_claim_callback(crm_engine, cb.id, "cc-alive", T0 + 32 * S, T0 + 62 * S).claimed_by == "cc-alive"
    with pytest.raises(InvalidInput, match="not claimed by cc-dead"):
        thd_callback_outcome(crm_engine, cb.id, "cc-dead", "answered", None, T0 + 33 * S, 600)
    assert thd_release_stale_claims(crm_engine, T0 + 33 * S) == ()


def test_cancelling_stops_a_callback_once_and_for_all(crm_engine):
    cb = owed(crm_engine)
    assert thd_cancel_callback(crm_engine, cb.id).status == "cancelled"
    assert thd_cancel_callback(crm_engine, cb.id).status == "cancelled"
    assert thd_due_callbacks(crm_engine, T0) == ()
    assert thd_claim_callback(crm_engine, cb.id, "cc-a", T0, T0 + 30 * S) is None
    dialing = owed(crm_engine)
    thd_claim_callback(crm_engine, dialing.id, "cc-a", T0, T0 + 30 * S)
    assert thd_cancel_callback(crm_engine, dialing.id).claimed_by is None
    with pytest.raises(InvalidInput, match="not claimed by cc-a \\(it is cancelled\\)"):
        thd_callback_outcome(crm_engine, dialing.id, "cc-a", "answered", None, T0, 600)
    done = owed(crm_engine)
    thd_claim_callback(crm_engine, done.id, "cc-a", T0, T0 + 30 * S)
    thd_callback_outcome(crm_engine, done.id, "cc-a", "answered", None, T0, 600)
    with pytest.raises(InvalidInput, match=f"callback {done.id} is done: it cannot be cancelled"):
        thd_cancel_callback(crm_engine, done.id)
    with pytest.raises(NotFound):
        thd_cancel_callback(crm_engine, 999999)
    assert [c.status for c in thd_callbacks(crm_engine)] == ["cancelled", "cancelled", "done"]
    assert [c.id for c in thd_callbacks(crm_engine, "done")] == [done.id]


def test_the_database_itself_enforces_the_callback_states(crm_engine):
    for values in ({"status": "lost"}, {"last_outcome": "maybe"}, {"attempts": -1}, {"max_attempts": 0},
                   {"customer_id": 999999}):
        with pytest.raises(IntegrityError):
            with crm_engine.begin() as conn:
                conn.execute(insert(callbacks).values(number="1", queue="q", next_attempt_at=T0, **values))


@pytest_twisted.ensureDeferred
async def test_the_ivrs_callback_request_is_a_ticket_and_a_callback_under_one_key(crm_url, tmp_path):
    """record_callback opens the service order and the callback (node's queue, else support; the customer;
    the calling linkedid); a retry with the same key makes neither again and answers the same ticket."""
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    try:
        cid = await svc.pool.run(thd_create_customer, svc.engine, NewCustomer("王芳"), "CN")
        port = CrmCustomerPort(lambda: svc.store)
        call_id = f"cb-{uuid.uuid4().hex[:8]}"
        key = f"{call_id}:hotline:support_callback"
        kwargs = dict(call_id=call_id, customer_id=str(cid), number="13812345678", flow="hotline", queue="complaints",
                      key=key)
        ticket_id = await port.record_callback(**kwargs)
        assert await port.record_callback(**kwargs) == ticket_id
        [cb] = await svc.store.list_callbacks()
        assert (cb.ticket_id, cb.customer_id, cb.queue, cb.number, cb.origin_linkedid, cb.idempotency_key) == \
            (int(ticket_id), cid, "complaints", "13812345678", call_id, key)
        assert (await svc.store.ticket(int(ticket_id))).ticket.kind == "service_order"
        other = await port.record_callback(call_id="x", customer_id=None, number="5551001", flow="after_hours",
                                           queue=None)
        assert other != ticket_id
        assert [c.queue for c in await svc.store.list_callbacks()] == ["complaints", "support"]
        with svc.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 2
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_the_store_runs_every_acd_call_on_its_pool(crm_url, tmp_path):
    """CrmStore's callback, stamp, figures and last-agent methods give the thd_ functions' frozen answers."""
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    try:
        store = svc.store
        stamp = await store.acd_config_stamp()
        await svc.pool.run(thd_save_agent, svc.engine, NewAgent("6001", "A"))
        assert await store.acd_config_stamp() != stamp
        cid = await svc.pool.run(thd_create_customer, svc.engine, NewCustomer("Jane"), "CN")
        await svc.pool.run(thd_log_contacts, svc.engine, [ContactRecord("c1", T0, customer_id=cid, queue="support",
                                                                        agent="6001", wait_seconds=3.0)], "CN")
        [figure] = await store.contact_figures(T0)
        assert (figure.queue, figure.agent, figure.wait_seconds) == ("support", "6001", 3.0)
        assert await store.last_agent(cid, T0) == "6001"
        cb = await store.create_callback("13812345678", "support", customer_id=cid, key="k1", not_before=T0)
        assert (await store.create_callback("13812345678", "support", key="k1")).id == cb.id
        assert [c.id for c in await store.due_callbacks(T0)] == [cb.id]
        assert (await store.claim_callback(cb.id, "cc-a", T0, T0 + 30 * S)).status == "dialing"
        assert await store.claim_callback(cb.id, "cc-b", T0, T0 + 30 * S) is None
        assert await store.release_stale_claims(T0 + 10 * S) == ()
        after = await store.callback_outcome(cb.id, "cc-a", "noanswer", "l1", T0 + 5 * S, 60)
        assert (after.status, after.next_attempt_at) == ("pending", T0 + 65 * S)
        assert (await store.cancel_callback(cb.id)).status == "cancelled"
        assert (await store.callback(cb.id)).status == "cancelled"
        ticket, second = await store.request_callback(NewTicket("service_order", "Callback", "ivr"), "5551001",
                                                      "support", key="k2")
        assert second.ticket_id == ticket.id
        assert [c.id for c in await store.list_callbacks("pending")] == [second.id]
    finally:
        await svc.stopService()


def test_callbacks_list_and_cancel_commands(crm_url):
    engine = make_engine(crm_url)
    try:
        first = owed(engine, number="13812345678")
        second = owed(engine, number="+447700900123", queue="vip", not_before=T0 + 60 * S)
        thd_claim_callback(engine, first.id, "cc-a", T0, T0 + 30 * S)
    finally:
        engine.dispose()
    listed = CliRunner().invoke(cli, ["callbacks", "list", "--url", crm_url])
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.output.splitlines()
    assert header.split()[:5] == ["ID", "STATUS", "NUMBER", "QUEUE", "TRIES"]
    assert [r.split()[:5] for r in rows] == [[str(first.id), "dialing", "13812345678", "support", "0/3"],
                                            [str(second.id), "pending", "+447700900123", "vip", "0/3"]]
    assert "2026-03-02 09:00:00" in rows[0] and "cc-a" in rows[0]
    pending = CliRunner().invoke(cli, ["callbacks", "list", "--url", crm_url, "--status", "pending", "--json"])
    [doc] = [json.loads(line) for line in pending.output.splitlines()]
    assert (doc["id"], doc["number"], doc["next_attempt_at"]) == (second.id, "+447700900123",
                                                                  "2026-03-02 09:01:00+00:00")
    cancelled = CliRunner().invoke(cli, ["callbacks", "cancel", str(second.id), "--url", crm_url])
    assert cancelled.exit_code == 0 and cancelled.output == f"callback {second.id} cancelled\n"
    missing = CliRunner().invoke(cli, ["callbacks", "cancel", "999999", "--url", crm_url])
    assert missing.exit_code == 1 and missing.output == "error: no callback 999999\n"
