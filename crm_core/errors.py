"""The errors the CRM store raises on purpose; anything else is a bug or an outage."""

from __future__ import annotations


class CrmError(Exception):
    """Base class of the CRM store's own errors."""


class InvalidInput(CrmError, ValueError):
    """A value was refused; the message names the field and the reason."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFound(CrmError, LookupError):
    """The customer, ticket or agent asked for does not exist."""


class InvalidTransition(CrmError):
    """A ticket cannot go from its current status to the one asked for."""

    def __init__(self, ticket_id: int, current: str, wanted: str):
        self.ticket_id = ticket_id
        self.current = current
        self.wanted = wanted
        super().__init__(f"ticket {ticket_id}: cannot go from {current} to {wanted}")


class Conflict(CrmError):
    """Someone else changed the record since it was read (optimistic check failed)."""
