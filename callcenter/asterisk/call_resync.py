"""Resync: rebuild the tracker's calls from the snapshot taken after a (re)connect.

``CallTracker.ami_snapshot`` hands the snapshot (``CoreShowChannels``,
``QueueStatus``, ``Status``) to :func:`resync_calls`.  The snapshot is ground
truth: the resync may set a call's state directly, without the transition
table, and logs each state it sets with the call id.

* After an Asterisk restart every call is dropped (``AsteriskRestarted``);
  otherwise a call no longer in ``CoreShowChannels`` is dropped, a known call
  is corrected, and an unknown one is built from its rows.
* The caller channel stays the one already known; else it is one in a queue
  (``QueueEntry``), else one running AGI, Queue, Dial or MusicOnHold that
  Dial()/Queue() did not create, else a first channel that is not Local (a
  trunk call, whatever it runs now).  A caller that hung up while the link
  was down counts as the caller's hangup (an abandon, or the end of the
  conversation).  A ChanSpy call stays a spy call, never announced.
* A call resynced after a reconnect gets its times from ``Duration``/``Wait``
  (whole seconds) and leaves unknown ones None.
* A caller answered in ``Queue()`` while the link was down has no
  ``QueueEntry`` any more: its queue is the first argument of ``Queue()``.
* The state follows from the rows: bridged with a leg -> connected, legs
  ringing -> offered, in a queue or on music on hold -> queued, AGI -> ivr.
* The agent of a conversation that started while the daemon was away is
  the bridged leg's queue-member interface when ``QueueStatus`` lists one,
  else the leg's channel name without its sequence number; its
  ``agent_id`` (``call_model.agent_id``: ``6001`` for
  ``Local/6001@agents-00000003;1`` or ``PJSIP/6001-0000000a``) is the one
  the live events give for the same call.
* Queue members are re-announced (``AgentMemberStatus``), every call is
  confirmed again, and ``CallsResynced`` carries the announced calls.

This is the tracker's own logic kept in its own module: it works on the
tracker's private state and calls its transitions (``_drop``, ``_end_talk``,
``_fail``, ...).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Iterable, Mapping

from acd.events import AsteriskRestarted, CallsResynced, CallState
from callcenter.asterisk.ami_codec import AMIMessage
from callcenter.asterisk.call_model import (
    LiveCall, LiveChannel, PendingOffer, base_interface, call_text, caller_name, dnis_of, duration_seconds,
    int_or_none, log_call, member_status, number_or_none,
)

if TYPE_CHECKING:
    from callcenter.asterisk.ami_client import AMISnapshot
    from callcenter.asterisk.call_tracker import CallTracker

__all__ = ["resync_calls"]

S = CallState
_OUTGOING_APPS = ("AppDial", "AppQueue")       # legs that Dial()/Queue() created
_CALLER_APPS = ("AGI", "Queue", "Dial", "MusicOnHold")
_LOCAL_EXTEN = re.compile(r"^Local/([^@]+)@")


def resync_calls(tracker: CallTracker, snapshot: AMISnapshot, now: float) -> None:
    """Bring ``tracker`` in line with ``snapshot``; emits ``CallsResynced`` (and ``AsteriskRestarted``)."""
    if snapshot.restarted:
        dropped = [c.call_id for c in tracker._calls.values() if c.announced and not c.spy]
        for call in list(tracker._calls.values()):
            tracker._drop(call, now)
        tracker._emit(AsteriskRestarted(tuple(dropped), now))
    rows: dict[str, list[AMIMessage]] = {}
    for row in snapshot.channels:
        uid = row.get("Uniqueid")
        if row.name == "CoreShowChannel" and uid and row.get("Channel"):
            rows.setdefault(row.get("Linkedid") or uid, []).append(row)
    entries = {e.get("Uniqueid"): e for e in snapshot.queue_status if e.name == "QueueEntry"}
    members = [m for m in snapshot.queue_status if m.name == "QueueMember"]
    dnids = {s.get("Uniqueid"): s.get("DNID") for s in snapshot.status if s.name == "Status"}
    for call in list(tracker._calls.values()):
        if call.call_id not in rows:
            log_call(call, logging.INFO, "gone from Asterisk after the resync")
            tracker._drop(call, now)
    for linked, group in rows.items():
        _Resync(tracker, linked, group, entries, members, dnids, now).apply()
    for member in members:
        event = member_status(member, now)
        if event is not None:
            tracker._emit(event)
    for call in tracker._calls.values():
        call.confirmed = True
    announced = tuple(c.record() for c in tracker._calls.values() if c.announced and not c.spy)
    tracker._emit(CallsResynced(announced, now))


class _Resync:
    """Rebuild (or correct) one call from its CoreShowChannel rows."""

    def __init__(self, tracker: CallTracker, linked: str, rows: list[AMIMessage],
                 entries: Mapping[str | None, AMIMessage], members: Iterable[AMIMessage],
                 dnids: Mapping[str | None, str | None], now: float) -> None:
        self.t, self.linked, self.rows, self.now = tracker, linked, rows, now
        self.entries, self.dnids = entries, dnids
        self.members = [m.get("Location") or "" for m in members]

    def apply(self) -> None:
        t, now = self.t, self.now
        call = t._calls.get(self.linked)
        if call is None:
            age = max(duration_seconds(r.get("Duration")) for r in self.rows)
            call = t._calls[self.linked] = LiveCall(call_id=self.linked, arrived_at=now - age, last_event_at=now)
        self._sync_channels(call)
        if call.spy or (not call.announced and any(r.get("Application") == "ChanSpy" for r in self.rows)):
            call.spy = True
            return
        if call.announced and call.hub not in call.channels.values():
            t._hub_gone(call, now)                 # the caller hung up while the link was down
            return
        hub = self._hub_row(call)
        if hub is None:
            return
        uid = hub.get("Uniqueid") or ""
        if call.hub != uid:
            first = call.call_id == uid and (hub.get("Channel") or "").endswith(";1") and \
                hub.get("Application") == "Dial"
            t._set_hub(call, uid, "outbound" if first else "inbound")
        if not call.announced:
            name = hub.get("Channel") or ""
            local = _LOCAL_EXTEN.match(name)
            dnis = self.dnids.get(uid) or (local.group(1) if local else None) or dnis_of(hub.get("Exten") or "")
            call.announced, call.caller_channel = True, name
            call.dnis = call_text(call, "dialled number", dnis)
            call.ani = call_text(call, "caller number", number_or_none(hub.get("CallerIDNum")))
            call.caller_name = call_text(call, "caller name", caller_name(hub.get("CallerIDName")))
        self._set_state(call, hub)

    def _sync_channels(self, call: LiveCall) -> None:
        t = self.t
        seen = {r.get("Uniqueid") for r in self.rows}
        for name, uid in list(call.channels.items()):
            if uid not in seen:
                del call.channels[name]
                t._channels.pop(uid, None)
                if call.announced and uid in call.pending:
                    t._fail(call, self.now, uid, "cancel")   # stopped ringing while we were away
        for r in self.rows:
            uid, name = r.get("Uniqueid") or "", r.get("Channel") or ""
            chan = t._channels.get(uid)
            if chan is None:
                exten = r.get("Exten") or ""
                chan = t._channels[uid] = LiveChannel(uid, name, call.call_id, exten, exten,
                                                      number_or_none(r.get("CallerIDNum")),
                                                      caller_name(r.get("CallerIDName")))
            chan.bridge = r.get("BridgeId") or None
            call.channels[name] = uid

    def _hub_row(self, call: LiveCall) -> AMIMessage | None:
        by_uid = {r.get("Uniqueid"): r for r in self.rows}
        if call.hub in by_uid:
            return by_uid[call.hub]
        callers = [r for r in self.rows if r.get("Application") not in _OUTGOING_APPS]
        for row in callers:
            if row.get("Uniqueid") in self.entries:
                return row
        for row in callers:
            if row.get("Application") in _CALLER_APPS:
                return row
        first = by_uid.get(self.linked)
        if first is not None and not (first.get("Channel") or "").startswith("Local/"):
            return first                   # a trunk call, whatever it runs now
        return None

    def _set_state(self, call: LiveCall, hub: AMIMessage) -> None:
        t = self.t
        uid, bridge = hub.get("Uniqueid") or "", hub.get("BridgeId") or ""
        legs = [r for r in self.rows if r.get("Application") in _OUTGOING_APPS and r.get("Uniqueid") != uid]
        bridged = [r for r in self.rows if bridge and r.get("BridgeId") == bridge and r.get("Uniqueid") != uid]
        entry = self.entries.get(uid)
        old = call.state
        if entry is not None:
            call.queue, call.in_queue, call.position = entry.get("Queue"), True, int_or_none(entry.get("Position"))
            call.queued_at = self.now - duration_seconds(entry.get("Wait"))
        elif call.queue is None and hub.get("Application") == "Queue":
            # answered in Queue() while we were away: no QueueEntry any more, the queue is Queue()'s first argument
            call.queue = (hub.get("ApplicationData") or "").split(",", 1)[0].strip() or None
        if call.state is S.CONNECTED and not bridged:
            t._end_talk(call, self.now, t._released_by(call, "peer"))   # the agent left meanwhile
        if bridged:
            leg = next((r for r in bridged if r in legs), bridged[0])
            leg_uid, leg_name = leg.get("Uniqueid") or "", leg.get("Channel") or ""
            call.state, call.pending, call.in_queue = S.CONNECTED, {}, False
            if leg_uid not in call.peers:                   # a new conversation we did not see start
                t._set_peers(call, [leg_uid])
                if call.direction == "inbound":
                    call.agent_interface, call.agent_channel = self._interface(leg_name), leg_name
            if call.answered_at is None:
                call.answered_at = self.now - duration_seconds(leg.get("Duration"))
        elif legs:
            call.state, call.peers, call.peer_side = S.OFFERED, set(), set()
            call.pending = {r.get("Uniqueid") or "": call.pending.get(r.get("Uniqueid") or "") or PendingOffer(
                r.get("Uniqueid") or "", r.get("Channel") or "", self._interface(r.get("Channel") or ""),
                None, call.queue if call.in_queue else None, self.now - duration_seconds(r.get("Duration")))
                for r in legs}
            first_ring = min(offer.at for offer in call.pending.values())
            call.offered_at = call.offered_at if call.offered_at is not None else first_ring
        elif entry is not None or hub.get("Application") == "MusicOnHold":
            call.state, call.pending = S.QUEUED, {}
        elif hub.get("Application") == "AGI":
            call.state = S.IVR
        if call.state is not old:
            log_call(call, logging.INFO, "resync sets %s -> %s", old.value, call.state.value)

    def _interface(self, channel: str) -> str:
        base = base_interface(channel)
        for location in self.members:
            if "/".join(location.split("/")[:2]) == base:
                return location
        return base
