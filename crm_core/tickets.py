"""Tickets (service requests): a status lifecycle and a history of every change.

The lifecycle is an explicit transition table; asking for a move it does
not allow raises ``InvalidTransition`` and writes nothing.  Each change is
one transaction that updates the ticket, bumps its ``version`` and appends
one ``ticket_events`` row per changed field (who, when, old, new).  Passing
``expected_version`` makes a change fail with ``Conflict`` if someone else
changed the ticket since it was read.

Opening a ticket with an ``idempotency_key`` is idempotent: the key is
unique in the database, and a second open with the same key (a retry after a
timeout, while the first write may still have committed) answers the ticket
the first one made and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from crm_core import validate as v
from crm_core.db import read_conn, write_tx
from crm_core.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from crm_core.models import TICKET_KINDS, TICKET_PRIORITIES, customers, ticket_contacts, ticket_events, tickets
from crm_core.records import TicketDetail, TicketEvent, TicketSummary

#: status -> the statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "resolved", "closed"}),
    "in_progress": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "reopened": frozenset({"in_progress", "resolved", "closed"}),
}
OPEN_STATUSES = ("open", "in_progress", "reopened")
UNSET: Any = object()


def check_transition(ticket_id: int, current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS:
        raise InvalidInput("status", f"expected one of {', '.join(TRANSITIONS)}, got {wanted!r}")
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(ticket_id, current, wanted)


@dataclass(frozen=True)
class NewTicket:
    kind: str
    subject: str
    created_by: str
    customer_id: int | None = None
    description: str | None = None
    priority: str = "normal"
    owner: str | None = None
    due_at: datetime | None = None
    linkedids: tuple[str, ...] = ()
    #: The same key opens one ticket, however often it is asked (e.g. ``<linkedid>:<flow>:<node>``).
    idempotency_key: str | None = None


def ticket_of(row: Any) -> TicketSummary:
    return TicketSummary(row.id, row.customer_id, row.kind, row.subject, row.status, row.priority, row.owner,
                         row.due_at, row.created_by, row.created_at, row.updated_at, row.version)


def _event(conn: Connection, ticket_id: int, actor: str, action: str, old: Any = None, new: Any = None) -> None:
    def show(x: Any) -> str | None:
        return None if x is None else x.isoformat() if isinstance(x, datetime) else str(x)

    conn.execute(insert(ticket_events).values(ticket_id=ticket_id, actor=actor, action=action,
                                              old_value=show(old), new_value=show(new)))


def _insert(conn: Connection) -> Any:
    """INSERT with ON CONFLICT for this connection's database."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _by_key(conn: Connection, key: str) -> TicketSummary | None:
    row = conn.execute(select(tickets).where(tickets.c.idempotency_key == key)).first()
    return None if row is None else ticket_of(row)


def _link(conn: Connection, ticket_id: int, linkedid: str, actor: str) -> bool:
    insert_ = _insert(conn)
    added = conn.execute(insert_(ticket_contacts).values(ticket_id=ticket_id, linkedid=linkedid)
                         .on_conflict_do_nothing().returning(ticket_contacts.c.linkedid)).first() is not None
    if added:
        _event(conn, ticket_id, actor, "link_contact", None, linkedid)
    return added


def thd_open_ticket(engine: Engine, new: NewTicket) -> TicketSummary:
    """Open a ticket; with an ``idempotency_key`` already used, the ticket that key opened."""
    v.choice("kind", new.kind, TICKET_KINDS)
    v.choice("priority", new.priority, TICKET_PRIORITIES)
    v.text("subject", new.subject, 200, required=True)
    v.text("description", new.description, 10000, controls="lines")
    v.text("created_by", new.created_by, 64, required=True)
    v.text("owner", new.owner, 64)
    due_at = v.moment("due_at", new.due_at)
    for i, linkedid in enumerate(new.linkedids):
        v.text(f"linkedids[{i}]", linkedid, 64, required=True)
    key = v.text("idempotency_key", new.idempotency_key, 200, required=new.idempotency_key is not None)
    with write_tx(engine) as conn:
        if key is not None and (earlier := _by_key(conn, key)) is not None:
            return earlier
        if new.customer_id is not None and conn.execute(
                select(customers.c.id).where(customers.c.id == new.customer_id)).scalar() is None:
            raise NotFound(f"no customer {new.customer_id}")
        values = dict(customer_id=new.customer_id, kind=new.kind, subject=new.subject, description=new.description,
                      priority=new.priority, owner=new.owner, due_at=due_at, created_by=new.created_by,
                      idempotency_key=key)
        if key is None:
            ticket_id = conn.execute(insert(tickets).values(values)).inserted_primary_key[0]
        else:
            # PostgreSQL: a concurrent transaction with the same key may have inserted since the check;
            # ON CONFLICT waits for it, and once it committed its ticket is the answer.
            made = conn.execute(_insert(conn)(tickets).values(values)
                                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                                .returning(tickets.c.id)).first()
            if made is None:
                earlier = _by_key(conn, key)
                if earlier is None:
                    raise Conflict(f"ticket key {key!r} is taken but its ticket cannot be read")
                return earlier
            ticket_id = made.id
        _event(conn, ticket_id, new.created_by, "created", None, f"{new.kind}: {new.subject}")
        for linkedid in new.linkedids:
            _link(conn, ticket_id, linkedid, new.created_by)
        return ticket_of(conn.execute(select(tickets).where(tickets.c.id == ticket_id)).one())


def thd_change_ticket(engine: Engine, ticket_id: int, actor: str, *, status: str | None = None,
                      priority: str | None = None, owner: Any = UNSET, due_at: Any = UNSET,
                      note: str | None = None, expected_version: int | None = None) -> TicketSummary:
    """Apply the given changes (``owner``/``due_at`` may be set to None) atomically."""
    v.text("actor", actor, 64, required=True)
    v.choice("priority", priority, TICKET_PRIORITIES, required=False)
    if owner is not UNSET:
        v.text("owner", owner, 64)
    if due_at is not UNSET:
        due_at = v.moment("due_at", due_at)
    v.text("note", note, 10000, controls="lines")
    with write_tx(engine) as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == ticket_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        if expected_version is not None and row.version != expected_version:
            raise Conflict(f"ticket {ticket_id} is at version {row.version}, not {expected_version}")
        wanted = {"status": status, "priority": priority, "owner": owner, "due_at": due_at}
        changes = {k: x for k, x in wanted.items() if x is not UNSET and (x is not None or k in ("owner", "due_at"))
                   and x != getattr(row, k)}
        if "status" in changes:
            check_transition(ticket_id, row.status, changes["status"])
        if not changes and note is None:
            return ticket_of(row)
        conn.execute(update(tickets).where(tickets.c.id == ticket_id)
                     .values(**changes, version=tickets.c.version + 1, updated_at=func.now()))
        for field, value in changes.items():
            _event(conn, ticket_id, actor, field, getattr(row, field), value)
        if note is not None:
            _event(conn, ticket_id, actor, "note", None, note)
        return ticket_of(conn.execute(select(tickets).where(tickets.c.id == ticket_id)).one())


def thd_link_contact(engine: Engine, ticket_id: int, linkedid: str, actor: str) -> bool:
    """Link a call to a ticket (the call may still be in the journal); False if already linked."""
    v.text("linkedid", linkedid, 64, required=True)
    v.text("actor", actor, 64, required=True)
    with write_tx(engine) as conn:
        if conn.execute(select(tickets.c.id).where(tickets.c.id == ticket_id).with_for_update()).first() is None:
            raise NotFound(f"no ticket {ticket_id}")
        added = _link(conn, ticket_id, linkedid, actor)
        if added:
            conn.execute(update(tickets).where(tickets.c.id == ticket_id)
                         .values(version=tickets.c.version + 1, updated_at=func.now()))
        return added


def thd_ticket(engine: Engine, ticket_id: int) -> TicketDetail | None:
    with read_conn(engine) as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
        if row is None:
            return None
        events = conn.execute(select(ticket_events).where(ticket_events.c.ticket_id == ticket_id)
                              .order_by(ticket_events.c.id)).all()
        links = conn.execute(select(ticket_contacts.c.linkedid).where(ticket_contacts.c.ticket_id == ticket_id)
                             .order_by(ticket_contacts.c.linkedid)).scalars().all()
    history = tuple(TicketEvent(e.at, e.actor, e.action, e.old_value, e.new_value) for e in events)
    return TicketDetail(ticket_of(row), row.description, history, tuple(links))


def _tickets_statement(open_only: bool) -> Any:
    query = select(tickets).where(tickets.c.customer_id == bindparam("customer_id"))
    if open_only:
        query = query.where(tickets.c.status.in_(OPEN_STATUSES))
    return query.order_by(tickets.c.created_at.desc(), tickets.c.id.desc()).limit(bindparam("limit"))


_TICKETS_OF = {False: _tickets_statement(False), True: _tickets_statement(True)}


def tickets_of(conn: Connection, customer_id: int, *, open_only: bool, limit: int = 100) -> tuple[TicketSummary, ...]:
    """A customer's tickets, newest first (index: customer_id, status)."""
    rows = conn.execute(_TICKETS_OF[open_only], {"customer_id": customer_id, "limit": limit})
    return tuple(ticket_of(r) for r in rows)
