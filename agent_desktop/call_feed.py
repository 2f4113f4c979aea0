"""Each agent's call, pushed to their desktops: the screen pop when it rings, then how it goes.

Frames (``messages.frame``), addressed to the agent the call is offered to
and to nobody else:

* ``pop``: when the ACD offers a call to the agent (its ``Offer`` effect):
  the body of ``agent_desktop.pop.pop_payload`` plus ``state: "ringing"``;
* ``call``: ``{"call_id", "state"}`` with ``connected``, ``held``,
  ``resumed``, ``consulting`` (an attended transfer's consultation),
  ``transfer-cancelled`` (it ended without a transfer: the agent has the
  caller again), ``transferred`` (with ``to``), ``ended`` (and ``missed``
  when the agent did not take it), from the call tracker's events;
* ``agent``: the agent's own ACD state (``AgentChanged``).

A desktop that connects (or reconnects) gets ``snapshot``: the agent's
state and, if a call is ringing or in progress, that call's pop with its
current state, exactly once; live frames follow.  A call that has ended is
not in the snapshot (no stale pop), and one pop is sent per offer (no
duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from acd import effects as fx
from acd import events as ev
from agent_desktop import messages
from agent_desktop.pop import PopContext, build_pop, pop_payload

logger = logging.getLogger(__name__)

_CALL_STATES = {ev.CallConnected: "connected", ev.CallHeld: "held", ev.CallResumed: "resumed",
                ev.CallConsulting: "consulting", ev.CallTransferCancelled: "transfer-cancelled",
                ev.CallTransferred: "transferred", ev.CallEnded: "ended"}


class CallFeed:
    def __init__(self, hub: Any, store: Callable[[], Any], tracker: Any, clock: Callable[[], float]) -> None:
        self._hub = hub
        self._store = store
        self._tracker = tracker
        self._clock = clock
        self._calls: dict[str, dict[str, Any]] = {}       # agent -> the pop of its current call (with state)
        self._states: dict[str, dict[str, Any]] = {}      # agent -> its last ``agent`` frame body
        self._tasks: set[asyncio.Future[Any]] = set()
        #: Offer -> pop frame queued to the desktops, seconds (the latest ones, for the benchmark).
        self.latencies: list[float] = []

    # -- the ACD's effects -----------------------------------------------------------------------------
    def on_effect(self, effect: Any) -> None:
        if isinstance(effect, fx.Offer) and effect.kind == "call":
            self._spawn(self._pop(effect, self._clock()))
        elif isinstance(effect, fx.AgentChanged):
            body = {"agent": effect.agent, "state": effect.state.value, "reason": effect.reason, "since": effect.at,
                    "call_id": effect.call_id}
            self._states[effect.agent] = body
            self._hub.send_to_agent(effect.agent, messages.frame("agent", **body))
            current = self._calls.get(effect.agent)
            if current is not None and current["state"] == "ringing" and effect.state.value != "on-call" \
                    and effect.call_id != current["call_id"]:
                self._end(effect.agent, current["call_id"], "missed")

    async def _pop(self, offer: fx.Offer, decided_at: float) -> None:
        record = self._tracker.get(offer.call_id)
        context = PopContext(call_id=offer.call_id, agent=offer.agent, queue=offer.queue,
                             ani=record.ani if record else None, caller_name=record.caller_name if record else None,
                             dnis=record.dnis if record else None, wait_seconds=offer.wait_seconds)
        try:
            body = await build_pop(self._store(), context)
        except Exception as exc:   # the CRM is slow or down: the agent still sees who calls
            logger.warning("call %s: pop without CRM data: %s", offer.call_id, exc)
            body = pop_payload(context)
        body["state"] = "ringing"
        self._calls[offer.agent] = body
        self._hub.send_to_agent(offer.agent, messages.frame("pop", **body))
        self.latencies = (self.latencies + [self._clock() - decided_at])[-10000:]

    # -- the tracker's events ------------------------------------------------------------------------
    def on_call_event(self, event: Any) -> None:
        state = _CALL_STATES.get(type(event))
        if state is None:
            return
        for agent, current in list(self._calls.items()):
            if current["call_id"] != event.call_id:
                continue
            if state == "ended":
                self._end(agent, event.call_id, "ended")
                continue
            current["state"] = state
            extra = {"to": event.to} if isinstance(event, ev.CallTransferred) else {}
            self._hub.send_to_agent(agent, messages.frame("call", call_id=event.call_id, state=state, **extra))
            if state == "transferred":
                self._calls.pop(agent, None)

    def _end(self, agent: str, call_id: str, state: str) -> None:
        self._calls.pop(agent, None)
        self._hub.send_to_agent(agent, messages.frame("call", call_id=call_id, state=state))

    # -- a desktop (re)connects -----------------------------------------------------------------------
    def snapshot(self, agent: str) -> str:
        """The ``snapshot`` frame for a desktop of ``agent`` that has just connected."""
        return messages.frame("snapshot", agent=self._states.get(agent), call=self._calls.get(agent))

    def _spawn(self, aw: Any) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
