"""What a desktop session may see and act on: the queues and agents of the supervisor's groups.

The rules (``scope_for``):

- **admin**: everything, with or without an ACD.
- **supervisor**: the queues sharing at least one group with them, and the
  agents who share a group with them *or* are members of one of those
  queues (whoever answers a queue they watch is on their grid, even from
  another team).  A supervisor in no group sees nothing: groups are opt-in,
  never "no groups means all".
- **agent**: themselves and their own queues.
- No ACD setup (the ACD is not running): admins everything, anyone else
  only themselves and no queue.
- Any other role: nothing.

Groups come with the session (from the CRM at login; a change needs a new
login) and the queues' and agents' groups from the ACD's current setup (a
change is live within the ACD's configuration poll).  ``scope_for`` is
pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scope:
    #: Queue names visible, or None for all.
    queues: frozenset[str] | None = None
    #: Agent logins visible, or None for all.
    agents: frozenset[str] | None = None

    def sees_queue(self, name: str) -> bool:
        return self.queues is None or name in self.queues

    def sees_agent(self, login: str) -> bool:
        return self.agents is None or login in self.agents


EVERYTHING = Scope()
NOTHING = Scope(_NONE, _NONE)


def scope_for(role: str, groups: frozenset[str], setup: Any | None, agent: str | None = None) -> Scope:
    """The scope of a session of ``agent`` with ``role`` and ``groups`` under the ACD's ``setup``
    (``acd.model.AcdSetup``; None: no ACD).  See the module's docstring for the rules."""
    if role == "admin":
        return EVERYTHING
    if role not in ("supervisor", "agent"):
        return NOTHING
    if setup is None:
        return Scope(_NONE, frozenset({agent}) if agent else _NONE)
    if role == "agent":
        if not agent:
            return NOTHING
        profile = next((p for p in setup.agents if p.agent == agent), None)
        return Scope(frozenset(q for q, _ in profile.queues) if profile else _NONE, frozenset({agent}))
    groups = frozenset(groups)
    if not groups:
        return NOTHING
    queues = frozenset(q.name for q in setup.queues if q.groups & groups)
    agents = frozenset(p.agent for p in setup.agents
                       if p.groups & groups or any(q in queues for q, _ in p.queues))
    return Scope(queues, agents)


def scope_key(role: str, groups: frozenset[str], setup: Any | None, agent: str | None = None) -> Hashable:
    """Sessions with equal keys have equal scopes under ``setup``: with a setup, a supervisor's scope
    depends on their groups only, so many supervisors of one team share a key (the wallboard builds
    one frame per key)."""
    if role == "admin":
        return (role,)
    if role == "supervisor" and setup is not None:
        return role, frozenset(groups)
    return role, frozenset(groups), agent
