"""Schema migrations, run programmatically (``callcenter db upgrade``).

Alembic reads the scripts in ``crm_core/migrations``; no ``alembic.ini`` is
needed.  The functions block: the daemon runs them on its database pool.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Alembic keeps the running migration in module globals: one at a time per process.
#: Across processes (several daemons starting together) env.py takes an advisory lock.
_ALEMBIC = threading.Lock()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def thd_current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def thd_upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; return the revision reached."""
    config = alembic_config()
    with _ALEMBIC, engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    return thd_current_revision(engine)


def thd_downgrade(engine: Engine, revision: str) -> str | None:
    config = alembic_config()
    with _ALEMBIC, engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
        conn.commit()
    return thd_current_revision(engine)
