"""Contact records from what the daemon sees of a call.

Two sources write to the same contact (keyed by the call's linkedid) and the
CRM merges the writes field by field (``crm_core.contacts``):

* the IVR, when it is over for the call: path, self-service outcome, queue,
  skills and priority of the hand-off;
* the call tracker, when the call ends: direction, numbers, timing, agent,
  transfers, abandon flag and hang-up cause.

Writes go to the CRM's ``ContactWriter``, which makes each durable in its
journal before it touches the database; a failed write is logged with the
call id and never raised into the tracker or the IVR.

A record is never lost for its text: before it is written it is fitted to
the CRM (``crm_core.contact_codec.fit_contact``: an over-long caller name or
number cut to its column, a NUL or a control character in a name replaced
by U+FFFD, ...), each change logged as a warning with the call id.  A write
that still fails is logged as an error with the call id and counted in
``ContactRecorder.refused``.

The agent of a contact is the tracker's ``agent_id`` (``"6001"``, the agent's
``login`` in the CRM), the same whichever path saw the call: live events, a
resync after a reconnect or after a daemon restart, a transfer.  It is
recorded even when the CRM has no agent with that login.  Transfers to an
agent name the agent the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from acd.events import CallEnded, CallRecord
from callcenter.logging import call_id_context
from crm_core.contact_codec import UNKNOWN, fit_contact
from crm_core.records import ContactRecord, IvrStep, Transfer
from ivr_flows.commands import HandOff
from ivr_flows.state import DIGITS, ENTER, PathEntry

logger = logging.getLogger(__name__)


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(max(0.0, end - start), 3)


def _customer_id(value: str | None) -> int | None:
    try:
        return int(value) if value and value.isascii() and value.isdigit() else None
    except ValueError:
        return None


def ivr_steps(path: Sequence[PathEntry]) -> tuple[IvrStep, ...]:
    """``flow:node`` for each node entered, with the digits keyed there; other
    outcomes (timeout, invalid, lookup results) as ``flow:node/event value``."""
    steps = []
    for entry in path:
        where = f"{entry.flow}:{entry.node}" if entry.node else entry.flow
        if entry.event == ENTER:
            steps.append(IvrStep(where))
        elif entry.event == DIGITS:
            steps.append(IvrStep(where, entry.value))
        else:
            steps.append(IvrStep(f"{where}/{entry.event}" + (f" {entry.value}" if entry.value else "")))
    return tuple(steps)


def contact_from_call(call: CallRecord) -> ContactRecord:
    """The tracker's part of a contact record, from an ended call."""
    end = call.ended_at
    wait_to = call.answered_at if call.answered_at is not None else end
    holds = sum((_span(h.started_at, h.ended_at if h.ended_at is not None else end) or 0.0) for h in call.holds)
    # answered_at is the first answer: the ring that led to it is the first answered offer's.
    answered = [o for o in call.offers if o.outcome == "answered"]
    ring = round(answered[0].ring_seconds, 3) if answered else None
    return ContactRecord(
        linkedid=call.call_id,
        started_at=_utc(call.arrived_at),
        direction=call.direction,
        ani=call.ani,       # None when unknown: an empty string would clear the IVR's value
        dnis=call.dnis,
        caller_name=call.caller_name,
        queue=call.queue,
        enqueued_at=_utc(call.queued_at),
        offered_at=_utc(call.offered_at),
        answered_at=_utc(call.answered_at),
        ended_at=_utc(end),
        wait_seconds=_span(call.queued_at, wait_to),
        ring_seconds=ring,
        talk_seconds=_span(call.answered_at, end),
        hold_seconds=round(holds, 3) if call.holds else None,
        agent=call.agent_id,
        transfers=tuple(Transfer(t.to_agent_id or t.to or UNKNOWN, t.kind, _utc(t.at))
                        for t in call.transfers) or None,
        abandoned=call.abandoned,
        hangup_cause=(f"{call.cause} {call.cause_txt or ''}".strip() if call.cause is not None else None),
    )


class ContactRecorder:
    """Tracker events and IVR results -> contact records for the CRM writer.

    ``refused`` counts the contact writes that were not taken (refused by the
    writer, or the writer not running), each also logged as an error.
    """

    def __init__(self, log: Callable[[ContactRecord], Any], clock: Callable[[], float],
                 call_started: Callable[[str], float | None] = lambda call_id: None):
        self._log = log
        self._clock = clock
        self._call_started = call_started
        self.refused = 0

    def _write(self, record: ContactRecord) -> None:
        with call_id_context(record.linkedid):
            record, changes = fit_contact(record)
            for change in changes:
                logger.warning("contact record of call %s changed to fit the CRM: %s", record.linkedid, change)
            try:
                d = self._log(record)
            except Exception:
                self.refused += 1
                logger.exception("contact record of call %s refused", record.linkedid)
                return
            if hasattr(d, "addErrback"):
                d.addErrback(self._not_written, record.linkedid)

    def _not_written(self, failure: Any, linkedid: str) -> None:
        self.refused += 1
        with call_id_context(linkedid):
            logger.error("contact record of call %s not written: %s", linkedid, failure.getErrorMessage())

    def wrap_up(self, call_id: str, agent: str, disposition: str | None, notes: str | None,
                started_at: datetime) -> None:
        """The agent's disposition code and notes for the call, merged into its contact record
        (``started_at``: the stored one, which a newer write would otherwise overwrite)."""
        self._write(ContactRecord(linkedid=call_id, started_at=started_at, disposition=disposition, notes=notes))
        logger.info("call %s: agent %s wrapped up with %s", call_id, agent, disposition or "no disposition")

    # The tracker's emit target.
    def on_call_event(self, event: Any) -> None:
        if isinstance(event, CallEnded):
            self._write(contact_from_call(event.record))

    def calls_unfinished(self, calls: Iterable[CallRecord]) -> None:
        """The daemon stops with these calls still up: record what is known so far."""
        for call in calls:
            self._write(contact_from_call(call))

    # ivr_flows.ports.ContactRecordSink
    def ivr_finished(self, call_id: str, ani: str, dnis: str, path: Sequence[PathEntry], outcome: str,
                     handoff: HandOff | None, left_at: str, detail: str, *,
                     customer_id: str | None = None) -> None:
        started = self._call_started(call_id)
        self._write(ContactRecord(
            linkedid=call_id,
            customer_id=_customer_id(customer_id),
            started_at=_utc(started if started is not None else self._clock()),
            ani=ani or None,
            dnis=dnis or None,
            ivr_path=ivr_steps(path) + (IvrStep(f"end:{left_at}", detail or None),),
            self_service=outcome,
            queue=handoff.queue if handoff else None,
            priority=handoff.priority if handoff else None,
            skills=tuple((s, 1) for s in handoff.skills) if handoff else None,
        ))
