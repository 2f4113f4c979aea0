"""The screen pop: the unified customer view an agent's desktop shows when a call rings for them.

``pop_payload`` is pure: it turns what the CRM holds (the customer view, the
callers the number matched, the call's contact record with its IVR path) and
what the ACD knows of the call (queue, wait, the service line) into the JSON
body of a ``pop`` frame.  ``build_pop`` fetches those records from the CRM
store (its thread pool) and calls it.

Every text is passed through as it was stored: the desktop renders it as
text (``textContent``), never as HTML.  Money is a decimal string ("12.30"),
times are ISO 8601 in UTC.

* A known caller (the IVR identified them, or the number matches exactly one
  customer): ``customer`` is the view; ``vip`` is true for tiers ``vip`` and
  ``key_account``.
* Several customers share the number: ``customer`` is null and
  ``candidates`` lists them for the agent to pick.
* An unknown caller: ``new_customer`` is a form prefilled with the number
  and the name the network gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

#: Tiers shown with a VIP badge.
VIP_TIERS = frozenset({"vip", "key_account"})
#: How many of the customer's last contacts the pop carries.
RECENT_CONTACTS = 5


@dataclass(frozen=True)
class PopContext:
    """What the ACD knows of the call when it offers it to ``agent``."""

    call_id: str
    agent: str
    queue: str | None
    ani: str | None
    caller_name: str | None
    dnis: str | None
    wait_seconds: float
    customer_id: int | None = None


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _customer(view: Any) -> dict[str, Any]:
    p = view.profile
    return {
        "id": p.id, "name": p.name, "kind": p.kind, "tier": p.tier, "vip": p.tier in VIP_TIERS,
        "value_score": p.value_score, "satisfaction": p.satisfaction, "language": p.language,
        "preferred_agent": p.preferred_agent, "notes": p.notes, "blacklisted": p.blacklisted,
        "phones": [ph.e164 or ph.raw for ph in p.phones],
        "emails": [e.address for e in p.emails],
        "balance": _money(view.balance), "arrears": _money(view.arrears), "arrears_since": _iso(view.arrears_since),
        "accounts": [{"account_no": a.account_no, "currency": a.currency, "balance": _money(a.balance),
                      "arrears": _money(a.arrears), "status": a.status} for a in view.accounts],
        "open_tickets": [{"id": t.id, "kind": t.kind, "subject": t.subject, "status": t.status,
                          "priority": t.priority, "due_at": _iso(t.due_at), "updated_at": _iso(t.updated_at)}
                         for t in view.open_tickets],
        "recent_contacts": [{"linkedid": c.linkedid, "started_at": _iso(c.started_at), "direction": c.direction,
                             "dnis": c.dnis, "queue": c.queue, "agent": c.agent, "self_service": c.self_service,
                             "disposition": c.disposition, "notes": c.notes, "talk_seconds": c.talk_seconds}
                            for c in view.recent_contacts[:RECENT_CONTACTS]],
    }


def pop_payload(context: PopContext, view: Any = None, matches: tuple[Any, ...] = (),
                contact: Any = None) -> dict[str, Any]:
    """The ``pop`` frame's body (without ``type``/``v``)."""
    path = [{"node": step.node, "digits": step.digits} for step in (contact.ivr_path or ())] if contact else []
    body: dict[str, Any] = {
        "call_id": context.call_id, "agent": context.agent, "queue": context.queue,
        "ani": context.ani, "caller_name": context.caller_name or (contact.caller_name if contact else None),
        "dnis": context.dnis or (contact.dnis if contact else None),
        "wait_seconds": round(context.wait_seconds, 1),
        "ivr": {"path": path, "digits": [step["digits"] for step in path if step["digits"]],
                "outcome": contact.self_service if contact else None},
        "customer": None, "candidates": [], "new_customer": None,
    }
    if view is not None:
        body["customer"] = _customer(view)
    elif len(matches) > 1:
        body["candidates"] = [{"id": m.id, "name": m.name, "tier": m.tier, "vip": m.tier in VIP_TIERS,
                               "value_score": m.value_score} for m in matches]
    else:
        body["new_customer"] = {"phone": context.ani or "", "name": body["caller_name"] or ""}
    return body


async def build_pop(store: Any, context: PopContext) -> dict[str, Any]:
    """Fetch the records from the CRM store (Deferreds, awaited on the asyncio loop) and build the pop."""
    from callcenter.aio import resolved as wait

    contact = await wait(store.contact(context.call_id))
    customer_id = context.customer_id or (contact.customer_id if contact else None)
    matches: tuple[Any, ...] = ()
    if customer_id is None and context.ani:
        matches = tuple(await wait(store.lookup_by_ani(context.ani)))
        if len(matches) == 1:
            customer_id = matches[0].id
    view = await wait(store.customer_view(customer_id)) if customer_id is not None else None
    return pop_payload(context, view, matches, contact)
