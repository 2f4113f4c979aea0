"""The contact log: one row per call, upserted by linkedid, merged per field.

How writes merge (the contract of ``thd_log_contacts``)
-------------------------------------------------------
A call is written several times as it progresses (queued; answered; ended;
wrapped up by the agent).  Each write is a partial ``ContactRecord``: a field
that is None is *not in this write*; it never erases anything.  Every write
carries a ``revision`` (the writer stamps a strictly increasing clock) and
the row keeps the highest revision merged so far.  A field takes the
incoming value when the write sets it and either

- the write is newer than the row (its revision is greater): it overwrites
  the fields it sets, so, for writes arriving in order, the latest write
  wins field by field; or
- the stored field is still empty: a write that is not newer (a retry, a
  journal replay, an older write arriving late) only fills gaps and never
  overwrites anything.

Hence re-applying writes already merged, in any order, any number of times
and in any batching, changes nothing: a retried or replayed write can
neither duplicate a call nor bring back an old value.  To clear a text
field, write an empty string.  ``ani_e164`` follows ``ani``.  Ticket links
(``ticket_ids``) are a set: writes add to it.

The merge is one ``INSERT ... ON CONFLICT (linkedid) DO UPDATE`` on both
databases, so concurrent writers need no lock; ``merge_values`` is the same
rule in Python, used to fold several writes of one call inside a batch
exactly as if they had been committed one after the other.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import and_, bindparam, case, func, literal, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from crm_core import contact_codec as codec
from crm_core.db import read_conn, write_tx
from crm_core.models import contacts, ticket_contacts
from crm_core.phones import parse_number
from crm_core.records import ContactRecord
from crm_core.types import UtcDateTime

#: Columns merged per field; ``ani_e164`` is taken together with ``ani``.
MERGED = tuple(c.name for c in contacts.columns
               if c.name not in ("id", "linkedid", "revision", "created_at", "updated_at"))
DRIVER = {"ani_e164": "ani"}
_OUT_FIELDS = tuple(n for n in codec.FIELDS if n != "ticket_ids")


def row_values(record: ContactRecord, region: str) -> dict[str, Any]:
    """The column values of one write (``ani_e164`` derived from ``ani``)."""
    values = {name: getattr(record, name) for name in MERGED if name != "ani_e164"}
    values["ivr_path"] = codec.ivr_path_json(record.ivr_path)
    values["skills"] = codec.skills_json(record.skills)
    values["transfers"] = codec.transfers_json(record.transfers)
    values["ani_e164"] = parse_number(record.ani, region).e164 if record.ani is not None else None
    values["linkedid"] = record.linkedid
    values["revision"] = record.revision
    return values


def merge_values(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """Merge one write into a row's values: the rule in the module docstring."""
    newer = incoming["revision"] > stored["revision"]
    merged = dict(stored)
    for name in MERGED:
        driver = DRIVER.get(name, name)
        if incoming[driver] is not None and (newer or stored[driver] is None):
            merged[name] = incoming[name]
    merged["revision"] = max(stored["revision"], incoming["revision"])
    return merged


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(contacts)
    new, old = stmt.excluded, contacts.c
    newer = new.revision > old.revision
    set_: dict[str, Any] = {}
    for name in MERGED:
        driver = DRIVER.get(name, name)
        take = and_(new[driver].is_not(None), or_(newer, old[driver].is_(None)))
        set_[name] = case((take, new[name]), else_=old[name])
    set_["revision"] = case((newer, new.revision), else_=old.revision)
    set_["updated_at"] = func.now()
    return stmt.on_conflict_do_update(index_elements=[contacts.c.linkedid], set_=set_)


def _link_tickets(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(ticket_contacts).on_conflict_do_nothing()


def thd_log_contacts(engine: Engine, records: Sequence[ContactRecord], region: str) -> int:
    """Merge ``records`` (already checked) into the contact log in one transaction.

    Returns how many calls the batch touched.  Raises on any database error,
    leaving nothing of the batch applied.
    """
    rows: dict[str, dict[str, Any]] = {}
    links: set[tuple[int, str]] = set()
    for record in records:
        values = row_values(record, region)
        known = rows.get(record.linkedid)
        rows[record.linkedid] = values if known is None else merge_values(known, values)
        links.update((t, record.linkedid) for t in record.ticket_ids)
    if not rows:
        return 0
    dialect = engine.dialect.name
    with write_tx(engine) as conn:
        conn.execute(_upsert(dialect), list(rows.values()))
        if links:
            conn.execute(_link_tickets(dialect), [{"ticket_id": t, "linkedid": lid} for t, lid in sorted(links)])
    return len(rows)


def contact_of(row: Row[Any] | Any, ticket_ids: Iterable[int] = ()) -> ContactRecord:
    """A ``ContactRecord`` from a ``contacts`` row."""
    values = {name: getattr(row, name) for name in _OUT_FIELDS}
    values["ivr_path"] = codec.ivr_path_of(values["ivr_path"])
    values["skills"] = codec.skills_of(values["skills"])
    values["transfers"] = codec.transfers_of(values["transfers"])
    return ContactRecord(**values, ticket_ids=tuple(sorted(ticket_ids)))


def _ticket_links(conn: Connection, linkedids: Sequence[str]) -> dict[str, list[int]]:
    links: dict[str, list[int]] = {}
    if linkedids:
        query = select(ticket_contacts.c.linkedid, ticket_contacts.c.ticket_id).where(
            ticket_contacts.c.linkedid.in_(linkedids))
        for linkedid, ticket_id in conn.execute(query):
            links.setdefault(linkedid, []).append(ticket_id)
    return links


def contacts_of(conn: Connection, rows: Sequence[Any]) -> tuple[ContactRecord, ...]:
    """Records for ``rows``, with their ticket links (one query)."""
    links = _ticket_links(conn, [r.linkedid for r in rows])
    return tuple(contact_of(r, links.get(r.linkedid, ())) for r in rows)


def _recent_statement(paged: bool) -> Any:
    recent = select(contacts).where(contacts.c.customer_id == bindparam("customer_id"))
    if paged:
        recent = recent.where(contacts.c.started_at < bindparam("before", type_=UtcDateTime()))
    last = recent.order_by(contacts.c.started_at.desc(), contacts.c.id.desc()).limit(bindparam("limit")).subquery()
    return (select(last, ticket_contacts.c.ticket_id.label("linked_ticket"))
            .select_from(last.outerjoin(ticket_contacts, ticket_contacts.c.linkedid == last.c.linkedid))
            .order_by(last.c.started_at.desc(), last.c.id.desc()))


#: Built once: composing this statement costs more Python time than running it.
_RECENT = {False: _recent_statement(False), True: _recent_statement(True)}


def recent_contacts(conn: Connection, customer_id: int, limit: int, before: Any = None) -> tuple[ContactRecord, ...]:
    """A customer's contacts, newest first, with their ticket links, in one query
    (index: customer_id, started_at)."""
    rows = conn.execute(_RECENT[before is not None],
                        {"customer_id": customer_id, "limit": limit, "before": before}).all()
    calls: dict[str, tuple[Any, list[int]]] = {}
    for row in rows:
        _, links = calls.setdefault(row.linkedid, (row, []))
        if row.linked_ticket is not None:
            links.append(row.linked_ticket)
    return tuple(contact_of(row, links) for row, links in calls.values())


def thd_get_contact(engine: Engine, linkedid: str) -> ContactRecord | None:
    with read_conn(engine) as conn:
        row = conn.execute(select(contacts).where(contacts.c.linkedid == linkedid)).first()
        return None if row is None else contacts_of(conn, [row])[0]


def iter_contacts(engine: Engine, *, region: str, since: Any = None, ani: str | None = None,
                  customer_id: int | None = None, limit: int | None = None,
                  page: int = 1000) -> Iterator[ContactRecord]:
    """Contacts in (started_at, id) order, paged by key so any size streams.

    ``ani`` matches the normalised number when it is valid (any format
    reaches the same calls), else the raw ANI exactly.
    """
    conditions = []
    if since is not None:
        conditions.append(contacts.c.started_at >= since)
    if ani is not None:
        number = parse_number(ani, region)
        conditions.append(contacts.c.ani_e164 == number.e164 if number.e164 else contacts.c.ani == ani)
    if customer_id is not None:
        conditions.append(contacts.c.customer_id == customer_id)
    after: tuple[Any, int] | None = None
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = select(contacts).where(*conditions)
        if after is not None:
            key = tuple_(literal(after[0], UtcDateTime()), literal(after[1], contacts.c.id.type))
            query = query.where(tuple_(contacts.c.started_at, contacts.c.id) > key)
        query = query.order_by(contacts.c.started_at, contacts.c.id).limit(size)
        with read_conn(engine) as conn:
            rows = conn.execute(query).all()
            batch = contacts_of(conn, rows)
        yield from batch
        if len(rows) < size:
            return
        after = (rows[-1].started_at, rows[-1].id)
        if left is not None:
            left -= len(rows)
