"""Groups in the CRM (SQLite and PostgreSQL): the 0004 tables up and down, agents' and queues' groups saved,
checked, read back with the password check, seen by the config stamp, and the --groups options."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from callcenter.cli import cli
from crm_core import models
from crm_core.acd_config import (
    NewAgent,
    thd_acd_config,
    thd_acd_config_stamp,
    thd_agent,
    thd_change_agent,
    thd_change_queue,
    thd_check_password,
    thd_queue,
    thd_remove_agent,
    thd_remove_queue,
    thd_save_agent,
    thd_save_queue,
)
from crm_core.db import make_engine
from crm_core.errors import InvalidInput
from crm_core.migrate import head_revision, thd_downgrade, thd_upgrade
from crm_core.models import agent_groups, agents, queue_groups, queues
from crm_core.records import QueueConfig
from tests.crm_servers import blank_url, crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)




# -- the schema ---------------------------------------------------------------------------------------------------


def test_upgrade_from_0003_adds_the_group_tables_and_downgrade_drops_only_them(blank_url):
    """Agents and queues of 0003 survive 0004 in no group; the schema is the models'; groups can be set;
    downgrading to 0003 drops both tables and keeps the agents, queues and memberships."""
    engine = make_engine(blank_url)
    try:
        assert thd_upgrade(engine, "0003") == "0003"
        with engine.begin() as conn:
            qid = conn.execute(insert(queues).values(name="billing", display_name="Billing")).inserted_primary_key[0]
            aid = conn.execute(insert(agents).values(login="6001", display_name="A")).inserted_primary_key[0]
            conn.execute(insert(models.agent_queues).values(agent_id=aid, queue_id=qid, penalty=1))
        assert head_revision() == "0004"
        assert thd_upgrade(engine) == "0004"
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, models.metadata) == []
        insp = inspect(engine)
        pk = insp.get_pk_constraint("agent_groups")
        assert (pk["name"], pk["constrained_columns"]) == ("pk_agent_groups", ["agent_id", "name"])
        (fk,) = insp.get_foreign_keys("queue_groups")
        assert (fk["name"], fk["referred_table"], fk["options"].get("ondelete")) == (
            "fk_queue_groups_queue_id_queues", "queues", "CASCADE")
        assert thd_agent(engine, "6001").groups == () and thd_queue(engine, "billing").groups == ()
        thd_change_agent(engine, "6001", groups=("east",))
        thd_change_queue(engine, "billing", groups=("east", "west"))
        assert thd_downgrade(engine, "0003") == "0003"
        assert not {"agent_groups", "queue_groups"} & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(select(models.agent_queues.c.penalty)).scalars().all() == [1]
            assert conn.execute(select(agents.c.login)).scalars().all() == ["6001"]
        assert thd_upgrade(engine) == "0004"
        assert thd_agent(engine, "6001").groups == ()        # the memberships went with the tables
    finally:
        engine.dispose()


def test_the_database_keys_groups_by_owner_and_name_and_drops_them_with_the_owner(crm_engine):
    thd_save_queue(crm_engine, QueueConfig("support", "Support", (), 0, 20, groups=("east",)))
    agent_id = thd_save_agent(crm_engine, NewAgent("6001", "A", groups=("east",)))
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(agent_groups).values(agent_id=agent_id, name="east"))
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(agent_groups).values(agent_id=agent_id + 1000, name="west"))
    with crm_engine.begin() as conn:      # bypassing acd_config: the database cascades by itself
        conn.execute(delete(agents).where(agents.c.id == agent_id))
        assert conn.execute(select(agent_groups)).all() == []
    thd_remove_queue(crm_engine, "support")
    with crm_engine.connect() as conn:
        assert conn.execute(select(queue_groups)).all() == []


# -- saved, checked, read back ------------------------------------------------------------------------------------


def test_groups_round_trip_sorted_and_come_with_the_password_check(crm_engine):
    thd_save_queue(crm_engine, QueueConfig("support", "Support", (), 0, 20, groups=("west", "east")))
    thd_save_agent(crm_engine, NewAgent("6001", "A", password="pw-secret", role="supervisor",
                                        groups=("west", "东区", "east")))
    thd_save_agent(crm_engine, NewAgent("6002", "B", queues=(("support", 0),)))
    config = thd_acd_config(crm_engine)
    assert config.queues[0].groups == ("east", "west")
    assert {a.login: a.groups for a in config.agents} == {"6001": ("east", "west", "东区"), "6002": ()}
    checked = thd_check_password(crm_engine, "6001", "pw-secret")
    assert checked is not None and checked.groups == ("east", "west", "东区") and checked.role == "supervisor"
    assert thd_check_password(crm_engine, "6001", "wrong") is None


def test_changing_other_fields_keeps_the_groups_and_an_empty_tuple_clears_them(crm_engine):
    thd_change_queue(crm_engine, "support", groups=("east",))
    thd_change_agent(crm_engine, "6001", groups=("east",))
    assert thd_change_queue(crm_engine, "support", ring_seconds=20)[0].groups == ("east",)
    assert thd_change_agent(crm_engine, "6001", interface="PJSIP/6001")[0].groups == ("east",)
    assert thd_change_queue(crm_engine, "support", groups=())[0].groups == ()
    assert thd_change_agent(crm_engine, "6001", groups=())[0].groups == ()


@pytest.mark.parametrize(("groups", "message"), [
    (("a" * 65,), "groups: 65 characters, at most 64"),
    (("",), "groups: must not be empty"),
    (("east\n",), r"groups: control character U\+000A \(line feed\)"),
    (("east", "east"), "groups: east is given twice"),
    ("east", "groups: expected a list of group names, got str"),
])
def test_group_names_are_checked_like_other_keys(crm_engine, groups, message):
    with pytest.raises(InvalidInput, match=message):
        thd_save_agent(crm_engine, NewAgent("6001", "A", groups=groups))
    with pytest.raises(InvalidInput, match=message):
        thd_save_queue(crm_engine, QueueConfig("support", "Support", (), 0, 20, groups=groups))
    assert thd_acd_config(crm_engine).agents == () and thd_acd_config(crm_engine).queues == ()


def test_the_config_stamp_changes_when_groups_change(crm_engine):
    """The daemon polls the stamp: a group added, changed or removed on an agent or a queue moves it,
    even one written straight into the table."""
    thd_change_queue(crm_engine, "support")
    agent_id = thd_save_agent(crm_engine, NewAgent("6001", "A"))
    stamps = [thd_acd_config_stamp(crm_engine)]
    thd_change_agent(crm_engine, "6001", groups=("east",))
    stamps.append(thd_acd_config_stamp(crm_engine))
    thd_change_queue(crm_engine, "support", groups=("east",))
    stamps.append(thd_acd_config_stamp(crm_engine))
    thd_change_queue(crm_engine, "support", groups=("west",))
    stamps.append(thd_acd_config_stamp(crm_engine))
    thd_change_agent(crm_engine, "6001", groups=())
    stamps.append(thd_acd_config_stamp(crm_engine))
    with crm_engine.begin() as conn:
        conn.execute(insert(agent_groups).values(agent_id=agent_id, name="by-hand"))
    stamps.append(thd_acd_config_stamp(crm_engine))
    assert len(set(stamps)) == len(stamps)
    assert thd_acd_config_stamp(crm_engine) == stamps[-1]   # and it is stable while nothing changes
    thd_remove_agent(crm_engine, "6001")
    assert thd_acd_config_stamp(crm_engine) != stamps[-1]


# -- the commands -------------------------------------------------------------------------------------------------


def test_agents_set_groups_show_and_clear(crm_url):
    made = run("agents", "set", "6001", "--url", crm_url, "--role", "supervisor", "--groups", "west, east")
    assert made.exit_code == 0, made.output
    header, row = made.output.splitlines()[1:]
    assert header.split()[-1] == "GROUPS" and row.split()[-1] == "east,west"
    kept = run("agents", "set", "6001", "--url", crm_url, "--name", "Boss")
    assert kept.exit_code == 0 and kept.output.splitlines()[-1].split()[-1] == "east,west"
    shown = json.loads(run("agents", "show", "6001", "--url", crm_url, "--json").output)
    assert shown["groups"] == ["east", "west"] and shown["role"] == "supervisor"
    cleared = run("agents", "set", "6001", "--url", crm_url, "--groups", "")
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(run("agents", "show", "6001", "--url", crm_url, "--json").output)["groups"] == []
    assert run("agents", "show", "--url", crm_url).output.splitlines()[1].split()[-1] == "-"


def test_queues_set_groups_show_and_clear(crm_url):
    made = run("queues", "set", "support", "--url", crm_url, "--groups", "east,west")
    assert made.exit_code == 0, made.output
    assert "groups:         east,west" in made.output
    table = run("queues", "show", "--url", crm_url).output.splitlines()
    assert table[1].split()[table[0].split().index("GROUPS")] == "east,west"
    assert json.loads(run("queues", "show", "support", "--url", crm_url, "--json").output)["groups"] == ["east", "west"]
    assert run("queues", "set", "support", "--url", crm_url, "--ring", "9").exit_code == 0
    assert json.loads(run("queues", "show", "support", "--url", crm_url, "--json").output)["groups"] == ["east", "west"]
    cleared = run("queues", "set", "support", "--url", crm_url, "--groups", "")
    assert cleared.exit_code == 0 and "groups:         -" in cleared.output
    assert json.loads(run("queues", "show", "support", "--url", crm_url, "--json").output)["groups"] == []


@pytest.mark.parametrize(("args", "message"), [
    (("agents", "set", "6001", "--groups", "east,,west"), "error: Invalid value for --groups: empty item in 'east,,west'"),
    (("agents", "set", "6001", "--groups", "east,east"), "error: Invalid value for --groups: east is given twice"),
    (("queues", "set", "support", "--groups", "x" * 65), "error: Invalid value for --groups: 65 characters, at most 64"),
])
def test_bad_groups_are_one_line_usage_errors_and_nothing_is_saved(crm_url, args, message):
    result = run(*args, "--url", crm_url)
    assert result.exit_code == 2
    assert result.output == message + "\n"
    engine = make_engine(crm_url)
    try:
        assert thd_acd_config(engine).agents == () and thd_acd_config(engine).queues == ()
    finally:
        engine.dispose()
