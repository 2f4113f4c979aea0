"""Groups: the teams a supervisor watches, as names on agents and on queues.

``agent_groups`` and ``queue_groups`` hold one row per (agent or queue,
group name); a supervisor sees the queues and agents that share a group
with them (``agent_desktop/scope.py``).  A group is only a name: there is
no table of groups, so a name lives as long as something is in it.

Only two new tables are created; no existing table is touched, so nothing
is rebuilt on SQLite.  Existing agents and queues start in no group.
Downgrading drops the tables and with them every membership.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-18 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Portable types, spelled out here so that later model changes cannot alter this revision.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def key(length: int) -> sa.types.TypeEngine:
    """Text compared by code point on both databases."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_groups",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("name", key(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_groups_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "name", name=op.f("pk_agent_groups")),
    )
    op.create_table(
        "queue_groups",
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("name", key(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_queue_groups_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("queue_id", "name", name=op.f("pk_queue_groups")),
    )


def downgrade() -> None:
    op.drop_table("queue_groups")
    op.drop_table("agent_groups")
