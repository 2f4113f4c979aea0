"""Finding customers: by the caller's number (ANI), and by a search box.

``thd_lookup_by_ani`` is on the path of every incoming call: one indexed
query on the phones' lookup key (the national significant number), so any
format of the same number reaches the customer.  When the caller's number
is valid, stored numbers that are valid but different (same digits in
another country) are left out; exact E.164 matches come first.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Engine

from crm_core.customers import fold
from crm_core.db import read_conn
from crm_core.models import TIERS, accounts, agents, customer_emails, customer_name_keys, customer_phones, customers, tickets
from crm_core.phones import parse_number
from crm_core.records import CustomerBrief

_TICKET = re.compile(r"^(?:#|t-?|ticket\s*#?\s*)(\d{1,18})$", re.IGNORECASE)
_PHONELIKE = re.compile(r"^[+\d\s().\-/]+$")
_TOP = "\U0010ffff"
_TIER_RANK = {tier: i for i, tier in enumerate(TIERS)}


def brief_select(*extra: Any) -> Select[Any]:
    """Customers with their preferred agent's login, as ``CustomerBrief`` columns."""
    return (select(customers.c.id, customers.c.name, customers.c.kind, customers.c.tier, customers.c.value_score,
                   customers.c.language, agents.c.login.label("preferred_agent"), customers.c.blacklisted, *extra)
            .select_from(customers.outerjoin(agents, agents.c.id == customers.c.preferred_agent_id)))


def brief_of(row: Any, matched: str | None = None) -> CustomerBrief:
    return CustomerBrief(row.id, row.name, row.kind, row.tier, row.value_score, row.language, row.preferred_agent,
                         row.blacklisted, matched)


#: Built once: composing a statement costs more Python time than running it.
_BY_KEY = (brief_select(customer_phones.c.e164, customer_phones.c.raw)
           .join(customer_phones, customer_phones.c.customer_id == customers.c.id)
           .where(customer_phones.c.lookup_key == bindparam("key")).limit(50))


def thd_lookup_by_ani(engine: Engine, ani: str, region: str, *, limit: int = 5) -> tuple[CustomerBrief, ...]:
    """Customers whose number is the caller's, best match first; () for withheld numbers."""
    number = parse_number(ani, region)
    if number.key is None:
        return ()
    with read_conn(engine) as conn:
        rows = conn.execute(_BY_KEY, {"key": number.key}).all()
    best: dict[int, tuple[tuple[int, int, int], CustomerBrief]] = {}
    for row in rows:
        if number.e164 and row.e164 and row.e164 != number.e164:
            continue  # the same digits, but another country's number
        rank = (0 if number.e164 and row.e164 == number.e164 else 1, _TIER_RANK.get(row.tier, 9), row.id)
        if row.id not in best or rank < best[row.id][0]:
            best[row.id] = (rank, brief_of(row, row.e164 or row.raw))
    return tuple(brief for _, brief in sorted(best.values(), key=lambda pair: pair[0]))[:limit]


def thd_lookup_by_account(engine: Engine, account_no: str) -> CustomerBrief | None:
    """The customer owning account ``account_no`` (as entered in the IVR), or None."""
    text = account_no.strip()
    if not text or len(text) > 32:
        return None
    with read_conn(engine) as conn:
        row = conn.execute(brief_select().join(accounts, accounts.c.customer_id == customers.c.id)
                           .where(accounts.c.account_no == bindparam("no")), {"no": text}).first()
    return None if row is None else brief_of(row)


def thd_search_customers(engine: Engine, query: str, region: str, *, limit: int = 20) -> tuple[CustomerBrief, ...]:
    """Search by ticket (``#123``, ``T-123``), email, phone number or name prefix.

    A name matches when the whole name, or one of its words, starts with the
    query (case-insensitive, NFKC): ``张`` finds 张伟, ``smith`` finds John Smith.
    """
    text = query.strip()
    if not text or len(text) > 200:
        return ()
    ticket = _TICKET.match(text)
    if ticket:
        return _by_ticket(engine, int(ticket.group(1)))
    if "@" in text:
        return _by_ids(engine, select(customer_emails.c.customer_id).where(
            customer_emails.c.address_key == fold(text)).limit(limit), limit)
    if _PHONELIKE.match(text) and sum(c.isdigit() for c in text) >= 3:
        return thd_lookup_by_ani(engine, text, region, limit=limit)
    key = fold(text)
    ids = (select(customer_name_keys.c.customer_id)
           .where(customer_name_keys.c.key >= key, customer_name_keys.c.key < key + _TOP)
           .order_by(customer_name_keys.c.key).limit(limit * 4))
    return _by_ids(engine, ids, limit)


def _by_ticket(engine: Engine, ticket_id: int) -> tuple[CustomerBrief, ...]:
    with read_conn(engine) as conn:
        rows = conn.execute(brief_select().join(tickets, tickets.c.customer_id == customers.c.id)
                            .where(tickets.c.id == ticket_id)).all()
    return tuple(brief_of(r) for r in rows)


def _by_ids(engine: Engine, ids_query: Select[Any], limit: int) -> tuple[CustomerBrief, ...]:
    with read_conn(engine) as conn:
        ids = list(dict.fromkeys(conn.execute(ids_query).scalars()))[:limit]
        if not ids:
            return ()
        rows = {r.id: r for r in conn.execute(brief_select().where(customers.c.id.in_(ids)))}
    return tuple(brief_of(rows[i]) for i in ids if i in rows)
