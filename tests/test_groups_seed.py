"""Seeded and demo data put everything in one group, so a supervisor of it (the seed's own supervisors, or
one made for the demo) still sees the whole wallboard."""

from __future__ import annotations

from acd.model import AcdSetup
from agent_desktop.scope import scope_for
from callcenter.demo_lab import seed_acd
from callcenter.routing.setup import setup_from_config
from crm_core.acd_config import thd_acd_config
from crm_core.seed import SeedPlan, thd_seed, thd_seed_acd
from crm_core.seed_data import DEMO_GROUP
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)


def sees_everything(setup: AcdSetup, groups: frozenset[str]) -> bool:
    scope = scope_for("supervisor", groups, setup, "boss")
    return scope.queues == {q.name for q in setup.queues} and scope.agents == {p.agent for p in setup.agents}


def test_the_demo_acd_configuration_is_in_the_demo_group(crm_engine):
    thd_seed_acd(crm_engine)
    config = thd_acd_config(crm_engine)
    assert {q.groups for q in config.queues} == {a.groups for a in config.agents} == {(DEMO_GROUP,)}
    assert sees_everything(setup_from_config(config), frozenset({DEMO_GROUP}))


def test_the_bulk_seeds_supervisors_see_every_queue_and_agent(crm_engine):
    thd_seed(crm_engine, SeedPlan(customers=5, agents=30, seed=3, anchor=1767225600))
    config = thd_acd_config(crm_engine)
    supervisors = [a for a in config.agents if a.role == "supervisor"]
    assert supervisors and all(a.groups == (DEMO_GROUP,) for a in config.agents)
    assert all(q.groups == (DEMO_GROUP,) for q in config.queues)
    setup = setup_from_config(config)
    assert all(sees_everything(setup, frozenset(s.groups)) for s in supervisors)


def test_the_demo_daemons_queues_and_agents_are_in_the_demo_group(crm_engine):
    seed_acd(crm_engine)
    config = thd_acd_config(crm_engine)
    assert {q.name for q in config.queues} == {"support", "vip", "billing", "complaints"}
    assert {q.groups for q in config.queues} == {a.groups for a in config.agents} == {(DEMO_GROUP,)}
    assert sees_everything(setup_from_config(config), frozenset({DEMO_GROUP}))
