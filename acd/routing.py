"""Which agent takes which call: the waiting calls, the free agents, and the choice.

Two indexes keep each decision short:

* ``ReadyIndex``: per queue and penalty, the available agents sorted by
  ``(idle_since, order)``; longest-idle stops at the first eligible one.
* ``WaitingIndex``: per queue, the waiting calls sorted by service order
  ``(-priority, enqueued_at, seq)``; a freed agent stops at the first call it
  may take.

A call is listed under each of its queues (its own and the overflow queues it
reached).  Through its own queue it needs its (possibly relaxed) skills;
through an overflow queue, that queue's own required skills.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from acd.agent_fsm import Agent
from acd.model import CallKind, CallView, QueueRules, Skills

ReadyKey = tuple[float, int, str]                 # (idle_since, order, agent)
CallKey = tuple[int, float, int, str]             # (-priority, enqueued_at, seq, call_id)


@dataclass(slots=True, eq=False)
class Call:
    """The distributor's live record of one call, waiting or ringing an agent."""

    call_id: str
    queue: str
    kind: CallKind
    priority: int
    skills: Skills
    enqueued_at: float
    seq: int
    queues: list[str] = field(default_factory=list)
    agent: str | None = None
    offered_at: float | None = None
    preferred_agent: str | None = None
    tried: list[str] = field(default_factory=list)
    callback_id: str | None = None
    relaxed: bool = False

    @property
    def key(self) -> CallKey:
        return (-self.priority, self.enqueued_at, self.seq, self.call_id)

    def view(self) -> CallView:
        return CallView(
            call_id=self.call_id, queue=self.queue, kind=self.kind, priority=self.priority,
            skills=self.skills, enqueued_at=self.enqueued_at, queues=tuple(self.queues),
            agent=self.agent, offered_at=self.offered_at, preferred_agent=self.preferred_agent,
            tried=tuple(self.tried), callback_id=self.callback_id, relaxed=self.relaxed)

    @classmethod
    def from_view(cls, view: CallView, seq: int) -> Call:
        queues = list(view.queues) or [view.queue]
        if queues[0] != view.queue:
            queues = [view.queue] + [q for q in queues if q != view.queue]
        return cls(
            call_id=view.call_id, queue=view.queue, kind=view.kind, priority=view.priority,
            skills=tuple(view.skills), enqueued_at=view.enqueued_at, seq=seq, queues=queues,
            agent=view.agent, offered_at=view.offered_at, preferred_agent=view.preferred_agent,
            tried=list(view.tried), callback_id=view.callback_id, relaxed=view.relaxed)


def qualifies(skills: Mapping[str, int], required: Skills) -> bool:
    """Has every required skill at the minimum proficiency or better."""
    for skill, minimum in required:
        if skills.get(skill, 0) < minimum:
            return False
    return True


def relax(skills: Skills, proficiency: int) -> Skills:
    return tuple((skill, min(minimum, proficiency)) for skill, minimum in skills)


class ReadyIndex:
    """Available agents per queue and penalty, longest idle first."""

    def __init__(self) -> None:
        self._by_queue: dict[str, dict[int, list[ReadyKey]]] = {}

    def add(self, queue: str, penalty: int, key: ReadyKey) -> None:
        insort(self._by_queue.setdefault(queue, {}).setdefault(penalty, []), key)

    def remove(self, queue: str, penalty: int, key: ReadyKey) -> None:
        levels = self._by_queue[queue]
        level = levels[penalty]
        del level[bisect_left(level, key)]
        if not level:
            del levels[penalty]

    def levels(self, queue: str) -> list[list[ReadyKey]]:
        """The queue's available agents, one list per penalty, lowest penalty first."""
        levels = self._by_queue.get(queue)
        if not levels:
            return []
        return [levels[p] for p in sorted(levels)]

    def clear(self) -> None:
        self._by_queue.clear()


class WaitingIndex:
    """Waiting calls per queue in service order."""

    def __init__(self) -> None:
        self._by_queue: dict[str, list[CallKey]] = {}

    def add(self, call: Call) -> None:
        key = call.key
        for queue in call.queues:
            insort(self._by_queue.setdefault(queue, []), key)

    def add_queue(self, call: Call, queue: str) -> None:
        insort(self._by_queue.setdefault(queue, []), call.key)

    def remove(self, call: Call) -> None:
        key = call.key
        for queue in call.queues:
            keys = self._by_queue[queue]
            del keys[bisect_left(keys, key)]

    def ids(self, queue: str) -> list[str]:
        return [key[3] for key in self._by_queue.get(queue, ())]

    def keys(self, queue: str) -> list[CallKey]:
        return self._by_queue.get(queue, [])

    def clear(self) -> None:
        self._by_queue.clear()


class Router:
    """The choices, over the indexes and records the distributor keeps up to date."""

    def __init__(self, agents: Mapping[str, Agent], calls: Mapping[str, Call],
                 ready: ReadyIndex, waiting: WaitingIndex,
                 rules: Callable[[str], QueueRules | None],
                 skills: Callable[[str], Mapping[str, int]],
                 round_robin: dict[str, str]) -> None:
        self._agents = agents
        self._calls = calls
        self._ready = ready
        self._waiting = waiting
        self._rules = rules
        self._skills = skills
        self.round_robin = round_robin

    def requirement(self, call: Call, queue: str) -> Skills:
        """What an agent needs to take ``call`` as a member of ``queue``."""
        if queue == call.queue:
            return call.skills
        rules = self._rules(queue)
        return rules.skills if rules is not None else ()

    def eligible(self, agent: Agent, call: Call) -> str | None:
        """The first of the call's queues through which ``agent`` may take it, if any."""
        if not agent.available or agent.agent in call.tried:
            return None
        skills = self._skills(agent.agent)
        for queue in call.queues:
            if queue in agent.queues and qualifies(skills, self.requirement(call, queue)):
                return queue
        return None

    def best_agent(self, call: Call) -> tuple[Agent, str] | None:
        """The agent to offer ``call`` to, and the queue it is chosen through.

        The preferred (sticky) agent when eligible; else the call's own queue
        first, then its overflow queues; in a queue the lowest penalty, then
        the queue's strategy.
        """
        if call.preferred_agent is not None:
            agent = self._agents.get(call.preferred_agent)
            if agent is not None:
                queue = self.eligible(agent, call)
                if queue is not None:
                    return agent, queue
        for queue in call.queues:
            rules = self._rules(queue)
            if rules is None:
                continue
            required = self.requirement(call, queue)
            for level in self._ready.levels(queue):
                name = self._choose(rules, level, required, call.tried)
                if name is not None:
                    return self._agents[name], queue
        return None

    def _choose(self, rules: QueueRules, level: list[ReadyKey], required: Skills,
                tried: list[str]) -> str | None:
        skills_of = self._skills
        candidates: Iterable[str] = (key[2] for key in level)
        if tried:
            candidates = (name for name in candidates if name not in tried)
        if rules.strategy == "fewest-calls":
            best, fewest = None, None
            for name in candidates:
                handled = self._agents[name].calls_handled
                if (fewest is None or handled < fewest) and qualifies(skills_of(name), required):
                    best, fewest = name, handled
                    if handled == 0:
                        break
            return best
        if rules.strategy == "best-skill":
            best, top = None, -1
            for name in candidates:
                skills = skills_of(name)
                if qualifies(skills, required):
                    score = sum(skills.get(skill, 0) for skill, _ in required)
                    if score > top:
                        best, top = name, score
            return best
        if rules.strategy == "round-robin":
            last = self._agents.get(self.round_robin.get(rules.name, ""))
            after = last.order if last is not None else -1
            first = following = None
            for name in candidates:
                if qualifies(skills_of(name), required):
                    order = self._agents[name].order
                    if first is None or order < first[0]:
                        first = (order, name)
                    if order > after and (following is None or order < following[0]):
                        following = (order, name)
            chosen = following or first
            return chosen[1] if chosen else None
        for name in candidates:                  # longest-idle
            if qualifies(skills_of(name), required):
                return name
        return None

    def best_call(self, agent: Agent) -> Call | None:
        """The waiting call a freed ``agent`` should take: highest priority, then longest waiting."""
        if not agent.available:
            return None
        skills = self._skills(agent.agent)
        best: Call | None = None
        best_key: CallKey | None = None
        for queue in agent.queues:
            for key in self._waiting.keys(queue):
                if best_key is not None and key >= best_key:
                    break
                call = self._calls[key[3]]
                if agent.agent in call.tried:
                    continue
                if qualifies(skills, self.requirement(call, queue)):
                    best, best_key = call, key
                    break
        return best
