"""Asterisk's own queues follow each agent's readiness (the safety net of the daemon-driven ACD).

Every agent is a member of the fallback queue, and of the queues with engine
``asterisk`` they belong to.  The routing daemon keeps each such member paused
unless the agent is logged in and not "not ready", so when callers fall back to
Asterisk's ``Queue()`` only agents who are really available ring.  It adds a
member with ``QueueAdd`` the first time, then moves it with ``QueuePause``
(with the agent's reason), remembering what it set and what Asterisk reported
(``QueueMemberStatus``) so that an unchanged member is not asked again.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

logger = logging.getLogger(__name__)

#: ``action(name, headers)``: one AMI action, raising with Asterisk's message when it is refused.
Action = Callable[[str, list[tuple[str, str]]], Awaitable[Any]]


class QueueMembers:
    def __init__(self, ami: Callable[[], Any], action: Action, fallback_queue: str) -> None:
        self._ami = ami
        self._action = action
        self._fallback_queue = fallback_queue
        self._members: dict[str, set[tuple[str, str]]] = {}   # agent -> {(queue, member interface)}
        self._paused: dict[tuple[str, str], bool] = {}

    def note(self, agent: str, queue: str, interface: str, paused: bool) -> None:
        """What Asterisk reported of a member (``QueueMemberStatus``)."""
        self._members.setdefault(agent, set()).add((queue, interface))
        self._paused[(queue, interface)] = paused

    def queues_of(self, agent: str, setup: Any) -> list[tuple[str, int]]:
        """The Asterisk queues in which ``agent`` should be a member, with its penalty: the fallback
        queue, and the agent's queues whose engine is ``asterisk``."""
        profile = next((a for a in setup.agents if a.agent == agent), None)
        wanted = {self._fallback_queue: 0}
        if profile is not None:
            for queue, penalty in profile.queues:
                rules = setup.queue(queue)
                if rules is not None and rules.engine == "asterisk":
                    wanted[queue] = penalty
        return sorted(wanted.items())

    async def sync(self, agent: str, interface: str, paused: bool, reason: str, setup: Any) -> None:
        """Make ``agent``'s members (``interface``) paused or not in each of its Asterisk queues."""
        client = self._ami()
        if client is None or not getattr(client, "authenticated", False):
            logger.debug("agent %s: queue members synced once AMI is up", agent)
            return  # the resync after the AMI login (CallsResynced) syncs every agent
        known = self._members.get(agent, set())
        for queue, penalty in self.queues_of(agent, setup):
            members = [iface for q, iface in known if q == queue]
            try:
                if not members:
                    await self._add(agent, queue, interface, penalty, paused, reason)
                    continue
                for member in members:
                    if self._paused.get((queue, member)) != paused:
                        await self._pause(agent, queue, member, paused, reason)
            except Exception as exc:
                logger.warning("agent %s: queue %s member not %s: %s", agent, queue,
                               "paused" if paused else "unpaused", exc)

    async def _add(self, agent: str, queue: str, interface: str, penalty: int, paused: bool, reason: str) -> None:
        headers = [("Queue", queue), ("Interface", interface), ("Penalty", str(penalty)),
                   ("Paused", "true" if paused else "false"), ("MemberName", f"Agent {agent}")]
        if interface.upper().startswith("PJSIP/"):
            headers.append(("StateInterface", interface))
        if paused:
            headers.append(("Reason", reason))
        try:
            await self._action("QueueAdd", headers)
        except Exception as exc:
            if "Already there" not in str(exc):
                raise
        self.note(agent, queue, interface, paused)

    async def _pause(self, agent: str, queue: str, member: str, paused: bool, reason: str) -> None:
        headers = [("Queue", queue), ("Interface", member), ("Paused", "true" if paused else "false")]
        if paused:
            headers.append(("Reason", reason))
        try:
            await self._action("QueuePause", headers)
        except Exception as exc:
            if "not found" in str(exc).lower():   # gone from the queue: added again next time
                self._members.get(agent, set()).discard((queue, member))
            raise
        self._paused[(queue, member)] = paused
