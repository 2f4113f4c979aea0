"""The IVR's CRM port on the real store (SQLite and PostgreSQL): lookups, ticket drafts, callbacks."""

from __future__ import annotations

from decimal import Decimal

import pytest_twisted
from twisted.internet import reactor

from callcenter.config import CrmConfig
from callcenter.crm_ports import CrmCustomerPort
from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
from crm_core.service import CrmService


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
