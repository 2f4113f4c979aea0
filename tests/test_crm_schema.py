"""The schema: migrations build exactly the models, constraints hold in the database itself."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from crm_core.acd_config import (
    NewAgent,
    thd_acd_config,
    thd_check_password,
    thd_save_agent,
    thd_save_disposition,
    thd_save_queue,
)
from crm_core.db import make_engine
from crm_core.errors import InvalidInput
from crm_core.migrate import head_revision, thd_current_revision, thd_downgrade, thd_upgrade
from crm_core.models import agent_skills, agents, contacts, customers, metadata, tickets
from crm_core.passwords import hash_password, verify_password
from crm_core.records import DispositionCode, QueueConfig
from tests.crm_servers import blank_url, crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_migrations_build_exactly_the_models(crm_engine):
    """Alembic's autogenerate finds no difference between the migrated schema and models.py."""
    with crm_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert thd_current_revision(crm_engine) == head_revision()


def test_downgrade_and_upgrade_again(crm_engine):
    assert thd_downgrade(crm_engine, "base") is None
    assert inspect(crm_engine).get_table_names() == ["alembic_version"]
    assert thd_upgrade(crm_engine) == head_revision()


def test_indexes_for_the_hot_paths_exist(crm_engine):
    insp = inspect(crm_engine)
    contact_indexes = {i["name"]: (i["column_names"], bool(i["unique"])) for i in insp.get_indexes("contacts")}
    assert contact_indexes["uq_contacts_linkedid"] == (["linkedid"], True)
    assert contact_indexes["ix_contacts_customer_started"] == (["customer_id", "started_at"], False)
    assert contact_indexes["ix_contacts_ani_started"] == (["ani_e164", "started_at"], False)
    phone_indexes = {i["name"]: i["column_names"] for i in insp.get_indexes("customer_phones")}
    assert phone_indexes["ix_customer_phones_lookup_key"] == ["lookup_key"]


@pytest.mark.parametrize(("table", "values"), [
    (contacts, [{"linkedid": "dup", "revision": 1, "started_at": T0}] * 2),
    (contacts, [{"linkedid": "fk", "revision": 1, "started_at": T0, "customer_id": 12345}]),
    (contacts, [{"linkedid": "dir", "revision": 1, "started_at": T0, "direction": "sideways"}]),
    (customers, [{"name": "x", "tier": "platinum"}]),
    (customers, [{"name": "x", "value_score": 101}]),
    (tickets, [{"kind": "fault", "subject": "x", "created_by": "a", "status": "lost"}]),
])
def test_the_database_itself_enforces_the_constraints(crm_engine, table, values):
    """Even a write that skips our checks cannot break uniqueness, keys or value ranges."""
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            for row in values:
                conn.execute(insert(table).values(row))


def test_skill_proficiency_is_1_to_5_in_code_and_in_the_database(crm_engine):
    with pytest.raises(InvalidInput, match="skills zh: expected 1 to 5, got 6"):
        thd_save_agent(crm_engine, NewAgent("2001", "A", skills=(("zh", 6),)))
    agent_id = thd_save_agent(crm_engine, NewAgent("2001", "A"))
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(agent_skills).values(agent_id=agent_id, skill="zh", proficiency=0))


def test_acd_configuration_round_trips(crm_engine):
    """Agents with skills and queues, queues and disposition codes come back as frozen records."""
    thd_save_queue(crm_engine, QueueConfig("billing", "账单 Billing", (("billing", 2),), 0, 20))
    thd_save_queue(crm_engine, QueueConfig("vip", "VIP 专席", (("vip", 4),), 10, 10))
    thd_save_disposition(crm_engine, DispositionCode("resolved", "已解决", "general", False, True))
    thd_save_agent(crm_engine, NewAgent("1001", "李娜", "s3cret", "PJSIP/1001", "agent", True,
                                        (("zh", 5), ("billing", 3)), (("billing", 0), ("vip", 2))))
    thd_save_agent(crm_engine, NewAgent("1001", "李娜", None, "PJSIP/1001", "supervisor", True, (("vip", 4),),
                                        (("vip", 0),)))
    config = thd_acd_config(crm_engine)
    [agent] = config.agents
    assert (agent.role, agent.skills, agent.queues) == ("supervisor", (("vip", 4),), (("vip", 0),))
    assert [q.name for q in config.queues] == ["billing", "vip"]
    assert config.queues[1].required_skills == (("vip", 4),)
    assert config.dispositions[0].code == "resolved"
    assert thd_check_password(crm_engine, "1001", "s3cret") == agent
    assert thd_check_password(crm_engine, "1001", "wrong") is None
    with pytest.raises(InvalidInput, match="queues: no such queue: sales"):
        thd_save_agent(crm_engine, NewAgent("1002", "B", queues=(("sales", 0),)))
    with crm_engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM agents WHERE login = '1001'")).scalar()
    assert stored.startswith("scrypt$") and "s3cret" not in stored


def test_password_hashes():
    stored = hash_password("密码 with spaces")
    assert verify_password("密码 with spaces", stored)
    assert not verify_password("密码", stored)
    assert not verify_password("x", None) and not verify_password("x", "garbage")
    assert hash_password("same") != hash_password("same")


def test_daemons_migrating_together_do_not_collide(postgres_url):
    """Three processes upgrading one blank PostgreSQL database at once all succeed (advisory lock)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS racing WITH (FORCE)")
        conn.execute("CREATE DATABASE racing")
    url = make_url(postgres_url).set(database="racing").render_as_string(False)
    code = ("import sys; from crm_core.db import make_engine; from crm_core.migrate import thd_upgrade; "
            "print(thd_upgrade(make_engine(sys.argv[1])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert [out.strip() for out, _ in results] == [head_revision()] * 3
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE racing WITH (FORCE)")


def test_one_process_migrates_one_engine_at_a_time(crm_templates, tmp_path):
    """Alembic's globals are guarded: upgrades from several threads of one process don't collide."""
    engines = [make_engine(f"sqlite:///{tmp_path / f'db{i}.db'}") for i in range(3)]
    errors = []

    def run(engine):
        try:
            thd_upgrade(engine)
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [thd_current_revision(e) for e in engines] == [head_revision()] * 3
    for e in engines:
        e.dispose()


def test_agents_table_refuses_duplicate_logins(crm_engine):
    with pytest.raises(IntegrityError):
        with crm_engine.begin() as conn:
            conn.execute(insert(agents), [{"login": "a", "display_name": "A"}, {"login": "a", "display_name": "B"}])




def test_upgrade_from_0001_keeps_every_row_and_adds_the_ticket_key_and_the_secret(blank_url):
    """A CRM at 0001 with customers, tickets, their history and call links is upgraded in place: every row is
    still there (rebuilding a table on SQLite would cascade to its children), old tickets have no key, the
    new key is unique, old customers have no secret and no wrong tries and can be given a secret;
    downgrading to 0001 keeps the rows too."""
    from crm_core.customers import (
        VERIFIED, NewAccount, NewCustomer, VerifyStatus, thd_add_account, thd_create_customer, thd_set_verify_secret,
        thd_verify_secret, thd_verify_status,
    )
    from crm_core.tickets import NewTicket, thd_change_ticket, thd_open_ticket

    engine = make_engine(blank_url)
    try:
        assert thd_upgrade(engine, "0001") == "0001"
        with engine.begin() as conn:  # written the way 0001's code wrote them
            cid = conn.execute(insert(customers).values(name="王芳", tier="vip")).inserted_primary_key[0]
            tid = conn.execute(insert(tickets).values(kind="fault", subject="宽带", created_by="1001",
                                                      customer_id=cid)).inserted_primary_key[0]
            conn.execute(text("INSERT INTO ticket_events (ticket_id, actor, action) VALUES (:t, '1001', 'created')"),
                         {"t": tid})
            conn.execute(text("INSERT INTO ticket_contacts (ticket_id, linkedid) VALUES (:t, '1714.1')"), {"t": tid})
            conn.execute(text("INSERT INTO customer_phones (customer_id, raw, valid) VALUES (:c, '13900139000', true)"),
                         {"c": cid})

        def counts():
            with engine.connect() as conn:
                return [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                        for t in ("customers", "tickets", "ticket_events", "ticket_contacts", "customer_phones")]

        assert counts() == [1, 1, 1, 1, 1]
        assert thd_upgrade(engine) == head_revision()
        assert counts() == [1, 1, 1, 1, 1]
        assert thd_verify_status(engine, cid) == VerifyStatus(False, 0, None)
        thd_set_verify_secret(engine, cid, "1234")
        assert thd_verify_secret(engine, cid, "1234") == VERIFIED
        with engine.connect() as conn:
            assert conn.execute(text("SELECT idempotency_key FROM tickets")).scalar() is None
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        thd_add_account(engine, cid, NewAccount("88000001"))
        thd_change_ticket(engine, tid, "1002", status="in_progress")
        first = thd_open_ticket(engine, NewTicket("complaint", "x", "ivr", idempotency_key="c1:hotline:complaint"))
        assert thd_open_ticket(engine, NewTicket("complaint", "x", "ivr", idempotency_key="c1:hotline:complaint")) \
            == first
        thd_open_ticket(engine, NewTicket("complaint", "y", "ivr"))
        thd_open_ticket(engine, NewTicket("complaint", "z", "ivr"))  # many tickets without a key
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(insert(tickets).values(kind="fault", subject="dup", created_by="x",
                                                    idempotency_key="c1:hotline:complaint"))
        assert thd_create_customer(engine, NewCustomer("New", phones=("13700137000",)), "CN") > cid
        assert thd_downgrade(engine, "0001") == "0001"
        assert counts() == [2, 4, 5, 1, 2]
        assert "idempotency_key" not in [c["name"] for c in inspect(engine).get_columns("tickets")]
        assert not [c for c in inspect(engine).get_columns("customers") if c["name"].startswith("verify_")]
        assert thd_upgrade(engine) == head_revision()
    finally:
        engine.dispose()
