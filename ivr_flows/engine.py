"""The IVR engine: a pure step machine over a flow.

::

    state, commands = start(flow, context, now)
    while not state.finished:
        result = <run commands; the last one is a request>
        state, commands = resume(state, result, now)

No I/O, no clock: ``now`` (an aware datetime) is an argument, and everything
the outside must do comes back as :mod:`ivr_flows.commands`.  The ANI lookup
runs before the first node.  Every node entered and every input is appended
to ``state.path``.  A call never loops silently: more than
``MAX_QUIET_STEPS`` nodes without caller input, an expression that cannot be
computed or a missing target ends the flow with the ``fallback`` outcome,
which sends the caller to the dialplan's fallback queue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ivr_flows import commands as cmd
from ivr_flows import dialpatterns
from ivr_flows.expressions import Env, EvalError, Expression, truthy
from ivr_flows.model import (
    CUSTOMER_FIELDS, CallbackNode, CollectNode, ConditionNode, Flow, GotoNode, HangupNode, LookupNode,
    MenuNode, Node, PlayNode, QueueNode, ReturnNode, SetNode, SubflowNode, TicketNode, TransferNode,
    VerifyNode, VoicemailNode,
)
from ivr_flows.state import (
    DIGITS, ENTER, ERROR, INVALID, LOOKUP, MAX_TRIES, TIMEOUT, VERIFY, CallContext, CallState, PathEntry, as_amount,
    initial_variables,
)

MAX_QUIET_STEPS = 100
MAX_STEPS = 2000
MAX_SUBFLOW_DEPTH = 8
MAX_PRIORITY = 999
CALLER_KEYS = "0123456789*#"
_LOOKUP_KEY = re.compile(r"\+?[0-9]{1,32}")
_CALLBACK_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")


class EngineError(RuntimeError):
    """``resume`` was called on a finished call or with no request pending."""


def start(flow: Flow, context: CallContext, now: datetime) -> tuple[CallState, list[Any]]:
    """Begin a call: the ANI lookup first (when there is an ANI), then the start node."""
    state = CallState(context=context, flow=flow, node="", stack=(),
                      variables=initial_variables(flow, context), path=())
    run = _Run(state, now)
    if _LOOKUP_KEY.fullmatch(context.ani or ""):
        run.request("ani-lookup", cmd.Lookup("ani", context.ani))
    else:
        run.path(flow.name, "", LOOKUP, "no caller number")
        run.goto(flow.start)
        run.run()
    return run.freeze()


def resume(state: CallState, result: Any, now: datetime) -> tuple[CallState, list[Any]]:
    """Give the result of the pending request and run on to the next one."""
    if state.finished:
        raise EngineError(f"the call has finished ({state.outcome})")
    if not state.waiting:
        raise EngineError("no request is pending")
    run = _Run(state, now)
    run.deliver(result)
    run.run()
    return run.freeze()


def clean_input(digits: Any) -> tuple[str, bool]:
    """Caller input bounded to 64 keys; (shown text, only allowed keys?)."""
    text = digits if isinstance(digits, str) else ""
    text = text[:64]
    ok = all(char in CALLER_KEYS for char in text)
    return "".join(char if char in CALLER_KEYS else "?" for char in text), ok


class _Run:
    """One ``start``/``resume`` step: a mutable copy of the state, frozen at the end."""

    def __init__(self, state: CallState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.flow = state.flow
        self.node_id = state.node
        self.stack = state.stack
        self.vars = dict(state.variables)
        self.entries = list(state.path)
        self.waiting = state.waiting
        self.tries = state.tries
        self.quiet = state.quiet_steps
        self.steps = state.steps
        self.outcome, self.reason = state.outcome, state.reason
        self.handoff, self.transfer = state.handoff, state.transfer
        self.out: list[Any] = []
        self.counts: Mapping[str, int] = {}

    @property
    def context(self) -> CallContext:
        return self.state.context

    def freeze(self) -> tuple[CallState, list[Any]]:
        state = replace(self.state, flow=self.flow, node=self.node_id, stack=self.stack,
                        variables=MappingProxyType(self.vars),
                        path=tuple(self.entries), waiting=self.waiting, tries=self.tries,
                        quiet_steps=self.quiet, steps=self.steps, outcome=self.outcome, reason=self.reason,
                        handoff=self.handoff, transfer=self.transfer)
        return state, self.out

    # -- building blocks ----------------------------------------------------------

    def path(self, flow: str, node: str, event: str, value: str = "") -> None:
        self.entries.append(PathEntry(flow, node, event, value))

    def request(self, kind: str, command: Any) -> None:
        self.waiting = kind
        self.out.append(command)

    def goto(self, node_id: str) -> None:
        self.node_id = node_id
        self.tries = 0

    def finish(self, outcome: str, reason: str = "") -> None:
        self.outcome, self.reason, self.waiting = outcome, reason, ""
        self.out.append(cmd.Finished(outcome, reason))

    def fail(self, reason: str) -> None:
        self.path(self.flow.name, self.node_id, ERROR, reason)
        self.finish(cmd.FALLBACK, reason)

    def env(self) -> Env:
        calendars = self.context.calendars

        def is_open(name: str) -> bool:
            if name not in calendars:
                raise EvalError(f"no calendar {name!r}")
            return calendars[name].is_open(self.now)

        def waiting(queue: str) -> int:
            if queue not in self.counts:
                raise EvalError(f"no waiting count for queue {queue!r}")
            return self.counts[queue]

        return Env(self.vars, is_open, waiting)

    def write_key(self) -> str:
        """Idempotency key of this node's CRM write (:func:`ivr_flows.commands.write_key`)."""
        return cmd.write_key(self.context.call_id, self.flow.name, self.node_id)

    def evaluate(self, expr: Expression) -> Any:
        return expr.evaluate(self.env())

    @property
    def node(self) -> Node:
        return self.flow.nodes[self.node_id]

    # -- the loop -------------------------------------------------------------------

    def run(self) -> None:
        while not self.waiting and not self.outcome:
            self.steps += 1
            self.quiet += 1
            if self.quiet > MAX_QUIET_STEPS:
                return self.fail(f"more than {MAX_QUIET_STEPS} nodes without caller input (a loop?)")
            if self.steps > MAX_STEPS:
                return self.fail(f"more than {MAX_STEPS} nodes in one call")
            node = self.flow.nodes.get(self.node_id)
            if node is None:
                return self.fail(f"flow {self.flow.name!r} has no node {self.node_id!r}")
            self.path(self.flow.name, node.id, ENTER, node.type)
            self.guarded(getattr(self, "enter_" + node.type), node)

    def guarded(self, method: Any, *args: Any) -> None:
        try:
            method(*args)
        except EvalError as exc:
            self.fail(f"{self.flow.name}:{self.node_id}: {exc}")

    def deliver(self, result: Any) -> None:
        kind, self.waiting = self.waiting, ""
        if kind == "ani-lookup":
            found = self.apply_customer(result)
            self.path(self.flow.name, "", LOOKUP, "ani found" if found else "ani not found")
            self.goto(self.flow.start)
            return
        self.guarded(getattr(self, "got_" + kind.replace("-", "_")), self.node, result)

    # -- nodes --------------------------------------------------------------------

    def enter_play(self, node: PlayNode) -> None:
        for item in node.items:
            if item.kind == "prompt":
                self.out.append(cmd.Play(item.prompt))
                continue
            assert item.expr is not None
            value = self.evaluate(item.expr)
            if item.kind == "digits":
                text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
                if not text.isdigit() or len(text) > 32:
                    raise EvalError(f"cannot say {item.expr.source!r} as digits")
                self.out.append(cmd.SayDigits(text))
            elif item.kind == "number":
                amount = as_amount(value)
                if amount is None or amount != amount.to_integral_value() or abs(amount) >= 10**9:
                    raise EvalError(f"cannot say {item.expr.source!r} as a whole number")
                self.out.append(cmd.SayNumber(int(amount)))
            else:
                amount = as_amount(value)
                if amount is None or amount < 0 or amount >= 10**9:
                    raise EvalError(f"cannot say {item.expr.source!r} as an amount")
                currency = self.flow.currency
                self.out.append(cmd.SayCurrency(f"{amount.quantize(Decimal('0.01'))}",
                                                currency.unit_prompt, currency.cents_prompt))
        self.goto(node.next)

    def enter_menu(self, node: MenuNode) -> None:
        self.ask_keys(node)

    def enter_collect(self, node: CollectNode) -> None:
        self.ask_keys(node)

    def ask_keys(self, node: MenuNode | CollectNode | VerifyNode) -> None:
        if isinstance(node, VerifyNode):
            return self.request("secret", cmd.GetDigits(node.prompts, node.timeout_ms, node.max_length))
        max_digits = 1 if isinstance(node, MenuNode) else node.max_length
        self.request("digits", cmd.GetDigits(node.prompts, node.timeout_ms, max_digits))

    def got_digits(self, node: MenuNode | CollectNode, result: Any) -> None:
        self.quiet = 0
        text, ok = clean_input(result)
        if not text:
            self.path(self.flow.name, node.id, TIMEOUT)
            return self.retry(node, node.timeout_prompt)
        if isinstance(node, MenuNode):
            target = dict(node.choices).get(text) if ok else None
            if target is None:
                self.path(self.flow.name, node.id, INVALID, text)
                return self.retry(node, node.invalid_prompt)
            self.path(self.flow.name, node.id, DIGITS, text)
            return self.goto(target)
        shown = "*" * len(text) if node.mask else text
        keys = "0123456789*" if node.allow_star else "0123456789"
        valid = ok and node.min_length <= len(text) <= node.max_length and all(c in keys for c in text)
        if valid and node.validate is not None:
            before = dict(self.vars)
            self.vars[node.into] = text
            try:
                valid = truthy(self.evaluate(node.validate))
            finally:
                self.vars = before
        if not valid:
            self.path(self.flow.name, node.id, INVALID, shown)
            return self.retry(node, node.invalid_prompt)
        self.path(self.flow.name, node.id, DIGITS, shown)
        self.vars[node.into] = text
        self.goto(node.next)

    def retry(self, node: MenuNode | CollectNode | VerifyNode, prompt: str) -> None:
        self.tries += 1
        if self.tries >= node.max_tries:
            self.path(self.flow.name, node.id, MAX_TRIES, str(node.max_tries))
            if node.fallback:
                return self.goto(node.fallback)
            return self.finish(cmd.FALLBACK, f"{self.flow.name}:{node.id}: no valid input in {node.max_tries} tries")
        if prompt:
            self.out.append(cmd.Play(prompt))
        self.ask_keys(node)

    # The secret the caller keys goes out in one VerifySecret command and is never kept: not in a
    # variable, not in the path (only its length), not in the state.

    def enter_verify(self, node: VerifyNode) -> None:
        customer = self.vars.get("customer.id")
        if not self.vars.get("customer.found") or not isinstance(customer, str) or not customer:
            self.path(self.flow.name, node.id, VERIFY, "no customer")
            return self.not_verified(node, "no customer to verify")
        if self.vars.get("caller.verified"):
            self.path(self.flow.name, node.id, VERIFY, "already verified")
            return self.goto(node.next)
        self.ask_keys(node)

    def got_secret(self, node: VerifyNode, result: Any) -> None:
        self.quiet = 0
        text, ok = clean_input(result)
        if not text:
            self.path(self.flow.name, node.id, TIMEOUT)
            return self.retry(node, node.timeout_prompt)
        shown = "*" * len(text)
        if not (ok and node.min_length <= len(text) <= node.max_length and all(c in "0123456789" for c in text)):
            self.path(self.flow.name, node.id, INVALID, shown)
            return self.retry(node, node.invalid_prompt)
        self.path(self.flow.name, node.id, DIGITS, shown)
        self.request("verify", cmd.VerifySecret(str(self.vars["customer.id"]), text))

    def got_verify(self, node: VerifyNode, result: Any) -> None:
        if result == cmd.VERIFIED:
            self.path(self.flow.name, node.id, VERIFY, "verified")
            self.vars["caller.verified"] = True
            return self.goto(node.next)
        if result == cmd.WRONG:
            self.path(self.flow.name, node.id, VERIFY, "wrong")
            return self.retry(node, node.invalid_prompt)
        if result == cmd.LOCKED:
            self.path(self.flow.name, node.id, VERIFY, "locked")
            if node.locked_prompt:
                self.out.append(cmd.Play(node.locked_prompt))
            if node.locked:
                return self.goto(node.locked)
            return self.not_verified(node, "the customer is locked out of self-service")
        event = "no secret" if result == cmd.NO_SECRET else "CRM unavailable"
        self.path(self.flow.name, node.id, VERIFY, event)
        self.not_verified(node, f"cannot verify the caller ({event})")

    def not_verified(self, node: VerifyNode, reason: str) -> None:
        if node.fallback:
            return self.goto(node.fallback)
        self.finish(cmd.FALLBACK, f"{self.flow.name}:{node.id}: {reason}")

    def enter_lookup(self, node: LookupNode) -> None:
        key = self.evaluate(node.key) if node.key is not None else self.vars.get("ani")
        key = str(key) if isinstance(key, (str, int)) and not isinstance(key, bool) else ""
        if not _LOOKUP_KEY.fullmatch(key):
            self.path(self.flow.name, node.id, LOOKUP, "no usable key")
            return self.goto(node.not_found)
        self.request("lookup", cmd.Lookup(node.by, key))

    def got_lookup(self, node: LookupNode, result: Any) -> None:
        found = isinstance(result, Mapping)
        if found:
            self.apply_customer(result)
            for variable, name in node.assign:
                self.vars[variable] = _scalar(result.get(name))
        self.path(self.flow.name, node.id, LOOKUP, "found" if found else "not found")
        self.goto(node.found if found else node.not_found)

    def apply_customer(self, record: Any) -> bool:
        if not isinstance(record, Mapping):
            return False
        if _scalar(record.get("id"), text=True) != self.vars.get("customer.id"):
            self.vars["caller.verified"] = False  # verified as someone else
        self.vars["customer.found"] = True
        for name, kind in CUSTOMER_FIELDS.items():
            raw = record.get(name)
            self.vars[f"customer.{name}"] = as_amount(raw) if kind is Decimal else _scalar(raw, text=True)
        return True

    def enter_condition(self, node: ConditionNode) -> None:
        queues = tuple(dict.fromkeys(q for expr, _ in node.branches for q in expr.queues()))
        if queues:
            return self.request("queue-stats", cmd.QueueStats(queues))
        self.choose(node)

    def got_queue_stats(self, node: ConditionNode, result: Any) -> None:
        counts = result if isinstance(result, Mapping) else {}
        self.counts = {str(q): int(n) for q, n in counts.items() if isinstance(n, int) and not isinstance(n, bool)}
        self.choose(node)

    def choose(self, node: ConditionNode) -> None:
        for expr, target in node.branches:
            if truthy(self.evaluate(expr)):
                return self.goto(target)
        self.goto(node.otherwise)

    def enter_set(self, node: SetNode) -> None:
        before = self.vars["language"]
        for name, value in (("queue", node.queue), ("skills", node.skills), ("priority", node.priority),
                            ("language", node.language)):
            if value is not None:
                self.vars[name] = list(value) if name == "skills" else value
        for name, expr in node.assign:
            self.vars[name] = _checked_handoff_value(name, self.evaluate(expr))
        if self.vars["language"] != before:
            self.out.append(cmd.SetLanguage(self.vars["language"]))
        self.goto(node.next)

    def enter_queue(self, node: QueueNode) -> None:
        queue = node.queue or self.vars.get("queue")
        if not queue:
            return self.fail("no queue chosen before the queue node")
        skills = node.skills if node.skills is not None else tuple(self.vars.get("skills") or ())
        priority = node.priority if node.priority is not None else int(self.vars.get("priority") or 0)
        tier = self.vars.get("customer.tier")
        priority = max(priority, self.flow.tier_priority.get(tier, 0) if isinstance(tier, str) else 0)
        self.handoff = cmd.HandOff(str(queue), tuple(skills), min(max(priority, 0), MAX_PRIORITY),
                                   str(self.vars["language"]))
        self.out.append(self.handoff)
        self.finish(cmd.QUEUE)

    def enter_transfer(self, node: TransferNode) -> None:
        if not dialpatterns.allowed(self.context.transfer_allow, node.target):
            return self.fail(f"transfer to {node.target!r} is not allow-listed")
        self.transfer = node.target
        self.out.append(cmd.Transfer(node.target))
        self.finish(cmd.TRANSFER)

    def enter_voicemail(self, node: VoicemailNode) -> None:
        self.out.append(cmd.Voicemail(node.mailbox))
        self.finish(cmd.VOICEMAIL)

    def enter_callback(self, node: CallbackNode) -> None:
        value = self.evaluate(node.number)
        number = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not _CALLBACK_NUMBER.fullmatch(number):
            self.path(self.flow.name, node.id, INVALID, "no usable callback number")
            return self.goto(node.failed or node.next)
        customer = self.vars.get("customer.id")
        self.request("callback", cmd.RecordCallback(number, customer, self.flow.name, node.queue, self.write_key()))

    def got_callback(self, node: CallbackNode, result: Any) -> None:
        self.vars["callback.id"] = _scalar(result, text=True)
        self.goto(node.next if result else (node.failed or node.next))

    def enter_ticket(self, node: TicketNode) -> None:
        self.request("ticket", cmd.OpenTicketDraft(node.category, node.summary, self.vars.get("customer.id"),
                                                   self.context.ani, self.write_key()))

    def got_ticket(self, node: TicketNode, result: Any) -> None:
        self.vars["ticket.id"] = _scalar(result, text=True)
        self.goto(node.next)

    def enter_hangup(self, node: HangupNode) -> None:
        self.out.append(cmd.Hangup())
        self.finish(cmd.DONE)

    def enter_goto(self, node: GotoNode) -> None:
        if node.node:
            return self.goto(node.node)
        self.switch(node.flow)

    def enter_subflow(self, node: SubflowNode) -> None:
        if len(self.stack) >= MAX_SUBFLOW_DEPTH:
            return self.fail(f"subflows nested deeper than {MAX_SUBFLOW_DEPTH}")
        self.stack = self.stack + ((self.flow, node.next),)
        self.switch(node.flow)

    def enter_return(self, node: ReturnNode) -> None:
        if not self.stack:
            return self.finish(cmd.DONE)
        (self.flow, target), self.stack = self.stack[-1], self.stack[:-1]
        self.goto(target)

    def switch(self, name: str) -> None:
        flow = self.context.flows.get(name)
        if flow is None:
            return self.fail(f"no flow {name!r}")
        for variable, default in flow.variables.items():
            self.vars.setdefault(variable, default)
        self.flow = flow
        self.goto(flow.start)


def _scalar(value: Any, *, text: bool = False) -> Any:
    """A CRM value reduced to what expressions handle (bounded text, numbers, booleans)."""
    if value is None:
        return None
    if isinstance(value, (bool, int, Decimal)) and not text:
        return value
    if isinstance(value, float) and not text:
        return as_amount(value)
    return str(value)[:200]


def _checked_handoff_value(name: str, value: Any) -> Any:
    """Values given to the hand-off variables by expressions must fit the dialplan."""
    if name == "language" and not (isinstance(value, str) and _LANGUAGE.fullmatch(value)):
        raise EvalError(f"{value!r} is not a language code like en or zh")
    if name == "queue" and not (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value)):
        raise EvalError(f"{value!r} is not a queue name")
    if name == "priority":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
            raise EvalError(f"{value!r} is not a whole-number priority")
        return int(value)
    if name == "skills":
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list) and all(isinstance(s, str) and re.fullmatch(r"[a-z0-9_-]{1,32}", s)
                                                 for s in value)):
            raise EvalError(f"{value!r} is not a list of skills")
    return value
