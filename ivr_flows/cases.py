"""Test cases kept next to a flow: ``NAME.tests.yaml``, run by ``flows validate``.

A bare YAML list of cases, or a mapping with the cases and the CRM they run
against::

    customers:                      # the in-memory CRM the cases run against
      - {id: C1001, ani: "5551001", account: "10000008", tier: standard,
         balance: "120.50", arrears: "0.00", language: en,
         secret: "1234"}            # optional: the self-service PIN (locked: true locks it)
    cases:
      - name: known caller hears balance and arrears
        ani: "5551001"
        at: "2026-03-02T10:00:00+08:00"   # optional; naive times are in routes.yaml's zone
        dnis: "4000"                      # optional: route by number (business hours apply)
        trusted_callerid: true            # optional: the route's trunk vouches for the number
                                          # (default: the route's trusted_callerid)
        digits: ["1", "1", ""]            # one answer per prompt; "" is silence
        waiting: {support: 12}            # optional: calls waiting per queue
        expect:                           # every key is optional
          path: [welcome, choose_language, english, main_menu, billing, say_balance]
          said: [custom/cc-welcome, currency 120.50]
          outcome: queue                  # queue transfer voicemail done fallback abandoned
          handoff: {queue: billing, priority: 0}
          transfer: "6001"
          left_at: "hotline:main_menu"
          tickets: 1
          callbacks: 1

``path`` lists the nodes entered in order (nodes of other flows as
``flow:node``); ``said`` lists prompts and ``digits N`` / ``number N`` /
``currency N.NN``.  A failing case is reported at its line.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ivr_flows.flowset import TESTS_SUFFIX, FlowSet
from ivr_flows.memory import InMemoryCustomers
from ivr_flows.model import FlowError
from ivr_flows.testing import RunResult, ScriptError, describe, run_call
from ivr_flows.yamlpos import Document, load

CASE_KEYS = {"name", "ani", "dnis", "at", "digits", "waiting", "expect", "description", "trusted_callerid"}
EXPECT_KEYS = {"path", "said", "outcome", "handoff", "transfer", "left_at", "tickets", "callbacks"}


def flow_of(tests_file: Path) -> str:
    return tests_file.name[: -len(TESTS_SUFFIX)]


def parse_time(text: str, zone_name: str) -> datetime:
    """ISO time; a naive one is read in ``zone_name``."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))


def run_test_file(path: Path, flows: FlowSet, now: datetime | None = None) -> tuple[int, list[FlowError]]:
    """(cases passed, errors) for one tests file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return 0, [FlowError(str(path), 1, 1, f"cannot read the test cases: {exc}")]
    doc, problems = load(text, str(path))
    errors = [FlowError(str(path), p.line, p.column, p.message) for p in problems]
    if doc is None:
        return 0, errors
    runner = _Cases(doc, flows, flow_of(path), now or datetime.now(timezone.utc))
    passed = runner.run()
    return passed, errors + runner.errors


class _Cases:
    def __init__(self, doc: Document, flows: FlowSet, flow: str, now: datetime) -> None:
        self.doc, self.flows, self.flow, self.now = doc, flows, flow, now
        self.errors: list[FlowError] = []

    def error(self, path: tuple, message: str, *, key: bool = False) -> None:
        line, column = self.doc.where(path, key=key)
        self.errors.append(FlowError(self.doc.file, line, column, message))

    def run(self) -> int:
        data = self.doc.data
        if isinstance(data, list):  # a bare list of cases, with no customers
            self.doc.values = {("cases",) + path: v for path, v in self.doc.values.items()}
            self.doc.keys = {("cases",) + path: v for path, v in self.doc.keys.items()}
            data = {"cases": data}
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
            self.error((), "a tests file is a list of cases, or a mapping with a 'cases' list "
                           "(and optional 'customers')")
            return 0
        customers = data.get("customers", [])
        if not isinstance(customers, list) or not all(isinstance(c, dict) for c in customers):
            self.error(("customers",), "customers: a list of customer records")
            return 0
        for key in data:
            if key not in ("cases", "customers"):
                self.error((key,), f"unknown field {key!r}", key=True)
        if self.flow not in self.flows.flows:
            self.error((), f"no flow {self.flow!r} for these test cases")
            return 0
        passed = 0
        for index, case in enumerate(data["cases"]):
            if self.case(("cases", index), case, customers):
                passed += 1
        return passed

    def case(self, path: tuple, case: Any, customers: list) -> bool:
        before = len(self.errors)
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            self.error(path, "a test case is a mapping with a 'name'")
            return False
        for key in case:
            if key not in CASE_KEYS:
                self.error(path + (key,), f"unknown field {key!r} in a test case", key=True)
        expect = case.get("expect", {})
        for key in expect if isinstance(expect, dict) else ():
            if key not in EXPECT_KEYS:
                self.error(path + ("expect", key), f"unknown expectation {key!r}", key=True)
        digits = case.get("digits", [])
        if isinstance(digits, (str, int)):
            digits = str(digits).split(",")
        if not isinstance(digits, list) or not isinstance(expect, dict):
            self.error(path, "digits is a list of answers and expect a mapping")
        trusted = case.get("trusted_callerid")
        if trusted is not None and not isinstance(trusted, bool):
            self.error(path + ("trusted_callerid",), "trusted_callerid is true or false")
        if len(self.errors) > before:
            return False
        try:
            at = parse_time(str(case["at"]), self.flows.routes.timezone) if "at" in case else self.now
        except ValueError:
            self.error(path + ("at",), f"at: {case['at']!r} is not an ISO time like 2026-03-02T10:00:00+08:00")
            return False
        crm = InMemoryCustomers(customers)
        target = str(case["dnis"]) if "dnis" in case else self.flow
        try:
            result = run_call(self.flows, target, ani=str(case.get("ani", "")), digits=[str(d) for d in digits],
                              at=at, customers=crm, waiting=case.get("waiting") or {}, trusted_callerid=trusted)
        except ScriptError as exc:
            self.error(path, f"test {case['name']!r}: {exc}")
            return False
        self.compare(path, case["name"], expect, result, crm)
        return len(self.errors) == before

    def compare(self, path: tuple, name: str, expect: dict, result: RunResult, crm: InMemoryCustomers) -> None:
        handoff = result.handoff
        actual = {
            "path": result.path, "said": result.said, "outcome": result.outcome,
            "transfer": result.state.transfer or None, "left_at": result.left_at,
            "tickets": len(crm.tickets), "callbacks": len(crm.callbacks),
            "handoff": None if handoff is None else {"queue": handoff.queue, "skills": list(handoff.skills),
                                                     "priority": handoff.priority, "language": handoff.language},
        }
        for key, wanted in expect.items():
            got = actual[key]
            if key == "handoff" and isinstance(wanted, dict) and got is not None:
                got = {k: got.get(k) for k in wanted}
            if key in ("path", "said") and isinstance(wanted, list):
                wanted = [str(w) for w in wanted]
            if got != wanted:
                where = path + ("expect", key)
                self.error(where, f"test {name!r} failed: {key} was {_show(got)}, expected {_show(wanted)}"
                                  + (f"; the caller's way: {result.state.compact_path()}" if key != "path" else ""))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if not hasattr(value, "__dataclass_fields__") else describe(value)
