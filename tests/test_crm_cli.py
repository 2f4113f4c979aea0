"""callcenter db upgrade / db seed / contacts list / contacts journal, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crm_core.cli import contacts, db
from crm_core.contacts import thd_log_contacts
from crm_core.db import make_engine
from crm_core.journal import Journal
from crm_core.migrate import head_revision, thd_current_revision
from crm_core.models import contacts as contacts_table
from crm_core.models import customers
from crm_core.records import ContactRecord, IvrStep
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)
from tests.servers import free_port

REQUIRED = {"linkedid", "direction", "ani", "dnis", "customer_id", "ivr_path", "queue", "priority", "agent",
            "enqueued_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds", "abandoned", "hangup_cause",
            "disposition", "notes"}
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """A database that was never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(request.getfixturevalue("postgres_url"))
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(False)
    name = f"fresh_{free_port()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.set(database=name).render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_db_upgrade_creates_the_schema_and_is_idempotent(empty_url):
    """upgrade brings a blank database to the head revision; running it again is harmless."""
    for _ in range(2):
        result = CliRunner().invoke(db, ["upgrade", "--url", empty_url])
        assert result.exit_code == 0, result.output
        assert f"CRM schema at revision {head_revision()}" in result.output
    engine = make_engine(empty_url)
    assert thd_current_revision(engine) == head_revision()
    engine.dispose()


def test_db_upgrade_reads_the_crm_section_of_a_config(tmp_path):
    """--config takes [crm] url relative to the file; other sections are not needed."""
    cfg = tmp_path / "cc.toml"
    cfg.write_text('[crm]\nurl = "sqlite:///data/crm.db"\n')
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(db, ["upgrade", "--config", str(cfg)], env={"CALLCENTER_CRM_URL": None})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "crm.db").exists()


def test_bad_config_and_unreachable_database_exit_2_and_1(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[crm]\nurl = "mysql://x/y"\ndefault_region = "china"\n')
    result = CliRunner().invoke(db, ["upgrade", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "crm.url: unsupported database 'mysql'" in result.output
    assert "crm.default_region: expected a two-letter ISO 3166 region code" in result.output
    result = CliRunner().invoke(db, ["upgrade", "--url", f"postgresql://cc@127.0.0.1:{free_port()}/none"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot migrate postgresql database")


def test_db_seed_makes_realistic_deterministic_data(empty_url, tmp_path):
    """seed migrates, shows progress, and the same seed gives the same customers."""
    args = ["seed", "--url", empty_url, "--customers", "300", "--contacts", "1500", "--seed", "42",
            "--as-of", "2026-01-01", "--batch", "100"]
    result = CliRunner().invoke(db, args)
    assert result.exit_code == 0, result.output
    assert "added 300 customers" in result.output
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        names = conn.execute(select(customers.c.name).order_by(customers.c.id)).scalars().all()
        calls = conn.execute(select(func.count()).select_from(contacts_table)).scalar()
    engine.dispose()
    assert len(names) == 300 and 1000 < calls < 2200
    assert any("\u4e00" <= n[0] <= "\u9fff" for n in names) and any(n[0].isascii() for n in names)
    other = f"sqlite:///{tmp_path / 'again.db'}"
    assert CliRunner().invoke(db, [*args[:1], "--url", other, *args[3:]]).exit_code == 0
    engine = make_engine(other)
    with engine.connect() as conn:
        assert conn.execute(select(customers.c.name).order_by(customers.c.id)).scalars().all() == names
    engine.dispose()


def _log_some(engine):
    records = [ContactRecord(f"cli.{i}", T0 + timedelta(hours=i), direction="inbound",
                             ani="13800138000" if i % 2 else "+1 415 555 2671", dnis="95588",
                             ivr_path=(IvrStep("main", "1"),), queue="billing", priority=2, agent="1001",
                             enqueued_at=T0 + timedelta(hours=i, seconds=5), talk_seconds=61.5, abandoned=False,
                             notes="客户\t\"quoted\"\nline", revision=1) for i in range(5)]
    thd_log_contacts(engine, records, "CN")


def test_contacts_list_json_is_one_object_per_line_with_every_field(crm_url, crm_engine):
    _log_some(crm_engine)
    result = CliRunner().invoke(contacts, ["list", "--url", crm_url, "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 5
    rows = [json.loads(line) for line in lines]
    assert all(REQUIRED <= set(row) for row in rows)
    assert rows[1]["ivr_path"] == [{"node": "main", "digits": "1"}]
    assert rows[1]["notes"] == "客户\t\"quoted\"\nline"
    assert rows[1]["enqueued_at"] == "2026-02-01T10:00:05+00:00"


def test_contacts_list_filters_by_since_and_ani(crm_url, crm_engine):
    _log_some(crm_engine)
    since = CliRunner().invoke(contacts, ["list", "--url", crm_url, "--json", "--since", "2026-02-01T11:00:00"])
    assert [json.loads(x)["linkedid"] for x in since.output.splitlines()] == ["cli.2", "cli.3", "cli.4"]
    offset = CliRunner().invoke(contacts, ["list", "--url", crm_url, "--json", "--since", "2026-02-01T19:00:00+08:00"])
    assert [json.loads(x)["linkedid"] for x in offset.output.splitlines()] == ["cli.2", "cli.3", "cli.4"]
    ani = CliRunner().invoke(contacts, ["list", "--url", crm_url, "--json", "--ani", "0086 138 0013 8000"])
    assert [json.loads(x)["linkedid"] for x in ani.output.splitlines()] == ["cli.1", "cli.3"]
    text = CliRunner().invoke(contacts, ["list", "--url", crm_url, "--limit", "1"])
    assert text.output.split("\t")[:2] == ["2026-02-01T09:00:00+00:00", "cli.0"]


def test_contacts_list_refuses_a_bad_since():
    result = CliRunner().invoke(contacts, ["list", "--url", "sqlite://", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "expected an ISO 8601 date or time, got 'yesterday'" in result.output


def test_contacts_journal_shows_and_requeues_rejected_records(tmp_path):
    path = tmp_path / "j"
    j = Journal(path)
    j.open()
    seqs = j.append([("a.1", "{}"), ("a.2", "{}")])
    j.reject(seqs[0], "no customer 9")
    j.close()
    result = CliRunner().invoke(contacts, ["journal", "--journal", str(path)])
    assert result.exit_code == 0
    assert f"{path}: 1 waiting for the CRM, 1 rejected" in result.output
    assert "a.1" in result.output and "no customer 9" in result.output
    result = CliRunner().invoke(contacts, ["journal", "--journal", str(path), "--requeue"])
    assert "requeued 1 rejected records" in result.output
    assert "2 waiting for the CRM, 0 rejected" in result.output
    assert CliRunner().invoke(contacts, ["journal", "--journal", str(tmp_path / "none")]).exit_code == 1


@pytest.mark.parametrize("args", [["db"], ["db", "upgrade"], ["db", "seed"], ["contacts"], ["contacts", "list"],
                                  ["contacts", "journal"]])
def test_every_command_has_help(args):
    group = db if args[0] == "db" else contacts
    result = CliRunner().invoke(group, [*args[1:], "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
