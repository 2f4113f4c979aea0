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
from crm_core import acd_config, contacts, customers, lookup, tickets, views
from crm_core.records import (
    AcdConfig,
    AgentConfig,
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
