"""Callbacks: calls the call center owes, dialled by the ACD when due.

A callback is ``pending`` until a daemon claims it; the claim is one
conditional UPDATE (pending, due, no live claim), so when several daemons
race for the same callback exactly one wins, on SQLite and PostgreSQL
alike.  The winner dials (``dialing``, ``claimed_by``, ``claim_until``) and
reports the outcome: answered is ``done``; anything else counts an attempt
and puts it back to ``pending`` after the retry spacing, or ``failed`` once
``max_attempts`` attempts were made.  Only the claim's owner may report.  A
claim that expired (the daemon died mid-dial) is released back to
``pending`` by ``thd_release_stale_claims``.

Creating with an ``idempotency_key`` is idempotent, as for tickets: the IVR
retries with the same key (call, flow, node) and gets the first callback.

Every time is an aware datetime, given by the caller (the daemon's clock).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from crm_core import validate as v
from crm_core.db import read_conn, write_tx
from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import CALLBACK_OUTCOMES, CALLBACK_STATUSES, callbacks, customers, queues, tickets
from crm_core.records import CallbackRecord, TicketSummary
from crm_core.tickets import NewTicket, thd_open_ticket

#: Attempts of a callback to a queue the configuration does not know.
DEFAULT_MAX_ATTEMPTS = 3
OPEN_STATUSES = ("pending", "dialing")


def callback_of(row: Row[Any]) -> CallbackRecord:
    return CallbackRecord(
        row.id, row.number, row.queue, row.status, row.attempts, row.max_attempts, row.next_attempt_at,
        priority=row.priority, customer_id=row.customer_id, ticket_id=row.ticket_id, claimed_by=row.claimed_by,
        claim_until=row.claim_until, last_outcome=row.last_outcome, last_linkedid=row.last_linkedid,
        origin_linkedid=row.origin_linkedid, idempotency_key=row.idempotency_key, created_at=row.created_at,
        updated_at=row.updated_at)


def _by_key(conn: Connection, key: str) -> CallbackRecord | None:
    row = conn.execute(select(callbacks).where(callbacks.c.idempotency_key == key)).first()
    return None if row is None else callback_of(row)


def _read(conn: Connection, callback_id: int) -> CallbackRecord:
    row = conn.execute(select(callbacks).where(callbacks.c.id == callback_id)).first()
    if row is None:
        raise NotFound(f"no callback {callback_id}")
    return callback_of(row)


def _exists(conn: Connection, table: Any, row_id: int | None, what: str) -> None:
    if row_id is not None and conn.execute(select(table.c.id).where(table.c.id == row_id)).first() is None:
        raise NotFound(f"no {what} {row_id}")


def thd_create_callback(engine: Engine, number: str, queue: str, customer_id: int | None = None,
                        ticket_id: int | None = None, origin_linkedid: str | None = None,
                        priority: int | None = None, max_attempts: int | None = None, key: str | None = None,
                        *, not_before: datetime | None = None) -> CallbackRecord:
    """Owe a call to ``number`` for ``queue``, due at ``not_before`` (default: now).

    ``max_attempts`` None takes the queue's ``callback_retries`` (3 for a queue not configured);
    ``priority`` None leaves it to the queue's ``callback_priority`` when dialled.  With a ``key``
    already used, the callback that key made, unchanged.
    """
    v.text("number", number, 80, required=True)
    v.text("queue", queue, 64, required=True)
    v.text("origin_linkedid", origin_linkedid, 64)
    v.integer("priority", priority, -1000, 1000)
    v.integer("max_attempts", max_attempts, 1, 20)
    key = v.text("idempotency_key", key, 200, required=key is not None)
    due = v.moment("not_before", not_before) or datetime.now(timezone.utc)
    with write_tx(engine) as conn:
        if key is not None and (earlier := _by_key(conn, key)) is not None:
            return earlier
        _exists(conn, customers, customer_id, "customer")
        _exists(conn, tickets, ticket_id, "ticket")
        if max_attempts is None:
            max_attempts = conn.execute(select(queues.c.callback_retries).where(queues.c.name == queue)
                                        ).scalar() or DEFAULT_MAX_ATTEMPTS
        values = dict(number=number, queue=queue, customer_id=customer_id, ticket_id=ticket_id,
                      origin_linkedid=origin_linkedid, priority=priority, max_attempts=max_attempts,
                      next_attempt_at=due, idempotency_key=key)
        insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        # PostgreSQL: a concurrent transaction may have inserted the same key since the check; ON CONFLICT
        # waits for it, and once it committed its callback is the answer.
        made = conn.execute(insert_(callbacks).values(values)
                            .on_conflict_do_nothing(index_elements=["idempotency_key"])
                            .returning(callbacks.c.id)).first()
        if made is None:
            assert key is not None  # NULL keys never conflict
            earlier = _by_key(conn, key)
            if earlier is None:
                raise Conflict(f"callback key {key!r} is taken but its callback cannot be read")
            return earlier
        return _read(conn, made.id)


def thd_request_callback(engine: Engine, ticket: NewTicket, number: str, queue: str,
                         customer_id: int | None = None, origin_linkedid: str | None = None,
                         key: str | None = None) -> tuple[TicketSummary, CallbackRecord]:
    """The IVR's callback request: the service-order ticket, then the callback linked to it, both under
    ``key`` (so a retry after a failure between the two makes only what is missing)."""
    opened = thd_open_ticket(engine, ticket)
    return opened, thd_create_callback(engine, number, queue, customer_id, opened.id, origin_linkedid, key=key)


def _moment(field: str, value: Any) -> datetime:
    return v.moment(field, value, required=True)  # type: ignore[return-value]


def thd_due_callbacks(engine: Engine, now: datetime, limit: int = 100) -> tuple[CallbackRecord, ...]:
    """Pending callbacks due at ``now`` with no live claim, the longest due first."""
    now = _moment("now", now)
    v.integer("limit", limit, 1, 10000, required=True)
    c = callbacks.c
    query = (select(callbacks)
             .where(c.status == "pending", c.next_attempt_at <= now, or_(c.claim_until.is_(None), c.claim_until < now))
             .order_by(c.next_attempt_at, c.id).limit(limit))
    with read_conn(engine) as conn:
        return tuple(callback_of(r) for r in conn.execute(query))


def thd_claim_callback(engine: Engine, callback_id: int, owner: str, now: datetime,
                       until: datetime) -> CallbackRecord | None:
    """Claim a due pending callback for ``owner`` until ``until`` (status ``dialing``); None if it is not
    pending, not due, claimed by someone else, or gone: another daemon won it."""
    v.text("owner", owner, 64, required=True)
    now, until = _moment("now", now), _moment("until", until)
    if until <= now:
        raise InvalidInput("until", "the claim must end after now")
    c = callbacks.c
    claim = (update(callbacks)
             .where(c.id == callback_id, c.status == "pending", c.next_attempt_at <= now,
                    or_(c.claim_until.is_(None), c.claim_until < now))
             .values(status="dialing", claimed_by=owner, claim_until=until)
             .returning(*callbacks.c))
    with write_tx(engine) as conn:
        row = conn.execute(claim).first()
    return None if row is None else callback_of(row)


def thd_callback_outcome(engine: Engine, callback_id: int, owner: str, outcome: str, linkedid: str | None,
                         now: datetime, retry_spacing_seconds: float) -> CallbackRecord:
    """Report the attempt ``owner`` dialled: answered is done; otherwise pending again after the spacing,
    or failed when it was the last attempt.  Only the daemon holding the claim may report."""
    v.text("owner", owner, 64, required=True)
    v.choice("outcome", outcome, CALLBACK_OUTCOMES)
    v.text("linkedid", linkedid, 64)
    spacing = v.seconds("retry_spacing_seconds", retry_spacing_seconds)
    if spacing is None:
        raise InvalidInput("retry_spacing_seconds", "is required")
    now = _moment("now", now)
    c = callbacks.c
    with write_tx(engine) as conn:
        row = conn.execute(select(callbacks).where(c.id == callback_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no callback {callback_id}")
        if row.status != "dialing" or row.claimed_by != owner:
            held = f"claimed by {row.claimed_by}" if row.status == "dialing" else row.status
            raise InvalidInput("owner", f"callback {callback_id} is not claimed by {owner} (it is {held})")
        attempts = row.attempts + 1
        values: dict[str, Any] = dict(attempts=attempts, last_outcome=outcome, last_linkedid=linkedid,
                                      claimed_by=None, claim_until=None)
        if outcome == "answered":
            values["status"] = "done"
        elif attempts < row.max_attempts:
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=spacing))
        else:
            values["status"] = "failed"
        conn.execute(update(callbacks).where(c.id == callback_id).values(values))
        return _read(conn, callback_id)


def thd_release_stale_claims(engine: Engine, now: datetime) -> tuple[int, ...]:
    """Put callbacks whose claim expired before ``now`` back to pending (their daemon died mid-dial, or
    never reported); return their ids.  The attempt is not counted: nobody knows whether it happened."""
    now = _moment("now", now)
    c = callbacks.c
    release = (update(callbacks).where(c.status == "dialing", c.claim_until < now)
               .values(status="pending", claimed_by=None, claim_until=None).returning(c.id))
    with write_tx(engine) as conn:
        return tuple(sorted(conn.execute(release).scalars()))


def thd_cancel_callback(engine: Engine, callback_id: int) -> CallbackRecord:
    """Cancel a pending or dialing callback (a daemon dialing it can no longer report); cancelling a
    cancelled one changes nothing; a done or failed one is refused."""
    with write_tx(engine) as conn:
        row = conn.execute(select(callbacks).where(callbacks.c.id == callback_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no callback {callback_id}")
        current = callback_of(row)
        if current.status == "cancelled":
            return current
        if current.status not in OPEN_STATUSES:
            raise InvalidInput("status", f"callback {callback_id} is {current.status}: it cannot be cancelled")
        conn.execute(update(callbacks).where(callbacks.c.id == callback_id)
                     .values(status="cancelled", claimed_by=None, claim_until=None))
        return _read(conn, callback_id)


def thd_callback(engine: Engine, callback_id: int) -> CallbackRecord | None:
    with read_conn(engine) as conn:
        row = conn.execute(select(callbacks).where(callbacks.c.id == callback_id)).first()
    return None if row is None else callback_of(row)


def thd_callbacks(engine: Engine, status: str | None = None, limit: int = 1000) -> tuple[CallbackRecord, ...]:
    """Callbacks (of one ``status``, or all), the next due first."""
    v.choice("status", status, CALLBACK_STATUSES, required=False)
    v.integer("limit", limit, 1, 100000, required=True)
    query = select(callbacks)
    if status is not None:
        query = query.where(callbacks.c.status == status)
    with read_conn(engine) as conn:
        rows = conn.execute(query.order_by(callbacks.c.next_attempt_at, callbacks.c.id).limit(limit))
        return tuple(callback_of(r) for r in rows)
