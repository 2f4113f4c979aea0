"""The IVR's CRM port on the real store (SQLite and PostgreSQL): lookups, ticket drafts, callbacks."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
import pytest_twisted
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from twisted.internet import reactor

from callcenter.config import CrmConfig
from callcenter.crm_ports import CrmCustomerPort, OfflineCrmCustomers
from callcenter.ivr.handler import IvrHandler
from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
from crm_core.models import ticket_contacts, tickets
from crm_core.service import CrmService
from ivr_flows.memory import FixedQueueStats, MemoryContactRecords


@pytest_twisted.ensureDeferred
async def test_ivr_reads_and_writes_the_crm(db_url, tmp_path):
    """ANI and account lookups give the IVR's mapping; drafts and callbacks become linked tickets."""
    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    try:
        cid = await svc.pool.run(thd_create_customer, svc.engine,
                                 NewCustomer("王芳", tier="vip", language="zh", phones=("13812345678",)), "CN")
        await svc.pool.run(thd_add_account, svc.engine, cid,
                           NewAccount("88001234", balance=Decimal("120.50"), arrears=Decimal("15.00")))
        port = CrmCustomerPort(lambda: svc.store)
        for ani in ("13812345678", "+8613812345678", "008613812345678"):
            found = await port.lookup_by_ani(ani)
            assert found["id"] == str(cid) and found["tier"] == "vip"
            assert (found["balance"], found["arrears"], found["account"]) == ("120.50", "15.00", "88001234")
        assert await port.lookup_by_ani("unknown") is None
        assert (await port.lookup_by_account("88001234"))["name"] == "王芳"
        assert await port.lookup_by_account("99999999") is None
        assert await port.lookup_by_account("1' OR '1'='1") is None
        draft = await port.open_ticket_draft(call_id="1795535416.0", customer_id=str(cid), ani="13812345678",
                                             category="complaint", summary="Line down since Monday")
        callback = await port.record_callback(call_id="1795535416.0", customer_id=None, number="13812345678",
                                              flow="after_hours", queue="support")
        detail = await svc.store.ticket(int(draft))
        assert detail is not None and detail.ticket.kind == "complaint"
        assert "1795535416.0" in detail.linkedids
        assert (await svc.store.ticket(int(callback))).ticket.subject == "Callback request to 13812345678"
    finally:
        await svc.stopService()


@contextmanager
def writes_held(url: str):
    """Another connection holds the tickets table for writing until the block ends
    (a slow CRM: the IVR's write waits for it on its database thread)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    import psycopg

    with psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        conn.execute("LOCK TABLE tickets IN SHARE ROW EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.commit()


def ivr_write(port: CrmCustomerPort, what: str, call_id: str, key: str):
    if what == "ticket draft":
        return port.open_ticket_draft, dict(call_id=call_id, key=key, customer_id=None, ani="5551001",
                                            category="complaint", summary="Complaint opened in the hotline IVR")
    return port.record_callback, dict(call_id=call_id, key=key, customer_id=None, number="5551001",
                                      flow="hotline", queue="support")


@pytest.mark.parametrize("what", ["ticket draft", "callback request"])
@pytest_twisted.ensureDeferred
async def test_a_write_committed_after_the_ivr_timed_out_is_not_made_twice_by_the_retry(db_url, tmp_path, what):
    """The IVR's 3 s timeout fires while the CRM is slow; the write still commits later; the retry with the
    same key (call, flow, node) answers the id of that late write, and exactly one row exists."""
    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    try:
        port = CrmCustomerPort(lambda: svc.store)
        handler = IvrHandler(lambda: None, port, MemoryContactRecords(), FixedQueueStats(), reactor,
                             port_timeout=0.3)
        call_id = f"late-{uuid.uuid4().hex[:12]}"
        key = f"{call_id}:hotline:{'complaint' if what == 'ticket draft' else 'support_callback'}"
        method, kwargs = ivr_write(port, what, call_id, key)
        with writes_held(db_url):
            assert await handler.ask(call_id, what, method, **kwargs) is None  # the IVR gave up
            assert svc.pool.pending == 1  # ... but the write is still on its way
        await svc.pool.drain()  # the late commit lands

        def rows():
            with svc.engine.connect() as conn:
                return conn.execute(select(tickets.c.id).join(ticket_contacts, ticket_contacts.c.ticket_id
                                                              == tickets.c.id)
                                    .where(ticket_contacts.c.linkedid == call_id)).scalars().all()

        [late] = rows()
        again = await handler.ask(call_id, what, method, **kwargs)
        assert again == str(late)
        assert rows() == [late]
        with svc.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tickets)
                                .where(tickets.c.idempotency_key == key)).scalar() == 1
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_the_crm_checks_the_callers_pin_and_counts_wrong_ones_across_calls(db_url, tmp_path):
    """verify_secret answers a word, never the secret; the lookups never carry it; five wrong PINs in any calls
    lock the customer's self-service (the count is in the CRM, so every daemon sees it)."""
    from crm_core.customers import thd_set_verify_secret, thd_unlock_verify

    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    try:
        cid = await svc.pool.run(thd_create_customer, svc.engine,
                                 NewCustomer("Jane Doe", phones=("13812340000",), secret="2580"), "CN")
        port = CrmCustomerPort(lambda: svc.store)
        found = await port.lookup_by_ani("13812340000")
        assert not {k for k in found if "verify" in k or "secret" in k}
        assert await port.verify_secret(call_id="c1", customer_id=str(cid), secret="2580") == "verified"
        wrong = [await port.verify_secret(call_id=f"c{n}", customer_id=str(cid), secret="0000") for n in range(5)]
        assert wrong == ["wrong"] * 4 + ["locked"]
        other_daemon = CrmCustomerPort(lambda: svc.store)
        assert await other_daemon.verify_secret(call_id="c9", customer_id=str(cid), secret="2580") == "locked"
        await svc.pool.run(thd_unlock_verify, svc.engine, cid)
        assert await port.verify_secret(call_id="c10", customer_id=str(cid), secret="2580") == "verified"
        await svc.pool.run(thd_set_verify_secret, svc.engine, cid, None)
        assert await port.verify_secret(call_id="c11", customer_id=str(cid), secret="2580") == "no-secret"
        assert await port.verify_secret(call_id="c12", customer_id="999999999", secret="2580") == "no-secret"
        assert await port.verify_secret(call_id="c13", customer_id="C1001", secret="2580") == "no-secret"
    finally:
        await svc.stopService()


def test_the_offline_crm_checks_pins_without_counting_them(tmp_path):
    """flows test --customer-db URL: a real hash is checked, but a dry run writes nothing, not even a failure."""
    from crm_core.customers import thd_verify_status
    from crm_core.db import make_engine
    from crm_core.migrate import thd_upgrade

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_engine(url)
    thd_upgrade(engine)
    cid = thd_create_customer(engine, NewCustomer("Jane Doe", secret="2580"), "CN")
    crm = OfflineCrmCustomers(url)
    assert crm.verify_secret(call_id="x", customer_id=str(cid), secret="2580") == "verified"
    assert [crm.verify_secret(call_id="x", customer_id=str(cid), secret="0000") for _ in range(6)] == ["wrong"] * 6
    assert thd_verify_status(engine, cid).failures == 0
    assert crm.verify_secret(call_id="x", customer_id="42", secret="2580") == "no-secret"
    engine.dispose()
