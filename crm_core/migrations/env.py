"""Alembic environment for the CRM schema (run through ``crm_core.migrate``).

The caller hands over an open connection in ``config.attributes["connection"]``;
no ``alembic.ini`` or logging set-up is involved.  On PostgreSQL a
transaction-scoped advisory lock makes daemons that start together migrate
one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from crm_core.models import metadata

#: pg_advisory_xact_lock key: "crm-migrate" as an integer.
MIGRATION_LOCK = 0x63726D2D6D6967


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


run_migrations()
