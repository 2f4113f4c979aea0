"""Plain frozen data the CRM store hands back to the daemon: never live ORM rows.

Money is ``Decimal`` (stored as integer cents); timestamps are aware UTC
datetimes; sequences are tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


def cents(value: int | None) -> Decimal:
    return (Decimal(value or 0) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class PhoneRecord:
    raw: str
    e164: str | None
    kind: str
    valid: bool
    is_primary: bool


@dataclass(frozen=True)
class EmailRecord:
    address: str
    is_primary: bool


@dataclass(frozen=True)
class AddressRecord:
    kind: str
    country: str
    region: str | None
    city: str | None
    line1: str
    line2: str | None
    postcode: str | None


@dataclass(frozen=True)
class CustomerBrief:
    """What the IVR and the screen pop need first: who is calling."""

    id: int
    name: str
    kind: str
    tier: str
    value_score: int | None
    language: str
    preferred_agent: str | None
    blacklisted: bool
    #: The stored number that matched the caller (E.164, or raw when not valid).
    matched_number: str | None = None


@dataclass(frozen=True)
class CustomerProfile:
    id: int
    name: str
    kind: str
    tier: str
    rfm: tuple[int, int, int] | None
    value_score: int | None
    satisfaction: float | None
    language: str
    preferred_agent: str | None
    notes: str | None
    blacklisted: bool
    created_at: datetime
    updated_at: datetime
    phones: tuple[PhoneRecord, ...] = ()
    emails: tuple[EmailRecord, ...] = ()
    addresses: tuple[AddressRecord, ...] = ()


@dataclass(frozen=True)
class AgreementRecord:
    agreement_no: str
    service_plan: str
    monthly_fee: Decimal
    starts_on: date
    ends_on: date | None
    status: str


@dataclass(frozen=True)
class AccountRecord:
    account_no: str
    currency: str
    balance: Decimal
    arrears: Decimal
    arrears_since: date | None
    status: str
    agreements: tuple[AgreementRecord, ...] = ()


@dataclass(frozen=True)
class IvrStep:
    """One IVR node the caller went through, and the digits entered there."""

    node: str
    digits: str | None = None


@dataclass(frozen=True)
class Transfer:
    to: str
    kind: str = "blind"  # blind, attended, queue, external
    at: datetime | None = None


@dataclass(frozen=True)
class ContactRecord:
    """One call, keyed by Asterisk's linkedid.

    Written by the daemon (often several times as the call progresses: each
    write carries what it knows, None meaning "not in this write"; see
    ``crm_core.contacts`` for how writes merge) and read back merged.
    ``ani_e164``, ``revision`` and, when read, ``ticket_ids`` are filled by
    the store; ``ticket_ids`` on a write adds links, never removes them.
    ``crm_core.contact_codec`` turns it into JSON and back.
    """

    linkedid: str
    started_at: datetime
    direction: str | None = None
    ani: str | None = None
    dnis: str | None = None
    caller_name: str | None = None
    customer_id: int | None = None
    ivr_path: tuple[IvrStep, ...] | None = None
    self_service: str | None = None
    queue: str | None = None
    priority: int | None = None
    skills: tuple[tuple[str, int], ...] | None = None
    enqueued_at: datetime | None = None
    offered_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    wrapup_seconds: float | None = None
    agent: str | None = None
    transfers: tuple[Transfer, ...] | None = None
    abandoned: bool | None = None
    hangup_cause: str | None = None
    disposition: str | None = None
    notes: str | None = None
    ticket_ids: tuple[int, ...] = ()
    ani_e164: str | None = None
    revision: int = 0


@dataclass(frozen=True)
class TicketSummary:
    id: int
    customer_id: int | None
    kind: str
    subject: str
    status: str
    priority: str
    owner: str | None
    due_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class TicketEvent:
    at: datetime
    actor: str
    action: str
    old_value: str | None
    new_value: str | None


@dataclass(frozen=True)
class TicketDetail:
    ticket: TicketSummary
    description: str | None
    history: tuple[TicketEvent, ...]
    linkedids: tuple[str, ...]


@dataclass(frozen=True)
class CustomerView:
    """The unified customer view: everything an agent needs when the phone rings."""

    profile: CustomerProfile
    accounts: tuple[AccountRecord, ...]
    recent_contacts: tuple[ContactRecord, ...]
    open_tickets: tuple[TicketSummary, ...]

    @property
    def balance(self) -> Decimal:
        return sum((a.balance for a in self.accounts), Decimal("0.00"))

    @property
    def arrears(self) -> Decimal:
        return sum((a.arrears for a in self.accounts), Decimal("0.00"))

    @property
    def arrears_since(self) -> date | None:
        days = [a.arrears_since for a in self.accounts if a.arrears and a.arrears_since]
        return min(days) if days else None


@dataclass(frozen=True)
class CustomerHistory:
    customer_id: int
    contacts: tuple[ContactRecord, ...]
    tickets: tuple[TicketSummary, ...]
    #: Pass as ``before`` to get the next (older) page of contacts; None at the end.
    next_before: datetime | None = None


@dataclass(frozen=True)
class AgentConfig:
    login: str
    display_name: str
    interface: str | None
    role: str
    active: bool
    skills: tuple[tuple[str, int], ...] = ()
    queues: tuple[tuple[str, int], ...] = ()  # (queue name, penalty)
    groups: tuple[str, ...] = ()  # sorted; a supervisor sees the queues and agents of their groups


@dataclass(frozen=True)
class OpeningHours:
    """When a queue is open, in its own time zone: ``days`` holds only open days, in week order.

    Stored as ``{"tz": "Asia/Shanghai", "days": {"mon": [["08:00", "18:00"]], ...}}``
    (``crm_core.acd_config.hours_from_json`` / ``hours_to_json``); an end of ``24:00`` is midnight.
    """

    tz: str
    days: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (("mon", (("08:00", "18:00"),)), ...)


@dataclass(frozen=True)
class QueueConfig:
    """A queue and how it routes (``acd.model.QueueRules``); durations are whole seconds, None: never."""

    name: str
    display_name: str
    required_skills: tuple[tuple[str, int], ...]
    priority: int
    service_level_seconds: int
    strategy: str = "longest-idle"  # longest-idle, fewest-calls, best-skill, round-robin
    engine: str = "daemon"  # daemon, asterisk: who rings the agents
    ring_seconds: int = 15
    wrap_up_seconds: int = 10
    relax_after: int | None = None  # waited this long: minimum proficiencies drop to relaxed_proficiency
    relaxed_proficiency: int = 1
    overflow_after: int | None = None  # waited this long: members of overflow_to may take the call too
    overflow_to: str | None = None  # another existing queue
    max_wait: int | None = None  # waited this long: the caller leaves with on_max_wait
    on_max_wait: str = "voicemail"  # voicemail, callback, queue
    no_agents: str = "wait"  # nobody logged in has the skills: wait, overflow, fallback
    callback_priority: int = -1
    callback_retries: int = 3  # dial attempts in all
    callback_spacing: int = 600  # seconds between attempts
    sticky_days: int = 0  # back to the customer's last agent within that many days; 0: no
    hours: OpeningHours | None = None  # None: always open
    groups: tuple[str, ...] = ()  # sorted; the supervisors of these groups see the queue


@dataclass(frozen=True)
class DispositionCode:
    code: str
    label: str
    category: str
    needs_ticket: bool
    active: bool


@dataclass(frozen=True)
class AcdConfig:
    """What the ACD and the desktop read: agents, queues and disposition codes."""

    agents: tuple[AgentConfig, ...] = field(default=())
    queues: tuple[QueueConfig, ...] = field(default=())
    dispositions: tuple[DispositionCode, ...] = field(default=())


@dataclass(frozen=True)
class CallbackRecord:
    """A call the call center owes (``crm_core.callbacks``): pending, dialing (claimed), done, failed, cancelled."""

    id: int
    number: str
    queue: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    priority: int | None = None  # None: the queue's callback_priority
    customer_id: int | None = None
    ticket_id: int | None = None
    claimed_by: str | None = None
    claim_until: datetime | None = None
    last_outcome: str | None = None  # answered, noanswer, busy, failed
    last_linkedid: str | None = None
    origin_linkedid: str | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ContactFigure:
    """One queued call as the ACD's statistics need it after a restart (``thd_contact_figures``)."""

    queue: str
    agent: str | None
    enqueued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    hold_seconds: float | None
    wrapup_seconds: float | None
    abandoned: bool | None
    linkedid: str = ""
    started_at: datetime | None = None
