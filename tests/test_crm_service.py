"""The CRM store service on SQLite and real PostgreSQL: start, drain, stop, failures."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from sqlalchemy import text
from twisted.internet import reactor

from callcenter.config import CrmConfig
from callcenter.service import StartupError, AsyncMultiService
from crm_core.service import CrmService


@pytest_twisted.ensureDeferred
async def test_starts_and_answers_off_the_reactor_thread(db_url):
    """Queries run on the pool's threads, never the reactor's, and return plain data."""
    svc = CrmService(reactor, CrmConfig(url=db_url))
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
async def test_stop_finishes_pending_writes(db_url):
    """Writes submitted before stop are all committed when stop returns."""
    svc = CrmService(reactor, CrmConfig(url=db_url), threads=2)
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
async def test_unreachable_database_fails_the_start_loudly():
    """A PostgreSQL URL nobody answers makes the daemon's start fail, naming the CRM."""
    from tests.servers import free_port

    root = AsyncMultiService()
    CrmService(reactor, CrmConfig(url=f"postgresql://cc@127.0.0.1:{free_port()}/none")).setServiceParent(root)
    with pytest.raises(StartupError) as info:
        await root.startService()
    assert info.value.service_name == "crm"
    assert "connection" in str(info.value).lower()
