"""The ACD's routing core: agent commands and call facts in, effects out.

``Distributor.handle(input, now)`` applies one input and then routes;
``advance(now)`` fires the timers due by ``now`` (end of wrap-up, relaxation,
overflow, max wait, ring guard), each at its own time, routing after each.
The binding calls ``advance`` at ``next_deadline()``.  Nothing here does I/O
or reads a clock: time only comes in as ``now``.

A refused input raises ``AcdError`` (or a subclass) and changes nothing.

Effects come in the order things happened.  An offer is
``AgentChanged(... RESERVED)`` then ``Offer``; a missed offer is the agent's
``AgentChanged`` then the call's next offer (or its ``Fallback``).

Routing keeps one invariant after every input and timer: no waiting call has
an eligible agent.  Only what changed (``_dirty_calls``, ``_dirty_agents``)
is looked at, so a decision costs one short walk of the indexes.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from acd import agent_fsm as fsm
from acd import inputs as inp
from acd.agent_fsm import Agent
from acd.effects import AgentChanged, Effect, Fallback, Offer, Overflowed, Relaxed
from acd.errors import AcdError, UnknownAgent
from acd.model import REASON_MISSED, AcdSetup, AgentState, AgentView, CallView, QueueRules, Snapshot
from acd.routing import Call, ReadyIndex, Router, WaitingIndex, qualifies, relax

#: An offer that got no answer, miss or hang-up by ring_seconds + this is taken as missed.
RING_GUARD = 5.0

# Timer kinds, in the order they fire when due at the same time: an agent
# freed by wrap-up can still take a call that would reach max wait then.
WRAP, RING, RELAX, OVERFLOW, MAX_WAIT = range(5)

_NO_SKILLS: Mapping[str, int] = {}


class Distributor:
    """Agents, waiting and ringing calls, and the timers about them."""

    def __init__(self, setup: AcdSetup, now: float) -> None:
        self.setup = setup
        self._now = now
        self._agents: dict[str, Agent] = {}      # in login order (``Agent.order``)
        self._calls: dict[str, Call] = {}        # in arrival order (``Call.seq``)
        self._next_order = 0
        self._next_seq = 0
        self._round_robin: dict[str, str] = {}
        self._ready = ReadyIndex()
        self._waiting = WaitingIndex()
        self._members: dict[str, dict[str, None]] = {}           # queue -> logged-in agents
        self._indexed: dict[str, tuple[tuple[tuple[str, int], ...], tuple | None]] = {}
        self._timers: list[tuple[float, int, int, str]] = []     # (when, kind, order, id)
        self._dirty_calls: set[str] = set()
        self._dirty_agents: set[str] = set()
        self._use(setup)
        for profile in setup.agents:
            self._agents[profile.agent] = Agent(profile.agent, since=now, order=self._take_order())
        self._router = Router(self._agents, self._calls, self._ready, self._waiting,
                              self._rule, self._skills_of, self._round_robin)
        self._handlers = {
            inp.Login: self._login, inp.Logout: self._logout, inp.SetReady: self._set_ready,
            inp.SetNotReady: self._set_not_ready, inp.ExtendWrapUp: self._extend_wrap_up,
            inp.EndWrapUp: self._end_wrap_up, inp.DeviceBusy: self._device_busy,
            inp.Enqueue: self._enqueue, inp.Answered: self._answered, inp.Missed: self._missed,
            inp.Gone: self._gone, inp.Released: self._released, inp.ConfigChanged: self._config_changed,
        }

    # -- public API -----------------------------------------------------------

    def handle(self, command: inp.Input, now: float) -> list[Effect]:
        """Apply one input, then route; the effects in order.  Refused: ``AcdError``, nothing changed."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise AcdError(f"not an ACD input: {command!r}")
        now = self._now = max(now, self._now)       # time passes even for a refused input
        effects = handler(command, now)
        effects += self._route(now)
        return effects

    def advance(self, now: float) -> list[Effect]:
        """Fire every timer due at or before ``now``, each at its own time, routing after each."""
        effects: list[Effect] = []
        while True:
            due = self._next_timer()
            if due is None or due[0] > now:
                break
            heapq.heappop(self._timers)
            at = max(due[0], self._now)
            self._now = at
            effects += self._fire(due[1], due[3], at)
            effects += self._route(at)
        self._now = max(self._now, now)
        effects += self._route(self._now)
        return effects

    def next_deadline(self) -> float | None:
        """When ``advance`` next has something to do, or None."""
        due = self._next_timer()
        return due[0] if due is not None else None

    def agent(self, agent: str) -> AgentView | None:
        record = self._agents.get(agent)
        return record.view() if record is not None else None

    def agents(self) -> tuple[AgentView, ...]:
        """Every agent of the setup (and any removed one still on a call), in login order."""
        return tuple(a.view() for a in self._agents.values())

    def calls(self) -> tuple[CallView, ...]:
        """Waiting and ringing calls, in arrival order."""
        return tuple(c.view() for c in self._calls.values())

    def waiting(self, queue: str) -> tuple[CallView, ...]:
        """The calls members of ``queue`` may take (its own and overflowed ones), in service order."""
        return tuple(self._calls[call_id].view() for call_id in self._waiting.ids(queue))

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(at=max(now, self._now), agents=self.agents(), calls=self.calls(),
                        round_robin=tuple(sorted(self._round_robin.items())))

    @classmethod
    def restore(cls, setup: AcdSetup, snapshot: Snapshot, now: float) -> Distributor:
        """A distributor in the snapshot's state, under ``setup``.

        Restore with the setup the snapshot was taken under; if the setup has
        changed since, handle ``ConfigChanged(setup)`` right after: until then
        a queue the setup lacks keeps routing with default rules, and an agent
        it lacks keeps what it has.
        """
        self = cls(AcdSetup(), max(now, snapshot.at))
        self.setup = setup
        self._use(setup)
        for view in snapshot.agents:
            self._agents[view.agent] = Agent.from_view(view, self._take_order())
        for profile in setup.agents:
            if profile.agent not in self._agents:
                self._agents[profile.agent] = Agent(profile.agent, since=self._now,
                                                    order=self._take_order())
        for view in snapshot.calls:
            call = Call.from_view(view, self._take_seq())
            self._calls[call.call_id] = call
            for queue in call.queues:
                if queue not in self._rules:
                    self._rules[queue] = QueueRules(name=queue)
        self._round_robin.update(snapshot.round_robin)
        self._rebuild()
        self._dirty_calls.clear()
        self._dirty_agents.clear()
        return self

    # -- setup ----------------------------------------------------------------

    def _use(self, setup: AcdSetup) -> None:
        self._rules = {q.name: q for q in setup.queues}
        self._queue_names = frozenset(self._rules)
        self._profiles = {p.agent: p for p in setup.agents}
        self._skills = {p.agent: dict(p.skills) for p in setup.agents}
        self._penalties = {p.agent: dict(p.queues) for p in setup.agents}

    def _rule(self, queue: str) -> QueueRules | None:
        return self._rules.get(queue)

    def _skills_of(self, agent: str) -> Mapping[str, int]:
        return self._skills.get(agent, _NO_SKILLS)

    def _take_order(self) -> int:
        self._next_order += 1
        return self._next_order - 1

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq - 1

    # -- indexes and timers ---------------------------------------------------

    def _reindex(self, agent: Agent) -> None:
        """Put ``agent`` where its state says, in the member and ready indexes; call after any change."""
        old = self._indexed.pop(agent.agent, None)
        if old is not None:
            queues, key = old
            for queue, penalty in queues:
                self._members[queue].pop(agent.agent, None)
                if key is not None:
                    self._ready.remove(queue, penalty, key)
        if agent.state is AgentState.LOGGED_OUT:
            if agent.agent not in self._profiles:          # removed from the setup: forget it now
                del self._agents[agent.agent]
            return
        penalties = self._penalties.get(agent.agent, {})
        queues = tuple((queue, penalties.get(queue, 0)) for queue in agent.queues)
        key = (agent.idle_since or 0.0, agent.order, agent.agent) if agent.available else None
        for queue, penalty in queues:
            self._members.setdefault(queue, {})[agent.agent] = None
            if key is not None:
                self._ready.add(queue, penalty, key)
        self._indexed[agent.agent] = (queues, key)
        if key is not None and (old is None or old != (queues, key)):
            self._dirty_agents.add(agent.agent)
        if agent.state is AgentState.WRAP_UP and agent.wrap_up_until is not None:
            heapq.heappush(self._timers, (agent.wrap_up_until, WRAP, agent.order, agent.agent))

    def _rebuild(self) -> None:
        """Every index and timer again from the records (restore, configuration change)."""
        self._ready.clear()
        self._waiting.clear()
        self._members.clear()
        self._indexed.clear()
        self._timers.clear()
        for agent in list(self._agents.values()):
            self._reindex(agent)
        for call in self._calls.values():
            if call.agent is None:
                self._waiting.add(call)
                self._dirty_calls.add(call.call_id)
            self._schedule(call)

    def _call_deadline(self, call: Call, kind: int) -> float | None:
        rules = self._rules.get(call.queue)
        if rules is None:
            return None
        if kind == RING:
            if call.agent is None or call.offered_at is None:
                return None
            agent = self._agents.get(call.agent)
            offered = self._rules.get(agent.call_queue or "") if agent is not None else None
            return call.offered_at + (offered or rules).ring_seconds + RING_GUARD
        if kind == RELAX:
            if call.relaxed or rules.relax_after is None:
                return None
            return call.enqueued_at + rules.relax_after
        if kind == OVERFLOW:
            if (rules.overflow_after is None or rules.overflow_to is None
                    or rules.overflow_to not in self._rules or rules.overflow_to in call.queues):
                return None
            return call.enqueued_at + rules.overflow_after
        if kind == MAX_WAIT:
            if call.agent is not None or rules.max_wait is None:
                return None
            return call.enqueued_at + rules.max_wait
        return None

    def _schedule(self, call: Call, kinds: tuple[int, ...] = (RING, RELAX, OVERFLOW, MAX_WAIT)) -> None:
        for kind in kinds:
            when = self._call_deadline(call, kind)
            if when is not None:
                heapq.heappush(self._timers, (when, kind, call.seq, call.call_id))

    def _timer_valid(self, when: float, kind: int, key: str) -> bool:
        if kind == WRAP:
            agent = self._agents.get(key)
            return (agent is not None and agent.state is AgentState.WRAP_UP
                    and agent.wrap_up_until == when)
        call = self._calls.get(key)
        return call is not None and self._call_deadline(call, kind) == when

    def _next_timer(self) -> tuple[float, int, int, str] | None:
        """The earliest timer still meaningful; stale ones are dropped on the way."""
        while self._timers:
            when, kind, _, key = top = self._timers[0]
            if self._timer_valid(when, kind, key):
                return top
            heapq.heappop(self._timers)
        return None

    def _fire(self, kind: int, key: str, now: float) -> list[Effect]:
        if kind == WRAP:
            agent = self._agents[key]
            effects: list[Effect] = list(fsm.end_wrap_up(agent, now))
            self._reindex(agent)
            return effects
        call = self._calls[key]
        rules = self._rules[call.queue]
        wait = now - call.enqueued_at
        if kind == RING:
            return self._offer_failed(call, call.agent or "", "noanswer", now)
        if kind == RELAX:
            call.relaxed = True
            call.skills = relax(call.skills, rules.relaxed_proficiency)
            if call.agent is None:
                self._dirty_calls.add(call.call_id)
            return [Relaxed(call.call_id, call.queue, wait)]
        if kind == OVERFLOW:
            return self._overflow(call, rules, now)
        self._drop(call)                                       # MAX_WAIT, waiting
        return [self._fallback(call, rules, "max-wait", now)]

    # -- routing --------------------------------------------------------------

    def _route(self, now: float) -> list[Effect]:
        """Match waiting calls and available agents until no pair is left.

        The changed calls, and the best call of each freed agent, are served
        in service order, each by its best agent.  A freed agent whose call
        went to another agent looks again.
        """
        effects: list[Effect] = []
        router = self._router
        while self._dirty_calls or self._dirty_agents:
            candidates = {call_id: self._calls[call_id] for call_id in self._dirty_calls
                          if call_id in self._calls and self._calls[call_id].agent is None}
            self._dirty_calls.clear()
            freed = sorted((self._agents[name] for name in self._dirty_agents if name in self._agents),
                           key=lambda a: a.order)
            self._dirty_agents.clear()
            wanted = []
            for agent in freed:
                call = router.best_call(agent)
                if call is not None:
                    candidates[call.call_id] = call
                    wanted.append(agent)
            for call in sorted(candidates.values(), key=lambda c: c.key):
                picked = router.best_agent(call)
                if picked is not None:
                    effects += self._offer(call, picked[0], picked[1], now)
            self._dirty_agents.update(agent.agent for agent in wanted if agent.available)
        return effects

    def _offer(self, call: Call, agent: Agent, queue: str, now: float) -> list[Effect]:
        rules = self._rules[queue]
        effects: list[Effect] = list(fsm.reserve(agent, call.call_id, queue, now))
        self._waiting.remove(call)
        call.agent, call.offered_at = agent.agent, now
        self._reindex(agent)
        if rules.strategy == "round-robin":
            self._round_robin[queue] = agent.agent
        self._schedule(call, (RING,))
        effects.append(Offer(call_id=call.call_id, agent=agent.agent, interface=agent.interface or "",
                             queue=queue, ring_seconds=rules.ring_seconds, kind=call.kind,
                             callback_id=call.callback_id, wait_seconds=now - call.enqueued_at))
        return effects

    def _offer_failed(self, call: Call, name: str, reason: str, now: float) -> list[Effect]:
        """The agent missed the offer: it is not ready; the call waits at its place, or leaves at max wait."""
        agent = self._agent(name)
        if call.agent != name:
            raise AcdError(f"call {call.call_id} is not offered to agent {name}")
        effects: list[Effect] = list(fsm.offer_ended(agent, call.call_id, True, now))
        self._reindex(agent)
        call.agent = call.offered_at = None
        if name not in call.tried:
            call.tried.append(name)
        rules = self._rules[call.queue]
        if rules.max_wait is not None and now >= call.enqueued_at + rules.max_wait:
            del self._calls[call.call_id]
            effects.append(self._fallback(call, rules, "max-wait", now))
            return effects
        self._waiting.add(call)
        self._dirty_calls.add(call.call_id)
        self._schedule(call, (MAX_WAIT,))             # it was dropped while the call rang
        return effects

    def _overflow(self, call: Call, rules: QueueRules, now: float) -> list[Effect]:
        to = rules.overflow_to
        if to is None or to not in self._rules or to in call.queues:
            return []
        call.queues.append(to)
        if call.agent is None:
            self._waiting.add_queue(call, to)
            self._dirty_calls.add(call.call_id)
        return [Overflowed(call.call_id, call.queue, to, now - call.enqueued_at)]

    def _fallback(self, call: Call, rules: QueueRules, reason: str, now: float) -> Fallback:
        return Fallback(call_id=call.call_id, queue=call.queue, reason=reason,  # type: ignore[arg-type]
                        action=rules.on_max_wait, wait_seconds=now - call.enqueued_at,
                        kind=call.kind, callback_id=call.callback_id)

    def _drop(self, call: Call) -> None:
        """Forget a waiting call."""
        self._waiting.remove(call)
        del self._calls[call.call_id]

    # -- inputs ---------------------------------------------------------------

    def _agent(self, name: str) -> Agent:
        agent = self._agents.get(name)
        if agent is None:
            raise UnknownAgent(f"unknown agent {name}")
        return agent

    def _call(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise AcdError(f"call {call_id} is not waiting or ringing in the ACD")
        return call

    def _login(self, command: inp.Login, now: float) -> list[Effect]:
        profile = self._profiles.get(command.agent)
        if profile is None:
            raise UnknownAgent(f"unknown agent {command.agent}")
        agent = self._agent(command.agent)
        interface = command.interface or profile.interface
        if not interface:
            raise AcdError(f"agent {command.agent}: no interface given and none configured")
        configured = [queue for queue, _ in profile.queues]
        if command.queues is None:
            queues = tuple(q for q in configured if q in self._queue_names)
        else:
            unknown = [q for q in command.queues if q not in configured or q not in self._queue_names]
            if unknown:
                raise AcdError(f"agent {command.agent} is not a member of {', '.join(unknown)}")
            queues = tuple(dict.fromkeys(command.queues))
        first = agent.state is AgentState.LOGGED_OUT
        effects: list[Effect] = list(fsm.login(agent, interface, queues, command.ready,
                                               self._next_order, now))
        if first:                                   # login order: move to the end
            self._take_order()
            self._agents[agent.agent] = self._agents.pop(agent.agent)
        self._reindex(agent)
        return effects

    def _logout(self, command: inp.Logout, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        effects: list[Effect] = list(fsm.logout(agent, now))
        self._reindex(agent)
        return effects

    def _set_ready(self, command: inp.SetReady, now: float) -> list[Effect]:
        """Ready; an agent back from a missed offer may be offered the calls it missed again."""
        agent = self._agent(command.agent)
        effects: list[Effect] = list(fsm.set_ready(agent, now))
        self._reindex(agent)
        if any(isinstance(e, AgentChanged) and e.previous_reason == REASON_MISSED for e in effects):
            for call in self._calls.values():
                if command.agent in call.tried:
                    call.tried.remove(command.agent)
        return effects

    def _set_not_ready(self, command: inp.SetNotReady, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        effects: list[Effect] = list(fsm.set_not_ready(agent, command.reason, now))
        self._reindex(agent)
        return effects

    def _extend_wrap_up(self, command: inp.ExtendWrapUp, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        effects: list[Effect] = list(fsm.extend_wrap_up(agent, command.seconds, now))
        self._reindex(agent)
        return effects

    def _end_wrap_up(self, command: inp.EndWrapUp, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        effects: list[Effect] = list(fsm.end_wrap_up(agent, now))
        self._reindex(agent)
        return effects

    def _device_busy(self, command: inp.DeviceBusy, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        fsm.set_device_busy(agent, command.busy)
        self._reindex(agent)
        return []

    def _enqueue(self, command: inp.Enqueue, now: float) -> list[Effect]:
        rules = self._rules.get(command.queue)
        if rules is None or command.queue not in self._queue_names:
            raise AcdError(f"call {command.call_id}: unknown queue {command.queue}")
        if command.call_id in self._calls:
            raise AcdError(f"call {command.call_id} is already in the ACD")
        skills = tuple(sorted(rules.skills if command.skills is None else command.skills))
        priority = command.priority
        if priority is None:
            priority = rules.callback_priority if command.kind == "callback" else 0
        call = Call(call_id=command.call_id, queue=command.queue, kind=command.kind,
                    priority=priority, skills=skills, enqueued_at=now, seq=self._take_seq(),
                    queues=[command.queue], preferred_agent=command.preferred_agent,
                    callback_id=command.callback_id)
        members = self._members.get(command.queue, {})
        nobody = not any(qualifies(self._skills_of(name), skills) for name in members)
        if nobody and rules.no_agents == "fallback":
            return [self._fallback(call, rules, "no-agents", now)]
        self._calls[call.call_id] = call
        self._waiting.add(call)
        self._dirty_calls.add(call.call_id)
        effects: list[Effect] = []
        if nobody and rules.no_agents == "overflow":
            effects += self._overflow(call, rules, now)
        self._schedule(call)
        return effects

    def _answered(self, command: inp.Answered, now: float) -> list[Effect]:
        call = self._call(command.call_id)
        agent = self._agent(command.agent)
        if call.agent != command.agent:
            raise AcdError(f"call {call.call_id} is not offered to agent {command.agent}")
        effects: list[Effect] = list(fsm.answer(agent, call.call_id, now))
        del self._calls[call.call_id]
        return effects

    def _missed(self, command: inp.Missed, now: float) -> list[Effect]:
        return self._offer_failed(self._call(command.call_id), command.agent, command.reason, now)

    def _gone(self, command: inp.Gone, now: float) -> list[Effect]:
        """The caller left: forget the call; a ringing agent is free again.  Unknown calls: nothing."""
        call = self._calls.get(command.call_id)
        if call is None:
            return []
        if call.agent is None:
            self._drop(call)
            return []
        agent = self._agents[call.agent]
        effects: list[Effect] = list(fsm.offer_ended(agent, call.call_id, False, now))
        del self._calls[call.call_id]
        self._reindex(agent)
        return effects

    def _released(self, command: inp.Released, now: float) -> list[Effect]:
        agent = self._agent(command.agent)
        rules = self._rules.get(agent.call_queue or "")
        wrap_up = rules.wrap_up_seconds if rules is not None else 0.0
        effects: list[Effect] = list(fsm.release(agent, command.call_id, wrap_up, now))
        self._reindex(agent)
        return effects

    def _config_changed(self, command: inp.ConfigChanged, now: float) -> list[Effect]:
        """Swap the setup; agents and calls it no longer allows are logged out or fall back."""
        old_rules = self._rules
        self.setup = command.setup
        self._use(command.setup)
        effects: list[Effect] = []
        for agent in list(self._agents.values()):
            profile = self._profiles.get(agent.agent)
            if profile is None and agent.state is not AgentState.LOGGED_OUT:
                if agent.state in fsm.BUSY:                 # logged out when the call is over
                    agent.pending, agent.pending_reason = AgentState.LOGGED_OUT, None
                    agent.queues = ()
                else:
                    effects += fsm.logout(agent, now)
            elif profile is not None:
                allowed = {queue for queue, _ in profile.queues if queue in self._rules}
                agent.queues = tuple(q for q in agent.queues if q in allowed)
        for name in [n for n, a in self._agents.items()
                     if a.state is AgentState.LOGGED_OUT and n not in self._profiles]:
            del self._agents[name]
        for profile in command.setup.agents:
            if profile.agent not in self._agents:
                self._agents[profile.agent] = Agent(profile.agent, since=now, order=self._take_order())
        for call in list(self._calls.values()):
            if call.queue in self._rules:
                call.queues = [q for q in call.queues if q in self._rules]
                continue
            if call.agent is not None:
                agent = self._agents[call.agent]
                effects += fsm.offer_ended(agent, call.call_id, False, now)
            del self._calls[call.call_id]
            rules = old_rules.get(call.queue) or QueueRules(name=call.queue)
            effects.append(self._fallback(call, rules, "no-agents", now))
        self._rebuild()
        return effects
