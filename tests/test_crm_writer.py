"""Contact logging that loses nothing: journal first, replay on start, outages, crashes.

Every test runs on SQLite and on a real PostgreSQL.  The crash test SIGKILLs
a writer process mid-stream, three times, and checks every acknowledged
write is in the CRM exactly once.  The outage tests stop the database (a
dedicated PostgreSQL server is stopped and started again; SQLite is locked
by another process) while calls keep being logged.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from sqlalchemy import func, select
from twisted.internet import reactor, task
from twisted.internet.defer import succeed

from callcenter.config import CrmConfig
from crm_core.contacts import thd_get_contact
from crm_core.db import make_engine
from crm_core.errors import InvalidInput
from crm_core.journal import Journal
from crm_core.models import contacts
from crm_core.records import ContactRecord
from crm_core.service import CrmService
from crm_core.writer import WriterStopped
from tests.crm_servers import (  # noqa: F401
    STEPS,
    T0,
    call_write,
    crm_engine,
    crm_templates,
    crm_url,
    migrate_new_database,
    start_restartable_postgres,
)

ROOT = Path(__file__).resolve().parent.parent


async def wait_until(predicate, timeout=20.0, what="condition"):
    """Wait on the reactor (never blocking it) until ``predicate()`` holds."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


def count_contacts(engine, prefix=""):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(contacts)
                            .where(contacts.c.linkedid.startswith(prefix))).scalar()


def journal_counts(path):
    j = Journal(path)
    j.open()
    try:
        return j.counts()
    finally:
        j.close()


def expected_fields(n, step, prefix):
    """The fields the ``step`` write of call ``n`` set, as they must read back."""
    write = call_write(n, step, prefix)
    return {f.name: getattr(write, f.name) for f in dataclasses.fields(write)
            if getattr(write, f.name) not in (None, ()) and f.name not in ("revision",)}


@pytest_twisted.ensureDeferred
async def test_log_fires_once_durable_and_the_flusher_moves_it_to_the_crm(crm_url, tmp_path):
    """An acknowledged record is in the journal or the CRM; once flushed, the journal is empty."""
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    for n in range(200):
        await svc.writer.log(call_write(n, "queued", "ack"))
    await svc.writer.wait_flushed()
    assert count_contacts(svc.engine, "ack-") == 200
    assert journal_counts(tmp_path / "j") == {"pending": 0, "rejected": 0}
    got = await svc.store.contact("ack-7")
    assert {k: getattr(got, k) for k in expected_fields(7, "queued", "ack")} == expected_fields(7, "queued", "ack")
    await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_neither_journal_nor_database_work_runs_on_the_reactor_thread(crm_url, tmp_path, monkeypatch):
    """Journal appends and CRM flushes happen on their own threads; the reactor only waits."""
    import threading

    from callcenter.dbpool import DbPool
    from crm_core import contacts as contacts_module
    from crm_core import writer as writer_module

    threads = set()

    class WatchedJournal(Journal):
        def append(self, items):
            threads.add(("journal", threading.current_thread().name))
            return super().append(items)

    def watched_log(*args):
        threads.add(("crm", threading.current_thread().name))
        return contacts_module.thd_log_contacts(*args)

    monkeypatch.setattr(writer_module, "thd_log_contacts", watched_log)
    engine = make_engine(crm_url)
    pool = DbPool(reactor, name="test-db", size=2)
    pool.start()
    writer = writer_module.ContactWriter(reactor, WatchedJournal(tmp_path / "j"), pool, engine, "CN")
    await writer.start()
    for n in range(20):
        await writer.log(call_write(n, "queued", "thread"))
    await writer.wait_flushed()
    await writer.stop()
    await pool.stop()
    engine.dispose()
    assert {kind for kind, _ in threads} == {"journal", "crm"}
    assert threading.current_thread().name not in {name for _, name in threads}


@pytest_twisted.ensureDeferred
async def test_bad_records_are_refused_at_once_and_never_journaled(crm_url, tmp_path):
    """log() fails with InvalidInput naming the field; the journal stays empty."""
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    with pytest.raises(InvalidInput, match="caller_name: NUL"):
        await svc.writer.log(ContactRecord("bad.1", T0, caller_name="a\x00b"))
    await svc.stopService()
    assert journal_counts(tmp_path / "j") == {"pending": 0, "rejected": 0}


@pytest_twisted.ensureDeferred
async def test_a_stopped_writer_refuses_records(crm_url, tmp_path):
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    writer = svc.writer
    await svc.stopService()
    with pytest.raises(WriterStopped):
        await writer.log(call_write(1, "queued"))


@pytest_twisted.ensureDeferred
async def test_journaled_records_are_replayed_on_start(crm_url, tmp_path):
    """Records left in the journal by a previous run reach the CRM when the service starts."""
    import json

    from crm_core.contact_codec import contact_to_json

    journal = Journal(tmp_path / "j")
    journal.open()
    journal.append([(f"replay-{n}", json.dumps(contact_to_json(dataclasses.replace(
        call_write(n, "ended", "replay"), revision=n + 1), compact=True))) for n in range(300)])
    journal.close()
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    await svc.writer.wait_flushed()
    assert count_contacts(svc.engine, "replay-") == 300
    await svc.stopService()
    assert journal_counts(tmp_path / "j") == {"pending": 0, "rejected": 0}


@pytest_twisted.ensureDeferred
async def test_a_refused_record_is_kept_aside_and_does_not_block_the_others(crm_url, tmp_path):
    """A write the database refuses (no such customer) is rejected in the journal; the rest flow."""
    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    for n in range(20):
        record = call_write(n, "queued", "poison")
        if n == 7:
            record = dataclasses.replace(record, customer_id=987654)
        await svc.writer.log(record)
    await svc.writer.wait_flushed()
    assert count_contacts(svc.engine, "poison-") == 19
    assert await svc.store.contact("poison-7") is None
    await svc.stopService()
    journal = Journal(tmp_path / "j")
    journal.open()
    [kept] = journal.rejected()
    assert kept.linkedid == "poison-7" and "foreign key" in kept.error.lower()
    journal.close()


@pytest_twisted.ensureDeferred
async def test_every_refused_record_is_counted_and_logged_with_its_call_id(crm_url, tmp_path, caplog):
    """``refused`` counts the records refused at log() and those the database rejected; none is silent."""
    import logging

    svc = CrmService(reactor, CrmConfig(url=crm_url, journal=str(tmp_path / "j")))
    await svc.startService()
    assert svc.writer.refused == 0
    with caplog.at_level(logging.ERROR, "crm_core.writer"):
        with pytest.raises(InvalidInput):
            await svc.writer.log(ContactRecord("bad.1", T0, caller_name="a\x00b"))
        await svc.writer.log(dataclasses.replace(call_write(1, "queued", "count"), customer_id=987654))
        await svc.writer.log(call_write(2, "queued", "count"))
        await svc.writer.wait_flushed()
    assert svc.writer.refused == 2
    assert count_contacts(svc.engine, "count-") == 1
    assert [r.call_id for r in caplog.records] == ["bad.1", "count-1"]
    assert "caller_name: NUL" in caplog.records[0].getMessage()
    await svc.stopService()


class Outage:
    """A CRM database that can be taken down and brought back.

    PostgreSQL: a dedicated server, stopped and started again on the same
    port.  SQLite: another process holds the write lock (the engine waits
    0.2 s for it, then fails like an unreachable server).
    """

    def __init__(self, backend, tmp_path, templates, pg):
        self.backend = backend
        if backend == "sqlite":
            self.url = templates.sqlite(tmp_path / "crm.db") + "?timeout=0.2"
            self._path = str(tmp_path / "crm.db")
            self._holder = None
        else:
            self.url = migrate_new_database(pg.url, f"outage_{os.getpid()}_{id(self)}")
            self._pg = pg

    def begin(self):
        if self.backend == "sqlite":
            self._holder = sqlite3.connect(self._path, isolation_level=None)
            self._holder.execute("BEGIN EXCLUSIVE")
            return succeed(None)
        return _in_thread(self._pg.stop)

    def end(self):
        if self.backend == "sqlite":
            self._holder.execute("ROLLBACK")
            self._holder.close()
            return succeed(None)
        return _in_thread(self._pg.start)


def _in_thread(fn):
    from twisted.internet.threads import deferToThread

    return deferToThread(fn)


@pytest.fixture(scope="module")
def restartable_pg():
    server = start_restartable_postgres()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request, tmp_path, crm_templates):
    pg = request.getfixturevalue("restartable_pg") if request.param == "postgresql" else None
    return Outage(request.param, tmp_path, crm_templates, pg)


@pytest_twisted.ensureDeferred
async def test_database_down_holds_records_in_the_journal_and_flushes_when_back(outage, tmp_path):
    """The database goes away mid-stream: calls keep being acknowledged, then all arrive, once."""
    svc = CrmService(reactor, CrmConfig(url=outage.url, journal=str(tmp_path / "j")))
    await svc.startService()
    for n in range(100):
        await svc.writer.log(call_write(n, "queued", "down"))
    await svc.writer.wait_flushed()
    await outage.begin()
    for n in range(100, 400):
        for step in STEPS:
            await svc.writer.log(call_write(n, step, "down"))
    await wait_until(lambda: svc.writer.outage, what="the outage to be noticed")
    assert svc.writer.held == 900
    assert journal_counts(tmp_path / "j")["pending"] == 900
    await outage.end()
    await svc.writer.wait_flushed()
    assert not svc.writer.outage
    assert count_contacts(svc.engine, "down-") == 400
    for n in (0, 100, 250, 399):
        got = await svc.store.contact(f"down-{n}")
        for step in (STEPS if n >= 100 else ("queued",)):
            fields = expected_fields(n, step, "down")
            assert {k: getattr(got, k) for k in fields} == fields
    await svc.stopService()
    assert journal_counts(tmp_path / "j") == {"pending": 0, "rejected": 0}


@pytest_twisted.ensureDeferred
async def test_stop_during_an_outage_keeps_to_its_deadline_and_the_records(outage, tmp_path):
    """Stopping while the database is down returns in time; held records flush at the next start."""
    svc = CrmService(reactor, CrmConfig(url=outage.url, journal=str(tmp_path / "j")), stop_timeout=1.0)
    await svc.startService()
    await outage.begin()
    for n in range(50):
        await svc.writer.log(call_write(n, "ended", "deadline"))
    await wait_until(lambda: svc.writer.outage, what="the outage to be noticed")
    began = reactor.seconds()
    await svc.stopService()
    assert reactor.seconds() - began < 6
    assert journal_counts(tmp_path / "j")["pending"] == 50
    await outage.end()
    svc = CrmService(reactor, CrmConfig(url=outage.url, journal=str(tmp_path / "j")))
    await svc.startService()
    await svc.writer.wait_flushed()
    assert count_contacts(svc.engine, "deadline-") == 50
    await svc.stopService()


# -- the writer is killed mid-stream ------------------------------------------------------------

def _run_child_until_killed(url, journal, first, calls, kill_after):
    """Start a writer process, SIGKILL it after ``kill_after`` acknowledgements; return the acks."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crm_servers", "writer", "--url", url, "--journal", str(journal),
         "--first", str(first), "--calls", str(calls), "--prefix", "kill"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    try:
        for line in child.stdout:
            if line.startswith("ACK "):
                _, linkedid, step = line.split()
                acked.append((linkedid, step))
                if len(acked) >= kill_after:
                    os.kill(child.pid, signal.SIGKILL)
                    break
            elif line.startswith("DONE"):
                break
        # Acknowledgements already written to the pipe count too: they were durable before printing.
        for line in child.stdout:
            if line.startswith("ACK "):
                _, linkedid, step = line.split()
                acked.append((linkedid, step))
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    return acked


def test_killing_the_writer_mid_stream_loses_and_doubles_nothing(crm_url, tmp_path):
    """SIGKILL a logging process three times; after a restart every acknowledged write is there, once."""
    journal = tmp_path / "contacts.journal"
    acked = []
    held = []
    for round_, first in enumerate((0, 10000, 20000)):
        acked += _run_child_until_killed(crm_url, journal, first, 5000, kill_after=1500 + 700 * round_)
        held.append(journal_counts(journal)["pending"])
    print("records left in the journal by each kill:", held)
    assert sum(held) > 0, "the kills never left anything to replay"
    restart = subprocess.run([sys.executable, "-m", "tests.crm_servers", "replay", "--url", crm_url,
                              "--journal", str(journal)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                             capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr
    assert journal_counts(journal) == {"pending": 0, "rejected": 0}
    engine = make_engine(crm_url)
    with engine.connect() as conn:
        rows = {r.linkedid: r for r in conn.execute(select(contacts).where(contacts.c.linkedid.startswith("kill-")))}
        doubled = conn.execute(select(contacts.c.linkedid).group_by(contacts.c.linkedid)
                               .having(func.count() > 1)).all()
    assert doubled == []
    for linkedid, step in acked:
        n = int(linkedid.split("-")[1])
        assert linkedid in rows, f"acknowledged {linkedid} {step} is missing"
        fields = expected_fields(n, step, "kill")
        got = thd_get_contact(engine, linkedid)
        assert {k: getattr(got, k) for k in fields} == fields, (linkedid, step)
    sent = {f"kill-{n}" for first in (0, 10000, 20000) for n in range(first, first + 5000)}
    assert set(rows) <= sent
    assert len({lid for lid, _ in acked}) >= 1500 // 3
    engine.dispose()
