"""Engines for the CRM store: SQLite by default, PostgreSQL in production.

Everything here blocks; the daemon calls it only from its database thread
pool (``callcenter.dbpool``), never from the reactor thread.

SQLite runs in WAL mode with ``synchronous=FULL``: a contact record is
removed from the local journal once the CRM has committed it, so a CRM
commit must survive a power cut too.  SQLAlchemy emits BEGIN itself (the
sqlite3 driver's own transaction handling skips it for SELECT and DDL);
``write_tx`` begins with ``BEGIN IMMEDIATE`` so that a read-then-write
transaction takes the write lock up front instead of failing with
SQLITE_BUSY half-way.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url

#: Execution option that makes SQLite begin with BEGIN IMMEDIATE.
_IMMEDIATE = "crm_write"


def normalise_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def backend_of(url: str) -> str:
    """``'sqlite'`` or ``'postgresql'``."""
    return make_url(url).get_backend_name()


def make_engine(url: str, *, pool_size: int = 4, echo: bool = False, lock_timeout: float = 30.0) -> Engine:
    """An engine for ``url``; ``lock_timeout`` is how long SQLite waits for a lock."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False}
        if "timeout" not in parsed.query:  # sqlite:///crm.db?timeout=0.5 wins
            kwargs["connect_args"]["timeout"] = lock_timeout
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                      connect_args={"connect_timeout": 5})
    engine = create_engine(url, **kwargs)
    if sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, in _sqlite_begin
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


@contextmanager
def read_conn(engine: Engine) -> Iterator[Connection]:
    """A connection for reads on the daemon's hot paths.

    On PostgreSQL it runs in autocommit: each statement sees its own
    snapshot, exactly as in a READ COMMITTED transaction, without the BEGIN
    and ROLLBACK round trips.  On SQLite it is one deferred transaction, so
    the reads share one snapshot at no extra cost.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def thd_ping(engine: Engine) -> str:
    """Check the database answers; return its dialect and server version."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        version = ".".join(str(v) for v in (engine.dialect.server_version_info or ()))
    return f"{engine.dialect.name} {version}".strip()
