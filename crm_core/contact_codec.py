"""Contact records: validation, fitting, and JSON for the journal and the CLI.

``check_contact`` refuses, with the field named, what the database could not
store exactly; everything else (control characters or right-to-left marks
in a caller name, quotes, SQL keywords) is kept as given.  ``fit_contact``
is for writers that would rather store a record changed than lose it (the
daemon: caller names and numbers come from the network): it makes the few
changes ``check_contact`` needs and says what it changed.  The JSON form
round-trips exactly: ``contact_from_json(contact_to_json(r)) == r``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime
from typing import Any

from crm_core import validate as v
from crm_core.errors import InvalidInput
from crm_core.models import DIRECTIONS
from crm_core.records import ContactRecord, IvrStep, Transfer

FIELDS = tuple(f.name for f in dataclasses.fields(ContactRecord))
_TIMES = ("started_at", "enqueued_at", "offered_at", "answered_at", "ended_at")
_SECONDS = ("wait_seconds", "ring_seconds", "talk_seconds", "hold_seconds", "wrapup_seconds")
#: Untrusted text from the network (trunks, SIP display names): kept exactly, NUL excepted.
_RAW_TEXT = {"ani": 80, "dnis": 80, "caller_name": 200}
#: Identifiers set by our own configuration: no control characters.
_NAMES = {"self_service": 32, "queue": 64, "agent": 64, "hangup_cause": 64, "disposition": 32}
MAX_NOTES = 10000
MAX_IVR_STEPS = 500
MAX_LIST = 50
MAX_REVISION = 2**63 - 1
MAX_SECONDS = 864000
#: What ``fit_contact`` puts in place of a character a field cannot hold.
REPLACEMENT = "\ufffd"
#: What ``fit_contact`` records for a required text (a transfer's target, an IVR node) that is empty.
UNKNOWN = "unknown"
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_contact(record: ContactRecord) -> ContactRecord:
    """Return ``record`` unchanged, or raise ``InvalidInput`` naming the bad field."""
    if not isinstance(record, ContactRecord):
        raise InvalidInput("contact", f"expected a ContactRecord, got {type(record).__name__}")
    v.text("linkedid", record.linkedid, 64, required=True)
    where = f"contact {record.linkedid}"
    try:
        _check_fields(record)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.field}", exc.reason) from None
    return record


def _check_fields(r: ContactRecord) -> None:
    for name in _TIMES:
        v.moment(name, getattr(r, name), required=name == "started_at")
    for name in _SECONDS:
        v.seconds(name, getattr(r, name))
    for name, limit in _RAW_TEXT.items():
        v.text(name, getattr(r, name), limit, controls="keep")
    for name, limit in _NAMES.items():
        v.text(name, getattr(r, name), limit)
    v.text("notes", r.notes, MAX_NOTES, controls="lines")
    v.choice("direction", r.direction, DIRECTIONS, required=False)
    v.integer("customer_id", r.customer_id, 1, MAX_REVISION)
    v.integer("priority", r.priority, -32768, 32767)
    v.integer("revision", r.revision, 0, MAX_REVISION, required=True)
    if r.abandoned is not None and not isinstance(r.abandoned, bool):
        raise InvalidInput("abandoned", f"expected true or false, got {type(r.abandoned).__name__}")
    if r.ani_e164 is not None:
        raise InvalidInput("ani_e164", "is derived from ani by the store; leave it unset")
    _check_ivr_path(r.ivr_path)
    _check_skills(r.skills)
    _check_transfers(r.transfers)
    _check_list("ticket_ids", r.ticket_ids, MAX_LIST)
    for i, ticket_id in enumerate(r.ticket_ids):
        v.integer(f"ticket_ids[{i}]", ticket_id, 1, MAX_REVISION, required=True)


def _check_list(field: str, value: Any, limit: int) -> None:
    if not isinstance(value, tuple):
        raise InvalidInput(field, f"expected a tuple, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(field, f"{len(value)} entries, at most {limit}")


def _check_ivr_path(path: Any) -> None:
    if path is None:
        return
    _check_list("ivr_path", path, MAX_IVR_STEPS)
    for i, step in enumerate(path):
        if not isinstance(step, IvrStep):
            raise InvalidInput(f"ivr_path[{i}]", f"expected an IvrStep, got {type(step).__name__}")
        v.text(f"ivr_path[{i}].node", step.node, 64, required=True)
        v.text(f"ivr_path[{i}].digits", step.digits, 64, controls="keep")


def _check_skills(skills: Any) -> None:
    if skills is None:
        return
    _check_list("skills", skills, MAX_LIST)
    seen = set()
    for i, pair in enumerate(skills):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise InvalidInput(f"skills[{i}]", "expected a (skill, proficiency) pair")
        v.text(f"skills[{i}]", pair[0], 64, required=True)
        v.integer(f"skills[{i}] proficiency", pair[1], 1, 5, required=True)
        if pair[0] in seen:
            raise InvalidInput(f"skills[{i}]", f"skill {pair[0]!r} given twice")
        seen.add(pair[0])


def _check_transfers(transfers: Any) -> None:
    if transfers is None:
        return
    _check_list("transfers", transfers, MAX_LIST)
    for i, t in enumerate(transfers):
        if not isinstance(t, Transfer):
            raise InvalidInput(f"transfers[{i}]", f"expected a Transfer, got {type(t).__name__}")
        v.text(f"transfers[{i}].to", t.to, 80, required=True, controls="keep")
        v.text(f"transfers[{i}].kind", t.kind, 16, required=True)
        v.moment(f"transfers[{i}].at", t.at)


def fit_contact(record: ContactRecord) -> tuple[ContactRecord, tuple[str, ...]]:
    """``record`` changed only as far as ``check_contact`` needs, and one note per change.

    * Text that was bytes not valid UTF-8 (the surrogate escapes the AMI and
      AGI codecs keep) is read as Latin-1, which maps every byte.
    * A character a field cannot hold (NUL and lone surrogates anywhere;
      control characters in the single-line names: agent, queue, ...)
      becomes U+FFFD.  Control characters in caller names, numbers and
      notes are kept, as ``check_contact`` keeps them.
    * Text longer than its column is cut to the column's length: ani and
      dnis 80 characters, caller_name 200, agent, queue and hangup_cause 64
      (the limits of ``check_contact``, which are the columns').
    * An IVR path of more than 500 steps or more than 50 transfers keeps the
      first ones and the last; more than 50 skills keep the first 50.  An
      empty transfer target or IVR node is recorded as ``"unknown"``.
    * A duration outside 0 to 10 days is clamped (NaN dropped), a priority
      outside a small integer clamped, a customer id that cannot be one
      dropped.

    What cannot be fixed without inventing data (the linkedid, the start
    time, an unknown direction) is left as it is for ``check_contact`` to
    refuse.  Never raises.
    """
    said: list[str] = []
    r = record
    if not isinstance(r, ContactRecord):
        return r, ()
    changes: dict[str, Any] = {}
    for name, limit in _RAW_TEXT.items():
        changes[name] = _fit_text(name, getattr(r, name), limit, "keep", said)
    for name, limit in _NAMES.items():
        changes[name] = _fit_text(name, getattr(r, name), limit, "refuse", said)
    changes["notes"] = _fit_text("notes", r.notes, MAX_NOTES, "lines", said)
    for name in _SECONDS:
        changes[name] = _fit_seconds(name, getattr(r, name), said)
    if isinstance(r.priority, int) and not isinstance(r.priority, bool) and not -32768 <= r.priority <= 32767:
        changes["priority"] = max(-32768, min(32767, r.priority))
        said.append(f"priority: {r.priority} out of range, clamped to {changes['priority']}")
    if isinstance(r.customer_id, int) and not 1 <= r.customer_id <= MAX_REVISION:
        changes["customer_id"] = None
        said.append(f"customer_id: {r.customer_id} cannot be a customer id, left out")
    if isinstance(r.ivr_path, tuple):
        path = _fit_list("ivr_path", r.ivr_path, MAX_IVR_STEPS, said, keep_last=True)
        changes["ivr_path"] = tuple(
            IvrStep(_fit_text(f"ivr_path[{i}].node", s.node, 64, "refuse", said, required=True),
                    _fit_text(f"ivr_path[{i}].digits", s.digits, 64, "keep", said))
            if isinstance(s, IvrStep) else s for i, s in enumerate(path))
    if isinstance(r.skills, tuple):
        skills = _fit_list("skills", r.skills, MAX_LIST, said, keep_last=False)
        changes["skills"] = tuple(
            (_fit_text(f"skills[{i}]", pair[0], 64, "refuse", said), pair[1])
            if isinstance(pair, tuple) and len(pair) == 2 else pair for i, pair in enumerate(skills))
    if isinstance(r.transfers, tuple):
        transfers = _fit_list("transfers", r.transfers, MAX_LIST, said, keep_last=True)
        changes["transfers"] = tuple(
            dataclasses.replace(t, to=_fit_text(f"transfers[{i}].to", t.to, 80, "keep", said, required=True),
                                kind=_fit_text(f"transfers[{i}].kind", t.kind, 16, "refuse", said))
            if isinstance(t, Transfer) else t for i, t in enumerate(transfers))
    if not said:
        return record, ()
    return dataclasses.replace(r, **changes), tuple(said)


def _fit_text(field: str, value: Any, limit: int, controls: str, notes: list[str], *,
              required: bool = False) -> Any:
    if not isinstance(value, str):
        return value
    if required and not value.strip():
        notes.append(f"{field}: empty, recorded as {UNKNOWN!r}")
        return UNKNOWN
    text = value
    if _SURROGATE.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("latin-1")
            notes.append(f"{field}: not valid UTF-8, read as Latin-1")
        except UnicodeEncodeError:
            pass                                       # a surrogate that is no escaped byte: replaced below
    forbidden = v._FORBIDDEN[controls]                 # the validator's own patterns: the two never disagree
    found = sorted({ord(c) for c in forbidden.findall(text)})
    if found:
        text = forbidden.sub(REPLACEMENT, text)
        shown = ", ".join(f"U+{code:04X}" for code in found[:8]) + (", ..." if len(found) > 8 else "")
        notes.append(f"{field}: {shown} cannot be stored there, replaced by U+FFFD")
    if len(text) > limit:
        notes.append(f"{field}: {len(text)} characters, cut to {limit}")
        text = text[:limit]
    return text


def _fit_seconds(field: str, value: Any, notes: list[str]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and math.isnan(value):
        notes.append(f"{field}: not a number, left out")
        return None
    if 0 <= value <= MAX_SECONDS:
        return value
    fitted = float(max(0, min(MAX_SECONDS, value)))
    notes.append(f"{field}: {value} out of 0 to {MAX_SECONDS} seconds, clamped to {fitted:g}")
    return fitted


def _fit_list(field: str, items: tuple[Any, ...], limit: int, notes: list[str], *, keep_last: bool) -> tuple[Any, ...]:
    if len(items) <= limit:
        return items
    notes.append(f"{field}: {len(items)} entries, kept {'the first and the last' if keep_last else 'the first'} "
                 f"{limit}")
    return items[:limit - 1] + items[-1:] if keep_last else items[:limit]


def ivr_path_json(path: tuple[IvrStep, ...] | None) -> list[dict[str, Any]] | None:
    return None if path is None else [{"node": s.node, "digits": s.digits} for s in path]


def skills_json(skills: tuple[tuple[str, int], ...] | None) -> dict[str, int] | None:
    return None if skills is None else dict(skills)


def transfers_json(transfers: tuple[Transfer, ...] | None) -> list[dict[str, Any]] | None:
    if transfers is None:
        return None
    return [{"to": t.to, "kind": t.kind, "at": t.at.isoformat() if t.at else None} for t in transfers]


def ivr_path_of(doc: Any) -> tuple[IvrStep, ...] | None:
    return None if doc is None else tuple(IvrStep(s["node"], s.get("digits")) for s in doc)


def skills_of(doc: Any) -> tuple[tuple[str, int], ...] | None:
    return None if doc is None else tuple((k, int(level)) for k, level in doc.items())


def transfers_of(doc: Any) -> tuple[Transfer, ...] | None:
    if doc is None:
        return None
    return tuple(Transfer(t["to"], t.get("kind", "blind"), _time(t.get("at"))) for t in doc)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def contact_to_json(r: ContactRecord, *, compact: bool = False) -> dict[str, Any]:
    """A JSON-ready dict; ``compact`` leaves out what is None or empty (the journal's form)."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(r, name)
        if name in _TIMES:
            value = None if value is None else value.isoformat()
        elif name == "ivr_path":
            value = ivr_path_json(value)
        elif name == "skills":
            value = skills_json(value)
        elif name == "transfers":
            value = transfers_json(value)
        elif name == "ticket_ids":
            value = list(value)
        if compact and (value is None or value == []):
            continue
        out[name] = value
    return out


def contact_from_json(doc: dict[str, Any]) -> ContactRecord:
    """The inverse of ``contact_to_json``; unknown keys or bad shapes raise ``InvalidInput``."""
    unknown = set(doc) - set(FIELDS)
    if unknown:
        raise InvalidInput("contact", f"unknown fields: {', '.join(sorted(unknown))}")
    values = dict(doc)
    try:
        for name in _TIMES:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        values["ivr_path"] = ivr_path_of(values.get("ivr_path"))
        values["skills"] = skills_of(values.get("skills"))
        values["transfers"] = transfers_of(values.get("transfers"))
        values["ticket_ids"] = tuple(values.get("ticket_ids") or ())
        return ContactRecord(**values)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidInput("contact", f"malformed JSON record: {exc}") from None
