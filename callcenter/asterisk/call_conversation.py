"""The conversation part of the call tracker: bridges, holds, transfers, who hung up.

``CallTracker`` (``call_tracker.py``) inherits :class:`ConversationMixin`;
its handlers table routes ``BridgeEnter``/``BridgeLeave``, ``Hold``/``Unhold``
and ``AttendedTransfer``/``BlindTransfer`` here, and the tracker's own
handlers call ``_end_talk``, ``_hold``/``_resume`` and the release
bookkeeping (``_set_peers``, ``_note_release``, ``_released_by``).
The choices on ambiguous cases (what ends a conversation, ``released_by``,
hold by Redirect) are listed in ``call_tracker``'s docstring.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from acd.events import (
    CallCompleted, CallConsulting, CallHeld, CallResumed, CallState, CallTransferCancelled, CallTransferred,
    HoldRecord, ReleasedBy, TrackerEvent, TransferRecord,
)
from callcenter.asterisk.ami_codec import AMIMessage
from callcenter.asterisk.call_model import LiveCall, LiveChannel, agent_id, base_interface, local_partner, log_call

__all__ = ["ConversationMixin"]

S = CallState


class ConversationMixin:
    """Conversation handlers of ``CallTracker``; not usable on its own."""

    # Provided by CallTracker.
    _channels: dict[str, LiveChannel]
    _emit: Callable[[TrackerEvent], None]
    _can: Callable[[LiveCall, CallState, str], bool]
    _lookup: Callable[..., tuple[LiveCall | None, str]]
    _hub_side: Callable[[LiveCall, str], bool]

    # -- who is on which side ---------------------------------------------
    def _set_peers(self, call: LiveCall, uids: Iterable[str]) -> None:
        """The far legs of a new conversation; their Local partners count as their side."""
        call.peers = {uid for uid in uids if uid}
        call.peer_side = set(call.peers)
        for uid in call.peers:
            chan = self._channels.get(uid)
            partner = call.channels.get(local_partner(chan.name) or "") if chan else None
            if partner:
                call.peer_side.add(partner)
        call.first_release, call.left_bridge = None, False

    def _note_release(self, call: LiveCall, uid: str) -> None:
        """Remember which side of a conversation started hanging up first."""
        if call.state is S.CONNECTED and call.first_release is None:
            if self._hub_side(call, uid):
                call.first_release = "hub"
            elif uid in call.peer_side:
                call.first_release = "peer"

    def _released_by(self, call: LiveCall, trigger: str) -> ReleasedBy:
        """Who ended the conversation, ``trigger`` being the side whose leg just went."""
        side = call.first_release or trigger
        if call.direction == "outbound":
            return "agent" if side == "hub" else "customer"
        if side == "hub":
            return "customer"
        return "redirect" if call.left_bridge else "agent"

    # -- hold -------------------------------------------------------------
    def _on_hold(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None and call.state is S.CONNECTED and (uid == call.hub or uid in call.peers):
            self._hold(call, now)

    def _on_unhold(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        if call is not None and (uid == call.hub or uid in call.peers):
            self._resume(call, now)

    def _hold(self, call: LiveCall, now: float) -> None:
        if call.held_since is None:
            call.held_since = now
            self._emit(CallHeld(call.call_id, now))

    def _resume(self, call: LiveCall, now: float) -> None:
        if call.held_since is not None:
            held, call.held_since = call.held_since, None
            call.holds.append(HoldRecord(held, now))
            self._emit(CallResumed(call.call_id, now - held, now))

    # -- conversation -----------------------------------------------------
    def _on_bridge_enter(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        chan = self._channels.get(uid)
        if chan is not None:
            chan.bridge = ev.get("BridgeUniqueid")
            if chan.bridge:
                chan.bridges_seen.add(chan.bridge)
            if call is not None and uid == call.hub:
                call.left_bridge = False
            if call is not None and uid in call.peers and call.state is S.CONNECTED and chan.bridge:
                self._consultation_move(call, uid, chan.bridge, now)

    def _consultation_move(self, call: LiveCall, uid: str, bridge: str, now: float) -> None:
        """The agent leg entering a bridge: an attended transfer's consultation starts or is over.

        Asterisk moves the transferer into the consultation bridge, where the
        target's Local ``;1`` already is (a channel of this call), and, when
        the transfer is aborted (CancelAtxfer) or the target hangs up or does
        not answer, back into the caller's bridge (tests/test_real_asterisk_actions.py).
        """
        hub = self._channels.get(call.hub or "")
        caller_bridge = hub.bridge if hub is not None else None
        if call.consult_bridge is not None and bridge == caller_bridge:
            call.consult_bridge = None
            log_call(call, logging.INFO, "the consultation ended without a transfer; back with the caller")
            self._emit(CallTransferCancelled(call.call_id, now))
        elif call.consult_bridge is None and caller_bridge is not None and bridge != caller_bridge and any(
                other != uid and other != call.hub and other in self._channels
                and self._channels[other].bridge == bridge for other in call.channels.values()):
            call.consult_bridge = bridge
            log_call(call, logging.INFO, "the agent consults in bridge %s", bridge)
            self._emit(CallConsulting(call.call_id, now))

    def _on_bridge_leave(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev)
        chan = self._channels.get(uid)
        if chan is None or call is None:
            return
        bridge, chan.bridge = chan.bridge, None
        if uid == call.hub and call.state is S.CONNECTED and bridge is not None and any(
                p in self._channels and self._channels[p].bridge == bridge for p in call.peers):
            call.left_bridge = True                   # moved out while the agent is still there

    def _end_talk(self, call: LiveCall, now: float, released_by: ReleasedBy) -> None:
        if not self._can(call, S.WRAP_UP, f"end of conversation ({released_by})"):
            return
        if call.held_since is not None:
            call.holds.append(HoldRecord(call.held_since, now))
            call.held_since = None
        call.state, call.peers, call.peer_side, call.consult_bridge = S.WRAP_UP, set(), set(), None
        talk = now - (call.answered_at if call.answered_at is not None else now)
        self._emit(CallCompleted(call.call_id, call.agent_interface, talk, released_by, now, call.agent_id))

    def _on_attended_transfer(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev, "TransfereeUniqueid", "TransfereeLinkedid")
        if call is None or ev.get("Result") != "Success":
            return
        if uid != call.hub or call.state is not S.CONNECTED:
            log_call(call, logging.INFO, "attended transfer of %s ignored (caller is not the transferee "
                     "or not connected)", ev.get("TransfereeChannel"))
            return
        target = ev.get("TransferTargetUniqueid") or self._consulted(call, ev)
        interface, leg_uid, leg_name = self._transfer_target(call, target, ev.get("TransferTargetChannel"))
        if not self._can(call, S.CONNECTED, "attended transfer"):
            return
        self._resume(call, now)
        call.consult_bridge = None
        record = TransferRecord("attended", call.agent_interface, interface, now, call.agent_id,
                                agent_id(interface) or agent_id(leg_name))
        call.transfers.append(record)
        call.agent_interface, call.agent_channel, call.member_name = interface, leg_name, None
        self._set_peers(call, [target, leg_uid])
        self._emit(CallTransferred(call.call_id, "attended", record.from_agent, interface, now,
                                   record.from_agent_id, record.to_agent_id))

    def _consulted(self, call: LiveCall, ev: AMIMessage) -> str:
        """The consultation's far channel when the event names none.

        Asterisk 22 leaves the ``TransferTarget*`` fields out when the
        consultation bridge is empty by the time the event is raised (seen with
        a PJSIP transferer hanging up): the target is then the call's channel,
        other than the transferer, that was in ``SecondBridgeUniqueid`` (it may
        be in the merged bridge by now).
        """
        second, transferer = ev.get("SecondBridgeUniqueid"), ev.get("SecondTransfererUniqueid")
        if not second:
            return ""
        return next((uid for uid in call.channels.values() if uid != transferer and uid in self._channels
                     and second in self._channels[uid].bridges_seen), "")

    def _transfer_target(self, call: LiveCall, uid: str, name: str | None) -> tuple[str | None, str, str | None]:
        """The agent behind a transfer target: a Local target's ``;2`` half dialled the agent."""
        chan = self._channels.get(uid)
        if chan is not None:
            partner = self._channels.get(call.channels.get(local_partner(chan.name) or "", ""))
            if partner is not None and partner.answered in partner.dialed:
                leg = self._channels.get(partner.answered)
                return partner.dialed[partner.answered], partner.answered, leg.name if leg else None
        return (base_interface(name) if name else None), uid, name

    def _on_blind_transfer(self, ev: AMIMessage, now: float) -> None:
        call, uid = self._lookup(ev, "TransfereeUniqueid", "TransfereeLinkedid")
        if call is None or ev.get("Result") != "Success" or uid != call.hub or call.state is not S.CONNECTED:
            return
        to = f"{ev.get('Extension')}@{ev.get('Context')}" if ev.get("Extension") else None
        record = TransferRecord("blind", call.agent_interface, to, now, call.agent_id)
        self._end_talk(call, now, "transfer")
        call.transfers.append(record)
        call.transfer_noted = True
        self._emit(CallTransferred(call.call_id, "blind", record.from_agent, to, now, record.from_agent_id))

