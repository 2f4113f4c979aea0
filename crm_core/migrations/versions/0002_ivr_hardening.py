"""IVR hardening: idempotent IVR writes, and caller verification.

``tickets.idempotency_key`` with a unique index: the IVR's ticket drafts and
callback requests carry ``<linkedid>:<flow>:<node>``, so a write retried
after a timeout finds the first one instead of making a second.

``customers.verify_hash`` (a salted scrypt hash of the customer's
self-service PIN, never the PIN), and the wrong tries counted across calls
and daemons: ``verify_failures``, ``verify_failed_at`` (the latest) and
``verify_locked_until``.  Existing customers get no secret (the IVR cannot
verify them until one is set) and no failures.

Only columns and indexes are added.  SQLite cannot add a constraint to an
existing table without rebuilding it, and rebuilding ``tickets`` would drop
the old table, which with ``foreign_keys=ON`` cascades to its events and
contact links; a unique index enforces the same thing without a rebuild
(as ``uq_contacts_linkedid`` does).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Portable types, spelled out here so that later model changes cannot alter this revision.
TIMESTAMP = sa.DateTime(timezone=True)


def key(length: int) -> sa.types.TypeEngine:
    """Text compared by code point on both databases."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.add_column("tickets", sa.Column("idempotency_key", key(200), nullable=True))
    op.create_index("uq_tickets_idempotency_key", "tickets", ["idempotency_key"], unique=True)
    op.add_column("customers", sa.Column("verify_hash", sa.String(length=200), nullable=True))
    op.add_column("customers", sa.Column("verify_failures", sa.SmallInteger(), server_default="0", nullable=False))
    op.add_column("customers", sa.Column("verify_failed_at", TIMESTAMP, nullable=True))
    op.add_column("customers", sa.Column("verify_locked_until", TIMESTAMP, nullable=True))


def downgrade() -> None:
    for column in ("verify_locked_until", "verify_failed_at", "verify_failures", "verify_hash"):
        op.drop_column("customers", column)
    op.drop_index("uq_tickets_idempotency_key", table_name="tickets")
    op.drop_column("tickets", "idempotency_key")
