"""Callbacks the call center owes, routed by the ACD like calls and dialled agent first.

1. **Pick up.**  While this daemon leads, every ``poll_every`` seconds it puts
   expired claims back (a daemon that died mid-dial), reads the due pending
   callbacks, and for each whose queue is open now (the queue's hours) claims
   it in the CRM (one atomic UPDATE: of several daemons exactly one wins) and
   enqueues it in the distributor as kind ``callback`` with its priority
   (the queue's ``callback_priority`` unless the request has its own).
2. **Dial.**  When the distributor offers it to an agent, the daemon sends
   ``Originate Channel=<agent interface> Context=cc-callback Exten=<number>``
   with its own ActionID and ``ChannelId`` (so the call's Linkedid is known in
   advance): the agent's phone rings first.  ``OriginateResponse`` failure
   (no answer, busy, unavailable) is the agent's miss: the callback goes back
   to its queue for the next agent.  Success means the agent answered and
   ``cc-callback`` now dials the customer.
3. **Outcome.**  The customer leg's result comes from the call tracker (the
   call connected: ``answered``) or from ``CC_CALLBACK_RESULT`` (the dialplan
   sets it to DIALSTATUS when Dial returns: ``NOANSWER`` -> ``noanswer``,
   ``BUSY`` -> ``busy``, anything else -> ``failed``).  It is reported to the
   CRM (``callback_outcome``: done, or pending again after the queue's spacing
   until its attempts are used up), and the outbound call is in the contact log
   under that Linkedid like any call (``callbacks.last_linkedid`` points to it).

A callback is never dialled twice at once: only the claim holder dials it, a
claim lasts ``CLAIM_SECONDS``, and within one daemon the distributor never
offers a call twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from acd import effects as fx
from acd import events as ev
from acd import inputs as inp
from acd.errors import AcdError
from acd.model import AgentState
from callcenter.aio import resolved
from callcenter.asterisk import channel_vars as cv
from callcenter.asterisk.originate_watch import OriginateOutcome, VariableSet

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 2 * 3600
PREFIX = "callback:"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DIALSTATUS = {"ANSWER": "answered", "NOANSWER": "noanswer", "BUSY": "busy"}


def is_open(hours: Any, now: float) -> bool:
    """Whether ``hours`` (``crm_core.records.OpeningHours``; None: always) include the moment ``now``."""
    if hours is None:
        return True
    try:
        local = datetime.fromtimestamp(now, ZoneInfo(hours.tz))
    except Exception:
        logger.error("unknown time zone %r in a queue's hours; treated as open", getattr(hours, "tz", None))
        return True
    spans = dict(hours.days).get(_DAYS[local.weekday()], ())
    clock = local.strftime("%H:%M")
    return any(start <= clock < end for start, end in spans)


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, timezone.utc)


class CallbackDialer:
    def __init__(self, service: Any, port: Any, *, poll_every: float = 5.0) -> None:
        self._service = service
        self._port = port                      # CrmStore-like: due/claim/outcome/release (Deferreds)
        self._poll_every = poll_every
        self._last_poll = -1e18
        self.hours: dict[str, Any] = {}        # queue -> OpeningHours (None: always open)
        self._dials: dict[str, dict[str, Any]] = {}    # ActionID -> dial
        self._by_linkedid: dict[str, dict[str, Any]] = {}
        self._numbers: dict[str, str] = {}          # distributor call id -> number to dial
        self.dialled = 0

    @property
    def owner(self) -> str:
        return f"acd-{self._service.coordinator.daemon_id}"[:64]

    # -- 1. pick up ------------------------------------------------------------------------------
    async def poll(self, now: float) -> None:
        if self._port is None or now - self._last_poll < self._poll_every:
            return
        self._last_poll = now
        try:
            released = await resolved(self._port.release_stale_claims(_utc(now)))
            if released:
                logger.warning("callbacks %s: their claim expired mid-dial; pending again", list(released))
            due = await resolved(self._port.due_callbacks(_utc(now), 50))
        except Exception as exc:
            logger.warning("callbacks not read: %s", exc)
            return
        held = {c.call_id for c in self._service.distributor.calls()} | \
               {a.call_id for a in self._service.distributor.agents() if a.call_id}
        for callback in due:
            call_id = f"{PREFIX}{callback.id}"
            if call_id in held:
                continue
            rules = self._service.distributor.setup.queue(callback.queue)
            if rules is None:
                logger.error("callback %s: queue %r is not configured; left pending", callback.id, callback.queue)
                continue
            if not is_open(self.hours.get(callback.queue), now):
                continue
            try:
                claimed = await resolved(self._port.claim_callback(
                    callback.id, self.owner, _utc(now), _utc(now + CLAIM_SECONDS)))
            except Exception as exc:
                logger.warning("callback %s not claimed: %s", callback.id, exc)
                continue
            if claimed is None:
                continue   # another daemon has it
            try:
                self._service.apply(inp.Enqueue(call_id, callback.queue, None, callback.priority, kind="callback",
                                                callback_id=str(callback.id)))
                logger.info("callback %s to %s queued in %s (attempt %d of %d)", callback.id, callback.number,
                            callback.queue, callback.attempts + 1, callback.max_attempts)
            except AcdError as exc:
                logger.error("callback %s not queued: %s", callback.id, exc)
                continue
            self._numbers[call_id] = claimed.number

    def closed_queues(self, now: float) -> None:
        """Callbacks still waiting in a queue that has just closed leave the ACD (their claim expires)."""
        for call in self._service.distributor.calls():
            if call.kind == "callback" and call.agent is None and not is_open(self.hours.get(call.queue), now):
                logger.info("callback %s: queue %s closed; it waits for the next opening", call.callback_id,
                            call.queue)
                self._service.apply(inp.Gone(call.call_id))

    # -- 2. dial -------------------------------------------------------------------------------------
    async def dial(self, offer: fx.Offer) -> None:
        number = self._numbers.get(offer.call_id)
        if number is None:
            logger.error("callback %s: number unknown (the daemon restarted); it is dialled again later",
                         offer.callback_id)
            self._service.apply(inp.Gone(offer.call_id))
            return
        digits = "".join(ch for ch in number if ch in cv.DIAL_NUMBER_CHARS)
        action_id = f"cb-{offer.callback_id}-{uuid.uuid4().hex[:10]}"
        linkedid = f"cb{offer.callback_id}-{uuid.uuid4().hex[:12]}"
        dial = {"action_id": action_id, "linkedid": linkedid, "call_id": offer.call_id, "agent": offer.agent,
                "callback_id": offer.callback_id, "answered": False, "reported": False,
                "spacing": self._spacing(offer.queue)}
        self._dials[action_id] = dial
        self._by_linkedid[linkedid] = dial
        headers = [("ActionID", action_id), ("Channel", offer.interface), ("Context", cv.CONTEXT_CALLBACK),
                   ("Exten", digits), ("Priority", "1"), ("Timeout", str(int(offer.ring_seconds * 1000))),
                   ("CallerID", f'"Callback" <{digits}>'), ("ChannelId", linkedid),
                   ("Variable", f"{cv.CC_CALLBACK_ID}={offer.callback_id}")]
        try:
            await self._service._action("Originate", headers)
            self.dialled += 1
            logger.info("callback %s: ringing agent %s first, then %s", offer.callback_id, offer.agent, digits)
        except Exception as exc:
            logger.error("callback %s: Originate to agent %s failed: %s", offer.callback_id, offer.agent, exc)
            self._forget(dial)
            self._service._feed(inp.Missed(offer.call_id, offer.agent, "unavailable"))

    def _spacing(self, queue: str) -> float:
        rules = self._service.distributor.setup.queue(queue)
        return rules.callback_spacing if rules is not None else 600.0

    def _forget(self, dial: dict[str, Any]) -> None:
        self._dials.pop(dial["action_id"], None)
        self._by_linkedid.pop(dial["linkedid"], None)

    # -- outcomes --------------------------------------------------------------------------------------
    def on_originate(self, outcome: OriginateOutcome) -> None:
        dial = self._dials.get(outcome.action_id)
        if dial is None:
            return
        if outcome.answered:
            dial["answered"] = True
            logger.info("callback %s: agent %s answered; dialling the customer", dial["callback_id"], dial["agent"])
            self._service._feed(inp.Answered(dial["call_id"], dial["agent"]))
        else:
            logger.info("callback %s: agent %s did not answer (%s)", dial["callback_id"], dial["agent"],
                        outcome.reason)
            self._forget(dial)
            self._service._feed(inp.Missed(dial["call_id"], dial["agent"], outcome.reason or "unavailable"))

    def on_variable(self, event: VariableSet) -> None:
        dial = self._by_linkedid.get(event.linkedid or "")
        if dial is not None and event.variable == "CC_CALLBACK_RESULT":
            self._report(dial, _DIALSTATUS.get(event.value.upper(), "failed"))

    def on_call_event(self, event: Any) -> bool:
        """Tracker events of a callback's call; True when the event was one."""
        dial = self._by_linkedid.get(getattr(event, "call_id", ""))
        if dial is None:
            return False
        if isinstance(event, ev.CallConnected):
            self._report(dial, "answered")
        elif isinstance(event, ev.CallEnded):
            self._report(dial, "failed")
            self._forget(dial)
            agent = self._service.distributor.agent(dial["agent"])
            if agent is not None and agent.call_id == dial["call_id"] and agent.state is AgentState.ON_CALL:
                self._service._feed(inp.Released(dial["call_id"], dial["agent"]))
        return True

    def _report(self, dial: dict[str, Any], outcome: str) -> None:
        if dial["reported"]:
            return
        dial["reported"] = True
        self._numbers.pop(dial["call_id"], None)
        logger.info("callback %s: customer %s", dial["callback_id"], outcome)
        now = self._service.now()
        if self._port is None:
            return
        self._service._spawn(self._send_outcome(int(dial["callback_id"]), outcome, dial["linkedid"], now,
                                                dial["spacing"]))

    async def _send_outcome(self, callback_id: int, outcome: str, linkedid: str, now: float, spacing: float) -> None:
        try:
            record = await resolved(self._port.callback_outcome(callback_id, self.owner, outcome, linkedid,
                                                                      _utc(now), spacing))
            logger.info("callback %s: %s after %d attempt(s)", callback_id, record.status, record.attempts)
        except Exception as exc:
            logger.error("callback %s: outcome %s not recorded: %s", callback_id, outcome, exc)
