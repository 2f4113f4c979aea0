"""The call tracker's mutable per-call bookkeeping and its small pure helpers.

``LiveCall``, ``LiveChannel`` and ``PendingOffer`` are what ``CallTracker``
(``call_tracker.py``) and the resync (``call_resync.py``) update as AMI events
arrive; nothing outside the tracker sees them: ``LiveCall.record()`` hands out
the frozen ``acd.events.CallRecord``.  The helpers read AMI header values
(caller id, durations, interfaces, agent ids, queue member status) and do no
I/O.

Text from the caller.  AMI values are decoded as UTF-8 with surrogate
escapes (``ami_codec``); a caller name, number or dialled extension whose
bytes are not valid UTF-8 is read as ISO-8859-1 (Latin-1, which maps every
byte) when the call is announced, and that is logged with the call id
(:func:`call_text`).  Events and records carry only valid Unicode.

One agent id.  A queue member's name (``Agent 6001``) is free text for
people; the agent is identified by :func:`agent_id`, the extension or
endpoint in its interface or channel name, which is the ``login`` of the
CRM's ``agents`` table and what a contact record stores as its agent.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from acd.events import (
    AgentMemberStatus, CallRecord, CallState, Direction, HoldRecord, OfferRecord, TransferRecord,
)
from callcenter.asterisk.ami_codec import AMIMessage, unescape_c
from callcenter.logging import call_id_context, truncated

__all__ = [
    "LiveCall", "LiveChannel", "PendingOffer", "agent_id", "base_interface", "bytes_text", "call_text",
    "caller_name", "dial_interface", "dnis_of", "duration_seconds", "int_or_none", "local_partner", "log_call",
    "member_status", "number_or_none",
]

#: The tracker's modules all log under the tracker's name (log configuration, filters).
logger = logging.getLogger("callcenter.asterisk.call_tracker")

_MEMBER_STATUS = ("UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING",
                  "RINGINUSE", "ONHOLD")
_UNIQUE_SUFFIX = re.compile(r"-[0-9a-f]+(;[12])?$")
#: ``Tech/resource``: channel technologies are plain words (PJSIP, SIP, IAX2, Local, DAHDI).
_TECH = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)/(.*)$", re.DOTALL)
#: What Asterisk appends to a channel's name: ``-%08x`` (chan_pjsip, ast_unreal), then ``;1``/``;2`` for Local.
_CHANNEL_SEQ = re.compile(r"-[0-9a-f]{8}(;[12])?$")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    bridges_seen: set[str] = field(default_factory=set)  # every bridge it entered (kept after it left)
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

    @property
    def agent_id(self) -> str | None:
        return agent_id(self.interface) or agent_id(self.channel)


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
    consult_bridge: str | None = None   # the agent leg's consultation bridge during an attended transfer
    cause: int | None = None
    cause_txt: str | None = None
    abandoned: bool = False
    caller_gone: bool = False
    first_release: str | None = None   # "hub" or "peer": who started hanging up the conversation
    left_bridge: bool = False
    shutdown: bool = False
    transfer_noted: bool = False
    confirmed: bool = True

    @property
    def agent_id(self) -> str | None:
        """The conversation's agent (:func:`agent_id`), the same whichever path set its interface."""
        return agent_id(self.agent_interface) or agent_id(self.agent_channel)

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
            confirmed=self.confirmed, agent_id=self.agent_id, consulting=self.consult_bridge is not None)


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


def bytes_text(value: str) -> tuple[str, bool]:
    """The text of an AMI or AGI value (decoded with ``surrogateescape``) and whether it was not UTF-8.

    Valid UTF-8 comes back as it is; other bytes are read as Latin-1, which maps every byte to a
    character.  A surrogate that stands for no byte (the codecs make none) becomes U+FFFD.
    """
    if value.isascii() or not _SURROGATE.search(value):
        return value, False
    try:
        return value.encode("utf-8", "surrogateescape").decode("latin-1"), True
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value), True


def call_text(call: LiveCall, what: str, value: str | None) -> str | None:
    """``value`` as valid text for ``call``'s events; logged, with the call id, when it was not UTF-8."""
    if value is None:
        return None
    text, latin1 = bytes_text(value)
    if latin1:
        log_call(call, logging.INFO, "%s is not valid UTF-8; kept as Latin-1: %s", what, truncated(text))
    return text


def agent_id(name: str | None) -> str | None:
    """The agent's id, the CRM's agent ``login``, from an agent's interface, dial string or channel name.

    It is the extension of a Local channel and the endpoint of any other technology, without the
    options of a dial string or the sequence number of a channel name::

        Local/6001@agents/n   Local/6001@agents   Local/6001@agents-00000003;1        -> 6001
        Local/6001@sim-agents/n   Local/6001@sim-agents-0000000a;2                   -> 6001
        PJSIP/6001   PJSIP/6001-0000000a   PJSIP/6001/sip:6001@192.0.2.5:5060         -> 6001

    Never taken from a queue member's name, which is free text.  None when there is nothing to take.
    """
    if not name:
        return None
    tech = _TECH.match(name)
    resource = tech.group(2) if tech else name
    local = tech is None or tech.group(1).lower() == "local"
    if local and "@" in resource:
        found = resource.split("@", 1)[0]
    else:
        found = _CHANNEL_SEQ.sub("", resource.split("/", 1)[0]).split("@", 1)[0]
    return found or None


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
                             ev.get("Paused") == "1", ev.get("PausedReason") or None, ev.get("InCall") == "1", now,
                             agent_id(interface) or agent_id(ev.get("StateInterface")))
