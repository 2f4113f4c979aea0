"""The state of one call inside the IVR engine, as frozen data.

A :class:`CallState` holds the :class:`~ivr_flows.model.Flow` objects the
call started with (the current flow and the subflow return stack), so a hot
reload never changes a call already running: it finishes on its version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ivr_flows.calendars import Calendar
from ivr_flows.commands import HandOff
from ivr_flows.model import CUSTOMER_FIELDS, Flow

#: PathEntry events.
ENTER, DIGITS, TIMEOUT, INVALID, MAX_TRIES, LOOKUP, ERROR, VERIFY = (
    "enter", "digits", "timeout", "invalid", "max-tries", "lookup", "error", "verify")


@dataclass(frozen=True)
class PathEntry:
    """One step of the caller's way through the flows (the contact record's ivr_path)."""

    flow: str
    node: str
    event: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"flow": self.flow, "node": self.node, "event": self.event, "value": self.value}

    def __str__(self) -> str:
        where = f"{self.flow}:{self.node}" if self.node else self.flow
        return where if self.event == ENTER else f"{where} [{self.event}{' ' + self.value if self.value else ''}]"


@dataclass(frozen=True)
class CallContext:
    """Facts about the call and the flow set it runs in (a snapshot)."""

    call_id: str
    ani: str
    dnis: str
    flows: Mapping[str, Flow] = field(default_factory=dict)
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    transfer_allow: tuple[str, ...] = ()
    #: The route's trunk vouches for the caller's number (routes.yaml ``trusted_callerid``).
    trusted_callerid: bool = False


@dataclass(frozen=True)
class CallState:
    context: CallContext
    flow: Flow
    node: str
    stack: tuple[tuple[Flow, str], ...]
    variables: Mapping[str, Any]
    path: tuple[PathEntry, ...]
    #: The kind of result ``resume`` expects; empty when finished.
    waiting: str = ""
    tries: int = 0
    quiet_steps: int = 0
    steps: int = 0
    outcome: str = ""
    reason: str = ""
    handoff: HandOff | None = None
    transfer: str = ""

    @property
    def finished(self) -> bool:
        return bool(self.outcome)

    @property
    def left_at(self) -> str:
        """``flow:node`` of the last node entered (where a caller hung up)."""
        for entry in reversed(self.path):
            if entry.event == ENTER:
                return f"{entry.flow}:{entry.node}"
        return f"{self.flow.name}:"

    def compact_path(self) -> str:
        """``(ani found) > welcome > main_menu [1] > billing ...`` for people to read."""
        first = self.path[0].flow if self.path else self.flow.name
        tokens: list[str] = []
        for e in self.path:
            if e.event == ENTER:
                tokens.append(e.node if e.flow == first else f"{e.flow}:{e.node}")
                continue
            tag = {DIGITS: f"[{e.value}]", LOOKUP: f"({e.value})"}.get(e.event) or \
                f"[{e.event}{' ' + e.value if e.value else ''}]"
            if tokens and e.node:
                tokens[-1] += " " + tag
            else:
                tokens.append(tag)
        return " > ".join(tokens)

    def visited(self) -> list[str]:
        """Node ids entered, ``flow:node`` for nodes of other flows than the first."""
        first = self.path[0].flow if self.path else self.flow.name
        return [e.node if e.flow == first else f"{e.flow}:{e.node}" for e in self.path if e.event == ENTER]


def initial_variables(flow: Flow, context: CallContext) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "ani": context.ani, "dnis": context.dnis, "call_id": context.call_id,
        "language": flow.language, "queue": None, "skills": [], "priority": 0,
        "customer.found": False, "ticket.id": None, "callback.id": None,
        "route.trusted_callerid": context.trusted_callerid, "caller.verified": False,
    }
    variables.update({f"customer.{name}": None for name in CUSTOMER_FIELDS})
    variables.update(flow.variables)
    return variables


def as_amount(value: Any) -> Decimal | None:
    """A CRM amount as Decimal, or None when it is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    return amount if amount.is_finite() else None
