"""The call tracker's mutable per-call bookkeeping and its small pure helpers.

``LiveCall``, ``LiveChannel`` and ``PendingOffer`` are what ``CallTracker``
(``call_tracker.py``) and the resync (``call_resync.py``) update as AMI events
arrive; nothing outside the tracker sees them: ``LiveCall.record()`` hands out
the frozen ``acd.events.CallRecord``.  The helpers read AMI header values
(caller id, durations, interfaces, queue member status) and do no I/O.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from acd.events import (
    AgentMemberStatus, CallRecord, CallState, Direction, HoldRecord, OfferRecord, TransferRecord,
)
from callcenter.asterisk.ami_codec import AMIMessage, unescape_c
from callcenter.logging import call_id_context

__all__ = [
    "LiveCall", "LiveChannel", "PendingOffer", "base_interface", "caller_name", "dial_interface", "dnis_of",
    "duration_seconds", "int_or_none", "local_partner", "log_call", "member_status", "number_or_none",
]

#: The tracker's modules all log under the tracker's name (log configuration, filters).
logger = logging.getLogger("callcenter.asterisk.call_tracker")

_MEMBER_STATUS = ("UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING",
                  "RINGINUSE", "ONHOLD")
_UNIQUE_SUFFIX = re.compile(r"-[0-9a-f]+(;[12])?$")


@dataclass(eq=False)
class LiveChannel:
    """One Asterisk channel of a call, keyed by ``Uniqueid``."""

    uid: str
    name: str
    call_id: str
    first_exten: str
    exten: str
    cid_num: str | None
    cid_name: str | None
    bridge: str | None = None
    dial_target: str | None = None                       # 1st argument of the last Dial() it ran
    dialed: dict[str, str] = field(default_factory=dict)  # dest uid -> interface, dials it made
    answered: str | None = None                          # dest uid of its answered dial


@dataclass(eq=False)
class PendingOffer:
    """A leg ringing for the call (an agent, or the customer of an outbound call)."""

    uid: str
    channel: str
    interface: str | None
    member_name: str | None
    queue: str | None
    at: float


@dataclass(eq=False)
class LiveCall:
    """The tracker's mutable bookkeeping of one call (``Linkedid``); ``record()`` freezes it."""

    call_id: str
    arrived_at: float
    last_event_at: float
    channels: dict[str, str] = field(default_factory=dict)   # name -> uid
    hub: str | None = None            # uid of the caller channel
    hub_peer: str | None = None       # its Local partner
    direction: Direction | None = None
    announced: bool = False
    spy: bool = False
    originated: bool = False
    originate_interface: str | None = None
    state: CallState = CallState.ARRIVED
    caller_channel: str = ""
    ani: str | None = None
    caller_name: str | None = None
    dnis: str | None = None
    ivr_at: float | None = None
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    waiting_since: float | None = None
    queue: str | None = None
    in_queue: bool = False
    position: int | None = None
    pending: dict[str, PendingOffer] = field(default_factory=dict)
    offers: list[OfferRecord] = field(default_factory=list)
    agent_interface: str | None = None
    agent_channel: str | None = None
    member_name: str | None = None
    peers: set[str] = field(default_factory=set)       # the far legs of the conversation
    peer_side: set[str] = field(default_factory=set)   # those legs and their Local partners
    transfers: list[TransferRecord] = field(default_factory=list)
    holds: list[HoldRecord] = field(default_factory=list)
    held_since: float | None = None
    cause: int | None = None
    cause_txt: str | None = None
    abandoned: bool = False
    caller_gone: bool = False
    first_release: str | None = None   # "hub" or "peer": who started hanging up the conversation
    left_bridge: bool = False
    shutdown: bool = False
    transfer_noted: bool = False
    confirmed: bool = True

    def record(self) -> CallRecord:
        holds = self.holds + ([HoldRecord(self.held_since, None)] if self.held_since is not None else [])
        return CallRecord(
            call_id=self.call_id, direction=self.direction or "inbound", caller_channel=self.caller_channel,
            ani=self.ani, caller_name=self.caller_name, dnis=self.dnis, state=self.state,
            arrived_at=self.arrived_at, ivr_at=self.ivr_at, queued_at=self.queued_at,
            offered_at=self.offered_at, answered_at=self.answered_at, ended_at=self.ended_at,
            queue=self.queue, agent_interface=self.agent_interface, agent_channel=self.agent_channel,
            member_name=self.member_name, offers=tuple(self.offers), transfers=tuple(self.transfers),
            holds=tuple(holds), cause=self.cause, cause_txt=self.cause_txt, abandoned=self.abandoned,
            confirmed=self.confirmed)


# -- small helpers ----------------------------------------------------------

def log_call(call: LiveCall, level: int, message: str, *args: object) -> None:
    """Log about one call, with its id in the text and in the record (call_id_context)."""
    with call_id_context(call.call_id):
        logger.log(level, "call %s: " + message, call.call_id, *args)


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def number_or_none(value: str | None) -> str | None:
    return None if value in (None, "", "<unknown>") else value


def caller_name(value: str | None) -> str | None:
    """CallerIDName as the caller sent it: AMI C-escapes it (ast_escape_c)."""
    return None if value in (None, "", "<unknown>") else unescape_c(value or "")


def dnis_of(exten: str) -> str | None:
    return None if exten in ("", "s") else exten


def local_partner(name: str) -> str | None:
    """The other half of a Local channel pair, by name."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-1] + ("2" if name.endswith("1") else "1")
    return None


def base_interface(name: str) -> str:
    """``Local/6001@sim-agents-00000001;1`` -> ``Local/6001@sim-agents``; ``PJSIP/6001-0000000a`` -> ``PJSIP/6001``."""
    return _UNIQUE_SUFFIX.sub("", name)


def dial_interface(dest_channel: str, dial_string: str | None) -> str:
    """The dialled interface: Queue() keeps the technology in DialString, Dial() drops it."""
    tech = dest_channel.split("/", 1)[0]
    if not dial_string:
        return base_interface(dest_channel)
    if dial_string.lower().startswith(tech.lower() + "/"):
        return dial_string
    return f"{tech}/{dial_string}"


def duration_seconds(value: str | None) -> float:
    """CoreShowChannel ``Duration: HH:MM:SS`` (or QueueEntry ``Wait`` seconds) in seconds."""
    total = 0.0
    for part in (value or "0").split(":"):
        try:
            total = total * 60 + int(part)
        except ValueError:
            return 0.0
    return total


def member_status(ev: AMIMessage, now: float) -> AgentMemberStatus | None:
    interface, queue = ev.get("Interface") or ev.get("Location"), ev.get("Queue")
    if not interface or not queue:
        return None
    code = int_or_none(ev.get("Status"))
    status = _MEMBER_STATUS[code] if code is not None and 0 <= code < len(_MEMBER_STATUS) else "UNKNOWN"
    return AgentMemberStatus(interface, queue, ev.get("MemberName") or ev.get("Name") or None, status,
                             ev.get("Paused") == "1", ev.get("PausedReason") or None, ev.get("InCall") == "1", now)
