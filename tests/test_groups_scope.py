"""Who sees what (``agent_desktop.scope.scope_for``): pure function calls on an ACD setup."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from acd.model import AcdSetup, AgentProfile, QueueRules
from agent_desktop.scope import EVERYTHING, NOTHING, Scope, scope_for, scope_key


def agent(login, queues=(), groups=()):
    return AgentProfile(login, f"PJSIP/{login}", (), tuple((q, 0) for q in queues), frozenset(groups))


#: Two teams: east answers billing, west answers sales; 3001 is in west's group but answers billing too;
#: support is shared by both teams; 4001 answers only the ungrouped lab queue.
SETUP = AcdSetup(
    queues=(QueueRules("billing", groups=frozenset({"east"})), QueueRules("sales", groups=frozenset({"west"})),
            QueueRules("support", groups=frozenset({"east", "west"})), QueueRules("lab")),
    agents=(agent("1001", ("billing",), {"east"}), agent("1002", ("billing", "support")),
            agent("2001", ("sales",), {"west"}), agent("3001", ("billing",), {"west"}),
            agent("4001", ("lab",)), agent("9001", (), {"east"})),
)


def test_an_admin_sees_everything_with_or_without_groups_or_an_acd():
    assert scope_for("admin", frozenset(), SETUP, "root") is EVERYTHING
    assert scope_for("admin", frozenset({"east"}), None, "root") is EVERYTHING
    assert EVERYTHING.sees_queue("anything") and EVERYTHING.sees_agent("anyone")


def test_a_supervisor_sees_the_queues_of_their_groups_and_the_agents_sharing_a_group_or_answering_them():
    east = scope_for("supervisor", frozenset({"east"}), SETUP, "9001")
    assert east.queues == {"billing", "support"}
    # 1001 and 9001 share the group; 1002 answers billing and support; 3001 (west) answers billing.
    assert east.agents == {"1001", "1002", "3001", "9001"}
    assert not east.sees_queue("sales") and not east.sees_queue("lab") and not east.sees_agent("2001")


def test_a_supervisor_of_two_groups_sees_both():
    both = scope_for("supervisor", frozenset({"east", "west"}), SETUP, "9001")
    assert both.queues == {"billing", "sales", "support"}
    assert both.agents == {"1001", "1002", "2001", "3001", "9001"}
    assert not both.sees_queue("lab") and not both.sees_agent("4001")


def test_a_supervisor_in_no_group_sees_nothing():
    """Groups are opt-in: no groups is no queue and no agent, not everything."""
    assert scope_for("supervisor", frozenset(), SETUP, "9001") == NOTHING
    assert not NOTHING.sees_queue("billing") and not NOTHING.sees_agent("9001")


def test_a_group_nothing_is_in_shows_nothing():
    assert scope_for("supervisor", frozenset({"north"}), SETUP, "9001") == Scope(frozenset(), frozenset())


def test_an_agent_sees_themselves_and_their_queues_only():
    assert scope_for("agent", frozenset({"west"}), SETUP, "1002") == Scope(frozenset({"billing", "support"}),
                                                                           frozenset({"1002"}))
    assert scope_for("agent", frozenset(), SETUP, "7777") == Scope(frozenset(), frozenset({"7777"}))
    assert scope_for("agent", frozenset(), SETUP) == NOTHING


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_without_an_acd_anyone_but_an_admin_sees_only_themselves(role):
    assert scope_for(role, frozenset({"east"}), None, "1001") == Scope(frozenset(), frozenset({"1001"}))
    assert scope_for(role, frozenset({"east"}), None) == NOTHING


def test_an_unknown_role_sees_nothing():
    assert scope_for("root", frozenset({"east"}), SETUP, "1001") == NOTHING


def test_supervisors_of_one_team_share_a_key_and_a_scope():
    """The wallboard builds one frame per key: equal keys must mean equal scopes."""
    sessions = [("supervisor", frozenset({"east"}), "9001"), ("supervisor", frozenset({"east"}), "9002"),
                ("supervisor", frozenset({"west"}), "9003"), ("admin", frozenset(), "root"),
                ("admin", frozenset({"west"}), "root2"), ("agent", frozenset({"east"}), "1001"),
                ("agent", frozenset({"east"}), "1002")]
    for setup in (SETUP, None):
        by_key = {}
        for role, groups, login in sessions:
            by_key.setdefault(scope_key(role, groups, setup, login), set()).add(scope_for(role, groups, setup, login))
        assert all(len(scopes) == 1 for scopes in by_key.values())
    keys = {scope_key(role, groups, SETUP, login) for role, groups, login in sessions}
    assert len(keys) == 5   # east's two supervisors share one, both admins one; each agent their own


def test_scope_is_pure():
    """No I/O and no framework below the desktop server: scope.py imports only the standard library's typing."""
    tree = ast.parse(Path(__file__).resolve().parent.parent.joinpath("agent_desktop", "scope.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "dataclasses", "typing"}
