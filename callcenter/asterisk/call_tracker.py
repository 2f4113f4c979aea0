"""Calls built from AMI events: the adapter that turns Asterisk into typed call events.

``CallTracker`` is an ``AMIListener`` (``ami_snapshot``/``ami_event``/
``ami_link_down``).  It keys calls by ``Linkedid`` and channels by
``Uniqueid``, moves each call through an explicit state machine
(:data:`ALLOWED`) and emits the frozen events of ``acd.events``; no AMI
message leaves the tracker.  Time comes from the injected ``clock``: AMI
events carry none.  What Asterisk 22 really sends is in
``tests/fixtures/asterisk-22/`` (both READMEs); the choices below follow it.

Which channel is the caller.  The call's first channel (Uniqueid ==
Linkedid) of a real inbound call is the trunk channel: it is the caller and
the call is announced (``CallArrived``) at its first dialplan step.  A first
channel that Asterisk dialled itself (``ChannelState: 0`` at birth: an
Originate) is ambiguous: the lab's inbound calls are ``Originate
Local/4000@from-pstn`` whose ``;2`` half runs the hotline (AGI, Queue) while
``;1`` plays the customer, and a click-to-dial is ``Originate
Local/6002@sim-agents/n`` whose ``;1`` half dials the customer.  Such a call
stays unannounced until a channel of it does something only a caller does:
enters an AGI, joins a queue, is parked on music on hold, or dials.  That
channel becomes the caller channel (inbound); if it is the originated first
channel and it dials, the call is outbound.  An originate that fails before
that (no such extension) is never announced.  The Local partner of the
caller channel counts as the caller's side: the customer hanging up shows
first on ``;1``.

Decisions on ambiguous cases:

* ``QueueCallerAbandon`` is not an abandon.  Asterisk sends it also when
  the daemon Redirects a queued caller (with two ``DialEnd CANCEL``); it only
  means "left the queue unanswered".  A call is abandoned when the caller's
  side hangs up while the call is queued or offered, whether in app_queue or
  parked by the daemon's own ACD, unless Asterisk was shutting down
  (``SoftHangupRequest Cause: 4``; it then hangs calls up with Cause 0).
* A caller parked on music on hold outside a conversation waits for an
  agent: ``CallQueued(queue=None)``.  Music on hold while connected, or a
  ``Hold`` event, is a hold.
* The conversation ends (wrap-up, ``CallCompleted``) when the agent's leg
  (the channel that was dialled, not its Local ``;2`` half, which hangs up
  first during an attended transfer) or the customer's side hangs up.  If the
  caller had left the bridge first (AMI Redirect), ``released_by`` is
  ``redirect``.  Hold by Redirect hangs the agent up (README), so it is
  reported as it is: held, then wrap-up.
* A caller redirected into a Dial of another agent after a conversation is a
  ``redirect`` transfer; a re-dial of the same agent is not a transfer.
* A call offered without ringing (Dial ends ``CHANUNAVAIL`` with no
  DialBegin) gives ``OfferFailed(unavailable)`` from the caller's
  ``DIALSTATUS``, the agent taken from the Dial() it ran.
* ChanSpy legs are calls of their own Linkedid; ``ChanSpyStart`` marks that
  call as a spy and it is never announced.
* Agents are named by their interface (``Local/6001@agents/n``), the
  channel that rang them and app_queue's member name, and every event
  about an agent carries its ``agent_id`` (``6001``, ``call_model.agent_id``),
  derived from the interface or channel, never from the member name, so
  that it is the same on every path: live, resync, transfers, outbound.
* A caller name, number or dialled extension whose bytes are not UTF-8 is
  read as Latin-1 when the call is announced (logged with the call id).
* An outbound call (click-to-dial) is ``CallArrived(direction="outbound")``,
  ``CallDialedOut`` while the customer rings, ``CallConnected`` with the
  originating agent, and no offer or abandon events.  A call that a phone
  of ours starts by itself (not through an Originate) is seen as inbound.

States and moves (:data:`ALLOWED`; ENDED is reachable from every state)::

    arrived   -> ivr, queued, offered
    ivr       -> queued, offered
    queued    -> queued (another queue), ivr, offered
    offered   -> offered (another ring), queued (ring failed), connected
    connected -> connected (attended transfer), wrap-up
    wrap-up   -> ivr, queued, offered (the caller is routed again)

Times: ``arrived_at`` is when the call's first channel appeared.

An event that would make a transition the table does not allow is logged
with the call id and ignored before anything is changed.  The resync after a
(re)connect (``ami_snapshot``) is the exception: see ``call_resync``.

The tracker is split in modules: ``call_model`` (the mutable per-call
bookkeeping and pure helpers), ``call_conversation`` (bridges, holds,
transfers: a mixin of ``CallTracker``) and ``call_resync``.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping

from acd.events import (
    AgentMemberRemoved, CallAbandoned, CallArrived, CallConnected, CallDialedOut, CallEnded, CallEnteredIvr,
    CallOffered, CallQueued, CallRecord, CallState, CallTransferred, Direction, HoldRecord, OfferFailed,
    OfferFailure, OfferRecord, TrackerEvent, TransferRecord,
)
from callcenter.asterisk.ami_codec import AMIMessage
from callcenter.asterisk.call_conversation import ConversationMixin
from callcenter.asterisk.call_model import (
    LiveCall, LiveChannel, PendingOffer, agent_id, call_text, caller_name, dial_interface, dnis_of, int_or_none,
    local_partner, log_call, member_status, number_or_none,
)
from callcenter.asterisk.call_resync import resync_calls
from callcenter.logging import call_id_context

if TYPE_CHECKING:
    from callcenter.asterisk.ami_client import AMISnapshot

__all__ = ["ALLOWED", "Call", "CallTracker"]

logger = logging.getLogger(__name__)

#: The frozen view of a call the tracker hands out.
Call = CallRecord

S = CallState
#: Allowed moves.  ENDED is reachable from everywhere (a call can vanish).
ALLOWED: Mapping[CallState, frozenset[CallState]] = MappingProxyType({
    S.ARRIVED: frozenset({S.IVR, S.QUEUED, S.OFFERED, S.ENDED}),
    S.IVR: frozenset({S.QUEUED, S.OFFERED, S.ENDED}),
    S.QUEUED: frozenset({S.QUEUED, S.IVR, S.OFFERED, S.ENDED}),
    S.OFFERED: frozenset({S.OFFERED, S.QUEUED, S.CONNECTED, S.ENDED}),
    S.CONNECTED: frozenset({S.CONNECTED, S.WRAP_UP, S.ENDED}),
    S.WRAP_UP: frozenset({S.IVR, S.QUEUED, S.OFFERED, S.ENDED}),
    S.ENDED: frozenset(),
})

DEFAULT_ORPHAN_AFTER = 4 * 3600.0
#: DialEnd DialStatus -> reason; anything not listed (ABORT, ...) counts as cancel.
_DIAL_FAILURES: dict[str, OfferFailure] = {
    "NOANSWER": "noanswer", "BUSY": "busy", "CANCEL": "cancel", "CONGESTION": "unavailable",
    "CHANUNAVAIL": "unavailable", "DONTCALL": "unavailable", "TORTURE": "unavailable",
    "INVALIDARGS": "unavailable",
}
#: Q.850 cause of a ringing leg that hung up without DialEnd -> reason (else unavailable).
_HANGUP_FAILURES: dict[int, OfferFailure] = {17: "busy", 18: "noanswer", 19: "noanswer", 21: "busy"}
_SHUTDOWN_SOFTHANGUP = 4                        # AST_SOFTHANGUP_SHUTDOWN, not Q.850


class CallTracker(ConversationMixin):
    """Tracks every call Asterisk reports and emits ``acd.events`` for them.

    ``emit`` receives each event (a failing consumer is logged, never
    propagated); ``clock`` gives the current time in seconds.  Handlers never
    raise: malformed or unknown input is logged and skipped.
    """

    def __init__(self, emit: Callable[[TrackerEvent], None], clock: Callable[[], float],
                 orphan_after: float = DEFAULT_ORPHAN_AFTER) -> None:
        self._sink = emit
        self._clock = clock
        self.orphan_after = orphan_after
        self._calls: dict[str, LiveCall] = {}
        self._channels: dict[str, LiveChannel] = {}
        self._handlers: dict[str, Callable[[AMIMessage, float], None]] = {
            "Newchannel": self._on_newchannel, "NewCallerid": self._on_newcallerid,
            "Newexten": self._on_newexten, "Rename": self._on_rename,
            "AGIExecStart": self._on_agi, "VarSet": self._on_varset,
            "QueueCallerJoin": self._on_queue_join, "QueueCallerLeave": self._on_queue_leave,
            "QueueCallerAbandon": self._on_queue_abandon, "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_ring_noanswer, "AgentConnect": self._on_agent_connect,
            "DialBegin": self._on_dial_begin, "DialEnd": self._on_dial_end,
            "MusicOnHoldStart": self._on_moh_start, "MusicOnHoldStop": self._on_moh_stop,
            "Hold": self._on_hold, "Unhold": self._on_unhold,
            "BridgeEnter": self._on_bridge_enter, "BridgeLeave": self._on_bridge_leave,
            "AttendedTransfer": self._on_attended_transfer, "BlindTransfer": self._on_blind_transfer,
            "SoftHangupRequest": self._on_hangup_request, "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup, "ChanSpyStart": self._on_spy_start,
            "QueueMemberAdded": self._on_member, "QueueMemberStatus": self._on_member,
            "QueueMemberPause": self._on_member, "QueueMemberRemoved": self._on_member_removed,
        }

    # -- public view ------------------------------------------------------
    @property
    def calls(self) -> Mapping[str, CallRecord]:
        """Frozen snapshots of the announced calls, by call id."""
        return MappingProxyType({cid: c.record() for cid, c in self._calls.items() if c.announced})

    def get(self, call_id: str) -> CallRecord | None:
        call = self._calls.get(call_id)
        return call.record() if call is not None and call.announced else None

    @property
    def channel_count(self) -> int:
        """Channels held, announced calls or not (for bounded-state checks and metrics)."""
        return len(self._channels)

    # -- AMIListener ------------------------------------------------------
    def ami_event(self, event: AMIMessage) -> None:
        handler = self._handlers.get(event.name)
        if handler is None:
            return
        now = self._clock()
        try:
            for key in ("Linkedid", "DestLinkedid", "TransfereeLinkedid", "SpyerLinkedid"):
                touched = self._calls.get(event.get(key) or "")
                if touched is not None:
                    touched.last_event_at = now
            handler(event, now)
        except Exception:
            with call_id_context(event.get("Linkedid")):
                logger.exception("call tracker failed on %s event", event.name)

    def ami_link_down(self) -> None:
        """Keep the calls (Asterisk still has them) but mark them unconfirmed."""
        for call in self._calls.values():
            call.confirmed = False

    def ami_snapshot(self, snapshot: AMISnapshot) -> None:
        now = self._clock()
        try:
            resync_calls(self, snapshot, now)
        except Exception:
            logger.exception("call tracker failed to resync")

    def reap(self, now: float | None = None) -> list[str]:
        """End the calls no event touched for ``orphan_after`` seconds; return their ids."""
        now = self._clock() if now is None else now
        reaped = [c for c in self._calls.values() if now - c.last_event_at >= self.orphan_after]
        for call in reaped:
            log_call(call, logging.WARNING, "no event for %.0f s; dropped as orphan", now - call.last_event_at)
            self._drop(call, now)
        return [c.call_id for c in reaped if c.announced and not c.spy]

    # -- plumbing ---------------------------------------------------------
    def _emit(self, event: TrackerEvent) -> None:
        with call_id_context(getattr(event, "call_id", None)):
            logger.info("%s", event)
            try:
                self._sink(event)
            except Exception:
                logger.exception("call event consumer failed on %s", type(event).__name__)

    def _can(self, call: LiveCall, target: CallState, why: str) -> bool:
        if target in ALLOWED[call.state]:
            return True
        log_call(call, logging.WARNING, "%s ignored: %s -> %s is not an allowed transition",
                 why, call.state.value, target.value)
        return False

    def _lookup(self, event: AMIMessage, uid_key: str = "Uniqueid",
                linked_key: str = "Linkedid") -> tuple[LiveCall | None, str]:
        uid = event.get(uid_key) or ""
        chan = self._channels.get(uid)
        call = self._calls.get(chan.call_id if chan else event.get(linked_key) or "")
        return call, uid

    def _hub_side(self, call: LiveCall, uid: str) -> bool:
        return uid != "" and uid in (call.hub, call.hub_peer)

    # -- channels ---------------------------------------------------------
    def _on_newchannel(self, ev: AMIMessage, now: float) -> None:
        uid, name = ev.get("Uniqueid"), ev.get("Channel")
        if not uid or not name or uid in self._channels:
            return
        linked = ev.get("Linkedid") or uid
        call = self._calls.get(linked)
        if call is None:
            call = self._calls[linked] = LiveCall(call_id=linked, arrived_at=now, last_event_at=now)
        exten = ev.get("Exten") or ""
        self._channels[uid] = LiveChannel(uid, name, linked, exten, exten, number_or_none(ev.get("CallerIDNum")),
                                          caller_name(ev.get("CallerIDName")))
        call.channels[name] = uid
        if uid == linked and call.hub is None:
            if ev.get("ChannelState") == "0":
                call.originated = True        # Asterisk dialled it: wait for what it does
            else:
                self._set_hub(call, uid, "inbound")
        elif call.hub is not None and name == local_partner(self._channels[call.hub].name):
            call.hub_peer = uid

    def _set_hub(self, call: LiveCall, uid: str, direction: Direction) -> None:
        call.hub, call.direction = uid, direction
        partner = local_partner(self._channels[uid].name)
        call.hub_peer = call.channels.get(partner) if partner else None

    def _on_newcallerid(self, ev: AMIMessage, now: float) -> None:
        chan = self._channels.get(ev.get("Uniqueid") or "")
        if chan is None:
            return
        chan.cid_num, chan.cid_name = number_or_none(ev.get("CallerIDNum")), caller_name(ev.get("CallerIDName"))
        call = self._calls.get(chan.call_id)
        if call is not None and call.announced and chan.uid == call.hub:
            call.ani = call_text(call, "caller number", chan.cid_num)
            call.caller_name = call_text(call, "caller name", chan.cid_name)

    def _on_rename(self, ev: AMIMessage, now: float) -> None:
        chan = self._channels.get(ev.get("Uniqueid") or "")
        new = ev.get("Newname")
        call = self._calls.get(chan.call_id) if chan else None
        if chan is None or call is None or not new:
            return
        call.channels.pop(chan.name, None)
        chan.name = call.channels[new] = new
        if chan.uid == call.hub:
            call.caller_channel = new

    def _on_newexten(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        chan = self._channels.get(uid)
        if call is None or chan is None:
            return
        chan.exten = ev.get("Extension") or ev.get("Exten") or chan.exten
        app = ev.get("Application")
        if app == "Dial":
            chan.dial_target = (ev.get("AppData") or "").split(",")[0] or None
        if app == "AGI":
            self._enter_ivr(call, uid, now)
        elif uid == call.hub and not call.announced and not call.spy:
            self._announce(call)

    def _announce(self, call: LiveCall, dnis: str | None = None) -> None:
        hub = self._channels[call.hub or ""]
        call.announced = True
        call.caller_channel = hub.name
        call.ani = call_text(call, "caller number", hub.cid_num)
        call.caller_name = call_text(call, "caller name", hub.cid_name)
        call.dnis = call_text(call, "dialled number", dnis or dnis_of(hub.first_exten) or dnis_of(hub.exten))
        self._emit(CallArrived(call.call_id, call.direction or "inbound", call.caller_channel,
                               call.ani, call.caller_name, call.dnis, call.arrived_at))

    def _caller(self, call: LiveCall | None, uid: str, dialing: bool = False) -> bool:
        """Is ``uid`` the caller channel of a live call?  Decides an undecided call."""
        if call is None or call.spy or call.caller_gone or call.state is S.ENDED:
            return False
        if call.hub is None:
            if uid not in call.channels.values():
                return False
            outbound = dialing and uid == call.call_id and call.originated
            self._set_hub(call, uid, "outbound" if outbound else "inbound")
            if outbound:
                return True       # announced by _dial_out, which knows the dialled number
        if uid != call.hub:
            return False
        if not call.announced:
            self._announce(call)
        return True

    # -- IVR and waiting --------------------------------------------------
    def _on_agi(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None:
            self._enter_ivr(call, uid, now)

    def _enter_ivr(self, call: LiveCall, uid: str, now: float) -> None:
        if not self._caller(call, uid) or call.state is S.IVR or call.direction == "outbound":
            return
        if not self._can(call, S.IVR, "IVR entry"):
            return
        call.state = S.IVR
        call.ivr_at = call.ivr_at if call.ivr_at is not None else now
        self._emit(CallEnteredIvr(call.call_id, now))

    def _queue(self, call: LiveCall, now: float, queue: str | None, position: int | None) -> None:
        if not self._can(call, S.QUEUED, f"queue {queue or '(parked)'}"):
            return
        call.state, call.queue, call.in_queue, call.position = S.QUEUED, queue, queue is not None, position
        call.queued_at = call.queued_at if call.queued_at is not None else now
        call.waiting_since = call.waiting_since if call.waiting_since is not None else now
        self._emit(CallQueued(call.call_id, queue, position, now))

    def _on_queue_join(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None and self._caller(call, uid):
            self._queue(call, now, ev.get("Queue"), int_or_none(ev.get("Position")))

    def _on_queue_leave(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None and uid == call.hub:
            call.in_queue = False

    def _on_queue_abandon(self, ev: AMIMessage, now: float) -> None:
        """Left the queue unanswered: a hangup OR a Redirect.  The hangup decides."""
        call, uid = self._lookup(ev)
        if call is not None and uid == call.hub:
            call.in_queue, call.position = False, int_or_none(ev.get("Position")) or call.position
            log_call(call, logging.INFO, "left queue %s unanswered after %s s", ev.get("Queue"), ev.get("HoldTime"))

    def _on_moh_start(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is None:
            return
        if call.state is S.CONNECTED and (uid == call.hub or uid in call.peers):
            self._hold(call, now)
        elif self._caller(call, uid) and call.state in (S.ARRIVED, S.IVR, S.WRAP_UP):
            self._queue(call, now, None, None)

    def _on_moh_stop(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None and (uid == call.hub or uid in call.peers):
            self._resume(call, now)

    # -- offers -----------------------------------------------------------
    def _on_agent_called(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        dest, dest_name = ev.get("DestUniqueid"), ev.get("DestChannel")
        if call is not None and dest and dest_name and self._caller(call, uid):
            self._offer(call, now, dest, dest_name, ev.get("Interface"), ev.get("MemberName"), ev.get("Queue"))

    def _on_dial_begin(self, ev: AMIMessage, now: float) -> None:
        dest, dest_name = ev.get("DestUniqueid"), ev.get("DestChannel")
        if not dest or not dest_name:
            return
        interface = dial_interface(dest_name, ev.get("DialString"))
        if not ev.get("Uniqueid"):       # an Originate dialling its first channel
            call = self._calls.get(ev.get("DestLinkedid") or "")
            if call is not None and dest == call.call_id:
                call.originated, call.originate_interface = True, interface
            return
        call, uid = self._lookup(ev)
        if call is None:
            return
        if call.hub is None or uid == call.hub:
            if not self._caller(call, uid, dialing=True):
                return
            if call.direction == "outbound":
                self._dial_out(call, now, dest, dest_name, interface, ev.get("Exten"))
            else:
                self._offer(call, now, dest, dest_name, interface, None, call.queue if call.in_queue else None)
        elif uid in self._channels:
            self._channels[uid].dialed[dest] = interface     # e.g. an attended transfer's consultation

    def _offer(self, call: LiveCall, now: float, dest: str, dest_name: str, interface: str | None,
               member_name: str | None, queue: str | None) -> None:
        if dest in call.pending or dest in call.peers:
            return                                   # AgentCalled, then its DialBegin
        if call.state is S.CONNECTED:                 # redirected into a new Dial: that talk is over
            self._end_talk(call, now, "redirect")
        if not self._can(call, S.OFFERED, f"offer to {interface}"):
            return
        offer = PendingOffer(dest, dest_name, interface, member_name, queue, now)
        transfer = None       # a re-dial of the same agent (whatever form its interface took) is none
        if call.answered_at is not None and call.state is S.WRAP_UP and not call.transfer_noted \
                and (offer.agent_id or interface) != (call.agent_id or call.agent_interface):
            transfer = TransferRecord("redirect", call.agent_interface, interface, now, call.agent_id,
                                      offer.agent_id)
        call.state, call.transfer_noted = S.OFFERED, False
        call.pending[dest] = offer
        call.offered_at = call.offered_at if call.offered_at is not None else now
        call.waiting_since = call.waiting_since if call.waiting_since is not None else now
        if transfer is not None:
            call.transfers.append(transfer)
            self._emit(CallTransferred(call.call_id, "redirect", transfer.from_agent, interface, now,
                                       transfer.from_agent_id, transfer.to_agent_id))
        self._emit(CallOffered(call.call_id, queue, interface, member_name, dest_name, now, offer.agent_id))

    def _dial_out(self, call: LiveCall, now: float, dest: str, dest_name: str, interface: str | None,
                  number: str | None) -> None:
        if not call.announced:
            self._announce(call, dnis=dnis_of(number or ""))
        if dest in call.pending or not self._can(call, S.OFFERED, f"outbound dial of {interface}"):
            return
        call.state = S.OFFERED
        call.agent_interface, call.agent_channel = call.originate_interface, call.caller_channel
        call.pending[dest] = PendingOffer(dest, dest_name, interface, None, None, now)
        call.offered_at = call.offered_at if call.offered_at is not None else now
        call.waiting_since = call.waiting_since if call.waiting_since is not None else now
        self._emit(CallDialedOut(call.call_id, call.originate_interface, call.dnis, dest_name, now, call.agent_id))

    def _on_dial_end(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        dest, status = ev.get("DestUniqueid") or "", ev.get("DialStatus") or ""
        if call is None or not uid:
            return
        if uid == call.hub:
            if status == "ANSWER":
                self._answer(call, now, dest)
            else:
                self._fail(call, now, dest, _DIAL_FAILURES.get(status, "cancel"))
        elif status == "ANSWER" and uid in self._channels:
            self._channels[uid].answered = dest

    def _on_ring_noanswer(self, ev: AMIMessage, now: float) -> None:
        call, _ = self._lookup(ev)
        ring_ms = int_or_none(ev.get("RingTime"))
        if call is not None:
            self._fail(call, now, ev.get("DestUniqueid") or "", "noanswer",
                       ring_ms / 1000.0 if ring_ms is not None else None)

    def _on_agent_connect(self, ev: AMIMessage, now: float) -> None:
        call, _ = self._lookup(ev)
        if call is not None and (ev.get("DestUniqueid") or "") in call.pending:
            self._answer(call, now, ev.get("DestUniqueid") or "")   # DialEnd ANSWER went missing

    def _on_varset(self, ev: AMIMessage, now: float) -> None:
        """``DIALSTATUS=CHANUNAVAIL`` with no DialBegin: the agent could not be rung at all."""
        if ev.get("Variable") != "DIALSTATUS" or ev.get("Value") not in ("CHANUNAVAIL", "CONGESTION"):
            return
        call, uid = self._lookup(ev)
        if call is None or uid != call.hub or call.pending or not call.announced or call.caller_gone \
                or call.direction == "outbound":
            return
        target = self._channels[uid].dial_target if uid in self._channels else None
        call.offers.append(OfferRecord(target, None, None, None, now, now, "unavailable", 0.0, agent_id(target)))
        self._emit(OfferFailed(call.call_id, target, None, "unavailable", 0.0, now, agent_id(target)))

    def _answer(self, call: LiveCall, now: float, dest: str) -> None:
        offer = call.pending.get(dest)
        if offer is None or not self._can(call, S.CONNECTED, f"answer by {offer.channel}"):
            return
        del call.pending[dest]
        ring = now - offer.at
        call.offers.append(OfferRecord(offer.interface, offer.channel, offer.member_name, offer.queue,
                                       offer.at, now, "answered", ring, offer.agent_id))
        wait = now - (call.waiting_since if call.waiting_since is not None else offer.at)
        call.state, call.waiting_since = S.CONNECTED, None
        self._set_peers(call, [dest])
        call.answered_at = call.answered_at if call.answered_at is not None else now
        if call.direction != "outbound":
            call.agent_interface, call.agent_channel = offer.interface, offer.channel
            call.member_name = offer.member_name
        self._emit(CallConnected(call.call_id, call.agent_interface, call.agent_channel, wait, ring, now,
                                 call.agent_id))

    def _fail(self, call: LiveCall, now: float, dest: str, reason: OfferFailure, ring: float | None = None) -> None:
        offer = call.pending.pop(dest, None)
        if offer is None:
            return                                    # already resolved (RINGNOANSWER, 2nd CANCEL)
        ring = now - offer.at if ring is None else ring
        if call.direction == "outbound":
            log_call(call, logging.INFO, "customer %s not reached (%s)", offer.interface, reason)
            return
        call.offers.append(OfferRecord(offer.interface, offer.channel, offer.member_name, offer.queue,
                                       offer.at, now, reason, ring, offer.agent_id))
        if call.state is S.OFFERED and not call.pending and self._can(call, S.QUEUED, "ring failure"):
            call.state = S.QUEUED                     # still waiting for an agent
        self._emit(OfferFailed(call.call_id, offer.interface, offer.channel, reason, ring, now, offer.agent_id))

    # -- hangups ----------------------------------------------------------
    def _on_hangup_request(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is None:
            return
        if ev.name == "SoftHangupRequest" and int_or_none(ev.get("Cause")) == _SHUTDOWN_SOFTHANGUP:
            call.shutdown = True
        self._note_release(call, uid)

    def _on_hangup(self, ev: AMIMessage, now: float) -> None:
        chan = self._channels.pop(ev.get("Uniqueid") or "", None)
        call = self._calls.get(chan.call_id) if chan else None
        if chan is None or call is None:
            return
        uid = chan.uid
        call.channels.pop(chan.name, None)
        if call.announced and not call.spy:
            self._note_release(call, uid)
            cause, cause_txt = int_or_none(ev.get("Cause")), ev.get("Cause-txt")
            if uid == call.hub or (uid == call.hub_peer and call.cause is None):
                call.cause, call.cause_txt = cause, cause_txt
            if self._hub_side(call, uid):
                self._hub_gone(call, now)
            elif uid in call.pending:
                self._fail(call, now, uid, _HANGUP_FAILURES.get(cause or 0, "unavailable"))
            elif uid in call.peers and call.state is S.CONNECTED:
                self._end_talk(call, now, self._released_by(call, "peer"))
        if not call.channels:
            self._finish(call, now)

    def _hub_gone(self, call: LiveCall, now: float) -> None:
        if call.caller_gone:
            return
        call.caller_gone = True
        if call.state is S.CONNECTED:
            self._end_talk(call, now, self._released_by(call, "hub"))
        elif call.state in (S.QUEUED, S.OFFERED) and call.direction == "inbound" and not call.shutdown:
            call.abandoned = True
            wait = now - (call.waiting_since if call.waiting_since is not None else call.arrived_at)
            self._emit(CallAbandoned(call.call_id, call.queue, call.position, wait, now))

    def _finish(self, call: LiveCall, now: float, forced: bool = False) -> None:
        """The call is over: emit CallEnded (announced calls) and forget it."""
        self._calls.pop(call.call_id, None)
        for uid in list(call.channels.values()):
            self._channels.pop(uid, None)
        if not call.announced or call.spy:
            return
        for dest in list(call.pending):
            self._fail(call, now, dest, "cancel")
        if call.held_since is not None:
            call.holds.append(HoldRecord(call.held_since, now))
            call.held_since = None
        if forced:
            call.cause = call.cause_txt = None
        call.state, call.ended_at = S.ENDED, now
        self._emit(CallEnded(call.call_id, call.cause, call.cause_txt, now, call.record()))

    def _drop(self, call: LiveCall, now: float) -> None:
        self._finish(call, now, forced=True)

    def _on_spy_start(self, ev: AMIMessage, now: float) -> None:
        call, _ = self._lookup(ev, "SpyerUniqueid", "SpyerLinkedid")
        if call is not None and not call.announced:
            call.spy = True
        elif call is not None:
            log_call(call, logging.WARNING, "a ChanSpy started on an announced call")

    # -- queue members ----------------------------------------------------
    def _on_member(self, ev: AMIMessage, now: float) -> None:
        event = member_status(ev, now)
        if event is not None:
            self._emit(event)

    def _on_member_removed(self, ev: AMIMessage, now: float) -> None:
        if ev.get("Interface") and ev.get("Queue"):
            interface = ev.get("Interface") or ""
            self._emit(AgentMemberRemoved(interface, ev.get("Queue") or "", now,
                                          agent_id(interface) or agent_id(ev.get("StateInterface"))))
