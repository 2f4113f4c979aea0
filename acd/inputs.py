"""What the distributor is told: agent commands and call facts.

``Distributor.handle(input, now) -> list[effect]``.  Agent commands come from
the desktop, the CLI or a supervisor; call facts come from the binding, which
learns them from AMI (``acd.events``) and from the IVR's hand-off.  A command
that is not allowed now (``SetReady`` for a logged-out agent, ``Login`` of an
unknown agent) raises ``acd.errors.AcdError`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from acd.model import AcdSetup, CallKind, Skills

MissReason = Literal["noanswer", "busy", "unavailable"]


@dataclass(frozen=True, slots=True)
class Login:
    """Log in with a device; ``queues`` None means the agent's configured queues."""

    agent: str
    interface: str | None = None
    queues: tuple[str, ...] | None = None
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Logout:
    """Log out; on a call (or reserved), it takes effect when the call ends."""

    agent: str


@dataclass(frozen=True, slots=True)
class SetReady:
    agent: str


@dataclass(frozen=True, slots=True)
class SetNotReady:
    """Not ready with a reason; on a call (or reserved), it takes effect after the call."""

    agent: str
    reason: str = "break"


@dataclass(frozen=True, slots=True)
class ExtendWrapUp:
    agent: str
    seconds: float


@dataclass(frozen=True, slots=True)
class EndWrapUp:
    """The agent finished wrap-up early: ready (or the pending state)."""

    agent: str


@dataclass(frozen=True, slots=True)
class DeviceBusy:
    """The agent's phone is busy (or free again) with a call the ACD did not route."""

    agent: str
    busy: bool


@dataclass(frozen=True, slots=True)
class Enqueue:
    """A call (or a callback request) starts waiting for an agent of ``queue``.

    ``skills`` None means the queue's required skills.  ``priority`` None means
    0 for a call and the queue's ``callback_priority`` for a callback.
    """

    call_id: str
    queue: str
    skills: Skills | None = None
    priority: int | None = None
    kind: CallKind = "call"
    preferred_agent: str | None = None
    callback_id: str | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    """The offered agent answered: the conversation starts."""

    call_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class Missed:
    """The offer failed: ring-no-answer, busy (486), or the phone could not ring."""

    call_id: str
    agent: str
    reason: MissReason


@dataclass(frozen=True, slots=True)
class Gone:
    """The call ended or left the ACD (caller hung up, sent elsewhere) wherever it was."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Released:
    """The conversation of ``agent`` ended (either side hung up): the agent goes to wrap-up."""

    call_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    setup: AcdSetup


Input = Union[Login, Logout, SetReady, SetNotReady, ExtendWrapUp, EndWrapUp, DeviceBusy,
              Enqueue, Answered, Missed, Gone, Released, ConfigChanged]
