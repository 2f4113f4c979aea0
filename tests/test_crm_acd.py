"""The ACD's configuration in the CRM (SQLite and PostgreSQL): queue routing rules, agents, the change
stamp, what the ACD reads back from the contact log, the demo seed, and the agents/queues commands."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from callcenter.cli import cli
from crm_core import models
from crm_core.acd_config import (
    NewAgent,
    hours_from_json,
    hours_to_json,
    thd_acd_config,
    thd_acd_config_stamp,
    thd_agent,
    thd_change_agent,
    thd_change_queue,
    thd_check_password,
    thd_contact_figures,
    thd_last_agent,
    thd_queue,
    thd_remove_agent,
    thd_remove_queue,
    thd_save_agent,
    thd_save_disposition,
    thd_save_queue,
)
from crm_core.contacts import thd_log_contacts
from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.db import make_engine
from crm_core.errors import InvalidInput, NotFound
from crm_core.migrate import head_revision, thd_downgrade, thd_upgrade
from crm_core.models import agent_queues, agents, queues
from crm_core.records import ContactFigure, ContactRecord, DispositionCode, OpeningHours, QueueConfig
from crm_core.seed import SeedPlan, thd_seed, thd_seed_acd
from tests.crm_servers import blank_url, crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SHANGHAI_OFFICE = OpeningHours("Asia/Shanghai", (("mon", (("08:00", "12:00"), ("13:00", "18:00"))),
                                                 ("sat", (("09:00", "24:00"),))))
VIP = QueueConfig("vip", "VIP 专席", (("vip", 3),), 10, 15, strategy="best-skill", engine="asterisk", ring_seconds=20,
                  wrap_up_seconds=30, relax_after=45, relaxed_proficiency=2, overflow_after=60, overflow_to="support",
                  max_wait=300, on_max_wait="callback", no_agents="overflow", callback_priority=5,
                  callback_retries=4, callback_spacing=900, sticky_days=30, hours=SHANGHAI_OFFICE)


def support(**changes) -> QueueConfig:
    return dataclasses.replace(QueueConfig("support", "Support", (), 0, 20), **changes)


def test_queue_routing_rules_round_trip(crm_engine):
    """Every routing field of a queue, opening hours included, comes back as saved."""
    thd_save_queue(crm_engine, support())
    thd_save_queue(crm_engine, VIP)
    assert thd_queue(crm_engine, "vip") == VIP
    assert thd_acd_config(crm_engine).queues == (support(), VIP)
    thd_save_queue(crm_engine, dataclasses.replace(VIP, hours=None, overflow_after=None, no_agents="wait",
                                                   relax_after=None))
    assert thd_queue(crm_engine, "vip").hours is None
    assert thd_queue(crm_engine, "nothing") is None


def test_a_queue_row_written_before_the_routing_rules_reads_with_the_defaults(crm_engine):
    """Rows that only name a queue (as 0002's code wrote them) route longest-idle on the daemon, always open."""
    with crm_engine.begin() as conn:
        conn.execute(insert(queues).values(name="old", display_name="Old"))
    assert thd_queue(crm_engine, "old") == QueueConfig("old", "Old", (), 0, 20)


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"strategy": "ringall"}, "strategy", "expected one of longest-idle, fewest-calls, best-skill, round-robin"),
    ({"engine": "pbx"}, "engine", "expected one of daemon, asterisk"),
    ({"ring_seconds": 0}, "ring_seconds", "expected 1 to 600, got 0"),
    ({"wrap_up_seconds": -1}, "wrap_up_seconds", "expected 0 to 3600"),
    ({"relaxed_proficiency": 6}, "relaxed_proficiency", "expected 1 to 5, got 6"),
    ({"relax_after": -5}, "relax_after", "expected 0 to 86400"),
    ({"max_wait": 0}, "max_wait", "expected 1 to 86400"),
    ({"on_max_wait": "hangup"}, "on_max_wait", "expected one of voicemail, callback, queue"),
    ({"no_agents": "drop"}, "no_agents", "expected one of wait, overflow, fallback"),
    ({"callback_retries": 0}, "callback_retries", "expected 1 to 20"),
    ({"callback_spacing": 1.5}, "callback_spacing", "expected an integer"),
    ({"sticky_days": -1}, "sticky_days", "expected 0 to 3650"),
    ({"required_skills": (("vip", 9),)}, "required_skills vip", "expected 1 to 5, got 9"),
    ({"required_skills": (("vip", 2), ("vip", 3))}, "required_skills", "vip is given twice"),
    ({"overflow_to": "support"}, "overflow_to", "a queue cannot overflow to itself"),
    ({"overflow_after": 30}, "overflow_to", "is required with overflow_after"),
    ({"no_agents": "overflow"}, "overflow_to", "is required when no_agents is overflow"),
    ({"overflow_to": "nowhere"}, "overflow_to", "no such queue: nowhere"),
    ({"hours": OpeningHours("Mars/Olympus")}, "hours", "tz: unknown time zone 'Mars/Olympus'"),
    ({"hours": OpeningHours("UTC", (("mon", (("18:00", "08:00"),)),))}, "hours", "does not end after it starts"),
])
def test_bad_queue_rules_are_refused_naming_the_field(crm_engine, changes, field, reason):
    with pytest.raises(InvalidInput) as caught:
        thd_save_queue(crm_engine, support(**changes))
    assert caught.value.field == field and reason in caught.value.reason
    assert thd_queue(crm_engine, "support") is None


@pytest.mark.parametrize("values", [
    {"strategy": "ringall"}, {"engine": "pbx"}, {"ring_seconds": 0}, {"relaxed_proficiency": 0},
    {"overflow_to": "q"}, {"max_wait": 0}, {"on_max_wait": "x"}, {"no_agents": "x"}, {"callback_retries": 0},
    {"sticky_days": -1}, {"relax_after": -1}, {"overflow_after": -1}, {"callback_spacing": -1},
])
def test_the_database_itself_enforces_the_queue_rules(crm_engine, values):
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(queues).values(name="q", display_name="Q", **values))


def test_opening_hours_come_in_canonical_order_and_bad_ones_are_explained():
    doc = {"tz": "Asia/Shanghai", "days": {"sat": [["09:00", "24:00"]], "mon": [["13:00", "18:00"], ["08:00", "12:00"]],
                                           "sun": []}}
    assert hours_from_json(doc) == SHANGHAI_OFFICE
    assert hours_from_json(hours_to_json(SHANGHAI_OFFICE)) == SHANGHAI_OFFICE
    assert hours_from_json(None) is None
    for bad, reason in [
        ([], "expected an object with tz and days"),
        ({"tz": "UTC", "days": {}, "holidays": []}, "unknown key 'holidays'"),
        ({"days": {}}, "tz: expected a time zone name"),
        ({"tz": "UTC", "days": {"monday": []}}, "'monday' is not one of mon, tue"),
        ({"tz": "UTC", "days": {"mon": [["8:00", "18:00"]]}}, 'expected ["HH:MM", "HH:MM"]'),
        ({"tz": "UTC", "days": {"mon": [["08:00", "18:00", "19:00"]]}}, 'expected ["HH:MM", "HH:MM"]'),
        ({"tz": "UTC", "days": {"mon": [["24:00", "24:00"]]}}, "does not end after it starts"),
        ({"tz": "UTC", "days": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}}, "spans overlap at 11:00"),
    ]:
        with pytest.raises(InvalidInput, match="hours") as caught:
            hours_from_json(bad)
        assert reason in caught.value.reason, (bad, caught.value.reason)


def test_a_queue_others_overflow_to_is_kept_and_removing_one_removes_its_memberships(crm_engine):
    thd_save_queue(crm_engine, support())
    thd_save_queue(crm_engine, VIP)
    thd_save_agent(crm_engine, NewAgent("6001", "A", queues=(("support", 0), ("vip", 1))))
    with pytest.raises(InvalidInput, match="vip overflows to support: change it first"):
        thd_remove_queue(crm_engine, "support")
    assert thd_remove_queue(crm_engine, "vip") == 1
    assert thd_agent(crm_engine, "6001").queues == (("support", 0),)
    with pytest.raises(NotFound, match="no queue vip"):
        thd_remove_queue(crm_engine, "vip")


def test_changing_an_agent_keeps_what_is_not_mentioned(crm_engine):
    """thd_change_agent creates an agent (named after the login), then changes only the fields given;
    the password is kept unless a new one is given."""
    thd_save_queue(crm_engine, support())
    agent, created = thd_change_agent(crm_engine, "6001", interface="PJSIP/6001", skills=(("billing", 3),),
                                      queues=(("support", 0),), password="s3cret")
    assert created and (agent.display_name, agent.role, agent.active) == ("6001", "agent", True)
    agent, created = thd_change_agent(crm_engine, "6001", role="supervisor", display_name="李娜")
    assert not created
    assert agent == dataclasses.replace(agent, interface="PJSIP/6001", skills=(("billing", 3),),
                                        queues=(("support", 0),))
    assert (agent.role, agent.display_name) == ("supervisor", "李娜")
    assert thd_check_password(crm_engine, "6001", "s3cret") == agent
    agent, _ = thd_change_agent(crm_engine, "6001", skills=(), interface=None, active=False)
    assert (agent.skills, agent.interface, agent.active, agent.queues) == ((), None, False, (("support", 0),))
    for changes, field in [({"interface": "6001"}, "interface"), ({"role": "boss"}, "role"),
                           ({"skills": (("zh", 1), ("zh", 2))}, "skills"), ({"queues": (("sales", 0),)}, "queues"),
                           ({"display_name": ""}, "display_name"), ({"queues": (("support", -1),)}, "queues support")]:
        with pytest.raises(InvalidInput) as caught:
            thd_change_agent(crm_engine, "6001", **changes)
        assert caught.value.field == field
    thd_remove_agent(crm_engine, "6001")
    assert thd_agent(crm_engine, "6001") is None
    with pytest.raises(NotFound, match="no agent 6001"):
        thd_remove_agent(crm_engine, "6001")


def test_queue_changes_keep_what_is_not_mentioned(crm_engine):
    queue, created = thd_change_queue(crm_engine, "support", strategy="round-robin", max_wait=120)
    assert created and queue == support(display_name="support", strategy="round-robin", max_wait=120)
    queue, created = thd_change_queue(crm_engine, "support", max_wait=None, hours=SHANGHAI_OFFICE)
    assert not created and (queue.strategy, queue.max_wait, queue.hours) == ("round-robin", None, SHANGHAI_OFFICE)
    with pytest.raises(TypeError):
        thd_change_queue(crm_engine, "support", colour="red")


def test_the_config_stamp_changes_with_every_configuration_change(crm_engine):
    """Each write (even a skill-only change within the same second) gives a new stamp; reads do not."""
    seen = [thd_acd_config_stamp(crm_engine)]

    def changed() -> bool:
        stamp = thd_acd_config_stamp(crm_engine)
        assert hash(stamp) is not None and stamp == thd_acd_config_stamp(crm_engine)
        fresh = stamp != seen[-1]
        seen.append(stamp)
        return fresh

    thd_save_queue(crm_engine, support())
    assert changed()
    thd_save_agent(crm_engine, NewAgent("6001", "A", skills=(("zh", 3),), queues=(("support", 0),)))
    assert changed()
    thd_acd_config(crm_engine)
    assert not changed()
    thd_save_agent(crm_engine, NewAgent("6001", "A", skills=(("zh", 4),), queues=(("support", 0),)))
    assert changed()
    thd_change_agent(crm_engine, "6001", queues=(("support", 2),))
    assert changed()
    thd_change_queue(crm_engine, "support", ring_seconds=25)
    assert changed()
    thd_save_disposition(crm_engine, DispositionCode("sale", "Sale", "sales", False, True))
    assert changed()
    thd_save_disposition(crm_engine, DispositionCode("sale", "Sale!", "sales", False, True))
    assert changed()
    thd_save_queue(crm_engine, VIP)
    assert changed()
    thd_remove_queue(crm_engine, "vip")
    assert changed()
    thd_remove_agent(crm_engine, "6001")
    assert changed()
    assert thd_acd_config_stamp(crm_engine)[:3] == (0, 1, 1)


def record(n: int, **fields) -> ContactRecord:
    return ContactRecord(f"call-{n}", T0 + timedelta(minutes=n), direction="inbound", **fields)


def test_contact_figures_give_the_queued_calls_since_a_moment_oldest_first(crm_engine):
    thd_log_contacts(crm_engine, [
        record(0, queue="support", agent="6001", enqueued_at=T0, answered_at=T0 + timedelta(seconds=12),
               ended_at=T0 + timedelta(seconds=100), wait_seconds=12.0, talk_seconds=80.0, hold_seconds=5.0,
               wrapup_seconds=8.0, abandoned=False),
        record(3, queue="billing", enqueued_at=T0 + timedelta(minutes=3), wait_seconds=40.0, abandoned=True,
               ended_at=T0 + timedelta(minutes=3, seconds=40)),
        record(2, queue="support"),
        record(1),  # never queued: self-service only
        record(-5, queue="support", agent="6002"),  # before `since`
    ], "CN")
    figures = thd_contact_figures(crm_engine, T0)
    assert [f.linkedid for f in figures] == ["call-0", "call-2", "call-3"]
    assert figures[0] == ContactFigure("support", "6001", T0, T0 + timedelta(seconds=12),
                                       T0 + timedelta(seconds=100), 12.0, 80.0, 5.0, 8.0, False, "call-0", T0)
    assert (figures[2].queue, figures[2].agent, figures[2].abandoned, figures[2].wait_seconds) == \
        ("billing", None, True, 40.0)
    assert thd_contact_figures(crm_engine, T0 + timedelta(days=1)) == ()
    with pytest.raises(InvalidInput, match="since: needs a timezone"):
        thd_contact_figures(crm_engine, datetime(2026, 3, 2))


def test_the_last_agent_is_the_newest_call_with_an_agent_since_a_moment(crm_engine):
    """Sticky routing: the newest call of this customer that an agent took, within the window."""
    wang = thd_create_customer(crm_engine, NewCustomer("王芳"), "CN")
    other = thd_create_customer(crm_engine, NewCustomer("Jane"), "CN")
    assert thd_last_agent(crm_engine, wang, T0) is None
    thd_log_contacts(crm_engine, [
        record(0, customer_id=wang, queue="support", agent="6001"),
        record(5, customer_id=wang, queue="support", agent="6002"),
        record(9, customer_id=wang, queue="support", abandoned=True),  # newest, but nobody answered
        record(20, customer_id=other, queue="support", agent="6003"),
    ], "CN")
    assert thd_last_agent(crm_engine, wang, T0) == "6002"
    assert thd_last_agent(crm_engine, wang, T0 + timedelta(minutes=6)) is None
    assert thd_last_agent(crm_engine, other, T0) == "6003"
    assert thd_last_agent(crm_engine, 999999, T0) is None


def test_the_acd_vocabulary_matches_the_domain():
    """The database's enums are the ACD's (acd.model)."""
    model = pytest.importorskip("acd.model")
    assert models.STRATEGIES == model.STRATEGIES
    assert models.FALLBACK_ACTIONS == model.FALLBACK_ACTIONS
    assert models.NO_AGENTS_RULES == model.NO_AGENTS_RULES
    rules = {f.name: f.default for f in dataclasses.fields(model.QueueRules)}
    mine = {f.name: f.default for f in dataclasses.fields(QueueConfig)}
    for name in ("strategy", "engine", "relaxed_proficiency", "on_max_wait", "no_agents", "callback_priority",
                 "callback_retries", "callback_spacing", "sticky_days", "ring_seconds", "wrap_up_seconds",
                 "relax_after", "overflow_after", "overflow_to", "max_wait"):
        assert mine[name] == rules[name], name


def test_the_demo_acd_configuration_is_seeded_once_and_edits_survive(crm_engine):
    added = thd_seed_acd(crm_engine)
    assert added == ["support", "sales", "vip", "billing", "complaints", "6001", "6002"]
    config = thd_acd_config(crm_engine)
    by_name = {q.name: q for q in config.queues}
    assert {q: by_name[q].strategy for q in ("support", "sales", "vip", "billing", "complaints")} == {
        "support": "round-robin", "sales": "longest-idle", "vip": "best-skill", "billing": "fewest-calls",
        "complaints": "longest-idle"}
    assert [(a.login, a.interface) for a in config.agents] == [("6001", "PJSIP/6001"), ("6002", "PJSIP/6002")]
    assert all(a.skills and a.queues for a in config.agents) and config.dispositions
    thd_change_queue(crm_engine, "vip", ring_seconds=40)
    assert thd_seed_acd(crm_engine) == []
    assert thd_queue(crm_engine, "vip").ring_seconds == 40


def test_the_bulk_seed_adds_the_demo_acd_configuration_to_its_own(crm_engine):
    """`db seed` keeps its queues and generated agents and adds the demo's queues (their routing wins) and
    agents 6001 and 6002, who take none of the generated calls; a second run adds nothing to the config."""
    thd_seed(crm_engine, SeedPlan(customers=30, agents=3, anchor=1767225600))
    config = thd_acd_config(crm_engine)
    assert [q.name for q in config.queues] == ["billing", "complaints", "english", "general", "sales", "support",
                                               "tech", "vip"]
    assert thd_queue(crm_engine, "vip").strategy == "best-skill"
    assert [a.login for a in config.agents] == ["1001", "1002", "1003", "6001", "6002"]
    assert thd_check_password(crm_engine, "6001", "changeme") is not None
    with crm_engine.connect() as conn:
        handled = set(conn.execute(select(models.contacts.c.agent).where(models.contacts.c.agent.is_not(None)))
                      .scalars())
    assert handled and handled <= {"1001", "1002", "1003"}
    stamp = thd_acd_config_stamp(crm_engine)
    thd_seed(crm_engine, SeedPlan(customers=5, agents=3, seed=2, anchor=1767225600))
    assert thd_acd_config_stamp(crm_engine) == stamp


# -- the schema upgrade ------------------------------------------------------------------------------------------




def test_upgrade_from_0002_keeps_queues_and_memberships_and_adds_the_rules_and_callbacks(blank_url):
    """Queues and the agents' memberships survive 0003 (a table rebuild on SQLite would cascade to
    agent_queues): old queues get the default rules, the checks hold, and downgrading keeps the rows."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(blank_url)
    try:
        assert thd_upgrade(engine, "0002") == "0002"
        with engine.begin() as conn:
            qid = conn.execute(insert(queues).values(name="billing", display_name="Billing",
                                                     required_skills={"billing": 2})).inserted_primary_key[0]
            aid = conn.execute(insert(agents).values(login="6001", display_name="A")).inserted_primary_key[0]
            conn.execute(insert(agent_queues).values(agent_id=aid, queue_id=qid, penalty=1))
        assert thd_upgrade(engine) == head_revision()
        assert thd_queue(engine, "billing") == QueueConfig("billing", "Billing", (("billing", 2),), 0, 20)
        assert thd_agent(engine, "6001").queues == (("billing", 1),)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, models.metadata) == []
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(text("UPDATE queues SET strategy = 'ringall'"))
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(text("UPDATE queues SET overflow_to = name"))
        thd_change_queue(engine, "billing", strategy="fewest-calls", hours=SHANGHAI_OFFICE)
        assert thd_downgrade(engine, "0002") == "0002"
        with engine.connect() as conn:
            assert conn.execute(select(agent_queues.c.penalty)).scalars().all() == [1]
            assert conn.execute(text("SELECT name FROM queues")).scalars().all() == ["billing"]
        assert thd_upgrade(engine) == head_revision()
        assert thd_queue(engine, "billing").strategy == "longest-idle"
    finally:
        engine.dispose()


# -- the commands ---------------------------------------------------------------------------------------------------


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_agents_set_show_and_remove_round_trip(crm_url):
    """`callcenter agents set` creates, then changes only what is given; show prints it; remove removes."""
    assert run("queues", "set", "support", "--url", crm_url).exit_code == 0
    assert run("queues", "set", "sales", "--url", crm_url).exit_code == 0
    made = run("agents", "set", "6001", "--url", crm_url, "--name", "李娜", "--interface", "PJSIP/6001",
               "--skills", "billing:3, english:5", "--queues", "support,sales:2", "--password-stdin",
               input="pa ss\n")
    assert made.exit_code == 0, made.output
    assert "agent 6001 created" in made.output
    changed = run("agents", "set", "6001", "--url", crm_url, "--role", "supervisor", "--inactive")
    assert changed.exit_code == 0 and "agent 6001 updated" in changed.output
    shown = run("agents", "show", "6001", "--url", crm_url, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"login": "6001", "display_name": "李娜", "interface": "PJSIP/6001",
                                        "role": "supervisor", "active": False,
                                        "skills": {"billing": 3, "english": 5}, "queues": {"sales": 2, "support": 0},
                                        "groups": []}
    table = run("agents", "show", "--url", crm_url)
    assert table.exit_code == 0
    header, row = table.output.splitlines()
    assert header.split() == ["LOGIN", "NAME", "INTERFACE", "ROLE", "ACTIVE", "SKILLS", "QUEUES", "GROUPS"]
    assert row.split() == ["6001", "李娜", "PJSIP/6001", "supervisor", "no", "billing:3,english:5", "sales:2,support",
                           "-"]
    assert header.index("INTERFACE") == row.index("PJSIP") + 2  # 李娜 is four columns wide
    engine = make_engine(crm_url)
    try:
        run("agents", "set", "6001", "--url", crm_url, "--active")
        assert thd_check_password(engine, "6001", "pa ss") is not None
    finally:
        engine.dispose()
    cleared = run("agents", "set", "6001", "--url", crm_url, "--skills", "", "--interface", "", "--queues", "")
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(run("agents", "show", "6001", "--url", crm_url, "--json").output)["skills"] == {}
    assert run("agents", "remove", "6001", "--url", crm_url).output == "agent 6001 removed\n"
    gone = run("agents", "show", "6001", "--url", crm_url)
    assert gone.exit_code == 1 and gone.output == "error: no agent 6001\n"


def test_queues_set_show_and_remove_round_trip(crm_url, tmp_path):
    assert run("queues", "set", "support", "--url", crm_url).exit_code == 0
    hours = tmp_path / "hours.json"
    hours.write_text(json.dumps(hours_to_json(SHANGHAI_OFFICE)))
    made = run("queues", "set", "vip", "--url", crm_url, "--display-name", "VIP 专席", "--strategy", "best-skill",
               "--skills", "vip:3", "--engine", "asterisk", "--priority", "10", "--ring", "20", "--wrap-up", "30",
               "--service-level", "15", "--relax-after", "45", "--relaxed-proficiency", "2", "--overflow-after", "60",
               "--overflow-to", "support", "--max-wait", "300", "--on-max-wait", "callback", "--no-agents",
               "overflow", "--callback-priority", "5", "--callback-retries", "4", "--callback-spacing", "900",
               "--sticky-days", "30", "--hours", f"@{hours}")
    assert made.exit_code == 0, made.output
    assert "queue vip created" in made.output and "hours:          mon 08:00-12:00,13:00-18:00; sat 09:00-24:00 " \
                                                  "(Asia/Shanghai)" in made.output
    shown = run("queues", "show", "vip", "--url", crm_url, "--json")
    assert json.loads(shown.output) == {**dataclasses.asdict(VIP), "required_skills": {"vip": 3},
                                        "hours": hours_to_json(SHANGHAI_OFFICE), "groups": []}
    changed = run("queues", "set", "vip", "--url", crm_url, "--relax-after", "none", "--hours", "none",
                  "--max-wait", "off", "--no-agents", "wait")
    assert changed.exit_code == 0, changed.output
    engine = make_engine(crm_url)
    try:
        assert thd_queue(engine, "vip") == dataclasses.replace(VIP, relax_after=None, hours=None, max_wait=None,
                                                               no_agents="wait")
    finally:
        engine.dispose()
    table = run("queues", "show", "--url", crm_url)
    assert [line.split()[0] for line in table.output.splitlines()] == ["NAME", "support", "vip"]
    refused = run("queues", "remove", "support", "--url", crm_url)
    assert refused.exit_code == 1 and "vip overflows to support" in refused.output
    assert run("queues", "set", "vip", "--url", crm_url, "--overflow-to", "", "--overflow-after", "none").exit_code == 0
    removed = run("queues", "remove", "support", "--url", crm_url)
    assert removed.output == "queue support removed (0 agents were members)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["queues", "set", "q", "--ring", "900"], "error: Invalid value for --ring: expected 1 to 600, got 900"),
    (["queues", "set", "q", "--ring", "abc"], "error: Invalid value for '--ring': 'abc' is not a valid integer."),
    (["queues", "set", "q", "--strategy", "ringall"], "error: Invalid value for '--strategy': 'ringall' is not one"),
    (["queues", "set", "q", "--skills", "vip"], "error: Invalid value for --skills: expected SKILL:LEVEL, got 'vip'"),
    (["queues", "set", "q", "--skills", "vip:7"], "error: Invalid value for --skills: vip: expected 1 to 5, got 7"),
    (["queues", "set", "q", "--overflow-to", "q"], "error: Invalid value for --overflow-to: a queue cannot overflow"),
    (["queues", "set", "q", "--overflow-to", "x"], "error: Invalid value for --overflow-to: no such queue: x"),
    (["queues", "set", "q", "--max-wait", "soon"], "error: Invalid value for --max-wait: expected whole seconds"),
    (["queues", "set", "q", "--hours", "{"], "error: Invalid value for --hours: not JSON: Expecting property name"),
    (["queues", "set", "q", "--hours", '{"tz":"UTC","days":{"mon":[["9","17"]]}}'],
     'error: Invalid value for --hours: mon: expected ["HH:MM", "HH:MM"]'),
    (["queues", "set", "q", "--display-name", ""], "error: Invalid value for --display-name: must not be empty"),
    (["agents", "set", "6001", "--skills", "zh:high"], "error: Invalid value for --skills: expected SKILL:LEVEL"),
    (["agents", "set", "6001", "--queues", "nowhere"], "error: Invalid value for --queues: no such queue: nowhere"),
    (["agents", "set", "6001", "--interface", "6001"], "error: Invalid value for --interface: expected TECH/RESOURCE"),
    (["agents", "set", "6001", "--role", "boss"], "error: Invalid value for '--role': 'boss' is not one of"),
    (["agents", "set", "6001", "--password-stdin"], "error: Invalid value for --password-stdin: no password"),
    (["agents", "set", "x" * 65], "error: Invalid value for LOGIN: 65 characters, at most 64"),
    (["agents", "set"], "error: Missing argument 'LOGIN'."),
    (["callbacks", "list", "--status", "lost"], "error: Invalid value for '--status': 'lost' is not one of"),
])
def test_bad_values_give_one_line_and_exit_status_2(crm_url, args, message):
    result = run(*args, "--url", crm_url, input="")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    engine = make_engine(crm_url)
    try:
        assert thd_acd_config(engine).queues == () and thd_acd_config(engine).agents == ()
    finally:
        engine.dispose()


def test_config_commands_on_a_database_never_migrated_say_what_to_do(tmp_path):
    result = run("agents", "show", "--url", f"sqlite:///{tmp_path / 'blank.db'}")
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot read agents: ")
    assert result.output.rstrip().endswith(f"(the schema is at revision none, not {head_revision()}: "
                                           "run `callcenter db upgrade`)")
    assert "Traceback" not in result.output
