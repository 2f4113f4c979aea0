"""ACD: queue routing rules, and the callbacks the call center owes.

``queues`` gains the routing fields of ``acd.model.QueueRules`` (strategy,
engine, ring and wrap-up times, skill relaxation, overflow, maximum wait,
what to do when no agent has the skills, callback priority, retries and
spacing, sticky routing, opening hours).  Every new column is nullable or
has a server default, so existing queues stay valid and route as before
(longest idle, on the daemon, always open).

``callbacks``: one row per call owed, with its attempts, the daemon's
claim while it dials, and the IVR's idempotency key.

Only columns, constraints and a table are added.  On SQLite a constraint
can only come with its column (``ADD COLUMN ... CONSTRAINT ... CHECK``): a
table rebuild would drop ``queues``, and with ``foreign_keys=ON`` that
cascades to ``agent_queues``.  On PostgreSQL each check is added as a
table constraint.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateColumn

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Portable types, spelled out here so that later model changes cannot alter this revision.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def key(length: int) -> sa.types.TypeEngine:
    """Text compared by code point on both databases."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def queue_columns() -> list[tuple[sa.Column, str | None]]:
    """The new columns of ``queues`` with their checks (or None), in the order they are added."""
    return [
        (sa.Column("strategy", sa.String(length=16), server_default="longest-idle", nullable=False),
         _in("strategy", ("longest-idle", "fewest-calls", "best-skill", "round-robin"))),
        (sa.Column("engine", sa.String(length=16), server_default="daemon", nullable=False),
         _in("engine", ("daemon", "asterisk"))),
        (sa.Column("ring_seconds", sa.SmallInteger(), server_default="15", nullable=False),
         "ring_seconds BETWEEN 1 AND 600"),
        (sa.Column("wrap_up_seconds", sa.SmallInteger(), server_default="10", nullable=False),
         "wrap_up_seconds BETWEEN 0 AND 3600"),
        (sa.Column("relax_after", sa.Integer(), nullable=True), "relax_after >= 0"),
        (sa.Column("relaxed_proficiency", sa.SmallInteger(), server_default="1", nullable=False),
         "relaxed_proficiency BETWEEN 1 AND 5"),
        (sa.Column("overflow_after", sa.Integer(), nullable=True), "overflow_after >= 0"),
        (sa.Column("overflow_to", key(64), nullable=True), "overflow_to <> name"),
        (sa.Column("max_wait", sa.Integer(), nullable=True), "max_wait > 0"),
        (sa.Column("on_max_wait", sa.String(length=16), server_default="voicemail", nullable=False),
         _in("on_max_wait", ("voicemail", "callback", "queue"))),
        (sa.Column("no_agents", sa.String(length=16), server_default="wait", nullable=False),
         _in("no_agents", ("wait", "overflow", "fallback"))),
        (sa.Column("callback_priority", sa.SmallInteger(), server_default="-1", nullable=False), None),
        (sa.Column("callback_retries", sa.SmallInteger(), server_default="3", nullable=False),
         "callback_retries BETWEEN 1 AND 20"),
        (sa.Column("callback_spacing", sa.Integer(), server_default="600", nullable=False), "callback_spacing >= 0"),
        (sa.Column("sticky_days", sa.SmallInteger(), server_default="0", nullable=False),
         "sticky_days BETWEEN 0 AND 3650"),
        (sa.Column("hours", JSON, nullable=True), None),
    ]


def _add_queue_column(column: sa.Column, check: str | None) -> None:
    name = f"ck_queues_{column.name}"
    if check is None:
        op.add_column("queues", column)
    elif op.get_bind().dialect.name == "sqlite":
        spec = CreateColumn(column).compile(dialect=op.get_bind().dialect)
        op.execute(f"ALTER TABLE queues ADD COLUMN {spec} CONSTRAINT {name} CHECK ({check})")
    else:
        op.add_column("queues", column)
        op.create_check_constraint(op.f(name), "queues", check)


def upgrade() -> None:
    for column, check in queue_columns():
        _add_queue_column(column, check)
    op.create_table(
        "callbacks",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("number", sa.Unicode(length=80), nullable=False),
        sa.Column("queue", key(64), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.SmallInteger(), server_default="3", nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_until", TIMESTAMP, nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_linkedid", key(64), nullable=True),
        sa.Column("origin_linkedid", key(64), nullable=True),
        sa.Column("idempotency_key", key(200), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'dialing', 'done', 'failed', 'cancelled')",
                           name=op.f("ck_callbacks_status")),
        sa.CheckConstraint("last_outcome IN ('answered', 'noanswer', 'busy', 'failed')",
                           name=op.f("ck_callbacks_last_outcome")),
        sa.CheckConstraint("attempts >= 0 AND max_attempts BETWEEN 1 AND 20", name=op.f("ck_callbacks_attempts")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_callbacks_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_callbacks_ticket_id_tickets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    op.create_index("ix_callbacks_status_next", "callbacks", ["status", "next_attempt_at"], unique=False)
    op.create_index("uq_callbacks_idempotency_key", "callbacks", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_callbacks_idempotency_key", table_name="callbacks")
    op.drop_index("ix_callbacks_status_next", table_name="callbacks")
    op.drop_table("callbacks")
    # PostgreSQL drops a column's checks with it; SQLite drops a column's own constraints with it.
    for column, _ in reversed(queue_columns()):
        op.drop_column("queues", column.name)
