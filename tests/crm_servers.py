"""CRM test support: fresh migrated databases, a PostgreSQL that can be stopped
and started again, and a contact-writer child process to kill.

``fresh_database`` hands each test its own migrated database, copied from a
template migrated once per session: a file copy on SQLite, ``CREATE
DATABASE ... TEMPLATE`` on PostgreSQL (the session server of conftest.py).

Run as a program (``python -m tests.crm_servers writer ...``) it is the
child the crash test SIGKILLs: it logs contact writes as fast as the
journal acknowledges them and prints ``ACK <linkedid> <step>`` for each.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests import servers

_counter = itertools.count(1)


class TemplateDatabases:
    """Migrated template databases, one per backend, made on first use."""

    def __init__(self) -> None:
        self._sqlite: Path | None = None
        self._pg_template: str | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="cc-crm-tpl-"))

    def sqlite(self, target: Path) -> str:
        if self._sqlite is None:
            self._sqlite = self._dir / "template.db"
            _migrate(f"sqlite:///{self._sqlite}")
        shutil.copyfile(self._sqlite, target)
        return f"sqlite:///{target}"

    def postgres(self, server_url: str) -> str:
        import psycopg

        admin = make_url(server_url).set(drivername="postgresql", database="postgres")
        if self._pg_template is None:
            self._pg_template = "crm_template"
            with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self._pg_template}")
                conn.execute(f"CREATE DATABASE {self._pg_template}")
            _migrate(str(make_url(server_url).set(database=self._pg_template).render_as_string(False)))
        name = f"crm_{next(_counter)}"
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self._pg_template}")
        return make_url(server_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        import psycopg

        parsed = make_url(url)
        admin = parsed.set(drivername="postgresql", database="postgres")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)")

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def crm_templates():
    templates = TemplateDatabases()
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def crm_url(request, tmp_path, crm_templates):
    """A fresh, migrated CRM database of its own for each test, on SQLite and real PostgreSQL."""
    if request.param == "sqlite":
        yield crm_templates.sqlite(tmp_path / "crm.db")
        return
    url = crm_templates.postgres(request.getfixturevalue("postgres_url"))
    yield url
    crm_templates.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request, tmp_path):
    """An empty database of its own (never migrated), on SQLite and on the session's real PostgreSQL:
    where the upgrade tests migrate from an old revision."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    import psycopg

    server = request.getfixturevalue("postgres_url")
    admin = make_url(server).set(drivername="postgresql", database="postgres").render_as_string(False)
    name = f"blank_{next(_counter)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield make_url(server).set(database=name).render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def crm_engine(crm_url):
    from crm_core.db import make_engine

    engine = make_engine(crm_url)
    yield engine
    engine.dispose()


class _Engines:
    """Fresh migrated databases made on first use, one per backend, for hypothesis tests."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path, templates: TemplateDatabases):
        self._request, self._tmp, self._templates = request, tmp_path, templates
        self._made: dict[str, tuple[str, object]] = {}

    def __call__(self, backend: str):
        from crm_core.db import make_engine

        if backend not in self._made:
            if backend == "sqlite":
                url = self._templates.sqlite(self._tmp / "crm-h.db")
            else:
                url = self._templates.postgres(self._request.getfixturevalue("postgres_url"))
            self._made[backend] = (url, make_engine(url))
        return self._made[backend][1]

    def close(self) -> None:
        for backend, (url, engine) in self._made.items():
            engine.dispose()
            if backend == "postgresql":
                self._templates.drop(url)


@pytest.fixture
def crm_engines(request, tmp_path, crm_templates):
    """``crm_engines("sqlite")`` / ``crm_engines("postgresql")``: an engine on a fresh database.

    Hypothesis tests take this instead of the parametrised ``crm_engine``
    (pytest-twisted re-wraps a parametrised hypothesis test once per item).
    """
    engines = _Engines(request, tmp_path, crm_templates)
    yield engines
    engines.close()


def _migrate(url: str) -> None:
    from crm_core.db import make_engine
    from crm_core.migrate import thd_upgrade

    engine = make_engine(url)
    try:
        thd_upgrade(engine)
    finally:
        engine.dispose()


def migrate_new_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``, migrated; return its URL."""
    import psycopg

    admin = make_url(server_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    return url


@dataclass
class RestartablePostgres:
    """A dedicated PostgreSQL server for outage tests: ``stop()`` then ``start()`` again."""

    server: servers.PostgresServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def _pg_ctl(self) -> list[str]:
        return [*self.server.as_user, str(self.server.bindir / "pg_ctl"), "-D", self.server.datadir]

    def stop(self) -> None:
        subprocess.run([*self._pg_ctl, "-m", "fast", "-w", "stop"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        root = str(Path(self.server.datadir).parent)
        port = make_url(self.server.url).port
        opts = f"-p {port} -h 127.0.0.1 -k {root} -F -c max_connections=200"
        subprocess.run([*self._pg_ctl, "-o", opts, "-l", f"{root}/server.log", "-w", "-t", "60", "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def destroy(self) -> None:
        self.server.stop()


def start_restartable_postgres() -> RestartablePostgres:
    return RestartablePostgres(servers.start_postgres())


# -- the writer child process ------------------------------------------------------------------

#: The writes of one call, in order; the crash test checks each acknowledged step is in the CRM.
STEPS = ("queued", "answered", "ended")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def call_write(n: int, step: str, prefix: str = "crash"):
    """The ``step`` write of call ``n``: what the daemon knows at that point."""
    from crm_core.records import ContactRecord, IvrStep

    linkedid = f"{prefix}-{n}"
    start = T0 + timedelta(seconds=n)
    if step == "queued":
        return ContactRecord(linkedid, start, direction="inbound", ani=f"1380013{n % 10000:04d}",
                             dnis="95588", caller_name=f"来电 {n}", ivr_path=(IvrStep("main", "1"),),
                             queue="support", priority=n % 5, enqueued_at=start)
    if step == "answered":
        return ContactRecord(linkedid, start, answered_at=start + timedelta(seconds=12), agent=f"a{n % 7}",
                             wait_seconds=12.0)
    return ContactRecord(linkedid, start, ended_at=start + timedelta(seconds=90), talk_seconds=78.0,
                         hangup_cause="normal_clearing", disposition="solved", notes=f"call {n} done")


def _writer_main(args: argparse.Namespace) -> int:
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from twisted.internet.defer import ensureDeferred

    from callcenter.config import CrmConfig
    from crm_core.service import CrmService

    svc = CrmService(reactor, CrmConfig(url=args.url, journal=args.journal), migrate=False)
    def ack(_: object, linkedid: str, step: str) -> None:
        sys.stdout.write(f"ACK {linkedid} {step}\n")
        sys.stdout.flush()

    async def run() -> None:
        await svc.startService()
        print("READY", flush=True)
        window = []
        for n in range(args.first, args.first + args.calls):
            for step in STEPS:
                d = svc.writer.log(call_write(n, step, args.prefix))
                d.addCallback(ack, f"{args.prefix}-{n}", step)
                window.append(d)
            if len(window) >= 300:
                await window.pop(0)
        for d in window:
            await d
        print("DONE", flush=True)
        await svc.stopService()

    d = ensureDeferred(run())
    d.addErrback(lambda f: print("ERROR", f.getTraceback(), file=sys.stderr, flush=True))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    return 0


def _replay_main(args: argparse.Namespace) -> int:
    """Start the CRM service on a journal (replaying it), wait until it is flushed, stop."""
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from twisted.internet.defer import ensureDeferred

    from callcenter.config import CrmConfig
    from crm_core.service import CrmService

    svc = CrmService(reactor, CrmConfig(url=args.url, journal=args.journal), migrate=False)
    status = []

    async def run() -> None:
        await svc.startService()
        await svc.writer.wait_flushed()
        await svc.stopService()
        status.append(0)

    d = ensureDeferred(run())
    d.addErrback(lambda f: print("ERROR", f.getTraceback(), file=sys.stderr, flush=True))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    return status[0] if status else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crm_servers")
    sub = parser.add_subparsers(dest="command", required=True)
    writer = sub.add_parser("writer", help="log contact writes until killed")
    writer.add_argument("--url", required=True)
    writer.add_argument("--journal", required=True)
    writer.add_argument("--calls", type=int, default=100000)
    writer.add_argument("--first", type=int, default=0)
    writer.add_argument("--prefix", default="crash")
    replay = sub.add_parser("replay", help="start on a journal, flush it, stop")
    replay.add_argument("--url", required=True)
    replay.add_argument("--journal", required=True)
    args = parser.parse_args()
    return _writer_main(args) if args.command == "writer" else _replay_main(args)


if __name__ == "__main__":
    sys.exit(main())
