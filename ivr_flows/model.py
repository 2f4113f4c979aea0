"""The flow model: frozen data the loader builds and the engine reads.

A :class:`Flow` is a set of named nodes.  Every node knows where it was
written (:class:`Position`) and its outgoing :class:`Edge` s, each with the
position of the field that names the target, so the validator can point at
the exact line of a dangling ``next``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from ivr_flows.expressions import Expression


@dataclass(frozen=True, order=True)
class Position:
    """1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class FlowError:
    """One problem found in a file, with a plain reason."""

    file: str
    line: int
    column: int
    message: str

    @classmethod
    def at(cls, pos: Position, message: str) -> "FlowError":
        return cls(pos.file, pos.line, pos.column, message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class Edge:
    """``label`` (``next``, a digit, ``if #2``...) leads to node ``target``."""

    label: str
    target: str
    pos: Position


@dataclass(frozen=True)
class Say:
    """One thing a play node says: a prompt file, or digits/number/currency of an expression."""

    kind: str  # prompt | digits | number | currency
    prompt: str = ""
    expr: Expression | None = None


@dataclass(frozen=True)
class Currency:
    """Prompts spoken after the whole units and after the cents of an amount."""

    unit_prompt: str = "dollars"
    cents_prompt: str = "cents"


@dataclass(frozen=True, kw_only=True)
class Node:
    id: str
    pos: Position
    edges: tuple[Edge, ...] = ()
    type: ClassVar[str] = ""
    #: True when the call can end at this node (hand-off, hang-up, return,
    #: jump to another flow, or a retry limit that falls back to an agent).
    exits: ClassVar[bool] = False

    def can_exit(self) -> bool:
        return self.exits


@dataclass(frozen=True, kw_only=True)
class PlayNode(Node):
    type: ClassVar[str] = "play"
    items: tuple[Say, ...]
    next: str


@dataclass(frozen=True, kw_only=True)
class MenuNode(Node):
    type: ClassVar[str] = "menu"
    prompts: tuple[str, ...]
    choices: tuple[tuple[str, str], ...]
    timeout_ms: int = 5000
    max_tries: int = 3
    invalid_prompt: str = ""
    timeout_prompt: str = ""
    fallback: str = ""  # empty: the dialplan's fallback queue

    def can_exit(self) -> bool:
        return not self.fallback


@dataclass(frozen=True, kw_only=True)
class CollectNode(Node):
    type: ClassVar[str] = "collect"
    prompts: tuple[str, ...]
    into: str
    min_length: int = 1
    max_length: int = 20
    terminator: str = "#"
    allow_star: bool = False
    mask: bool = False
    timeout_ms: int = 5000
    max_tries: int = 3
    validate: Expression | None = None
    invalid_prompt: str = ""
    timeout_prompt: str = ""
    next: str
    fallback: str = ""

    def can_exit(self) -> bool:
        return not self.fallback


@dataclass(frozen=True, kw_only=True)
class VerifyNode(Node):
    """Ask for the customer's secret (a PIN, or the last digits of their ID number) and have the CRM check it."""

    type: ClassVar[str] = "verify"
    prompts: tuple[str, ...]
    min_length: int = 4
    max_length: int = 4
    timeout_ms: int = 5000
    max_tries: int = 3
    invalid_prompt: str = ""  # a wrong secret, or keys that cannot be one
    timeout_prompt: str = ""
    locked_prompt: str = ""  # the CRM says: too many wrong tries, self-service is locked
    next: str  # verified
    fallback: str = ""  # not verified; empty: the dialplan's fallback queue
    locked: str = ""  # locked out; empty: same as fallback

    def can_exit(self) -> bool:
        return not self.fallback


@dataclass(frozen=True, kw_only=True)
class LookupNode(Node):
    type: ClassVar[str] = "lookup"
    by: str  # ani | account
    key: Expression | None = None
    assign: tuple[tuple[str, str], ...] = ()  # (variable, CRM field)
    found: str
    not_found: str


@dataclass(frozen=True, kw_only=True)
class ConditionNode(Node):
    type: ClassVar[str] = "condition"
    branches: tuple[tuple[Expression, str], ...]
    otherwise: str


@dataclass(frozen=True, kw_only=True)
class SetNode(Node):
    type: ClassVar[str] = "set"
    queue: str | None = None
    skills: tuple[str, ...] | None = None
    priority: int | None = None
    language: str | None = None
    assign: tuple[tuple[str, Expression], ...] = ()
    next: str


@dataclass(frozen=True, kw_only=True)
class QueueNode(Node):
    type: ClassVar[str] = "queue"
    exits: ClassVar[bool] = True
    queue: str | None = None
    skills: tuple[str, ...] | None = None
    priority: int | None = None


@dataclass(frozen=True, kw_only=True)
class TransferNode(Node):
    type: ClassVar[str] = "transfer"
    exits: ClassVar[bool] = True
    target: str


@dataclass(frozen=True, kw_only=True)
class VoicemailNode(Node):
    type: ClassVar[str] = "voicemail"
    exits: ClassVar[bool] = True
    mailbox: str


@dataclass(frozen=True, kw_only=True)
class CallbackNode(Node):
    type: ClassVar[str] = "callback"
    number: Expression
    queue: str | None = None
    next: str
    failed: str = ""  # empty: same as next


@dataclass(frozen=True, kw_only=True)
class TicketNode(Node):
    type: ClassVar[str] = "ticket"
    category: str
    summary: str = ""
    next: str


@dataclass(frozen=True, kw_only=True)
class HangupNode(Node):
    type: ClassVar[str] = "hangup"
    exits: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class GotoNode(Node):
    type: ClassVar[str] = "goto"
    node: str = ""
    flow: str = ""

    def can_exit(self) -> bool:
        return bool(self.flow)


@dataclass(frozen=True, kw_only=True)
class SubflowNode(Node):
    type: ClassVar[str] = "subflow"
    flow: str
    next: str


@dataclass(frozen=True, kw_only=True)
class ReturnNode(Node):
    type: ClassVar[str] = "return"
    exits: ClassVar[bool] = True


NODE_CLASSES: Mapping[str, type[Node]] = {
    cls.type: cls for cls in (
        PlayNode, MenuNode, CollectNode, VerifyNode, LookupNode, ConditionNode, SetNode, QueueNode,
        TransferNode, VoicemailNode, CallbackNode, TicketNode, HangupNode, GotoNode,
        SubflowNode, ReturnNode,
    )
}
NODE_TYPES = tuple(NODE_CLASSES)


@dataclass(frozen=True)
class Flow:
    """One flow file, validated."""

    name: str
    file: str
    start: str
    nodes: Mapping[str, Node]
    language: str = "en"
    description: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    tier_priority: Mapping[str, int] = field(default_factory=dict)
    currency: Currency = Currency()
    #: sha256 of the file text, and the history version it was stored as.
    digest: str = ""
    version: int = 0


#: CRM fields copied into ``customer.*`` variables, with their types.
CUSTOMER_FIELDS: Mapping[str, type] = {
    "id": str, "name": str, "tier": str, "balance": Decimal, "arrears": Decimal,
    "account": str, "language": str,
}

#: Variables every flow can read.  The first group is read-only: ``route.trusted_callerid`` is the
#: route's flag in routes.yaml, ``caller.verified`` is set by a verify node.
READ_ONLY_VARIABLES = frozenset({"ani", "dnis", "call_id", "customer.found", "ticket.id", "callback.id",
                                 "route.trusted_callerid", "caller.verified"}
                                | {f"customer.{name}" for name in CUSTOMER_FIELDS})
HANDOFF_VARIABLES = frozenset({"language", "queue", "skills", "priority"})
BUILTIN_VARIABLES = READ_ONLY_VARIABLES | HANDOFF_VARIABLES
