"""The CRM schema: customers, accounts, contacts, tickets, the ACD's configuration and callbacks.

Portable types only (see ``crm_core.types``); timestamps are UTC and set by
the server.  The migrations in ``crm_core/migrations`` create exactly this
schema (a test compares them).  Money is kept in integer cents.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Unicode,
    UnicodeText,
    false,
    func,
    true,
)

from crm_core.types import Id, Json, Key, UtcDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TIERS = ("vip", "key_account", "normal", "low")
CUSTOMER_KINDS = ("person", "company")
ROLES = ("agent", "supervisor", "admin")
DIRECTIONS = ("inbound", "outbound", "internal")
TICKET_KINDS = ("complaint", "consultation", "fault", "service_order")
TICKET_STATUSES = ("open", "in_progress", "resolved", "closed", "reopened")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
ACCOUNT_STATUSES = ("active", "suspended", "closed")
AGREEMENT_STATUSES = ("pending", "active", "expired", "cancelled")
# The ACD's routing vocabulary (acd.model; a test keeps the two in step).
STRATEGIES = ("longest-idle", "fewest-calls", "best-skill", "round-robin")
ENGINES = ("daemon", "asterisk")
FALLBACK_ACTIONS = ("voicemail", "callback", "queue")
NO_AGENTS_RULES = ("wait", "overflow", "fallback")
CALLBACK_STATUSES = ("pending", "dialing", "done", "failed", "cancelled")
CALLBACK_OUTCOMES = ("answered", "noanswer", "busy", "failed")


metadata = MetaData(naming_convention=NAMING)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _created() -> Column:
    return Column("created_at", UtcDateTime, nullable=False, server_default=func.now())


def _updated() -> Column:
    return Column("updated_at", UtcDateTime, nullable=False, server_default=func.now(), onupdate=func.now())


def _table(name: str, *items: object) -> Table:
    return Table(name, metadata, *items)


agents = _table(
    "agents",
    Column("id", Id, primary_key=True),
    Column("login", Key(64), nullable=False, unique=True),
    Column("display_name", Unicode(100), nullable=False),
    Column("password_hash", String(200)),
    Column("interface", String(100)),  # e.g. PJSIP/1001
    Column("role", String(16), nullable=False, server_default="agent"),
    Column("active", Boolean, nullable=False, server_default=true()),
    _created(), _updated(),
    CheckConstraint(_in("role", ROLES), name="role"),
)

agent_skills = _table(
    "agent_skills",
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("skill", Key(64), primary_key=True),
    Column("proficiency", SmallInteger, nullable=False),
    CheckConstraint("proficiency BETWEEN 1 AND 5", name="proficiency"),
)

queues = _table(
    "queues",
    Column("id", Id, primary_key=True),
    Column("name", Key(64), nullable=False, unique=True),
    Column("display_name", Unicode(100), nullable=False),
    Column("required_skills", Json),  # {"skill": minimum proficiency}
    Column("priority", SmallInteger, nullable=False, server_default="0"),
    Column("service_level_seconds", SmallInteger, nullable=False, server_default="20"),
    # Routing (acd.model.QueueRules); durations in whole seconds, None: never.
    Column("strategy", String(16), nullable=False, server_default="longest-idle"),
    Column("engine", String(16), nullable=False, server_default="daemon"),  # who rings the agents
    Column("ring_seconds", SmallInteger, nullable=False, server_default="15"),
    Column("wrap_up_seconds", SmallInteger, nullable=False, server_default="10"),
    Column("relax_after", Integer),  # then the minimum proficiencies drop to relaxed_proficiency
    Column("relaxed_proficiency", SmallInteger, nullable=False, server_default="1"),
    Column("overflow_after", Integer),  # then members of overflow_to may take the call too
    Column("overflow_to", Key(64)),  # a queue name
    Column("max_wait", Integer),  # then the caller leaves with on_max_wait
    Column("on_max_wait", String(16), nullable=False, server_default="voicemail"),
    Column("no_agents", String(16), nullable=False, server_default="wait"),
    Column("callback_priority", SmallInteger, nullable=False, server_default="-1"),
    Column("callback_retries", SmallInteger, nullable=False, server_default="3"),  # dial attempts in all
    Column("callback_spacing", Integer, nullable=False, server_default="600"),  # seconds between attempts
    Column("sticky_days", SmallInteger, nullable=False, server_default="0"),  # 0: no sticky routing
    Column("hours", Json),  # {"tz": "Asia/Shanghai", "days": {"mon": [["08:00", "18:00"]], ...}}; None: always open
    _created(), _updated(),
    CheckConstraint(_in("strategy", STRATEGIES), name="strategy"),
    CheckConstraint(_in("engine", ENGINES), name="engine"),
    CheckConstraint("ring_seconds BETWEEN 1 AND 600", name="ring_seconds"),
    CheckConstraint("wrap_up_seconds BETWEEN 0 AND 3600", name="wrap_up_seconds"),
    CheckConstraint("relax_after >= 0", name="relax_after"),
    CheckConstraint("relaxed_proficiency BETWEEN 1 AND 5", name="relaxed_proficiency"),
    CheckConstraint("overflow_after >= 0", name="overflow_after"),
    CheckConstraint("overflow_to <> name", name="overflow_to"),
    CheckConstraint("max_wait > 0", name="max_wait"),
    CheckConstraint(_in("on_max_wait", FALLBACK_ACTIONS), name="on_max_wait"),
    CheckConstraint(_in("no_agents", NO_AGENTS_RULES), name="no_agents"),
    CheckConstraint("callback_retries BETWEEN 1 AND 20", name="callback_retries"),
    CheckConstraint("callback_spacing >= 0", name="callback_spacing"),
    CheckConstraint("sticky_days BETWEEN 0 AND 3650", name="sticky_days"),
)

agent_queues = _table(
    "agent_queues",
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("queue_id", Id, ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True),
    Column("penalty", SmallInteger, nullable=False, server_default="0"),
)

#: Groups are names only (no table of their own): a supervisor sees the queues and agents sharing one of
#: their groups (``agent_desktop.scope``).
agent_groups = _table(
    "agent_groups",
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Key(64), primary_key=True),
)

queue_groups = _table(
    "queue_groups",
    Column("queue_id", Id, ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Key(64), primary_key=True),
)

disposition_codes = _table(
    "disposition_codes",
    Column("code", Key(32), primary_key=True),
    Column("label", Unicode(100), nullable=False),
    Column("category", String(32), nullable=False, server_default="general"),
    Column("needs_ticket", Boolean, nullable=False, server_default=false()),
    Column("active", Boolean, nullable=False, server_default=true()),
)

customers = _table(
    "customers",
    Column("id", Id, primary_key=True),
    Column("name", Unicode(200), nullable=False),
    Column("kind", String(16), nullable=False, server_default="person"),
    Column("tier", String(16), nullable=False, server_default="normal"),
    Column("rfm_recency", SmallInteger),
    Column("rfm_frequency", SmallInteger),
    Column("rfm_monetary", SmallInteger),
    Column("value_score", SmallInteger),  # 0-100, from the RFM scores
    Column("satisfaction", Float),  # average CSAT, 1.0-5.0
    Column("language", String(16), nullable=False, server_default="zh-CN"),
    Column("preferred_agent_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("notes", UnicodeText),
    Column("blacklisted", Boolean, nullable=False, server_default=false()),
    _created(), _updated(),
    # Phone self-service: the secret a caller keys to prove who they are (a PIN, or the last digits of
    # their ID number), as a salted scrypt hash only; wrong tries, counted across calls and daemons,
    # lock self-service (see crm_core.customers.thd_verify_secret).
    Column("verify_hash", String(200)),
    Column("verify_failures", SmallInteger, nullable=False, server_default="0"),
    Column("verify_failed_at", UtcDateTime),  # the latest wrong try
    Column("verify_locked_until", UtcDateTime),
    CheckConstraint(_in("kind", CUSTOMER_KINDS), name="kind"),
    CheckConstraint(_in("tier", TIERS), name="tier"),
    CheckConstraint("rfm_recency BETWEEN 1 AND 5 AND rfm_frequency BETWEEN 1 AND 5 "
                    "AND rfm_monetary BETWEEN 1 AND 5", name="rfm"),
    CheckConstraint("value_score BETWEEN 0 AND 100", name="value_score"),
    CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction"),
)

customer_name_keys = _table(
    "customer_name_keys",
    Column("key", Key(200), primary_key=True),  # case-folded name, and each word of it
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True),
)

customer_phones = _table(
    "customer_phones",
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("raw", Unicode(64), nullable=False),  # as given
    Column("e164", String(20)),  # None when the number is not valid
    Column("lookup_key", Key(32), index=True),  # national significant number
    Column("kind", String(16), nullable=False, server_default="other"),
    Column("valid", Boolean, nullable=False),
    Column("is_primary", Boolean, nullable=False, server_default=false()),
)

customer_emails = _table(
    "customer_emails",
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("address", Unicode(254), nullable=False),
    Column("address_key", Key(254), nullable=False, index=True),  # case-folded
    Column("is_primary", Boolean, nullable=False, server_default=false()),
)

customer_addresses = _table(
    "customer_addresses",
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False, server_default="home"),
    Column("country", String(2), nullable=False),
    Column("region", Unicode(64)),
    Column("city", Unicode(64)),
    Column("line1", Unicode(200), nullable=False),
    Column("line2", Unicode(200)),
    Column("postcode", String(16)),
)

accounts = _table(
    "accounts",
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("account_no", Key(32), nullable=False, unique=True),
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("balance_cents", BigInteger, nullable=False, server_default="0"),
    Column("arrears_cents", BigInteger, nullable=False, server_default="0"),  # overdue amount
    Column("arrears_since", Date),  # overdue since this day
    Column("status", String(16), nullable=False, server_default="active"),
    _created(), _updated(),
    CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),
    CheckConstraint("arrears_cents >= 0", name="arrears"),
)

agreements = _table(
    "agreements",
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("agreement_no", Key(32), nullable=False, unique=True),
    Column("service_plan", Unicode(100), nullable=False),
    Column("monthly_fee_cents", BigInteger, nullable=False, server_default="0"),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date),
    Column("status", String(16), nullable=False, server_default="active"),
    _created(), _updated(),
    CheckConstraint(_in("status", AGREEMENT_STATUSES), name="status"),
    CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="dates"),
)

contacts = _table(
    "contacts",
    Column("id", Id, primary_key=True),
    Column("linkedid", Key(64), nullable=False),
    Column("revision", BigInteger, nullable=False),  # newest write merged in (see crm_core.contacts)
    Column("started_at", UtcDateTime, nullable=False),
    Column("direction", String(16)),
    Column("ani", Unicode(80)),  # as Asterisk gave it
    Column("ani_e164", String(20)),
    Column("dnis", Unicode(80)),  # the service line dialled
    Column("caller_name", Unicode(200)),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL")),
    Column("ivr_path", Json),  # [{"node": ..., "digits": ...}, ...]
    Column("self_service", String(32)),  # IVR outcome: completed, to_agent, abandoned, ...
    Column("queue", Key(64)),
    Column("priority", SmallInteger),
    Column("skills", Json),  # {"skill": minimum proficiency}
    Column("enqueued_at", UtcDateTime),
    Column("offered_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("wait_seconds", Float),
    Column("ring_seconds", Float),
    Column("talk_seconds", Float),
    Column("hold_seconds", Float),
    Column("wrapup_seconds", Float),
    Column("agent", Key(64)),  # agent login
    Column("transfers", Json),  # [{"to": ..., "kind": ..., "at": ...}, ...]
    Column("abandoned", Boolean),
    Column("hangup_cause", String(64)),
    Column("disposition", Key(32)),
    Column("notes", UnicodeText),
    _created(), _updated(),
    CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
    Index("uq_contacts_linkedid", "linkedid", unique=True),
    Index("ix_contacts_customer_started", "customer_id", "started_at"),
    Index("ix_contacts_ani_started", "ani_e164", "started_at"),
    Index("ix_contacts_started", "started_at"),
)

tickets = _table(
    "tickets",
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL")),
    Column("kind", String(16), nullable=False),
    Column("subject", Unicode(200), nullable=False),
    Column("description", UnicodeText),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("priority", String(16), nullable=False, server_default="normal"),
    Column("owner", Key(64)),  # agent login
    Column("due_at", UtcDateTime),
    Column("created_by", Key(64), nullable=False),
    Column("version", BigInteger, nullable=False, server_default="1"),  # bumped by every change
    # Set by writes that may be retried (the IVR's drafts and callback requests: call:flow:node);
    # a second write with the same key finds the first one instead of making another.
    Column("idempotency_key", Key(200)),
    _created(), _updated(),
    CheckConstraint(_in("kind", TICKET_KINDS), name="kind"),
    CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
    CheckConstraint(_in("priority", TICKET_PRIORITIES), name="priority"),
    Index("ix_tickets_customer_status", "customer_id", "status"),
    Index("ix_tickets_owner_status", "owner", "status"),
    Index("uq_tickets_idempotency_key", "idempotency_key", unique=True),
)

ticket_events = _table(
    "ticket_events",
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False, server_default=func.now()),
    Column("actor", Key(64), nullable=False),
    Column("action", String(32), nullable=False),  # created, status, priority, owner, due_at, note, link...
    Column("old_value", UnicodeText),
    Column("new_value", UnicodeText),
    Index("ix_ticket_events_ticket", "ticket_id", "id"),
)

ticket_contacts = _table(
    "ticket_contacts",
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    # No foreign key: the link may be made before the contact leaves the journal.
    Column("linkedid", Key(64), primary_key=True, index=True),
)

#: Calls the call center owes: the ACD dials them when due.  A daemon claims one (``dialing``) with a single
#: conditional UPDATE, so two daemons never dial the same callback; a claim that expires (the daemon died
#: mid-dial) is released back to ``pending``.  See ``crm_core.callbacks``.
callbacks = _table(
    "callbacks",
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="SET NULL")),  # the service order, if any
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL")),
    Column("number", Unicode(80), nullable=False),  # what to dial
    Column("queue", Key(64), nullable=False),
    Column("priority", SmallInteger),  # None: the queue's callback_priority
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("max_attempts", SmallInteger, nullable=False, server_default="3"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(64)),  # the daemon dialing it
    Column("claim_until", UtcDateTime),
    Column("last_outcome", String(16)),
    Column("last_linkedid", Key(64)),  # the latest attempt's call
    Column("origin_linkedid", Key(64)),  # the call that asked for it
    Column("idempotency_key", Key(200)),  # as tickets.idempotency_key
    _created(), _updated(),
    CheckConstraint(_in("status", CALLBACK_STATUSES), name="status"),
    CheckConstraint(_in("last_outcome", CALLBACK_OUTCOMES), name="last_outcome"),
    CheckConstraint("attempts >= 0 AND max_attempts BETWEEN 1 AND 20", name="attempts"),
    Index("ix_callbacks_status_next", "status", "next_attempt_at"),
    Index("uq_callbacks_idempotency_key", "idempotency_key", unique=True),
)
