"""The CRM store service on SQLite and real PostgreSQL: start, drain, stop, failures."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import pytest_twisted
from sqlalchemy import text
from twisted.internet import reactor

from callcenter.config import CrmConfig
from callcenter.service import AsyncMultiService, StartupError
from crm_core.service import CrmService
from tests.crm_servers import crm_templates, crm_url  # noqa: F401 (fixtures)


@pytest_twisted.ensureDeferred
async def test_starts_and_answers_off_the_reactor_thread(db_url, tmp_path):
    """Queries run on the pool's threads, never the reactor's, and return plain data."""
    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j")))
    await svc.startService()

    def thd_query(engine):
        with engine.connect() as conn:
            return conn.execute(text("SELECT 41 + 1")).scalar_one(), threading.current_thread().name

    value, thread = await svc.pool.run(thd_query, svc.engine)
    assert value == 42
    assert thread != threading.current_thread().name
    await svc.stopService()
    assert svc.engine is None


@pytest_twisted.ensureDeferred
async def test_stop_finishes_pending_writes(db_url, tmp_path):
    """Writes submitted before stop are all committed when stop returns."""
    svc = CrmService(reactor, CrmConfig(url=db_url, journal=str(tmp_path / "j")), threads=2)
    await svc.startService()

    def thd_setup(engine):
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS drain_probe"))
            conn.execute(text("CREATE TABLE drain_probe (n INTEGER PRIMARY KEY)"))

    await svc.pool.run(thd_setup, svc.engine)

    def thd_write(engine, n):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO drain_probe (n) VALUES (:n)"), {"n": n})

    engine = svc.engine
    for n in range(200):
        svc.pool.run(thd_write, engine, n)
    await svc.stopService()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM drain_probe")).scalar_one() == 200
    engine.dispose()


@pytest_twisted.ensureDeferred
async def test_unreachable_database_fails_the_start_loudly(tmp_path):
    """A PostgreSQL URL nobody answers makes the daemon's start fail, naming the CRM."""
    from tests.servers import free_port

    root = AsyncMultiService()
    config = CrmConfig(url=f"postgresql://cc@127.0.0.1:{free_port()}/none", journal=str(tmp_path / "j"))
    CrmService(reactor, config).setServiceParent(root)
    with pytest.raises(StartupError) as info:
        await root.startService()
    assert info.value.service_name == "crm"
    assert "connection" in str(info.value).lower()


@pytest_twisted.ensureDeferred
async def test_an_unusable_journal_fails_the_start_naming_the_crm(tmp_path, crm_url):
    """The journal is what makes contact logging safe: without it the daemon does not start."""
    (tmp_path / "j").write_text("not a journal" * 100)
    root = AsyncMultiService()
    CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j"))).setServiceParent(root)
    with pytest.raises(StartupError) as info:
        await root.startService()
    assert info.value.service_name == "crm"
    assert "cannot open journal" in str(info.value)


@pytest_twisted.ensureDeferred
async def test_start_migrates_a_blank_database(tmp_path):
    """A fresh SQLite file gets the whole schema at start."""
    from crm_core.migrate import head_revision, thd_current_revision

    svc = CrmService(reactor, CrmConfig(url=f"sqlite:///{tmp_path / 'blank.db'}", journal=str(tmp_path / "j")))
    await svc.startService()
    assert await svc.pool.run(thd_current_revision, svc.engine) == head_revision()
    await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_the_store_api_answers_with_frozen_records_off_the_reactor(crm_url, tmp_path):
    """lookup, view, search and tickets through the service: Deferreds of frozen dataclasses."""
    import dataclasses

    from crm_core.customers import NewCustomer
    from crm_core.records import ContactRecord
    from crm_core.tickets import NewTicket

    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j"), default_region="CN"))
    await svc.startService()
    cid = await svc.store.create_customer(NewCustomer("王芳", phones=("139 0013 9000",)))
    [brief] = await svc.store.lookup_by_ani("0086 139 0013 9000")
    assert brief.id == cid
    with pytest.raises(dataclasses.FrozenInstanceError):
        brief.name = "changed"
    ticket = await svc.store.open_ticket(NewTicket("complaint", "信号差", "1001", customer_id=cid))
    await svc.writer.log(ContactRecord("svc.1", datetime.now(timezone.utc), customer_id=cid,
                                       ani="13900139000", ticket_ids=(ticket.id,)))
    await svc.writer.wait_flushed()
    view = await svc.store.customer_view(cid)
    assert [c.linkedid for c in view.recent_contacts] == ["svc.1"]
    assert [t.id for t in view.open_tickets] == [ticket.id]
    assert [c.id for c in await svc.store.search("王")] == [cid]
    assert (await svc.store.ticket(ticket.id)).linkedids == ("svc.1",)
    await svc.stopService()
