"""The outside world the IVR needs, as typing.Protocol interfaces.

The engine never calls these: it returns commands (:mod:`ivr_flows.commands`)
and the interpreter (``callcenter/ivr``) or the offline runner
(:mod:`ivr_flows.testing`) calls the ports.  In the daemon a method may
return a Deferred (or any awaitable) instead of the value; the offline
runner needs plain values.

A customer record is a mapping; the IVR reads these keys when present:
``id``, ``name``, ``tier`` (``vip``, ``gold``...), ``balance`` and
``arrears`` (numbers or decimal strings), ``account``, ``language``.
Any other key can be copied into a variable by a lookup node's ``set``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, Union

from ivr_flows.commands import HandOff
from ivr_flows.state import PathEntry

T = TypeVar("T")
MaybeAsync = Union[T, Awaitable[T]]
Customer = Mapping[str, Any]


class CustomerPort(Protocol):
    """The CRM as the IVR sees it."""

    def lookup_by_ani(self, ani: str) -> MaybeAsync[Customer | None]:
        """The customer calling from ``ani`` (digits, maybe a leading +), or None."""

    def lookup_by_account(self, account: str) -> MaybeAsync[Customer | None]:
        """The customer owning account number ``account`` (digits), or None."""

    def open_ticket_draft(self, *, call_id: str, customer_id: str | None, ani: str, category: str,
                          summary: str, key: str) -> MaybeAsync[str | None]:
        """Open a ticket draft; its id, or None when it could not be opened.

        Idempotent per ``key`` (``<call_id>:<flow>:<node>``): asked again with
        the same key, answer the id of the draft already made (a retry after
        a timeout must not open a second one)."""

    def record_callback(self, *, call_id: str, customer_id: str | None, number: str, flow: str,
                        queue: str | None, key: str) -> MaybeAsync[str | None]:
        """Store a callback request for ``number``; its id, or None.  Idempotent per ``key``, like
        ``open_ticket_draft``."""

    def verify_secret(self, *, call_id: str, customer_id: str, secret: str) -> MaybeAsync[str | None]:
        """Check the digits a caller keyed against customer ``customer_id``'s secret (a PIN, or the last
        digits of their ID number): ``"verified"``, ``"wrong"``, ``"locked"`` (too many wrong tries, across
        calls) or ``"no-secret"`` (see ``ivr_flows.commands``).  The secret itself never leaves the CRM,
        and wrong tries are counted there."""


class QueueStatsPort(Protocol):
    """Live queue figures for ``waiting("queue")`` in conditions."""

    def waiting_calls(self, queue: str) -> MaybeAsync[int]:
        """Callers waiting in ``queue`` now."""


class ContactRecordSink(Protocol):
    """Where the IVR part of a call's contact record goes."""

    def ivr_finished(self, call_id: str, ani: str, dnis: str, path: Sequence[PathEntry], outcome: str,
                     handoff: HandOff | None, left_at: str, detail: str, *,
                     customer_id: str | None = None) -> MaybeAsync[None]:
        """The IVR is over for ``call_id``.

        ``path`` holds every node entered and every input; ``outcome`` is
        queue, transfer, voicemail, done, fallback or abandoned (the caller
        hung up); ``left_at`` is the ``flow:node`` where the IVR ended;
        ``detail`` is the transfer target, the mailbox or the fallback reason;
        ``customer_id`` the customer the IVR identified, if any.
        """
