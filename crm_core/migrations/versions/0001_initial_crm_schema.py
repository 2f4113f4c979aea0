"""Initial CRM schema: customers, accounts, contacts, tickets, agents, queues.

The indexes the daemon's hot paths need are here: phone lookup key,
contacts by customer and time, by caller number and time, by time, and the
unique linkedid every contact write upserts on.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 17:10:40.647617
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Portable types, spelled out here so that later model changes cannot alter this revision.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def key(length: int) -> sa.types.TypeEngine:
    """Text compared by code point on both databases."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", ID, nullable=False),
        sa.Column("login", key(64), nullable=False),
        sa.Column("display_name", sa.Unicode(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("interface", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=16), server_default="agent", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f("ck_agents_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("login", name=op.f("uq_agents_login")),
    )
    op.create_table(
        "disposition_codes",
        sa.Column("code", key(32), nullable=False),
        sa.Column("label", sa.Unicode(length=100), nullable=False),
        sa.Column("category", sa.String(length=32), server_default="general", nullable=False),
        sa.Column("needs_ticket", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_disposition_codes")),
    )
    op.create_table(
        "queues",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", key(64), nullable=False),
        sa.Column("display_name", sa.Unicode(length=100), nullable=False),
        sa.Column("required_skills", JSON, nullable=True),
        sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("service_level_seconds", sa.SmallInteger(), server_default="20", nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_queues_name")),
    )
    op.create_table(
        "agent_queues",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("penalty", sa.SmallInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_queues_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_agent_queues_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "queue_id", name=op.f("pk_agent_queues")),
    )
    op.create_table(
        "agent_skills",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("skill", key(64), nullable=False),
        sa.Column("proficiency", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("proficiency BETWEEN 1 AND 5", name=op.f("ck_agent_skills_proficiency")),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_skills_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "skill", name=op.f("pk_agent_skills")),
    )
    op.create_table(
        "customers",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Unicode(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="person", nullable=False),
        sa.Column("tier", sa.String(length=16), server_default="normal", nullable=False),
        sa.Column("rfm_recency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_frequency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_monetary", sa.SmallInteger(), nullable=True),
        sa.Column("value_score", sa.SmallInteger(), nullable=True),
        sa.Column("satisfaction", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=16), server_default="zh-CN", nullable=False),
        sa.Column("preferred_agent_id", ID, nullable=True),
        sa.Column("notes", sa.UnicodeText(), nullable=True),
        sa.Column("blacklisted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('person', 'company')", name=op.f("ck_customers_kind")),
        sa.CheckConstraint("tier IN ('vip', 'key_account', 'normal', 'low')", name=op.f("ck_customers_tier")),
        sa.CheckConstraint(
            "rfm_recency BETWEEN 1 AND 5 AND rfm_frequency BETWEEN 1 AND 5 AND rfm_monetary BETWEEN 1 AND 5",
            name=op.f("ck_customers_rfm"),
        ),
        sa.CheckConstraint("satisfaction BETWEEN 1 AND 5", name=op.f("ck_customers_satisfaction")),
        sa.CheckConstraint("value_score BETWEEN 0 AND 100", name=op.f("ck_customers_value_score")),
        sa.ForeignKeyConstraint(
            ["preferred_agent_id"],
            ["agents.id"],
            name=op.f("fk_customers_preferred_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("account_no", key(32), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("arrears_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("arrears_since", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended', 'closed')", name=op.f("ck_accounts_status")),
        sa.CheckConstraint("arrears_cents >= 0", name=op.f("ck_accounts_arrears")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_accounts_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("account_no", name=op.f("uq_accounts_account_no")),
    )
    op.create_index(op.f("ix_accounts_customer_id"), "accounts", ["customer_id"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("id", ID, nullable=False),
        sa.Column("linkedid", key(64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("ani", sa.Unicode(length=80), nullable=True),
        sa.Column("ani_e164", sa.String(length=20), nullable=True),
        sa.Column("dnis", sa.Unicode(length=80), nullable=True),
        sa.Column("caller_name", sa.Unicode(length=200), nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("ivr_path", JSON, nullable=True),
        sa.Column("self_service", sa.String(length=32), nullable=True),
        sa.Column("queue", key(64), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=True),
        sa.Column("skills", JSON, nullable=True),
        sa.Column("enqueued_at", TIMESTAMP, nullable=True),
        sa.Column("offered_at", TIMESTAMP, nullable=True),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("ring_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=True),
        sa.Column("wrapup_seconds", sa.Float(), nullable=True),
        sa.Column("agent", key(64), nullable=True),
        sa.Column("transfers", JSON, nullable=True),
        sa.Column("abandoned", sa.Boolean(), nullable=True),
        sa.Column("hangup_cause", sa.String(length=64), nullable=True),
        sa.Column("disposition", key(32), nullable=True),
        sa.Column("notes", sa.UnicodeText(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name=op.f("ck_contacts_direction")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_contacts_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_ani_started", "contacts", ["ani_e164", "started_at"], unique=False)
    op.create_index("ix_contacts_customer_started", "contacts", ["customer_id", "started_at"], unique=False)
    op.create_index("ix_contacts_started", "contacts", ["started_at"], unique=False)
    op.create_index("uq_contacts_linkedid", "contacts", ["linkedid"], unique=True)
    op.create_table(
        "customer_addresses",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="home", nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.Unicode(length=64), nullable=True),
        sa.Column("city", sa.Unicode(length=64), nullable=True),
        sa.Column("line1", sa.Unicode(length=200), nullable=False),
        sa.Column("line2", sa.Unicode(length=200), nullable=True),
        sa.Column("postcode", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_addresses_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_addresses")),
    )
    op.create_index(op.f("ix_customer_addresses_customer_id"), "customer_addresses", ["customer_id"], unique=False)
    op.create_table(
        "customer_emails",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("address", sa.Unicode(length=254), nullable=False),
        sa.Column("address_key", key(254), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_emails_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_emails")),
    )
    op.create_index(op.f("ix_customer_emails_address_key"), "customer_emails", ["address_key"], unique=False)
    op.create_index(op.f("ix_customer_emails_customer_id"), "customer_emails", ["customer_id"], unique=False)
    op.create_table(
        "customer_name_keys",
        sa.Column("key", key(200), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_name_keys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "customer_id", name=op.f("pk_customer_name_keys")),
    )
    op.create_index(op.f("ix_customer_name_keys_customer_id"), "customer_name_keys", ["customer_id"], unique=False)
    op.create_table(
        "customer_phones",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("raw", sa.Unicode(length=64), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=True),
        sa.Column("lookup_key", key(32), nullable=True),
        sa.Column("kind", sa.String(length=16), server_default="other", nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_phones_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_phones")),
    )
    op.create_index(op.f("ix_customer_phones_customer_id"), "customer_phones", ["customer_id"], unique=False)
    op.create_index(op.f("ix_customer_phones_lookup_key"), "customer_phones", ["lookup_key"], unique=False)
    op.create_table(
        "tickets",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Unicode(length=200), nullable=False),
        sa.Column("description", sa.UnicodeText(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("priority", sa.String(length=16), server_default="normal", nullable=False),
        sa.Column("owner", key(64), nullable=True),
        sa.Column("due_at", TIMESTAMP, nullable=True),
        sa.Column("created_by", key(64), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('complaint', 'consultation', 'fault', 'service_order')", name=op.f("ck_tickets_kind")
        ),
        sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f("ck_tickets_priority")),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'resolved', 'closed', 'reopened')", name=op.f("ck_tickets_status")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_tickets_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    op.create_index("ix_tickets_customer_status", "tickets", ["customer_id", "status"], unique=False)
    op.create_index("ix_tickets_owner_status", "tickets", ["owner", "status"], unique=False)
    op.create_table(
        "agreements",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("agreement_no", key(32), nullable=False),
        sa.Column("service_plan", sa.Unicode(length=100), nullable=False),
        sa.Column("monthly_fee_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'expired', 'cancelled')", name=op.f("ck_agreements_status")
        ),
        sa.CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name=op.f("ck_agreements_dates")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_agreements_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
        sa.UniqueConstraint("agreement_no", name=op.f("uq_agreements_agreement_no")),
    )
    op.create_index(op.f("ix_agreements_account_id"), "agreements", ["account_id"], unique=False)
    op.create_table(
        "ticket_contacts",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("linkedid", key(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_contacts_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "linkedid", name=op.f("pk_ticket_contacts")),
    )
    op.create_index(op.f("ix_ticket_contacts_linkedid"), "ticket_contacts", ["linkedid"], unique=False)
    op.create_table(
        "ticket_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("actor", key(64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.UnicodeText(), nullable=True),
        sa.Column("new_value", sa.UnicodeText(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("ticket_events")
    op.drop_table("ticket_contacts")
    op.drop_table("agreements")
    op.drop_table("tickets")
    op.drop_table("customer_phones")
    op.drop_table("customer_name_keys")
    op.drop_table("customer_emails")
    op.drop_table("customer_addresses")
    op.drop_table("contacts")
    op.drop_table("accounts")
    op.drop_table("customers")
    op.drop_table("agent_skills")
    op.drop_table("agent_queues")
    op.drop_table("queues")
    op.drop_table("disposition_codes")
    op.drop_table("agents")
