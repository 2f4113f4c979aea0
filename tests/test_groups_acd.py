"""Groups in the ACD's setup: filled from the CRM's configuration, carried between daemons by the codec,
and ignored by routing."""

from __future__ import annotations

import dataclasses

import pytest

from acd import inputs as inp
from acd.distributor import Distributor
from acd.model import AcdSetup, AgentProfile, QueueRules, Snapshot
from callcenter.routing import codec
from callcenter.routing.setup import setup_from_config
from crm_core.records import AcdConfig, AgentConfig, QueueConfig

GROUPED = AcdSetup(
    queues=(QueueRules("support", groups=frozenset({"east", "west"})), QueueRules("sales")),
    agents=(AgentProfile("1001", "PJSIP/1001", (), (("support", 0),), frozenset({"east"})),
            AgentProfile("1002", "PJSIP/1002", (), (("support", 1), ("sales", 0)))),
)


def test_the_setup_takes_the_groups_of_queues_and_agents_from_the_crm():
    config = AcdConfig(
        agents=(AgentConfig("1001", "A", "PJSIP/1001", "agent", True, (), (("support", 0),), ("east",)),
                AgentConfig("9000", "Boss", None, "supervisor", True, groups=("east", "west")),
                AgentConfig("9001", "Admin", None, "admin", True, groups=("east",))),
        queues=(QueueConfig("support", "Support", (), 0, 20, groups=("west", "east")),
                QueueConfig("sales", "Sales", (), 0, 20)))
    setup = setup_from_config(config)
    assert {q.name: q.groups for q in setup.queues} == {"support": frozenset({"east", "west"}), "sales": frozenset()}
    assert {p.agent: p.groups for p in setup.agents} == {"1001": frozenset({"east"}),
                                                         "9000": frozenset({"east", "west"})}


def test_groups_default_to_none():
    assert QueueRules("q").groups == frozenset() and AgentProfile("1001").groups == frozenset()


def test_a_setup_with_groups_crosses_between_daemons_unchanged():
    """ConfigChanged is relayed as JSON: the groups come back as equal frozensets, written sorted."""
    text = codec.encode_input(inp.ConfigChanged(GROUPED))
    assert '"groups": ["east", "west"]' in text
    assert codec.decode_input(text) == inp.ConfigChanged(GROUPED)


@pytest.mark.parametrize(("groups", "field"), [("east", "expected a list"), ([1], "expected str")])
def test_malformed_groups_are_refused_naming_the_field(groups, field):
    plain = codec.plain(inp.ConfigChanged(GROUPED))
    plain["setup"]["queues"][0]["groups"] = groups
    with pytest.raises(ValueError, match=f"ConfigChanged.setup.queues.groups: {field}"):
        codec.from_plain(inp.ConfigChanged, plain)


def test_snapshots_do_not_carry_the_setup():
    """A snapshot holds agents' and calls' state only; the setup (and its groups) comes from the CRM."""
    assert "setup" not in {f.name for f in dataclasses.fields(Snapshot)}
    d = Distributor(GROUPED, 0.0)
    d.handle(inp.Login("1001", ready=True), 0.0)
    snap = d.snapshot(1.0)
    assert codec.decode_snapshot(codec.encode_snapshot(snap)) == snap


def test_routing_ignores_groups():
    """The same calls under the same setup with and without groups: the same effects, in the same order."""
    plain = AcdSetup(tuple(dataclasses.replace(q, groups=frozenset()) for q in GROUPED.queues),
                     tuple(dataclasses.replace(a, groups=frozenset()) for a in GROUPED.agents))
    script = [inp.Login("1001", ready=True), inp.Login("1002", ready=True), inp.Enqueue("c1", "support"),
              inp.Enqueue("c2", "sales"), inp.Answered("c1", "1001"), inp.Released("c1", "1001")]
    runs = []
    for setup in (GROUPED, plain):
        d = Distributor(setup, 0.0)
        runs.append([d.handle(command, float(t)) for t, command in enumerate(script)])
    assert runs[0] == runs[1]
