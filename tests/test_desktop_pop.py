"""The screen pop's content, built from a real CRM store (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest_twisted
from twisted.internet import reactor

from agent_desktop.pop import PopContext, build_pop, pop_payload
from callcenter.aio import as_deferred
from callcenter.config import CrmConfig
from crm_core.contacts import thd_log_contacts
from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
from crm_core.records import ContactRecord, IvrStep
from crm_core.service import CrmService
from crm_core.tickets import NewTicket, thd_open_ticket

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)


def context(call_id=None, ani="13812345678", name=None, customer_id=None):
    import uuid

    return PopContext(call_id=call_id or f"pop-{uuid.uuid4().hex[:12]}", agent="6001", queue="billing", ani=ani, caller_name=name, dnis="4000",
                      wait_seconds=12.34, customer_id=customer_id)


async def running_crm(db_url, tmp_path):
    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j.db"), default_region="CN"))
    await svc.startService()
    return svc


@pytest_twisted.ensureDeferred
async def test_a_known_caller_pops_with_profile_money_tickets_history_and_the_ivr_path(db_url, tmp_path):
    """The IVR identified 王芳 (VIP): the pop has her tier badge, balance and arrears, her open ticket,
    her last contacts, the service line, the keys she pressed and how long she waited."""
    svc = await running_crm(db_url, tmp_path)
    try:
        cid = await svc.pool.run(thd_create_customer, svc.engine,
                                 NewCustomer("王芳", tier="vip", language="zh", phones=("13812345678",)), "CN")
        await svc.pool.run(thd_add_account, svc.engine, cid,
                           NewAccount(f"77{uuid.uuid4().int % 10**6:06d}", balance=Decimal("120.50"),
                                      arrears=Decimal("15.00")))
        await svc.pool.run(thd_open_ticket, svc.engine, NewTicket("complaint", "Line down since Monday", "ivr",
                                                                  customer_id=cid))
        earlier = ContactRecord(f"pop-{uuid.uuid4().hex[:12]}", T0, direction="inbound", ani="13812345678", dnis="4000",
                                customer_id=cid, queue="support", agent="6002", disposition="resolved")
        call = context()
        now = ContactRecord(call.call_id, T0, direction="inbound", ani="13812345678", dnis="4000", customer_id=cid,
                            ivr_path=(IvrStep("hotline:language", "2"), IvrStep("hotline:main", "1"),
                                      IvrStep("hotline:pin", "****")), self_service="queue", queue="billing")
        await svc.pool.run(thd_log_contacts, svc.engine, [earlier, now], "CN")
        pop = await as_deferred(build_pop(svc.store, call))
    finally:
        await svc.stopService()
    customer = pop["customer"]
    assert (customer["id"], customer["name"], customer["tier"], customer["vip"]) == (cid, "王芳", "vip", True)
    assert (customer["balance"], customer["arrears"]) == ("120.50", "15.00")
    assert [t["subject"] for t in customer["open_tickets"]] == ["Line down since Monday"]
    assert earlier.linkedid in [c["linkedid"] for c in customer["recent_contacts"]]
    assert (pop["dnis"], pop["queue"], pop["wait_seconds"]) == ("4000", "billing", 12.3)
    assert pop["ivr"]["digits"] == ["2", "1", "****"] and pop["ivr"]["outcome"] == "queue"
    assert pop["new_customer"] is None and pop["candidates"] == []


@pytest_twisted.ensureDeferred
async def test_an_unknown_caller_gets_a_new_customer_form_prefilled_with_the_number(db_url, tmp_path):
    svc = await running_crm(db_url, tmp_path)
    try:
        pop = await as_deferred(build_pop(svc.store, context(ani=f"+86130{uuid.uuid4().int % 10**8:08d}", name="<img src=x onerror=alert(1)>")))
    finally:
        await svc.stopService()
    assert pop["customer"] is None
    assert pop["new_customer"] == {"phone": pop["ani"], "name": "<img src=x onerror=alert(1)>"}


@pytest_twisted.ensureDeferred
async def test_a_number_shared_by_two_customers_offers_both_to_pick(db_url, tmp_path):
    svc = await running_crm(db_url, tmp_path)
    try:
        number = f"0755{uuid.uuid4().int % 10**8:08d}"
        for name in ("Li Lei", "Han Meimei"):
            await svc.pool.run(thd_create_customer, svc.engine, NewCustomer(name, phones=(number,)), "CN")
        pop = await as_deferred(build_pop(svc.store, context(ani=number)))
    finally:
        await svc.stopService()
    assert pop["customer"] is None and pop["new_customer"] is None
    assert sorted(c["name"] for c in pop["candidates"]) == ["Han Meimei", "Li Lei"]


def test_the_payload_is_plain_json_data():
    """Everything in a pop is JSON-able: strings, numbers, lists, dicts, None."""
    import json

    body = pop_payload(context(), None, (), None)
    assert json.loads(json.dumps(body)) == body
