"""The ACD as a daemon service: the pure distributor driven by AMI, its effects sent to Asterisk.

Data flows one way::

    call tracker events ─┐
    IVR hand-offs ───────┼─> translate ─> Distributor.handle(input, now) ─> effects ─> Asterisk (AMI)
    agent commands ──────┘      (timers: Distributor.advance(now))                 ─> listeners (desktop, stats)

How a caller reaches an agent (``asterisk_conf/README.md``, "Daemon-driven ACD"):

1. The IVR hands off (``prepare_handoff``): the hand-off (queue, skills,
   priority, sticky agent) is stored and the AGI ends with ``CC_RESULT=acd``.
2. The caller enters ``cc-wait`` (music on hold).  The tracker reports
   ``CallQueued(queue=None)``; the hand-off becomes ``Enqueue``.
3. An ``Offer`` effect reserves agent and call (``Coordinator.reserve``), sets
   ``CC_AGENT_IFACE`` and ``CC_RING_SECS`` on the caller's channel and
   Redirects it into ``cc-connect``, which Dials the agent.
4. The outcome comes back as tracker events: ``CallConnected`` ->
   ``Answered``; ``OfferFailed`` (no answer, 486 busy, unavailable) ->
   ``Missed`` (the dialplan has put the caller back in ``cc-wait``);
   ``CallCompleted`` -> ``Released`` (wrap-up); ``CallEnded`` -> ``Gone``.
5. ``Fallback`` (max wait, nobody with the skills) Redirects the caller to
   ``cc-acd-exit,<voicemail|callback|queue>``.

The safety net: while this daemon leads, it sets the global ``CTI_ACD_BEAT``
every ``beat_every`` seconds.  ``cc-wait`` sends a caller to Asterisk's own
fallback queue once the beat has not moved for ``CTI_ACD_DEAD_SECS`` (daemon
down, AMI down, no leader).  Each agent's member of the fallback queue (and
of queues whose engine is ``asterisk``) is kept paused unless the agent is
logged in and not "not ready", so Asterisk only rings agents who are really
available.

Only the leader (``coordinator``) routes; see ``callcenter.routing.coordinator``.

With several daemons, desktops and wallboards may be connected to any of
them.  The leader broadcasts (``Coordinator.publish``) the effects desktops
show (``Offer``, ``AgentChanged``) once it has carried them out, and its
figures (queue rows, agent rows, the queues' chart buckets) when they change
and at least every ``REPUBLISH_EVERY`` seconds.  A daemon that does not lead
hands the effects to its own ``subscribe`` listeners and the figures to its
``subscribe_figures`` listeners, and answers ``agent_rows``, ``queue_rows``,
``queue_figures`` and ``chart`` from the leader's last copy (times in state
and waits aged by its own clock since the copy arrived).  Once it leads it
answers from its own distributor again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from acd import effects as fx
from acd import events as ev
from acd import inputs as inp
from acd.stats import combined_points
from acd.distributor import Distributor
from acd.errors import AcdError
from acd.model import AcdSetup, AgentState, AgentView, CallView, Snapshot
from callcenter.asterisk import channel_vars as cv
from callcenter.logging import call_id_context
from callcenter.aio import resolved
from callcenter.routing import codec
from callcenter.routing.leaders_copy import LeadersCopy, _steady
from callcenter.routing.members import QueueMembers
from callcenter.routing.coordinator import Coordinator, NotLeader
from callcenter.asterisk.originate_watch import OriginateOutcome, VariableSet
from callcenter.routing.callbacks import CallbackDialer
from callcenter.routing.figures import AcdFigures
from callcenter.routing.setup import hours_from_config, setup_from_config
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

#: QueueMemberStatus states in which a phone cannot take a call now.
_DEVICE_BUSY = frozenset({"INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE", "ONHOLD"})
#: Agent states whose fallback-queue member stays unpaused (Asterisk's ringinuse=no covers "on a call").
_AVAILABLE_TO_ASTERISK = frozenset({AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP})
RELAY_TIMEOUT = 5.0
#: The effects the leader broadcasts to the other daemons' desktops (screen pops, agents' states).
BROADCAST_EFFECTS = (fx.Offer, fx.AgentChanged)
#: The leader broadcasts its figures when they change, and at least this often (a daemon started
#: since, or one whose subscription dropped, catches up within it).
REPUBLISH_EVERY = 2.0
#: Every this often the broadcast figures carry every chart bucket the leader holds; in between,
#: only the current and the previous minute's (the only ones that change).
CHART_FULL_EVERY = 30.0


@dataclass(frozen=True)
class HandOff:
    """What the IVR decided, kept until the caller is seen in ``cc-wait``."""

    queue: str
    skills: tuple[tuple[str, int], ...] | None
    priority: int
    preferred_agent: str | None = None
    customer_id: str | None = None

    def to_json(self) -> str:
        return json.dumps({"queue": self.queue, "skills": [list(s) for s in self.skills] if self.skills else None,
                           "priority": self.priority, "preferred_agent": self.preferred_agent,
                           "customer_id": self.customer_id})

    @classmethod
    def from_json(cls, text: str) -> "HandOff":
        raw = json.loads(text)
        skills = tuple((str(s), int(level)) for s, level in raw["skills"]) if raw.get("skills") else None
        return cls(str(raw["queue"]), skills, int(raw["priority"]), raw.get("preferred_agent"),
                   raw.get("customer_id"))


class AcdService(AsyncService):
    name = "acd"

    def __init__(self, reactor: Any, *, tracker: Any, ami: Callable[[], Any], coordinator: Coordinator,
                 load_setup: Callable[[], Any], config_stamp: Callable[[], Any] | None = None,
                 last_agent: Callable[[str, int], Any] | None = None,
                 contact_figures: Callable[[float], Any] | None = None, callbacks: Any = None,
                 default_queue: str = cv.FALLBACK_QUEUE, tick_every: float = 1.0, beat_every: float = 5.0,
                 config_every: float = 2.0) -> None:
        self._reactor = reactor
        self._tracker = tracker
        self.tracker = tracker          # the call tracker the ACD follows (read-only use by call actions)
        self._ami = ami
        self.coordinator = coordinator
        self._load_setup = load_setup
        self._config_stamp = config_stamp
        self._last_agent = last_agent
        self._contact_figures = contact_figures
        #: Queue and agent figures (answered, abandoned, service level, time in state, ...).
        self.figures = AcdFigures(self.now)
        self._routed: set[str] = set()                # calls the distributor held, until they end
        #: Callback requests routed like calls and dialled agent first (``callbacks``: the CRM store).
        self.callbacks = CallbackDialer(self, callbacks)
        self._default_queue = default_queue
        self._tick_every, self._beat_every, self._config_every = tick_every, beat_every, config_every
        self.distributor = Distributor(AcdSetup(), reactor.seconds())
        self._listeners: list[Callable[[Any], None]] = []
        self._figure_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._last_figures: list[dict[str, Any]] | None = None
        #: Not leading: the leader's last broadcast figures, which the views answer from (None: own state).
        self._copy: LeadersCopy | None = None
        self._published: Any = None                  # the steady part of the figures last broadcast
        self._published_at = -1e18
        self._chart_full_at = -1e18
        self._timer: Any = None
        self._looper: LoopingCall | None = None
        self._ticking = False
        self._beat = 0
        self._last_beat = -1e18
        self._last_config_check = -1e18
        self._stamp: Any = None
        self._dirty = False
        self._offers: dict[str, str] = {}            # call id -> agent reserved for it
        self._enqueuing: set[str] = set()
        self._foreign: dict[str, str] = {}           # agent -> call the ACD did not route (direct, Asterisk queue)
        self._device_busy: dict[str, bool] = {}
        #: The agents' members of Asterisk's own queues, paused unless the agent is available.
        self.members = QueueMembers(ami, self._action, default_queue)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._leading = False                        # this service took over routing (restored the state)
        self._resynced = False                       # the tracker has seen Asterisk's calls since start
        self._releases: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self.actions_failed = 0

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        from callcenter.aio import as_deferred

        await as_deferred(self.coordinator.start(self._relayed, self._heard))
        setup = await as_deferred(self._fetch_setup_async())
        self.distributor = Distributor(setup or AcdSetup(), self.now())
        self._thresholds()
        await as_deferred(self._load_figures())
        self._looper = LoopingCall(self._tick)
        self._looper.clock = self._reactor
        self._looper.start(self._tick_every, now=True)

    async def stop(self) -> None:
        from callcenter.aio import as_deferred

        if self._looper is not None and self._looper.running:
            self._looper.stop()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.coordinator.leader:
            await as_deferred(self.coordinator.save_snapshot(self._saved_state(self.now())))
        for task in list(self._tasks):
            task.cancel()
        await as_deferred(self.coordinator.stop())

    def now(self) -> float:
        return float(self._reactor.seconds())

    def subscribe_figures(self, listener: Callable[[list[dict[str, Any]]], None]) -> None:
        """``listener(rows)`` with every queue's figures (``queue_rows``) when they changed, at most once a
        ``tick_every`` (the wallboard's stream).  On a daemon that does not lead: the leader's broadcast
        figures, as they arrive."""
        self._figure_listeners.append(listener)

    def _push_figures(self) -> None:
        rows = self.queue_rows()
        if self.coordinator.leader and self._copy is None and self.coordinator.broadcasts:
            self._publish_figures(rows)
        if not self._figure_listeners:
            return
        steady = _steady(rows, "longest_wait")
        if steady == self._last_figures and not any(row["waiting"] for row in rows):
            return
        self._last_figures = steady
        for listener in self._figure_listeners:
            try:
                listener(rows)
            except Exception:
                logger.exception("queue figures listener failed")

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        """``listener(effect)`` for every effect (agent states, offers, fallbacks) the distributor gives.
        On a daemon that does not lead: the leader's broadcast ``Offer`` and ``AgentChanged`` effects."""
        self._listeners.append(listener)

    def _tell(self, effect: Any) -> None:
        for listener in self._listeners:
            try:
                listener(effect)
            except Exception:
                logger.exception("ACD listener failed on %s", type(effect).__name__)

    # -- the leader's broadcasts -------------------------------------------------------------------------
    def _publish_figures(self, queues: list[dict[str, Any]]) -> None:
        """Leader: broadcast the figures if they changed (times in state and waits apart, which the other
        daemons age themselves, and occupancy, which moves with time), or if the last broadcast is
        ``REPUBLISH_EVERY`` old."""
        now = self.now()
        agents = self.agent_rows()
        steady = (_steady(queues, "longest_wait"), _steady(agents, "seconds", "occupancy"))
        full_chart = now - self._chart_full_at >= CHART_FULL_EVERY
        if steady == self._published and now - self._published_at < REPUBLISH_EVERY and not full_chart:
            return
        first_minute = None if full_chart else int(now // 60) - 1
        chart = {q.name: self.figures.book.window(q.name).buckets(now, first_minute)
                 for q in self.distributor.setup.queues}
        try:
            text = codec.encode_figures_broadcast(queues, agents, chart, full_chart)
        except (TypeError, ValueError):
            logger.exception("the ACD figures cannot be broadcast")
            return
        self.coordinator.publish(text)
        self._published, self._published_at = steady, now
        if full_chart:
            self._chart_full_at = now

    def _publish_effects(self, effects: Iterable[fx.Effect]) -> None:
        shown = [e for e in effects if isinstance(e, BROADCAST_EFFECTS)]
        if shown and self.coordinator.leader and self.coordinator.broadcasts:
            self.coordinator.publish(codec.encode_effects_broadcast(shown))

    def _heard(self, text: str) -> None:
        """A broadcast of the leader (another daemon): effects to the listeners, figures to the copy."""
        if self.coordinator.leader:
            return    # this daemon routes (the sender lost its lease): its own state is the truth
        try:
            message = codec.decode_broadcast(text)
        except ValueError as exc:
            logger.error("dropped a malformed ACD broadcast: %s: %.200r", exc, text)
            return
        if isinstance(message, codec.EffectsBroadcast):
            for effect in message.effects:
                with call_id_context(getattr(effect, "call_id", None)):
                    self._tell(effect)
            return
        if self._copy is None:
            self._copy = LeadersCopy(self.figures.book.window_hours)
        self._copy.take(message, self.now())
        self._push_figures()

    def _thresholds(self) -> None:
        self.figures.set_thresholds({q.name: q.service_level_seconds for q in self.distributor.setup.queues})

    async def _load_figures(self) -> None:
        """The day's queue figures from the contact log, so they survive a restart."""
        if self._contact_figures is None:
            return
        try:
            rows = await resolved(self._contact_figures(self.figures.day))
            count = self.figures.load(rows)
            logger.info("queue figures since local midnight rebuilt from %d contacts", count)
        except Exception as exc:
            logger.warning("queue figures start from zero: the contact log cannot be read: %s", exc)

    # -- periodic work --------------------------------------------------------
    def _tick(self) -> None:
        if self._ticking:
            return
        self._ticking = True
        self._spawn(self._tick_async()).add_done_callback(lambda _: setattr(self, "_ticking", False))

    async def _tick_async(self) -> None:
        was = self._leading
        leader = await self.coordinator.tick()
        self._leading = leader
        if leader and not was:
            await self._take_over()
        elif was and not leader:
            logger.warning("this daemon no longer routes calls (another daemon leads)")
            self._offers.clear()
            self._last_figures = None     # the new leader's figures are pushed as they arrive
        now = self.now()
        if self._config_stamp is not None and now - self._last_config_check >= self._config_every:
            self._last_config_check = now
            await self._check_config()   # every daemon: its IVR hand-offs read the queues' engines
        if not leader:
            if self._copy is not None:
                self._push_figures()      # the waits in the leader's copy grow older: a wallboard sees them
            return
        if self.figures.roll_over(now):
            logger.info("a new day: queue and agent figures start from zero")
        if now - self._last_beat >= self._beat_every:
            self._last_beat = now
            await self._send_beat()
        self.callbacks.closed_queues(now)
        self._push_figures()
        await self.callbacks.poll(now)
        if self._dirty:
            self._dirty = False
            await self.coordinator.save_snapshot(self._saved_state(now))

    def _saved_state(self, now: float) -> str:
        return json.dumps({"snapshot": codec.plain(self.distributor.snapshot(now)),
                           "figures": self.figures.book.dump()}, ensure_ascii=False)

    async def _send_beat(self) -> None:
        self._beat = (self._beat + 1) % 1_000_000
        try:
            await self._action("Setvar", [("Variable", cv.ACD_BEAT), ("Value", f"{self.coordinator.daemon_id}-{self._beat}")])
        except Exception as exc:
            logger.debug("ACD beat not sent: %s", exc)

    async def _check_config(self) -> None:
        try:
            stamp = await resolved(self._config_stamp() if self._config_stamp else None)
        except Exception as exc:
            logger.warning("could not check the ACD configuration for changes: %s", exc)
            return
        if stamp == self._stamp:
            return
        first = self._stamp is None
        self._stamp = stamp
        setup = await self._fetch_setup_async()
        if setup is None:
            return
        if first and setup == self.distributor.setup:
            return
        logger.info("ACD configuration %s: %d queues, %d agents", "loaded" if first else "changed",
                    len(setup.queues), len(setup.agents))
        if not self._leading:   # nothing to route here: keep the setup for hand-offs and a later takeover
            self.distributor = Distributor(setup, self.now())
            self._thresholds()
            return
        self.apply(inp.ConfigChanged(setup))
        self._thresholds()
        self._device_states()
        self.sync_members()

    async def _fetch_setup_async(self) -> AcdSetup | None:
        try:
            loaded = await resolved(self._load_setup())
            if loaded is None or isinstance(loaded, AcdSetup):
                return loaded or AcdSetup()
            self.callbacks.hours = hours_from_config(loaded)
            return setup_from_config(loaded)
        except Exception:
            logger.exception("could not read the ACD configuration; keeping the one loaded")
            return None

    async def _take_over(self) -> None:
        """Became the leader: restore the last snapshot, then catch up with what the tracker saw."""
        now = self.now()
        text = await self.coordinator.load_snapshot()
        if text:
            try:
                saved = json.loads(text)
                snapshot = codec.from_plain(Snapshot, saved["snapshot"])
                self.distributor = Distributor.restore(self.distributor.setup, snapshot, now)
                self.figures.book.restore(saved.get("figures") or {})
                logger.info("routing calls from the saved ACD state (%d agents, %d calls)",
                            len(snapshot.agents), len(snapshot.calls))
            except Exception:
                logger.exception("the saved ACD state cannot be read; starting from an empty one")
        else:
            logger.info("routing calls (no saved ACD state)")
        self._device_states()
        if self._resynced:  # else the AMI resync (CallsResynced) reconciles, once the tracker knows the calls
            self._reconcile(now)
            self.sync_members()
        self._reschedule()
        # answer from this distributor again, and broadcast everything at the next tick
        self._copy, self._last_figures, self._published = None, None, None
        self._published_at = self._chart_full_at = -1e18

    def _reconcile(self, now: float) -> None:
        """Bring a restored distributor in line with the calls Asterisk has now."""
        calls = self._tracker.calls
        for call in self.distributor.calls():
            record = calls.get(call.call_id)
            if record is None or record.state is ev.CallState.ENDED:
                self.apply(inp.Gone(call.call_id))
            elif call.agent is not None and record.state in (ev.CallState.CONNECTED, ev.CallState.WRAP_UP) \
                    and record.agent_id == call.agent:
                self.apply(inp.Answered(call.call_id, call.agent))
        for agent in self.distributor.agents():
            if agent.state is AgentState.ON_CALL and agent.call_id:
                record = calls.get(agent.call_id)
                if record is None or record.state in (ev.CallState.ENDED, ev.CallState.WRAP_UP) \
                        or record.agent_id != agent.agent:
                    self.apply(inp.Released(agent.call_id, agent.agent))
        for call_id, record in list(calls.items()):
            if record.state is ev.CallState.QUEUED and record.queue is None:
                self._enqueue_later(call_id)

    # -- inputs -----------------------------------------------------------------
    def apply(self, command: inp.Input) -> list[fx.Effect]:
        """Feed one input to the distributor and carry out its effects; raises ``AcdError``."""
        effects = self.distributor.handle(command, self.now())
        self._after(effects)
        return effects

    def _advance(self) -> None:
        self._timer = None
        if not self.coordinator.leader:
            return
        try:
            self._after(self.distributor.advance(self.now()))
        except Exception:
            logger.exception("ACD timers failed")
            self._reschedule()

    def _after(self, effects: Iterable[fx.Effect]) -> None:
        effects = list(effects)
        self._dirty = True
        self._release_finished_offers()   # before any new offer reserves the same agent or call
        for effect in effects:
            with call_id_context(getattr(effect, "call_id", None)):
                try:
                    self._carry_out(effect)
                except Exception:
                    logger.exception("ACD effect %s failed", type(effect).__name__)
            try:
                self.figures.on_effect(effect)
            except Exception:
                logger.exception("ACD figures failed on %s", type(effect).__name__)
            self._tell(effect)
        self._publish_effects(effects)
        self._reschedule()

    def _reschedule(self) -> None:
        deadline = self.distributor.next_deadline()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadline is not None and self.coordinator.leader:
            self._timer = self._reactor.callLater(max(0.0, deadline - self.now()), self._advance)

    async def _relayed(self, text: str) -> str:
        """A command or query relayed from another daemon (or this one): the JSON answer."""
        try:
            asked = json.loads(text)
            if isinstance(asked, dict) and set(asked) == {"query"}:
                return json.dumps(self._query(str(asked["query"])))
        except ValueError:
            pass
        try:
            command = codec.decode_input(text)
        except ValueError as exc:
            return json.dumps({"ok": False, "error": f"bad command: {exc}"})
        return json.dumps(self._answer(command))

    def _answer(self, command: inp.Input) -> dict[str, Any]:
        try:
            self.apply(command)
        except AcdError as exc:
            return {"ok": False, "error": str(exc)}
        agent = getattr(command, "agent", None)
        view = self.distributor.agent(agent) if agent else None
        return {"ok": True, "agent": codec.plain(view) if view else None}

    async def command(self, command: inp.Input) -> dict[str, Any]:
        """An agent command from a desktop, a supervisor or the CLI, wherever the leader is.

        Returns ``{"ok": True, "agent": <view>}`` or ``{"ok": False, "error": "..."}``.
        """
        if self.coordinator.leader:
            return self._answer(command)
        try:
            return json.loads(await self.coordinator.relay(codec.encode_input(command), RELAY_TIMEOUT))
        except NotLeader as exc:
            return {"ok": False, "error": str(exc)}

    # -- the IVR's hand-off --------------------------------------------------------
    def engine_of(self, queue: str) -> str | None:
        rules = self.distributor.setup.queue(queue)
        return rules.engine if rules is not None else None

    def prepare_handoff(self, call_id: str, queue: str, skills: tuple[str, ...], priority: int,
                        customer_id: str | None) -> "Deferred[bool]":
        """Keep the IVR's hand-off for the ACD; False when ``queue`` is not routed by the daemon.

        Called from the IVR (Twisted code): the work runs as an asyncio task (Redis, the CRM)."""
        from callcenter.aio import as_deferred

        return as_deferred(self._prepare_handoff(call_id, queue, skills, priority, customer_id))

    async def _prepare_handoff(self, call_id: str, queue: str, skills: tuple[str, ...], priority: int,
                               customer_id: str | None) -> bool:
        rules = self.distributor.setup.queue(queue)
        if rules is None or rules.engine != "daemon":
            return False
        required = dict(rules.skills)
        for skill in skills:
            required.setdefault(skill, 1)
        preferred = None
        if customer_id and rules.sticky_days > 0 and self._last_agent is not None:
            try:
                preferred = await resolved(self._last_agent(customer_id, rules.sticky_days))
            except Exception as exc:
                logger.warning("call %s: last agent of customer %s not known: %s", call_id, customer_id, exc)
        handoff = HandOff(queue, tuple(sorted(required.items())), priority, preferred, customer_id)
        await self.coordinator.put_handoff(call_id, handoff.to_json())
        return True

    def _enqueue_later(self, call_id: str) -> None:
        if call_id in self._enqueuing or any(c.call_id == call_id for c in self.distributor.calls()):
            return
        if any(a.call_id == call_id for a in self.distributor.agents()):
            return
        self._enqueuing.add(call_id)
        task = self._spawn(self._enqueue(call_id))
        task.add_done_callback(lambda _: self._enqueuing.discard(call_id))

    async def _enqueue(self, call_id: str) -> None:
        text = await self.coordinator.get_handoff(call_id)
        handoff = None
        if text:
            try:
                handoff = HandOff.from_json(text)
            except (ValueError, KeyError, TypeError):
                logger.error("call %s: unreadable hand-off %.200r; queued in %s", call_id, text, self._default_queue)
        record = self._tracker.get(call_id)
        if record is None or record.state is not ev.CallState.QUEUED or not self.coordinator.leader:
            return  # gone, or already elsewhere, while the hand-off was read
        if handoff is None:
            logger.warning("call %s: waiting in %s without a hand-off; queued in %s", call_id, cv.CONTEXT_WAIT,
                           self._default_queue)
            handoff = HandOff(self._default_queue, None, 0)
        queue = handoff.queue if self.distributor.setup.queue(handoff.queue) else self._default_queue
        if self.distributor.setup.queue(queue) is None:
            logger.error("call %s: no ACD queue %r is configured; caller sent to the fallback queue", call_id, queue)
            await self._redirect(call_id, cv.CONTEXT_FALLBACK, "s")
            return
        with call_id_context(call_id):
            try:
                self.apply(inp.Enqueue(call_id, queue, handoff.skills if queue == handoff.queue else None,
                                       handoff.priority, preferred_agent=handoff.preferred_agent))
                self._routed.add(call_id)
            except AcdError as exc:
                logger.error("call %s: not queued: %s", call_id, exc)

    # -- call events (the tracker) ---------------------------------------------------
    def on_call_event(self, event: Any) -> None:
        """A typed call event from the tracker (``CallsService.subscribe``)."""
        if isinstance(event, ev.AgentMemberStatus):
            self._member_status(event)
        if self.coordinator.leader:
            if self.callbacks.on_call_event(event):
                return
            self.figures.on_call_event(event, self._routed.__contains__, self._queue_of)
        if isinstance(event, ev.CallEnded):
            self._routed.discard(event.call_id)
        if not self.coordinator.leader:
            if isinstance(event, ev.CallsResynced):
                self._resynced = True
            return
        for command in self._translate(event):
            try:
                self.apply(command)
            except AcdError as exc:
                logger.warning("call %s: %s ignored: %s", getattr(event, "call_id", "-"), type(command).__name__, exc)

    def _queue_of(self, call_id: str) -> str | None:
        record = self._tracker.get(call_id)
        return record.queue if record is not None else None

    def on_watch_event(self, event: Any) -> None:
        """Originate outcomes and the dialplan's variables for the daemon (``OriginateWatch``)."""
        if not self.coordinator.leader:
            return
        if isinstance(event, OriginateOutcome):
            self.callbacks.on_originate(event)
        elif isinstance(event, VariableSet):
            self.callbacks.on_variable(event)

    def _offered(self, call_id: str) -> CallView | None:
        return next((c for c in self.distributor.calls() if c.call_id == call_id), None)

    def _translate(self, event: Any) -> list[inp.Input]:
        if isinstance(event, ev.CallQueued):
            if event.queue is None:
                self._enqueue_later(event.call_id)
            return []
        if isinstance(event, ev.OfferFailed):
            call = self._offered(event.call_id)
            if call is not None and call.agent and call.agent == event.agent_id and event.reason != "cancel":
                return [inp.Missed(event.call_id, call.agent, event.reason)]  # type: ignore[arg-type]
            return []
        if isinstance(event, ev.CallConnected):
            call = self._offered(event.call_id)
            if call is not None and call.agent and call.agent == event.agent_id:
                self.figures.routed_answered(call.queue, self.now() - call.enqueued_at)
                return [inp.Answered(event.call_id, call.agent)]
            agent = self.distributor.agent(event.agent_id) if event.agent_id else None
            if agent is not None and agent.call_id != event.call_id and agent.state is not AgentState.LOGGED_OUT:
                self._foreign[agent.agent] = event.call_id
                return [inp.DeviceBusy(agent.agent, True)]
            return []
        if isinstance(event, ev.CallCompleted):
            return self._released(event.call_id, event.agent_id, event.talk_seconds)
        if isinstance(event, ev.CallEnded):
            out: list[inp.Input] = []
            for agent in self.distributor.agents():
                if agent.call_id == event.call_id and agent.state is AgentState.ON_CALL:
                    out += self._released(event.call_id, agent.agent)
            for agent_id, call_id in list(self._foreign.items()):
                if call_id == event.call_id:
                    del self._foreign[agent_id]
                    out.append(inp.DeviceBusy(agent_id, self._device_busy.get(agent_id, False)))
            waiting = self._offered(event.call_id)
            if waiting is not None:
                self.figures.routed_abandoned(waiting.queue, self.now() - waiting.enqueued_at)
                out.append(inp.Gone(event.call_id))
            self._spawn(self.coordinator.drop_handoff(event.call_id))
            return out
        if isinstance(event, ev.CallAbandoned):
            waiting = self._offered(event.call_id)
            if waiting is None:
                return []
            self.figures.routed_abandoned(waiting.queue, self.now() - waiting.enqueued_at)
            return [inp.Gone(event.call_id)]
        if isinstance(event, ev.CallTransferred) and event.from_agent_id:
            return self._released(event.call_id, event.from_agent_id)
        if isinstance(event, ev.AsteriskRestarted):
            dropped = set(event.dropped_call_ids)
            out = [inp.Released(a.call_id, a.agent) for a in self.distributor.agents()
                   if a.call_id in dropped and a.state is AgentState.ON_CALL]
            return out + [inp.Gone(c.call_id) for c in self.distributor.calls() if c.call_id in dropped]
        if isinstance(event, ev.CallsResynced):
            self._resynced = True
            # after an AMI (re)connect: the members are known again; catch up with what was missed
            self._reconcile(self.now())
            self.sync_members()
        return []

    def _released(self, call_id: str, agent_id: str | None, talk: float | None = None) -> list[inp.Input]:
        if not agent_id:
            return []
        agent = self.distributor.agent(agent_id)
        if agent is not None and agent.call_id == call_id and agent.state is AgentState.ON_CALL:
            record = self._tracker.get(call_id)
            if talk is None and record is not None and record.answered_at is not None:
                talk = self.now() - record.answered_at
            hold = sum(((h.ended_at or self.now()) - h.started_at) for h in record.holds) if record else 0.0
            self.figures.conversation_ended(agent_id, agent.call_queue or "", talk or 0.0, hold)
            return [inp.Released(call_id, agent_id)]
        if self._foreign.get(agent_id) == call_id:
            del self._foreign[agent_id]
            return [inp.DeviceBusy(agent_id, self._device_busy.get(agent_id, False))]
        return []

    def _device_states(self) -> None:
        """Tell the distributor what Asterisk said of each configured agent's phone (a state seen before the
        agent was configured, or before this daemon led, counts too)."""
        for agent, busy in list(self._device_busy.items()):
            view = self.distributor.agent(agent)
            if view is not None and view.device_busy != busy and agent not in self._foreign:
                try:
                    self.apply(inp.DeviceBusy(agent, busy))
                except AcdError as exc:
                    logger.debug("device state of %s ignored: %s", agent, exc)

    def _member_status(self, event: ev.AgentMemberStatus) -> None:
        if not event.agent_id:
            return
        self.members.note(event.agent_id, event.queue, event.interface, event.paused)
        busy = event.status in _DEVICE_BUSY
        if self._device_busy.get(event.agent_id) == busy:
            return
        self._device_busy[event.agent_id] = busy
        if not self.coordinator.leader or self.distributor.agent(event.agent_id) is None:
            return
        if event.agent_id in self._foreign:
            return  # stays busy until that call ends
        try:
            self.apply(inp.DeviceBusy(event.agent_id, busy))
        except AcdError as exc:
            logger.debug("device state of %s ignored: %s", event.agent_id, exc)

    # -- effects -> Asterisk -----------------------------------------------------------
    def _carry_out(self, effect: fx.Effect) -> None:
        if isinstance(effect, fx.Offer):
            logger.info("call %s: offered to agent %s (%s) from queue %s after %.1f s", effect.call_id,
                        effect.agent, effect.interface, effect.queue, effect.wait_seconds)
            self._offers[effect.call_id] = effect.agent
            self._spawn(self._ring(effect))
        elif isinstance(effect, fx.AgentChanged):
            logger.info("agent %s: %s%s -> %s%s after %.1f s", effect.agent, effect.previous.value,
                        f" ({effect.previous_reason})" if effect.previous_reason else "", effect.state.value,
                        f" ({effect.reason})" if effect.reason else "", effect.seconds_in_previous)
            self._sync_agent(effect.agent)
        elif isinstance(effect, fx.Fallback):
            logger.warning("call %s: leaves queue %s (%s) for %s after %.1f s", effect.call_id, effect.queue,
                           effect.reason, effect.action, effect.wait_seconds)
            self._spawn(self._fallback(effect))
        elif isinstance(effect, fx.Overflowed):
            logger.info("call %s: overflows from %s to %s after %.1f s", effect.call_id, effect.from_queue,
                        effect.to_queue, effect.wait_seconds)
        elif isinstance(effect, fx.Relaxed):
            logger.info("call %s: skills relaxed in %s after %.1f s", effect.call_id, effect.queue, effect.wait_seconds)

    def _release_finished_offers(self) -> None:
        for call_id, agent in list(self._offers.items()):
            view = self.distributor.agent(agent)
            if view is None or view.state is not AgentState.RESERVED or view.call_id != call_id:
                del self._offers[call_id]
                release = self._spawn(self.coordinator.release(agent, call_id))
                self._releases[("agent", agent)] = self._releases[("call", call_id)] = release

    async def _ring(self, offer: fx.Offer) -> None:
        ttl_ms = int((offer.ring_seconds + 30) * 1000)
        for key in (("agent", offer.agent), ("call", offer.call_id)):
            pending = self._releases.pop(key, None)
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
        if not await self.coordinator.reserve(offer.agent, offer.call_id, ttl_ms):
            logger.error("call %s: agent %s or the call is reserved elsewhere; not rung", offer.call_id, offer.agent)
            self._feed(inp.Missed(offer.call_id, offer.agent, "unavailable"))
            return
        if self._offers.get(offer.call_id) != offer.agent:
            # the offer ended while the reservation was made (the caller hung up): nobody else releases it
            await self.coordinator.release(offer.agent, offer.call_id)
            return
        if offer.kind == "callback":
            await self.callbacks.dial(offer)
            return
        record = self._tracker.get(offer.call_id)
        if record is None or record.state is ev.CallState.ENDED:
            self._feed(inp.Gone(offer.call_id))
            return
        channel = record.caller_channel
        try:
            await self._action("Setvar", [("Channel", channel), ("Variable", cv.CC_AGENT_IFACE),
                                          ("Value", offer.interface)])
            await self._action("Setvar", [("Channel", channel), ("Variable", cv.CC_RING_SECS),
                                          ("Value", str(max(1, int(round(offer.ring_seconds)))))])
            await self._action("Redirect", [("Channel", channel), ("Context", cv.CONTEXT_CONNECT),
                                            ("Exten", "s"), ("Priority", "1")])
        except Exception as exc:
            self.actions_failed += 1
            logger.error("call %s: could not ring agent %s: %s", offer.call_id, offer.agent, exc)
            self._feed(inp.Gone(offer.call_id))

    async def _fallback(self, effect: fx.Fallback) -> None:
        if effect.kind == "callback":
            return  # nobody to send anywhere: the claim runs out and the callback is due again later
        await self._redirect(effect.call_id, cv.CONTEXT_ACD_EXIT, effect.action)
        await self.coordinator.drop_handoff(effect.call_id)

    async def _redirect(self, call_id: str, context: str, exten: str) -> None:
        record = self._tracker.get(call_id)
        if record is None:
            return
        try:
            await self._action("Redirect", [("Channel", record.caller_channel), ("Context", context),
                                            ("Exten", exten), ("Priority", "1")])
        except Exception as exc:
            self.actions_failed += 1
            logger.error("call %s: could not send the caller to %s,%s: %s (the dialplan's own timeout applies)",
                         call_id, context, exten, exc)

    def _feed(self, command: inp.Input) -> None:
        if not self.coordinator.leader:
            return
        with call_id_context(getattr(command, "call_id", None)):
            try:
                self.apply(command)
            except AcdError as exc:
                logger.warning("%s ignored: %s", type(command).__name__, exc)

    async def _action(self, name: str, headers: list[tuple[str, str]]) -> Any:
        client = self._ami()
        if client is None:
            raise ConnectionError("the AMI link is not running")
        return await client.action(name, headers)

    # -- Asterisk's queues follow each agent's readiness ---------------------------------------
    def sync_members(self) -> None:
        for agent in self.distributor.setup.agents:
            self._sync_agent(agent.agent)

    def _sync_agent(self, agent: str) -> None:
        if not self.coordinator.leader:
            return
        view = self.distributor.agent(agent)
        profile = next((a for a in self.distributor.setup.agents if a.agent == agent), None)
        interface = (view.interface if view else None) or (profile.interface if profile else None)
        if not interface:
            return
        paused = view is None or view.state not in _AVAILABLE_TO_ASTERISK
        reason = (view.reason if view and view.reason else (view.state.value if view else "logged-out"))
        self._spawn(self.members.sync(agent, interface, paused, reason, self.distributor.setup))


    # -- views -----------------------------------------------------------------------------
    def queue_figures(self, queue: str) -> dict[str, Any]:
        """The live figures of ``queue`` (waiting, longest wait, service level, ASA, AHT, abandons, agents);
        on a daemon that does not lead, from the leader's last broadcast."""
        if self._copy is not None:
            row = next((r for r in self._copy.queue_rows(self.now()) if r["queue"] == queue), None)
            if row is not None:
                return row
        waiting = [c.enqueued_at for c in self.distributor.waiting(queue)]
        states = {a.agent: a.state for a in self.distributor.agents() if queue in a.queues}
        figures = codec.plain(self.figures.queue_figures(queue, waiting, states))
        figures["agents_by_state"] = {AgentState(k).value: v for k, v in figures["agents_by_state"].items()}
        return figures

    def agent_figures(self, agent: str) -> dict[str, Any]:
        figures = codec.plain(self.figures.agent_figures(agent))
        figures["state"] = AgentState(figures["state"]).value if figures["state"] else None
        figures["seconds_by_state"] = {AgentState(k).value: v for k, v in figures["seconds_by_state"].items()}
        return figures

    def agent_rows(self) -> list[dict[str, Any]]:
        """Every configured or logged-in agent: state, reason, time in state, device, queues, figures; on a
        daemon that does not lead, the leader's last broadcast rows (time in state aged since)."""
        now = self.now()
        if self._copy is not None:
            return self._copy.agent_rows(now)
        views = {a.agent: a for a in self.distributor.agents()}
        rows = []
        names = [p.agent for p in self.distributor.setup.agents] + [a for a in views if
                                                                     a not in {p.agent for p in self.distributor.setup.agents}]
        profiles = {p.agent: p for p in self.distributor.setup.agents}
        for agent in names:
            view = views.get(agent)
            profile = profiles.get(agent)
            row = {"agent": agent, "state": "logged-out", "reason": None, "seconds": None,
                   "interface": profile.interface if profile else None, "queues": [], "call_id": None,
                   "calls_handled": 0, "pending": None}
            if view is not None:
                row.update(state=view.state.value, reason=view.reason, seconds=round(now - view.since, 1),
                           interface=view.interface, queues=list(view.queues), call_id=view.call_id,
                           calls_handled=view.calls_handled, pending=view.pending.value if view.pending else None)
            figures = self.figures.agent_figures(agent)
            row["occupancy"] = figures.occupancy
            row["aht"] = figures.aht
            rows.append(row)
        return rows

    def queue_rows(self) -> list[dict[str, Any]]:
        """``queue_figures`` of every configured queue; on a daemon that does not lead, the leader's last
        broadcast rows (longest waits aged since)."""
        if self._copy is not None:
            return self._copy.queue_rows(self.now())
        return [self.queue_figures(q.name) for q in self.distributor.setup.queues]

    def chart(self, queues: Iterable[str] | None = None, since: float | None = None) -> list[list[Any]]:
        """``[minute start, waiting, service level]`` per minute of the last hours for ``queues`` together
        (None: every configured queue), from ``since`` on: the wallboard's chart.  On a daemon that does not
        lead, from the leader's broadcast buckets (every minute once a full chart arrived, within
        ``CHART_FULL_EVERY`` of the daemon's start; the latest minutes before)."""
        names = [q.name for q in self.distributor.setup.queues] if queues is None else list(queues)
        copy = self._copy
        windows: list[Any] = ([copy.held(name) for name in names] if copy is not None
                              else [self.figures.book.window(name) for name in names])
        points = combined_points(windows, self.now(), since)
        return [[at, waiting, None if level is None else round(level, 4)] for at, waiting, level in points]

    async def query(self, name: str) -> dict[str, Any]:
        """``agents`` or ``queues``, answered by the routing daemon (relayed when another daemon leads)."""
        if self.coordinator.leader:
            return self._query(name)
        try:
            return json.loads(await self.coordinator.relay(json.dumps({"query": name}), RELAY_TIMEOUT))
        except NotLeader as exc:
            return {"ok": False, "error": str(exc)}

    def _query(self, name: str) -> dict[str, Any]:
        if name == "agents":
            return {"ok": True, "agents": self.agent_rows()}
        if name == "queues":
            return {"ok": True, "queues": self.queue_rows()}
        return {"ok": False, "error": f"unknown query {name!r}"}

    def agents(self) -> tuple[AgentView, ...]:
        return self.distributor.agents()

    def calls(self) -> tuple[CallView, ...]:
        return self.distributor.calls()

    def _spawn(self, aw: Any) -> "asyncio.Future[Any]":
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)

        def done(t: "asyncio.Future[Any]") -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("ACD task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task
