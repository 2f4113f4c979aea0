"""IVR hardening: idempotent IVR writes.

``tickets.idempotency_key`` with a unique index: the IVR's ticket drafts and
callback requests carry ``<linkedid>:<flow>:<node>``, so a write retried
after a timeout finds the first one instead of making a second.

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


def key(length: int) -> sa.types.TypeEngine:
    """Text compared by code point on both databases."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.add_column("tickets", sa.Column("idempotency_key", key(200), nullable=True))
    op.create_index("uq_tickets_idempotency_key", "tickets", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tickets_idempotency_key", table_name="tickets")
    op.drop_column("tickets", "idempotency_key")
