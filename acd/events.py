"""Typed domain events about calls, built by the AMI adapter from Asterisk events.

Pure data: frozen, slotted dataclasses and no I/O.  The adapter
(``callcenter/asterisk/call_tracker.py``) is the only producer; a raw AMI
message never travels past it.

Conventions for every event:

* ``call_id`` is the call's Asterisk ``Linkedid`` (the Uniqueid of its first
  channel, e.g. ``"1795535416.0"``);
* ``at`` and every ``*_at`` field are seconds on the clock injected into the
  tracker (AMI events carry no timestamp); every ``*_seconds`` field is a
  duration in seconds, floats.  Asterisk's own milliseconds (AgentRingNoAnswer
  ``RingTime: 15000``) are converted to seconds before they get here;
* text is ``str`` and valid Unicode; caller names arrive C-unescaped, and a
  name, number or extension whose bytes were not UTF-8 (an ISO-8859-1 name
  from an old trunk) is read as Latin-1 (the tracker logs it with the call
  id);
* ``None`` means "not known" (an ANI of ``<unknown>``, a queue-less wait).

An agent is named by its queue-member interface, the dial string of its phone
(``"Local/6001@sim-agents/n"``, ``"PJSIP/6001"``); ``agent_channel`` is the
Asterisk channel that rang it (``"Local/6001@sim-agents-00000001;1"``).
``agent_id`` is the one stable id of that agent, the same on every path (live
events, a resync after a reconnect or a daemon restart, transfers): the
extension or endpoint of the interface or channel (``"6001"``), which is the
agent's ``login`` in the CRM.  ``member_name`` is app_queue's free-text
member name (``"Agent 6001"``), for display only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Union


class CallState(str, enum.Enum):
    """Where a call is in its life; the allowed moves are in the tracker's table."""

    ARRIVED = "arrived"        # the caller's channel runs the dialplan, nothing known yet
    IVR = "ivr"                # an AGI (the IVR) runs on the caller's channel
    QUEUED = "queued"          # waiting for an agent (app_queue, or parked on music on hold)
    OFFERED = "offered"        # an agent's phone rings (outbound: the customer's phone rings)
    CONNECTED = "connected"    # caller and agent talk (on hold included)
    WRAP_UP = "wrap-up"        # the conversation is over, some channel of the call is still up
    ENDED = "ended"            # every channel of the call has hung up


Direction = Literal["inbound", "outbound"]
OfferFailure = Literal["noanswer", "busy", "unavailable", "cancel"]
OfferOutcome = Literal["answered", "noanswer", "busy", "unavailable", "cancel"]
TransferKind = Literal["blind", "attended", "redirect"]
#: Who ended a conversation: the agent's leg, the customer's leg (the caller of
#: an inbound call, the called party of an outbound one), an AMI Redirect that
#: moved the caller out of the bridge, or a blind transfer.
ReleasedBy = Literal["agent", "customer", "redirect", "transfer"]


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """One ring of one agent, finished; ``ring_seconds`` from ring start to outcome."""

    agent_interface: str | None
    agent_channel: str | None      # None: the agent could not be rung at all
    member_name: str | None
    queue: str | None
    offered_at: float
    ended_at: float
    outcome: OfferOutcome
    ring_seconds: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """``from_agent``/``to`` as in ``CallTransferred``; the ids are None when not an agent's."""

    kind: TransferKind
    from_agent: str | None
    to: str | None
    at: float
    from_agent_id: str | None = None
    to_agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class HoldRecord:
    started_at: float
    ended_at: float | None  # None while the caller is still on hold


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A frozen summary of one call: the tracker's view, and the record of an ended call.

    ``caller_channel`` is the channel that runs the call's dialplan: the
    trunk channel of a real inbound call, the ``;2`` half of a Local pair
    originated into the hotline (``Local/4000@from-pstn-…;2``), and for an
    outbound (click-to-dial) call the agent's originated channel, which
    dials the customer.  ``ani``/``dnis`` are the calling and the called
    number in both directions.  ``confirmed`` is False between a lost AMI
    link and the next resync.
    """

    call_id: str
    direction: Direction
    caller_channel: str
    ani: str | None
    caller_name: str | None
    dnis: str | None
    state: CallState
    arrived_at: float
    ivr_at: float | None = None
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    queue: str | None = None
    agent_interface: str | None = None
    agent_channel: str | None = None
    member_name: str | None = None
    offers: tuple[OfferRecord, ...] = ()
    transfers: tuple[TransferRecord, ...] = ()
    holds: tuple[HoldRecord, ...] = ()
    cause: int | None = None
    cause_txt: str | None = None
    abandoned: bool = False
    confirmed: bool = True
    agent_id: str | None = None
    consulting: bool = False     # the agent is in an attended transfer's consultation


# -- call events --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallArrived:
    """A call is known; ``at`` is when its first channel appeared."""

    call_id: str
    direction: Direction
    caller_channel: str
    ani: str | None
    caller_name: str | None
    dnis: str | None
    at: float


@dataclass(frozen=True, slots=True)
class CallEnteredIvr:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallQueued:
    """The caller waits for an agent: in an Asterisk queue, or (``queue`` None)
    parked on music on hold for the daemon's own ACD.  ``position`` is 1-based."""

    call_id: str
    queue: str | None
    position: int | None
    at: float


@dataclass(frozen=True, slots=True)
class CallOffered:
    """An agent's phone is being rung for the call (``queue`` None: a direct Dial)."""

    call_id: str
    queue: str | None
    agent_interface: str | None
    member_name: str | None
    agent_channel: str
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class OfferFailed:
    """A ring ended without answer.  ``noanswer``: rang out; ``busy``;
    ``unavailable``: could not ring at all (CHANUNAVAIL/CONGESTION);
    ``cancel``: stopped by the caller's hangup or a redirect."""

    call_id: str
    agent_interface: str | None
    agent_channel: str | None
    reason: OfferFailure
    ring_seconds: float
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallDialedOut:
    """An outbound call's agent leg started ringing the customer (state offered)."""

    call_id: str
    agent_interface: str | None
    destination: str | None
    destination_channel: str
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallConnected:
    """The caller talks to an agent.  ``wait_seconds``: from the start of the wait
    (queued, else first offer, else arrival) to the answer; ``ring_seconds``:
    of the answered ring.  For an outbound call the customer answered."""

    call_id: str
    agent_interface: str | None
    agent_channel: str | None
    wait_seconds: float
    ring_seconds: float
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallHeld:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallResumed:
    call_id: str
    held_seconds: float
    at: float


@dataclass(frozen=True, slots=True)
class CallConsulting:
    """The agent left the caller (on hold) for an attended transfer's consultation bridge."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallTransferCancelled:
    """The consultation ended without a transfer (aborted, or the target hung up or did not answer):
    the agent is back in the caller's bridge."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """The caller now talks to, or is being rung to, ``to`` instead of ``from_agent``.

    ``attended``: AttendedTransfer (``to`` the target's interface); ``blind``:
    BlindTransfer (``to`` is ``exten@context``); ``redirect``: the caller was
    moved out of its conversation (AMI Redirect) into a Dial of another agent.
    ``from_agent_id``/``to_agent_id`` are the agents' ids (``to_agent_id`` is
    None for a blind transfer: its target is an extension, not an agent).
    """

    call_id: str
    kind: TransferKind
    from_agent: str | None
    to: str | None
    at: float
    from_agent_id: str | None = None
    to_agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallCompleted:
    """The conversation is over (state wrap-up); ``talk_seconds`` since the first answer."""

    call_id: str
    agent_interface: str | None
    talk_seconds: float
    released_by: ReleasedBy
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    """The caller hung up while waiting or while an agent was being rung."""

    call_id: str
    queue: str | None
    position: int | None
    wait_seconds: float
    at: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The last channel of the call hung up (or Asterisk lost it).

    ``cause``/``cause_txt``: the Q.850 cause of the caller channel's Hangup
    (16 "Normal Clearing"; 0 "Unknown" also when Asterisk shut down), None
    when unknown (call vanished during a link outage, reaped, restart).
    """

    call_id: str
    cause: int | None
    cause_txt: str | None
    at: float
    record: CallRecord


# -- agents and system ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AgentMemberStatus:
    """A queue member's state (QueueMemberAdded/Status/Pause, or a resync's QueueMember).

    ``status`` is app_queue's device state name: NOT_INUSE, INUSE, BUSY,
    INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD or UNKNOWN.  Local
    members show INUSE while ringing, never RINGING.
    """

    interface: str
    queue: str
    member_name: str | None
    status: str
    paused: bool
    reason: str | None
    in_call: bool
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentMemberRemoved:
    interface: str
    queue: str
    at: float
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class AsteriskRestarted:
    """Asterisk restarted; the calls it had are gone (each got a CallEnded first)."""

    dropped_call_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class CallsResynced:
    """After a (re)connect: every call Asterisk has, as the tracker now sees it."""

    calls: tuple[CallRecord, ...]
    at: float

    @property
    def call_ids(self) -> tuple[str, ...]:
        return tuple(call.call_id for call in self.calls)


CallEvent = Union[
    CallArrived, CallEnteredIvr, CallQueued, CallOffered, OfferFailed, CallDialedOut,
    CallConnected, CallHeld, CallResumed, CallConsulting, CallTransferCancelled, CallTransferred, CallCompleted,
    CallAbandoned, CallEnded,
]
TrackerEvent = Union[CallEvent, AgentMemberStatus, AgentMemberRemoved, AsteriskRestarted, CallsResynced]
