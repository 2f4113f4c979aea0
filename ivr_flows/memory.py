"""In-memory implementations of the ports, for tests and offline runs.

A customer file (``flows test --customer-db customers.yaml``) is a YAML list
of customer records, or a mapping with a ``customers`` list::

    customers:
      - {id: C1001, ani: "5551001", account: "10000008", name: Jane Doe,
         tier: standard, balance: "120.50", arrears: "0.00", language: en,
         secret: "1234"}

``secret`` is the customer's self-service PIN (test data: kept as it is
here, never in a real CRM); ``locked: true`` makes self-service locked for
them.  Wrong secrets are counted per customer like the CRM does
(``MAX_VERIFY_FAILURES`` lock), without the 24-hour clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr_flows.commands import LOCKED, NO_SECRET, VERIFIED, WRONG, HandOff
from ivr_flows.state import PathEntry
from ivr_flows.yamlpos import load


#: Wrong secrets that lock a customer out of self-service (crm_core.customers.MAX_FAILURES).
MAX_VERIFY_FAILURES = 5


#: What stays in the CRM: a lookup never hands these to the IVR.
PRIVATE_FIELDS = frozenset({"secret", "locked"})


def _public(record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if record is None else {k: v for k, v in record.items() if k not in PRIVATE_FIELDS}


def _digits(number: str) -> str:
    return "".join(c for c in str(number) if c.isdigit())


class InMemoryCustomers:
    """CustomerPort over a list of records; keeps the tickets and callbacks it was given
    (one per idempotency key, like the CRM)."""

    def __init__(self, customers: Iterable[Mapping[str, Any]] = ()) -> None:
        self.customers = [dict(c) for c in customers]
        self.tickets: list[dict[str, Any]] = []
        self.callbacks: list[dict[str, Any]] = []
        self.verify_failures: dict[str, int] = {}

    @classmethod
    def from_yaml(cls, path: str | Path) -> "InMemoryCustomers":
        path = Path(path)
        doc, problems = load(path.read_text(encoding="utf-8"), str(path))
        if doc is None or problems:
            problem = problems[0]
            raise ValueError(f"{path}:{problem.line}:{problem.column}: {problem.message}")
        data = doc.data.get("customers") if isinstance(doc.data, dict) else doc.data
        if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
            raise ValueError(f"{path}: expected a list of customer records")
        return cls(data)

    def lookup_by_ani(self, ani: str) -> Mapping[str, Any] | None:
        wanted = _digits(ani)
        return _public(next((c for c in self.customers if wanted and _digits(c.get("ani", "")) == wanted), None))

    def lookup_by_account(self, account: str) -> Mapping[str, Any] | None:
        return _public(next((c for c in self.customers if account and str(c.get("account", "")) == account), None))

    def open_ticket_draft(self, *, call_id: str, customer_id: str | None, ani: str, category: str,
                          summary: str, key: str | None = None) -> str:
        earlier = next((t["id"] for t in self.tickets if key and t["key"] == key), None)
        if earlier is not None:
            return earlier
        ticket_id = f"T{len(self.tickets) + 1}"
        self.tickets.append({"id": ticket_id, "call_id": call_id, "customer_id": customer_id, "ani": ani,
                             "category": category, "summary": summary, "key": key})
        return ticket_id

    def verify_secret(self, *, call_id: str, customer_id: str, secret: str) -> str:
        record = next((c for c in self.customers if str(c.get("id", "")) == customer_id), None)
        if record is None or record.get("secret") in (None, ""):
            return NO_SECRET
        if record.get("locked") or self.verify_failures.get(customer_id, 0) >= MAX_VERIFY_FAILURES:
            return LOCKED
        if secret == str(record["secret"]):
            self.verify_failures.pop(customer_id, None)
            return VERIFIED
        failures = self.verify_failures[customer_id] = self.verify_failures.get(customer_id, 0) + 1
        return LOCKED if failures >= MAX_VERIFY_FAILURES else WRONG

    def record_callback(self, *, call_id: str, customer_id: str | None, number: str, flow: str,
                        queue: str | None, key: str | None = None) -> str:
        earlier = next((c["id"] for c in self.callbacks if key and c["key"] == key), None)
        if earlier is not None:
            return earlier
        callback_id = f"CB{len(self.callbacks) + 1}"
        self.callbacks.append({"id": callback_id, "call_id": call_id, "customer_id": customer_id,
                               "number": number, "flow": flow, "queue": queue, "key": key})
        return callback_id


@dataclass
class FixedQueueStats:
    """QueueStatsPort answering from a fixed table (0 for other queues)."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def waiting_calls(self, queue: str) -> int:
        return int(self.counts.get(queue, 0))


@dataclass(frozen=True)
class IvrRecord:
    call_id: str
    ani: str
    dnis: str
    path: tuple[PathEntry, ...]
    outcome: str
    handoff: HandOff | None
    left_at: str
    detail: str


class MemoryContactRecords:
    """ContactRecordSink keeping the records in a list."""

    def __init__(self) -> None:
        self.records: list[IvrRecord] = []

    def ivr_finished(self, call_id: str, ani: str, dnis: str, path: Any, outcome: str,
                     handoff: HandOff | None, left_at: str, detail: str, *, customer_id: str | None = None) -> None:
        self.records.append(IvrRecord(call_id, ani, dnis, tuple(path), outcome, handoff, left_at, detail))
