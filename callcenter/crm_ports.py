"""The CRM store behind the IVR's ports (``ivr_flows.ports``).

The IVR reads customers as plain mappings (``id``, ``name``, ``tier``,
``balance``, ``arrears``, ``account``, ``language``); this adapter builds
them from the CRM's frozen records.  Every method returns a Deferred: the
work runs on the CRM's database thread pool, never on the reactor.

Ticket drafts and callback requests carry the IVR's key (call, flow, node):
a write whose timeout fired may still commit, and a retry with the same key
answers the id of that write instead of opening a second ticket.  A
callback request opens a service-order ticket and a ``callbacks`` row (the
ACD dials it) in one job on the CRM's pool, both under that key.

``verify_secret`` hands the caller's keys to the CRM, which checks them
against the customer's hashed secret and counts wrong tries in the
customer's row (``crm_core.customers.thd_verify_secret``): the answer is a
word, never the secret.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from callcenter.asterisk.channel_vars import FALLBACK_QUEUE
from crm_core import customers
from crm_core.api import CrmStore
from crm_core.errors import NotFound
from crm_core.records import CustomerBrief, CustomerView
from crm_core.tickets import NewTicket

logger = logging.getLogger(__name__)

#: The IVR's ticket categories -> the CRM's ticket kinds.
TICKET_KIND = {"complaint": "complaint", "consultation": "consultation", "fault": "fault",
               "fault_report": "fault", "service_order": "service_order"}
ACTOR = "ivr"


def customer_mapping(view: CustomerView) -> dict[str, Any]:
    profile = view.profile
    account = view.accounts[0].account_no if view.accounts else None
    return {
        "id": str(profile.id),
        "name": profile.name,
        "tier": profile.tier,
        "language": profile.language,
        "balance": str(view.balance),
        "arrears": str(view.arrears),
        "arrears_since": view.arrears_since.isoformat() if view.arrears_since else "",
        "account": account or "",
        "blacklisted": profile.blacklisted,
        "preferred_agent": profile.preferred_agent or "",
        "open_tickets": len(view.open_tickets),
    }


class CrmCustomerPort:
    """``ivr_flows.ports.CustomerPort`` on the CRM store."""

    def __init__(self, store: Callable[[], CrmStore | None]):
        self._get_store = store

    @property
    def _store(self) -> CrmStore:
        store = self._get_store()
        if store is None:
            raise ConnectionError("the CRM store is not running")
        return store

    async def _view(self, brief: CustomerBrief | None) -> Mapping[str, Any] | None:
        if brief is None:
            return None
        view = await self._store.customer_view(brief.id)
        return None if view is None else customer_mapping(view)

    async def lookup_by_ani(self, ani: str) -> Mapping[str, Any] | None:
        found = await self._store.lookup_by_ani(ani, limit=1)
        return await self._view(found[0] if found else None)

    async def lookup_by_account(self, account: str) -> Mapping[str, Any] | None:
        return await self._view(await self._store.lookup_by_account(account))

    async def open_ticket_draft(self, *, call_id: str, customer_id: str | None, ani: str, category: str,
                                summary: str, key: str | None = None) -> str | None:
        kind = TICKET_KIND.get(category, "consultation")
        ticket = await self._store.open_ticket(NewTicket(
            kind=kind, subject=summary[:200] or f"{kind} from {ani}", created_by=ACTOR,
            customer_id=_int(customer_id), description=f"Opened in the IVR for caller {ani}.",
            linkedids=(call_id,), idempotency_key=key))
        return str(ticket.id)

    async def record_callback(self, *, call_id: str, customer_id: str | None, number: str, flow: str,
                              queue: str | None, key: str | None = None) -> str | None:
        """A callback request is a service order the back office can follow, and a callback the ACD dials
        (in the node's queue, else the fallback queue); both under the IVR's key.  Answers the ticket id."""
        cid = _int(customer_id)
        ticket, callback = await self._store.request_callback(
            NewTicket(kind="service_order", subject=f"Callback request to {number}", created_by=ACTOR,
                      customer_id=cid,
                      description=f"Caller asked to be called back on {number} (flow {flow}, queue {queue or '-'}).",
                      linkedids=(call_id,), idempotency_key=key),
            number, queue or FALLBACK_QUEUE, customer_id=cid, origin_linkedid=call_id, key=key)
        logger.info("call %s: callback %s to %s in queue %s (ticket %s)", call_id, callback.id, number,
                    callback.queue, ticket.id)
        return str(ticket.id)

    async def verify_secret(self, *, call_id: str, customer_id: str, secret: str) -> str | None:
        cid = _int(customer_id)
        if cid is None:
            return customers.NO_SECRET
        try:
            return await self._store.verify_secret(cid, secret)
        except NotFound:
            return customers.NO_SECRET


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


class OfflineCrmCustomers:
    """The CRM for ``callcenter flows test --customer-db URL``: real lookups, no writes.

    The offline runner is a dry run outside the daemon, so it may block, and
    it must not open tickets or callbacks in a live CRM: those answer with a
    marker id instead.  A secret is checked against the customer's real
    hash, but a wrong one is not counted (nothing is written).
    """

    def __init__(self, url: str, region: str = "CN"):
        from crm_core.db import make_engine

        self._engine = make_engine(url)
        self._region = region

    def _mapping(self, brief: CustomerBrief | None) -> Mapping[str, Any] | None:
        from crm_core.views import thd_customer_view

        if brief is None:
            return None
        view = thd_customer_view(self._engine, brief.id)
        return None if view is None else customer_mapping(view)

    def lookup_by_ani(self, ani: str) -> Mapping[str, Any] | None:
        from crm_core.lookup import thd_lookup_by_ani

        found = thd_lookup_by_ani(self._engine, ani, self._region, limit=1)
        return self._mapping(found[0] if found else None)

    def lookup_by_account(self, account: str) -> Mapping[str, Any] | None:
        from crm_core.lookup import thd_lookup_by_account

        return self._mapping(thd_lookup_by_account(self._engine, account))

    def open_ticket_draft(self, **_: Any) -> str:
        return "dry-run"

    def record_callback(self, **_: Any) -> str:
        return "dry-run"

    def verify_secret(self, *, call_id: str, customer_id: str, secret: str) -> str:
        cid = _int(customer_id)
        if cid is None:
            return customers.NO_SECRET
        try:
            return customers.thd_verify_secret(self._engine, cid, secret, count=False)
        except NotFound:
            return customers.NO_SECRET
