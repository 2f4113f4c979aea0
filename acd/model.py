"""The ACD's vocabulary: agent states, queue rules, agent profiles, waiting calls.

Pure data, no I/O.  Times are seconds on the clock the caller injects
(``now`` arguments); durations are seconds.  The binding to Asterisk
(``callcenter/acd_service.py``) builds these from the CRM configuration.

Priorities follow Asterisk's ``QUEUE_PRIO``: a larger number is served
first (the VIP line is 10, ordinary callers 0, callbacks below them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal


class AgentState(str, enum.Enum):
    LOGGED_OUT = "logged-out"
    READY = "ready"
    NOT_READY = "not-ready"   # with a reason code: break, lunch, training, missed, login, ...
    RESERVED = "reserved"     # a call is offered to the agent: the phone rings
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"


#: Every allowed move of an agent's state; anything else raises ``InvalidTransition``.
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    AgentState.LOGGED_OUT: frozenset({AgentState.READY, AgentState.NOT_READY}),
    AgentState.READY: frozenset({AgentState.NOT_READY, AgentState.RESERVED, AgentState.ON_CALL,
                                 AgentState.LOGGED_OUT}),
    AgentState.NOT_READY: frozenset({AgentState.READY, AgentState.NOT_READY, AgentState.ON_CALL,
                                     AgentState.LOGGED_OUT}),
    AgentState.RESERVED: frozenset({AgentState.ON_CALL, AgentState.NOT_READY, AgentState.READY,
                                    AgentState.LOGGED_OUT}),   # a logout requested while it rang
    # Straight out of a call when the queue has no wrap-up (ready, or what was asked meanwhile).
    AgentState.ON_CALL: frozenset({AgentState.WRAP_UP, AgentState.READY, AgentState.NOT_READY,
                                   AgentState.LOGGED_OUT}),
    AgentState.WRAP_UP: frozenset({AgentState.READY, AgentState.NOT_READY, AgentState.WRAP_UP,
                                   AgentState.LOGGED_OUT, AgentState.ON_CALL}),
}

#: Reason codes the ACD itself gives.
REASON_MISSED = "missed"      # an offered call rang out, was refused (busy) or could not ring
REASON_LOGIN = "login"        # just logged in, not yet ready
REASON_FORCED = "forced"      # a supervisor or operator set the state

Strategy = Literal["longest-idle", "fewest-calls", "best-skill", "round-robin"]
STRATEGIES: tuple[str, ...] = ("longest-idle", "fewest-calls", "best-skill", "round-robin")
#: What happens to a caller at max wait, or when nobody with the skills is logged in and the rule says so.
FallbackAction = Literal["voicemail", "callback", "queue"]
FALLBACK_ACTIONS: tuple[str, ...] = ("voicemail", "callback", "queue")
NoAgentsRule = Literal["wait", "overflow", "fallback"]
NO_AGENTS_RULES: tuple[str, ...] = ("wait", "overflow", "fallback")
Engine = Literal["daemon", "asterisk"]
CallKind = Literal["call", "callback"]

Skills = tuple[tuple[str, int], ...]   # ((skill, minimum or actual proficiency 1-5), ...), sorted by skill


@dataclass(frozen=True, slots=True)
class QueueRules:
    """How one queue routes; the CRM's queue row.

    ``relax_after``: after that many seconds of waiting the call's minimum
    proficiencies drop to ``relaxed_proficiency`` (the skills stay required).
    ``overflow_after``: after that many seconds the call may also be taken by
    members of ``overflow_to`` (with that queue's own required skills).
    ``max_wait``: the caller leaves with ``on_max_wait``.
    ``no_agents``: on arrival, when no logged-in member of the queue has the
    skills: ``wait``, ``overflow`` at once, or ``fallback`` at once.
    ``groups``: the supervisors' groups that see the queue (routing ignores them).
    """

    name: str
    strategy: Strategy = "longest-idle"
    skills: Skills = ()
    engine: Engine = "daemon"
    ring_seconds: float = 15.0
    wrap_up_seconds: float = 10.0
    service_level_seconds: float = 20.0
    relax_after: float | None = None
    relaxed_proficiency: int = 1
    overflow_after: float | None = None
    overflow_to: str | None = None
    max_wait: float | None = None
    on_max_wait: FallbackAction = "voicemail"
    no_agents: NoAgentsRule = "wait"
    callback_priority: int = -1
    callback_retries: int = 3
    callback_spacing: float = 600.0
    sticky_days: int = 0
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent's configuration: phone, skills, queues (queue -> penalty; lower is asked first), and the
    groups whose supervisors see the agent (routing ignores them)."""

    agent: str
    interface: str | None = None
    skills: Skills = ()
    queues: tuple[tuple[str, int], ...] = ()
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AcdSetup:
    """Everything configurable, swapped as a whole by ``ConfigChanged``."""

    queues: tuple[QueueRules, ...] = ()
    agents: tuple[AgentProfile, ...] = ()

    def queue(self, name: str) -> QueueRules | None:
        return next((q for q in self.queues if q.name == name), None)


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as the distributor sees it now (read-only snapshot)."""

    agent: str
    state: AgentState
    reason: str | None
    since: float
    interface: str | None
    queues: tuple[str, ...]
    call_id: str | None = None
    device_busy: bool = False
    calls_handled: int = 0
    pending: AgentState | None = None        # requested while on a call, applied after it
    pending_reason: str | None = None
    wrap_up_until: float | None = None
    idle_since: float | None = None          # when the agent last became free (ready)
    call_queue: str | None = None            # the queue the current call was offered through


@dataclass(frozen=True, slots=True)
class CallView:
    """A call the distributor holds: waiting, or offered to ``agent``."""

    call_id: str
    queue: str
    kind: CallKind
    priority: int
    skills: Skills
    enqueued_at: float
    queues: tuple[str, ...] = ()              # the original queue plus overflow queues reached
    agent: str | None = None                 # offered to (ringing)
    offered_at: float | None = None
    preferred_agent: str | None = None
    tried: tuple[str, ...] = ()               # agents that missed this call
    callback_id: str | None = None
    relaxed: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The distributor's whole state at ``at``: what a takeover or a restart restores from."""

    at: float
    agents: tuple[AgentView, ...] = ()
    calls: tuple[CallView, ...] = ()
    round_robin: tuple[tuple[str, str], ...] = field(default=())  # queue -> last agent picked
