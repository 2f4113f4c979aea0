"""The unified customer view and a customer's history, each read in one call.

``thd_customer_view`` is what the desktop pops when the phone rings:
profile (tier, RFM value, satisfaction, phones, emails, addresses),
accounts with balance, arrears and agreements, the last contacts and the
open tickets.  Every query is an indexed lookup by customer id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, bindparam, cast, literal, null, select, union_all
from sqlalchemy.engine import Connection, Engine

from crm_core.contacts import recent_contacts
from crm_core.db import read_conn
from crm_core.models import (
    accounts,
    agents,
    agreements,
    customer_addresses,
    customer_emails,
    customer_phones,
    customers,
)
from crm_core.records import (
    AccountRecord,
    AddressRecord,
    AgreementRecord,
    CustomerHistory,
    CustomerProfile,
    CustomerView,
    EmailRecord,
    PhoneRecord,
    cents,
)
from crm_core.tickets import tickets_of

_CID = bindparam("customer_id")
# Built once: composing a statement costs more Python time than running it.
_PROFILE = (select(customers, agents.c.login.label("preferred_agent"))
            .select_from(customers.outerjoin(agents, agents.c.id == customers.c.preferred_agent_id))
            .where(customers.c.id == _CID))
_NO_TEXT, _NO_FLAG = cast(null(), String), cast(null(), Boolean)
#: Phones, emails and addresses in one round trip: (what, t1..t7, flag1, flag2, id).
_CONTACT_POINTS = union_all(
    select(literal("phone").label("what"), customer_phones.c.raw.label("t1"), customer_phones.c.e164.label("t2"),
           customer_phones.c.kind.label("t3"), _NO_TEXT.label("t4"), _NO_TEXT.label("t5"), _NO_TEXT.label("t6"),
           _NO_TEXT.label("t7"), customer_phones.c.valid.label("flag1"), customer_phones.c.is_primary.label("flag2"),
           customer_phones.c.id.label("id")).where(customer_phones.c.customer_id == _CID),
    select(literal("email"), customer_emails.c.address, _NO_TEXT, _NO_TEXT, _NO_TEXT, _NO_TEXT, _NO_TEXT, _NO_TEXT,
           _NO_FLAG, customer_emails.c.is_primary, customer_emails.c.id)
    .where(customer_emails.c.customer_id == _CID),
    select(literal("address"), customer_addresses.c.kind, customer_addresses.c.country, customer_addresses.c.region,
           customer_addresses.c.city, customer_addresses.c.line1, customer_addresses.c.line2,
           customer_addresses.c.postcode, _NO_FLAG, _NO_FLAG, customer_addresses.c.id)
    .where(customer_addresses.c.customer_id == _CID),
)
_ACCOUNTS = (select(accounts, agreements.c.id.label("g_id"), agreements.c.agreement_no, agreements.c.service_plan,
                    agreements.c.monthly_fee_cents, agreements.c.starts_on, agreements.c.ends_on,
                    agreements.c.status.label("g_status"))
             .select_from(accounts.outerjoin(agreements, agreements.c.account_id == accounts.c.id))
             .where(accounts.c.customer_id == _CID)
             .order_by(accounts.c.id, agreements.c.starts_on, agreements.c.id))


def profile_of(conn: Connection, customer_id: int) -> CustomerProfile | None:
    key = {"customer_id": customer_id}
    row = conn.execute(_PROFILE, key).first()
    if row is None:
        return None
    points: dict[str, list[Any]] = {"phone": [], "email": [], "address": []}
    for p in sorted(conn.execute(_CONTACT_POINTS, key), key=lambda p: (not p.flag2, p.id)):
        points[p.what].append(p)
    rfm = (row.rfm_recency, row.rfm_frequency, row.rfm_monetary)
    return CustomerProfile(
        id=row.id, name=row.name, kind=row.kind, tier=row.tier, rfm=None if None in rfm else rfm,
        value_score=row.value_score, satisfaction=row.satisfaction, language=row.language,
        preferred_agent=row.preferred_agent, notes=row.notes, blacklisted=row.blacklisted,
        created_at=row.created_at, updated_at=row.updated_at,
        phones=tuple(PhoneRecord(p.t1, p.t2, p.t3, bool(p.flag1), bool(p.flag2)) for p in points["phone"]),
        emails=tuple(EmailRecord(e.t1, bool(e.flag2)) for e in points["email"]),
        addresses=tuple(AddressRecord(a.t1, a.t2, a.t3, a.t4, a.t5, a.t6, a.t7) for a in points["address"]))


def accounts_of(conn: Connection, customer_id: int) -> tuple[AccountRecord, ...]:
    """Accounts with their agreements, in one query (an outer join)."""
    rows = conn.execute(_ACCOUNTS, {"customer_id": customer_id}).all()
    found: dict[int, tuple[Any, list[AgreementRecord]]] = {}
    for r in rows:
        _, deals = found.setdefault(r.id, (r, []))
        if r.g_id is not None:
            deals.append(AgreementRecord(r.agreement_no, r.service_plan, cents(r.monthly_fee_cents), r.starts_on,
                                         r.ends_on, r.g_status))
    return tuple(AccountRecord(r.account_no, r.currency, cents(r.balance_cents), cents(r.arrears_cents),
                               r.arrears_since, r.status, tuple(deals)) for r, deals in found.values())


def thd_customer_view(engine: Engine, customer_id: int, *, contacts: int = 10) -> CustomerView | None:
    """Everything about one customer in one call; None if there is no such customer."""
    with read_conn(engine) as conn:
        profile = profile_of(conn, customer_id)
        if profile is None:
            return None
        return CustomerView(profile=profile, accounts=accounts_of(conn, customer_id),
                            recent_contacts=recent_contacts(conn, customer_id, contacts),
                            open_tickets=tickets_of(conn, customer_id, open_only=True))


def thd_customer_history(engine: Engine, customer_id: int, *, before: datetime | None = None,
                         limit: int = 50) -> CustomerHistory:
    """A customer's contacts (newest first, a page of ``limit`` before ``before``) and tickets."""
    with read_conn(engine) as conn:
        calls = recent_contacts(conn, customer_id, limit, before)
        tickets = tickets_of(conn, customer_id, open_only=False) if before is None else ()
    more = calls[-1].started_at if len(calls) == limit else None
    return CustomerHistory(customer_id, calls, tickets, more)
