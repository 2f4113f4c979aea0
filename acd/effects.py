"""What the distributor asks the outside world to do, or tells it happened.

The binding turns ``Offer`` into AMI actions (Setvar + Redirect into
``cc-connect``, or an Originate for a callback) and ``Fallback`` into a
Redirect to the queue's fallback; ``AgentChanged`` feeds the desktop, the
statistics, Redis and the pause state of the agent in Asterisk's fallback
queue.  Effects are plain data; the distributor never waits for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from acd.model import AgentState, CallKind, FallbackAction


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent`` on ``interface`` with ``call_id`` for at most ``ring_seconds``."""

    call_id: str
    agent: str
    interface: str
    queue: str
    ring_seconds: float
    kind: CallKind = "call"
    callback_id: str | None = None
    wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """Every state transition of an agent, with the time it was in the old one."""

    agent: str
    state: AgentState
    reason: str | None
    previous: AgentState
    previous_reason: str | None
    seconds_in_previous: float
    at: float
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Fallback:
    """The call leaves the ACD: ``max-wait`` or ``no-agents``; do ``action`` with it."""

    call_id: str
    queue: str
    reason: Literal["max-wait", "no-agents"]
    action: FallbackAction
    wait_seconds: float
    kind: CallKind = "call"
    callback_id: str | None = None


@dataclass(frozen=True, slots=True)
class Overflowed:
    """The call may now also be answered by members of ``to_queue``."""

    call_id: str
    from_queue: str
    to_queue: str
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class Relaxed:
    """The call's minimum proficiencies were lowered after waiting ``wait_seconds``."""

    call_id: str
    queue: str
    wait_seconds: float


Effect = Union[Offer, AgentChanged, Fallback, Overflowed, Relaxed]
