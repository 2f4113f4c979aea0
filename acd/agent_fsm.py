"""One agent's lifecycle: an explicit state machine over ``model.TRANSITIONS``.

Each function checks everything first and only then changes the agent, so a
refused command (``AcdError``) leaves it as it was.  Every change of state is
one ``move``, which returns the ``AgentChanged`` effect describing it.

A request that cannot be honoured during a call (not ready, log out) is kept
as ``pending`` and applied when the call is over: when the offer ends
(missed, caller gone), or when wrap-up ends after a conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from acd.effects import AgentChanged
from acd.errors import AcdError, InvalidTransition
from acd.model import REASON_LOGIN, REASON_MISSED, TRANSITIONS, AgentState, AgentView

LOGGED_OUT, READY, NOT_READY = AgentState.LOGGED_OUT, AgentState.READY, AgentState.NOT_READY
RESERVED, ON_CALL, WRAP_UP = AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP
IDLE = frozenset({READY, NOT_READY})
BUSY = frozenset({RESERVED, ON_CALL})
#: Wrap-up can be extended up to this many seconds from now, no further.
MAX_WRAP_UP = 3600.0


@dataclass(slots=True, eq=False)
class Agent:
    """The distributor's live record of one agent; ``view()`` is its read-only copy.

    ``order`` is the agent's login order (round-robin and ties follow it).
    ``call_queue`` is the queue through which the agent's current call was
    offered: its wrap-up time is that queue's.
    """

    agent: str
    since: float
    order: int
    state: AgentState = LOGGED_OUT
    reason: str | None = None
    interface: str | None = None
    queues: tuple[str, ...] = ()
    call_id: str | None = None
    call_queue: str | None = None
    device_busy: bool = False
    calls_handled: int = 0
    pending: AgentState | None = None
    pending_reason: str | None = None
    wrap_up_until: float | None = None
    idle_since: float | None = None

    @property
    def available(self) -> bool:
        """Ready, phone free and holding no call: may be offered a call."""
        return self.state is READY and not self.device_busy and self.call_id is None

    def view(self) -> AgentView:
        return AgentView(
            agent=self.agent, state=self.state, reason=self.reason, since=self.since,
            interface=self.interface, queues=self.queues, call_id=self.call_id,
            device_busy=self.device_busy, calls_handled=self.calls_handled, pending=self.pending,
            pending_reason=self.pending_reason, wrap_up_until=self.wrap_up_until,
            idle_since=self.idle_since, call_queue=self.call_queue)

    @classmethod
    def from_view(cls, view: AgentView, order: int) -> Agent:
        idle_since = view.idle_since
        if view.state is READY and idle_since is None:
            idle_since = view.since
        return cls(
            agent=view.agent, since=view.since, order=order, state=view.state, reason=view.reason,
            interface=view.interface, queues=tuple(view.queues), call_id=view.call_id,
            call_queue=view.call_queue, device_busy=view.device_busy,
            calls_handled=view.calls_handled, pending=view.pending,
            pending_reason=view.pending_reason, wrap_up_until=view.wrap_up_until,
            idle_since=idle_since)


def check(agent: Agent, to: AgentState) -> None:
    """Raise ``InvalidTransition`` unless the table allows ``agent`` to go to ``to``."""
    if to not in TRANSITIONS[agent.state]:
        raise InvalidTransition(f"agent {agent.agent} is {agent.state.value}: "
                                f"cannot become {to.value}")


def move(agent: Agent, to: AgentState, reason: str | None, now: float,
         call_id: str | None = None) -> AgentChanged:
    """The one place an agent changes state; returns the effect that says so."""
    check(agent, to)
    change = AgentChanged(agent=agent.agent, state=to, reason=reason, previous=agent.state,
                          previous_reason=agent.reason, seconds_in_previous=max(0.0, now - agent.since),
                          at=now, call_id=call_id)
    agent.state, agent.reason, agent.since = to, reason, now
    return change


def _require_logged_in(agent: Agent) -> None:
    if agent.state is LOGGED_OUT:
        raise AcdError(f"agent {agent.agent} is not logged in")


def _settle(pending: AgentState | None, reason: str | None) -> tuple[AgentState, str | None]:
    """Where an agent goes when its call is over: the pending request, else ready."""
    if pending is None:
        return READY, None
    return pending, reason


def _leave_call(agent: Agent, to: AgentState, reason: str | None, now: float,
                call_id: str | None, keep_idle: bool = False) -> AgentChanged:
    """Move out of a call (offer, conversation or wrap-up) and forget it."""
    change = move(agent, to, reason, now, call_id)
    agent.call_id = agent.call_queue = None
    agent.pending = agent.pending_reason = None
    agent.wrap_up_until = None
    if to is READY and not (keep_idle and agent.idle_since is not None):
        agent.idle_since = now
    if to is LOGGED_OUT:
        agent.queues = ()
    return change


# -- commands -----------------------------------------------------------------

def login(agent: Agent, interface: str, queues: tuple[str, ...], ready: bool, order: int,
          now: float) -> list[AgentChanged]:
    """Log in (checked by the caller: profile, interface, queues); a logged-in idle agent is updated."""
    if agent.state is not LOGGED_OUT:
        if agent.state not in IDLE:
            raise AcdError(f"agent {agent.agent} is {agent.state.value}: "
                           f"log in again when ready or not ready")
        agent.interface, agent.queues = interface, queues
        if ready and agent.state is NOT_READY:
            change = move(agent, READY, None, now)
            agent.idle_since = now
            return [change]
        return []
    target = READY if ready else NOT_READY
    check(agent, target)
    change = move(agent, target, None if ready else REASON_LOGIN, now)
    agent.interface, agent.queues, agent.order = interface, queues, order
    agent.pending = agent.pending_reason = None
    agent.call_id = agent.call_queue = agent.wrap_up_until = None
    agent.idle_since = now if ready else None
    return [change]


def set_ready(agent: Agent, now: float) -> list[AgentChanged]:
    """Ready now; during a call it cancels a pending not-ready or logout."""
    _require_logged_in(agent)
    if agent.state in BUSY:
        agent.pending = agent.pending_reason = None
        return []
    if agent.state is READY:
        return []
    return [_leave_call(agent, READY, None, now, agent.call_id)]


def set_not_ready(agent: Agent, reason: str, now: float) -> list[AgentChanged]:
    """Not ready with ``reason`` now, or after the current call."""
    _require_logged_in(agent)
    if not reason:
        raise AcdError(f"agent {agent.agent}: a not-ready reason is needed")
    if agent.state in BUSY:
        agent.pending, agent.pending_reason = NOT_READY, reason
        return []
    if agent.state is NOT_READY and agent.reason == reason:
        return []
    return [_leave_call(agent, NOT_READY, reason, now, agent.call_id)]


def logout(agent: Agent, now: float) -> list[AgentChanged]:
    """Log out now, or after the current call."""
    _require_logged_in(agent)
    if agent.state in BUSY:
        agent.pending, agent.pending_reason = LOGGED_OUT, None
        return []
    return [_leave_call(agent, LOGGED_OUT, None, now, agent.call_id)]


def extend_wrap_up(agent: Agent, seconds: float, now: float) -> list[AgentChanged]:
    """Push the end of wrap-up back by ``seconds``; no effect, the view shows the new end."""
    if agent.state is not WRAP_UP or agent.wrap_up_until is None:
        raise InvalidTransition(f"agent {agent.agent} is {agent.state.value}, not in wrap-up")
    if not seconds > 0:
        raise AcdError(f"agent {agent.agent}: wrap-up can only be extended by a positive time")
    until = agent.wrap_up_until + seconds
    if until - now > MAX_WRAP_UP:
        raise AcdError(f"agent {agent.agent}: wrap-up may last at most {MAX_WRAP_UP:g} s from now")
    agent.wrap_up_until = until
    return []


def end_wrap_up(agent: Agent, now: float) -> list[AgentChanged]:
    """Wrap-up is over (timer or the agent): ready, or the pending state."""
    if agent.state is not WRAP_UP:
        raise InvalidTransition(f"agent {agent.agent} is {agent.state.value}, not in wrap-up")
    to, reason = _settle(agent.pending, agent.pending_reason)
    return [_leave_call(agent, to, reason, now, agent.call_id)]


# -- call facts ---------------------------------------------------------------

def reserve(agent: Agent, call_id: str, queue: str, now: float) -> list[AgentChanged]:
    """A call is offered to the agent: its phone rings."""
    if not agent.available:
        raise InvalidTransition(f"agent {agent.agent} cannot be offered a call now")
    change = move(agent, RESERVED, None, now, call_id)
    agent.call_id, agent.call_queue = call_id, queue
    return [change]


def _require_call(agent: Agent, state: AgentState, call_id: str) -> None:
    if agent.state is not state or agent.call_id != call_id:
        held = f" with call {agent.call_id}" if agent.call_id else ""
        raise InvalidTransition(f"agent {agent.agent} is {agent.state.value}{held}, "
                                f"not {state.value} with call {call_id}")


def answer(agent: Agent, call_id: str, now: float) -> list[AgentChanged]:
    _require_call(agent, RESERVED, call_id)
    return [move(agent, ON_CALL, None, now, call_id)]


def offer_ended(agent: Agent, call_id: str, missed: bool, now: float) -> list[AgentChanged]:
    """The offer is over without a conversation.

    Missed: not ready ("missed"), unless the agent asked for something else
    meanwhile.  Caller gone: back to ready keeping its idle time, or pending.
    """
    _require_call(agent, RESERVED, call_id)
    if agent.pending is not None:
        to, reason = agent.pending, agent.pending_reason
    elif missed:
        to, reason = NOT_READY, REASON_MISSED
    else:
        to, reason = READY, None
    return [_leave_call(agent, to, reason, now, call_id, keep_idle=True)]


def release(agent: Agent, call_id: str, wrap_up_seconds: float, now: float) -> list[AgentChanged]:
    """The conversation ended: wrap-up, or straight on when the queue has none."""
    _require_call(agent, ON_CALL, call_id)
    if wrap_up_seconds > 0:
        change = move(agent, WRAP_UP, None, now, call_id)
        agent.wrap_up_until = now + wrap_up_seconds
        agent.calls_handled += 1
        return [change]
    to, reason = _settle(agent.pending, agent.pending_reason)
    check(agent, to)
    agent.calls_handled += 1
    return [_leave_call(agent, to, reason, now, call_id)]


def set_device_busy(agent: Agent, busy: bool) -> None:
    """The phone is busy (or free) with a call the ACD did not route; the state stays."""
    agent.device_busy = busy
