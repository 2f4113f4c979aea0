"""Engines for the CRM store: SQLite by default, PostgreSQL in production.

Everything here blocks; the daemon calls it only from its database thread
pool (``callcenter.dbpool``), never from the reactor thread.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url


def normalise_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 4, echo: bool = False) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                      connect_args={"connect_timeout": 5})
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
    finally:
        cur.close()


def thd_ping(engine: Engine) -> str:
    """Check the database answers; return its dialect and server version."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        version = ".".join(str(v) for v in (engine.dialect.server_version_info or ()))
    return f"{engine.dialect.name} {version}".strip()
