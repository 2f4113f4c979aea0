"""The CRM store as the daemon sees it: every call returns a Deferred of frozen data.

Each method runs its ``thd_*`` function on the CRM's thread pool, so the
reactor never waits for the database.  Contact records are not written
here but through ``ContactWriter`` (journal first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred

from callcenter.dbpool import DbPool
from crm_core import acd_config, callbacks, contacts, customers, lookup, tickets, views
from crm_core.records import (
    AcdConfig,
    AgentConfig,
    CallbackRecord,
    ContactFigure,
    ContactRecord,
    CustomerBrief,
    CustomerHistory,
    CustomerView,
    TicketDetail,
    TicketSummary,
)


class CrmStore:
    def __init__(self, pool: DbPool, engine: Any, region: str):
        self._pool = pool
        self._engine = engine
        self.region = region

    def lookup_by_ani(self, ani: str, *, limit: int = 5) -> "Deferred[tuple[CustomerBrief, ...]]":
        """Who is calling: customers with this number in any format, best first."""
        return self._pool.run(lookup.thd_lookup_by_ani, self._engine, ani, self.region, limit=limit)

    def lookup_by_account(self, account_no: str) -> "Deferred[CustomerBrief | None]":
        return self._pool.run(lookup.thd_lookup_by_account, self._engine, account_no)

    def customer_view(self, customer_id: int) -> "Deferred[CustomerView | None]":
        return self._pool.run(views.thd_customer_view, self._engine, customer_id)

    def search(self, query: str, *, limit: int = 20) -> "Deferred[tuple[CustomerBrief, ...]]":
        return self._pool.run(lookup.thd_search_customers, self._engine, query, self.region, limit=limit)

    def history(self, customer_id: int, *, before: datetime | None = None,
                limit: int = 50) -> "Deferred[CustomerHistory]":
        return self._pool.run(views.thd_customer_history, self._engine, customer_id, before=before, limit=limit)

    def contact(self, linkedid: str) -> "Deferred[ContactRecord | None]":
        return self._pool.run(contacts.thd_get_contact, self._engine, linkedid)

    def create_customer(self, new: customers.NewCustomer) -> "Deferred[int]":
        return self._pool.run(customers.thd_create_customer, self._engine, new, self.region)

    def update_customer(self, customer_id: int, **changes: Any) -> "Deferred[None]":
        return self._pool.run(customers.thd_update_customer, self._engine, customer_id, **changes)

    def verify_secret(self, customer_id: int, secret: str) -> "Deferred[str]":
        """Check a caller's self-service secret and count a wrong one (``customers.thd_verify_secret``)."""
        return self._pool.run(customers.thd_verify_secret, self._engine, customer_id, secret)

    def open_ticket(self, new: tickets.NewTicket) -> "Deferred[TicketSummary]":
        return self._pool.run(tickets.thd_open_ticket, self._engine, new)

    def change_ticket(self, ticket_id: int, actor: str, **changes: Any) -> "Deferred[TicketSummary]":
        return self._pool.run(tickets.thd_change_ticket, self._engine, ticket_id, actor, **changes)

    def link_contact(self, ticket_id: int, linkedid: str, actor: str) -> "Deferred[bool]":
        return self._pool.run(tickets.thd_link_contact, self._engine, ticket_id, linkedid, actor)

    def ticket(self, ticket_id: int) -> "Deferred[TicketDetail | None]":
        return self._pool.run(tickets.thd_ticket, self._engine, ticket_id)

    def acd_config(self) -> "Deferred[AcdConfig]":
        return self._pool.run(acd_config.thd_acd_config, self._engine)

    def check_password(self, login: str, password: str) -> "Deferred[AgentConfig | None]":
        return self._pool.run(acd_config.thd_check_password, self._engine, login, password)

    def acd_config_stamp(self) -> "Deferred[tuple[int, int, int, str]]":
        """Changes whenever the ACD configuration does: poll it, read ``acd_config`` when it changed."""
        return self._pool.run(acd_config.thd_acd_config_stamp, self._engine)

    def contact_figures(self, since: datetime) -> "Deferred[tuple[ContactFigure, ...]]":
        """Queued calls started since ``since``: the ACD's statistics after a restart."""
        return self._pool.run(acd_config.thd_contact_figures, self._engine, since)

    def last_agent(self, customer_id: int, since: datetime) -> "Deferred[str | None]":
        """The agent of the customer's newest call with an agent since ``since`` (sticky routing)."""
        return self._pool.run(acd_config.thd_last_agent, self._engine, customer_id, since)

    # -- callbacks (crm_core.callbacks) --

    def create_callback(self, number: str, queue: str, *, customer_id: int | None = None,
                        ticket_id: int | None = None, origin_linkedid: str | None = None,
                        priority: int | None = None, max_attempts: int | None = None, key: str | None = None,
                        not_before: datetime | None = None) -> "Deferred[CallbackRecord]":
        return self._pool.run(callbacks.thd_create_callback, self._engine, number, queue, customer_id, ticket_id,
                              origin_linkedid, priority, max_attempts, key, not_before=not_before)

    def request_callback(self, ticket: tickets.NewTicket, number: str, queue: str, *,
                         customer_id: int | None = None, origin_linkedid: str | None = None,
                         key: str | None = None) -> "Deferred[tuple[TicketSummary, CallbackRecord]]":
        """The service-order ticket and the callback, in one job on the pool (see ``thd_request_callback``)."""
        return self._pool.run(callbacks.thd_request_callback, self._engine, ticket, number, queue, customer_id,
                              origin_linkedid, key)

    def due_callbacks(self, now: datetime, limit: int = 100) -> "Deferred[tuple[CallbackRecord, ...]]":
        return self._pool.run(callbacks.thd_due_callbacks, self._engine, now, limit)

    def claim_callback(self, callback_id: int, owner: str, now: datetime,
                       until: datetime) -> "Deferred[CallbackRecord | None]":
        """None: another daemon won it, or it is no longer due."""
        return self._pool.run(callbacks.thd_claim_callback, self._engine, callback_id, owner, now, until)

    def callback_outcome(self, callback_id: int, owner: str, outcome: str, linkedid: str | None, now: datetime,
                         retry_spacing_seconds: float) -> "Deferred[CallbackRecord]":
        return self._pool.run(callbacks.thd_callback_outcome, self._engine, callback_id, owner, outcome, linkedid,
                              now, retry_spacing_seconds)

    def release_stale_claims(self, now: datetime) -> "Deferred[tuple[int, ...]]":
        return self._pool.run(callbacks.thd_release_stale_claims, self._engine, now)

    def cancel_callback(self, callback_id: int) -> "Deferred[CallbackRecord]":
        return self._pool.run(callbacks.thd_cancel_callback, self._engine, callback_id)

    def callback(self, callback_id: int) -> "Deferred[CallbackRecord | None]":
        return self._pool.run(callbacks.thd_callback, self._engine, callback_id)

    def list_callbacks(self, status: str | None = None, limit: int = 1000) -> "Deferred[tuple[CallbackRecord, ...]]":
        return self._pool.run(callbacks.thd_callbacks, self._engine, status, limit)
