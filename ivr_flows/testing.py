"""Run a flow against a scripted caller, offline.

Used by ``callcenter flows test`` and by the test cases kept next to a flow
(``NAME.tests.yaml``, run by ``callcenter flows validate``).  The caller's
script is a list of answers, one per prompt that collects digits: ``"1"``
for a menu, ``"10000008"`` for an account number, ``""`` for silence (a
timeout).  When the script runs out the caller hangs up.

The same engine as in the daemon runs here; only the ports differ (an
in-memory CRM, fixed queue figures).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr_flows import commands as cmd
from ivr_flows.engine import resume, start
from ivr_flows.flowset import FlowSet
from ivr_flows.ports import CustomerPort
from ivr_flows.routes import RouteDecision
from ivr_flows.state import CallState, PathEntry


class ScriptError(ValueError):
    """The flow or number to run is unknown."""


@dataclass(frozen=True)
class Step:
    """One engine step: the path entries it added, its commands, the caller's answer
    (``secret``: keys asked for by a verify node, shown masked)."""

    entries: tuple[PathEntry, ...]
    commands: tuple[Any, ...]
    answer: Any = None
    secret: bool = False


@dataclass
class RunResult:
    flow: str
    dnis: str
    ani: str
    at: datetime
    route: RouteDecision | None
    state: CallState
    steps: list[Step] = field(default_factory=list)
    outcome: str = ""

    @property
    def commands(self) -> list[Any]:
        return [c for step in self.steps for c in step.commands]

    @property
    def path(self) -> list[str]:
        return self.state.visited()

    @property
    def said(self) -> list[str]:
        return [describe(c) for c in self.commands
                if isinstance(c, (cmd.Play, cmd.SayDigits, cmd.SayNumber, cmd.SayCurrency))]

    @property
    def handoff(self) -> cmd.HandOff | None:
        return self.state.handoff

    @property
    def left_at(self) -> str:
        return self.state.left_at


def describe(command: Any) -> str:
    """One command in words, as ``flows test`` prints it."""
    if isinstance(command, cmd.Play):
        return command.prompt
    if isinstance(command, cmd.SayDigits):
        return f"digits {command.digits}"
    if isinstance(command, cmd.SayNumber):
        return f"number {command.number}"
    if isinstance(command, cmd.SayCurrency):
        return f"currency {command.amount}"
    if isinstance(command, cmd.GetDigits):
        return f"get digits ({'&'.join(command.prompts)}, {command.timeout_ms} ms, up to {command.max_digits})"
    if isinstance(command, cmd.HandOff):
        return f"hand-off to queue {command.queue} (skills {','.join(command.skills) or '-'}, " \
               f"priority {command.priority}, language {command.language})"
    if isinstance(command, cmd.Finished):
        return f"finished: {command.outcome}" + (f" ({command.reason})" if command.reason else "")
    if isinstance(command, cmd.VerifySecret):
        return f"verify the secret of customer {command.customer_id} ({len(command.secret)} keys)"
    fields = ", ".join(f"{k}={v!r}" for k, v in vars(command).items())
    return f"{type(command).__name__.lower()}({fields})"


def run_call(flows: FlowSet, target: str, *, ani: str, digits: Sequence[str], at: datetime,
             customers: CustomerPort, waiting: Mapping[str, int] | None = None, dnis: str | None = None,
             call_id: str = "offline-test", trusted_callerid: bool | None = None) -> RunResult:
    """Play flow (or routed number) ``target`` against the scripted caller.  ``trusted_callerid``
    (default: the route's flag) says whether the caller's number is vouched for."""
    if at.tzinfo is None:
        raise ScriptError("the time of the call needs a time zone")
    route = None
    if target in flows.flows:
        flow = flows.flows[target]
        dnis = dnis if dnis is not None else next(
            (d for d, name in flows.routes.flow_for_dnis().items() if name == target), "")
    else:
        route = flows.routes.resolve(target, at) if target.isdigit() else None
        if route is None:
            raise ScriptError(f"no flow and no route named {target!r} (flows: {', '.join(sorted(flows.flows))})")
        flow, dnis = flows.flows[route.flow], target
    if trusted_callerid is None:
        known = flows.routes.route_for(dnis)
        trusted_callerid = known.trusted_callerid if known is not None else False
    answers = list(digits)
    state, commands = start(flow, flows.context(call_id, ani, dnis, trusted_callerid=trusted_callerid), at)
    result = RunResult(flow.name, dnis, ani, at, route, state)
    seen = 0
    while True:
        entries, seen = state.path[seen:], len(state.path)
        last = commands[-1]
        if isinstance(last, cmd.Finished) or (isinstance(last, cmd.GetDigits) and not answers):
            result.steps.append(Step(entries, tuple(commands)))
            result.state = state
            result.outcome = last.outcome if isinstance(last, cmd.Finished) else cmd.ABANDONED
            return result
        reply = answers.pop(0) if isinstance(last, cmd.GetDigits) else _answer(last, customers, waiting or {},
                                                                              call_id)
        result.steps.append(Step(entries, tuple(commands), reply, secret=state.waiting == "secret"))
        state, commands = resume(state, reply, at)
        result.state = state


def _answer(request: Any, customers: CustomerPort, waiting: Mapping[str, int], call_id: str) -> Any:
    if isinstance(request, cmd.Lookup):
        value = (customers.lookup_by_ani if request.kind == "ani" else customers.lookup_by_account)(request.key)
    elif isinstance(request, cmd.QueueStats):
        return {queue: int(waiting.get(queue, 0)) for queue in request.queues}
    elif isinstance(request, cmd.OpenTicketDraft):
        value = customers.open_ticket_draft(call_id=call_id, customer_id=request.customer_id, ani=request.ani,
                                            category=request.category, summary=request.summary, key=request.key)
    elif isinstance(request, cmd.RecordCallback):
        value = customers.record_callback(call_id=call_id, customer_id=request.customer_id, number=request.number,
                                          flow=request.flow, queue=request.queue, key=request.key)
    elif isinstance(request, cmd.VerifySecret):
        value = customers.verify_secret(call_id=call_id, customer_id=request.customer_id, secret=request.secret)
    else:
        raise ScriptError(f"unexpected request {request!r}")
    if inspect.isawaitable(value):
        raise ScriptError("the offline runner needs a CRM that answers at once, not an awaitable")
    return value


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)


def format_result(result: RunResult) -> str:
    """The report ``flows test`` prints: every step, the path, the hand-off."""
    lines = [f"flow {result.flow}  DNIS {result.dnis or '-'}  caller {result.ani or '(withheld)'}  "
             f"at {result.at.isoformat()}"]
    if result.route is not None:
        state = {None: "no calendar", True: "open", False: "closed"}[result.route.open]
        holiday = f", holiday: {result.route.holiday}" if result.route.holiday else ""
        lines.append(f"route {result.route.dnis} -> {result.route.flow} ({state}{holiday})")
    for step in result.steps:
        for entry in step.entries:
            lines.append(f"  {entry}")
        for command in step.commands:
            lines.append(f"      {describe(command)}")
        if step.answer is not None and isinstance(step.commands[-1], cmd.GetDigits):
            shown = "*" * len(step.answer) if step.secret else step.answer
            lines.append(f"      caller: {shown!r}" if step.answer else "      caller: (silence)")
        elif step.answer is not None:
            lines.append(f"      -> {_short(step.answer)}")
    if result.outcome == cmd.ABANDONED:
        lines.append("      caller hangs up (end of the script)")
    lines.append("path: " + result.state.compact_path())
    if result.outcome == cmd.ABANDONED:
        lines.append(f"outcome: abandoned (the caller hung up at {result.left_at})")
    elif result.handoff is not None:
        lines.append(f"outcome: queue -> {describe(result.handoff)}")
    else:
        detail = result.state.transfer or result.state.reason
        lines.append(f"outcome: {result.outcome}" + (f" ({detail})" if detail else ""))
    return "\n".join(lines)
