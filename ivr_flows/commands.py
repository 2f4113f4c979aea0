"""What the engine asks the outside world to do, as frozen data.

``start``/``resume`` return a list of commands.  The interpreter runs them in
order.  A list ends either with a *request* (its result goes back into
``resume``) or with :class:`Finished`.

=================  ==========================================  ==============================
command            does                                        result given to ``resume``
=================  ==========================================  ==============================
Play               play a prompt file                          -
SayDigits          say digits one by one                       -
SayNumber          say a whole number                          -
SayCurrency        say an amount: units, unit prompt, cents    -
SetLanguage        switch the channel's prompt language        -
GetDigits          play prompts, collect up to N digits        the digits, ``""`` on timeout
Lookup             CRM data dip by ANI or account              a mapping, or None
QueueStats         calls waiting in queues                     ``{queue: count}``
OpenTicketDraft    open a ticket draft in the CRM              the ticket id, or None
RecordCallback     store a callback request                    the request id, or None
VerifySecret       the CRM checks the caller's secret          VERIFIED WRONG LOCKED NO_SECRET,
                                                               or None
HandOff            hand the caller to the ACD                  -
Transfer           send the caller to an allowed number        -
Voicemail          leave the caller in a mailbox               -
Hangup             hang up                                     -
Finished           the flow is over: outcome and reason        -
=================  ==========================================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Play:
    prompt: str


@dataclass(frozen=True)
class SayDigits:
    digits: str


@dataclass(frozen=True)
class SayNumber:
    number: int


@dataclass(frozen=True)
class SayCurrency:
    """``amount`` is ``"123.45"`` (never negative); units and cents are said
    with SAY NUMBER, each followed by its prompt."""

    amount: str
    unit_prompt: str
    cents_prompt: str


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class GetDigits:
    prompts: tuple[str, ...]
    timeout_ms: int
    max_digits: int


@dataclass(frozen=True)
class Lookup:
    kind: str  # ani | account
    key: str


@dataclass(frozen=True)
class QueueStats:
    queues: tuple[str, ...]


@dataclass(frozen=True)
class OpenTicketDraft:
    """``key`` makes the write idempotent: see :func:`write_key`."""

    category: str
    summary: str
    customer_id: str | None
    ani: str
    key: str = ""


@dataclass(frozen=True)
class RecordCallback:
    """``key`` makes the write idempotent: see :func:`write_key`."""

    number: str
    customer_id: str | None
    flow: str
    queue: str | None
    key: str = ""


def write_key(call_id: str, flow: str, node: str) -> str:
    """The idempotency key of a CRM write made by a node: ``<call_id>:<flow>:<node>``.

    One write per node per call: a retry of the same node (after the port
    timed out while the write still committed, or because the flow loops back
    to it) gets the first write's id.  There is no try number in the key on
    purpose: the engine cannot tell a retry from a deliberate second visit,
    and counting visits would bring back exactly the duplicate a retry makes.
    A flow that wants two writes in one call uses two nodes.
    """
    return f"{call_id}:{flow}:{node}"


@dataclass(frozen=True)
class VerifySecret:
    """Check the digits the caller keyed against the customer's secret, in the CRM.

    The CRM answers :data:`VERIFIED`, :data:`WRONG`, :data:`LOCKED` (too
    many wrong tries across calls) or :data:`NO_SECRET`; it never hands the
    secret, or its hash, to the IVR.  ``secret`` is left out of the repr so
    that it does not end up in a log line."""

    customer_id: str
    secret: str = field(repr=False)


#: Answers to VerifySecret.
VERIFIED, WRONG, LOCKED, NO_SECRET = "verified", "wrong", "locked", "no-secret"


@dataclass(frozen=True)
class HandOff:
    queue: str
    skills: tuple[str, ...]
    priority: int
    language: str


@dataclass(frozen=True)
class Transfer:
    target: str


@dataclass(frozen=True)
class Voicemail:
    mailbox: str


@dataclass(frozen=True)
class Hangup:
    pass


#: Outcomes of a finished flow.
QUEUE, TRANSFER, VOICEMAIL, DONE, FALLBACK, ABANDONED = (
    "queue", "transfer", "voicemail", "done", "fallback", "abandoned")


@dataclass(frozen=True)
class Finished:
    outcome: str
    reason: str = ""


REQUESTS = (GetDigits, Lookup, QueueStats, OpenTicketDraft, RecordCallback, VerifySecret)

Command = (Play | SayDigits | SayNumber | SayCurrency | SetLanguage | GetDigits | Lookup | QueueStats
           | OpenTicketDraft | RecordCallback | VerifySecret | HandOff | Transfer | Voicemail | Hangup | Finished)


def is_request(command: object) -> bool:
    return isinstance(command, REQUESTS)
