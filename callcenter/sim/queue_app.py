"""Queue(): a caller waits in MOH while members are rung, then is bridged with one.

Sequences reproduced (ami_full_call.txt, more/ami_acd_f_fallback_queue.txt,
ami_actions.event_stream_during.txt):

* join: VarSet ANSWEREDTIME..QUEUEWAIT_MS (empty), QueueCallerJoin,
  MusicOnHoldStart;
* each ring: member Local pair, AgentCalled, DialBegin, then DialState
  RINGING when the phone rings; after ``timeout`` (15 s) without answer:
  AgentRingNoAnswer (RingTime in ms), DialEnd NOANSWER, DialEnd CANCEL, the
  legs hang up with Cause 0; ``retry`` (2 s) later the next member is rung
  (a caller with nobody free to ring looks again every ``retry`` seconds);
* answer: DialEnd ANSWER, MusicOnHoldStop, MEMBER*/QE*/QUEUE* variables on
  the caller and the member leg, QueueCallerLeave, AgentConnect (HoldTime and
  RingTime in seconds), a basic bridge; when the agent hangs up:
  AgentComplete (Reason agent), the QUEUE* variables twice, and Queue() does
  not return: the caller is hung up;
* caller redirected out of the bridge: no AgentComplete (it comes, Reason
  caller, only if the caller hangs up before it is bridged again); Queue()
  returns; the agent leg is hung up, or runs its own Redirect target when a
  dual Redirect (hold) moved it too.  The agent leg redirected alone runs its
  target and Queue() ends as when the agent hangs up, but AgentComplete
  (Reason caller) comes with the caller's hangup;
* caller gone (hangup, or Redirect = QueueCallerAbandon, not a transfer):
  DialEnd CANCEL twice per ringing leg, ABANDONED=TRUE, QueueCallerAbandon,
  QueueCallerLeave;
* the 5th argument (timeout, as the shipped [cc-route]/[cc-fallback] give
  it): checked between ring cycles as app_queue does (a ring lasts at most
  until then); once passed, MusicOnHoldStop, the queue variables,
  QueueCallerLeave, QUEUESTATUS=TIMEOUT and the dialplan goes on.  (Not
  recorded in the lab; from app_queue.c queue_exec.)
"""

from __future__ import annotations

from callcenter.sim import events as ev
from callcenter.sim.channels import Channel
from callcenter.sim.outgoing import Outgoing, queue_leg
from callcenter.sim.pbx import CONTINUE, HANGUP, Engine
from callcenter.sim.queues import Entry, Member, Queue, Queues
from callcenter.sim.tasks import HangupSignal, Interrupt, RedirectSignal, Sleep

JOIN_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


class QueueCall(Outgoing):
    """One caller's stay in one queue (queue_exec/try_calling/wait_for_answer)."""

    def __init__(self, engine: Engine, queues: Queues, queue: Queue, caller: Channel, entry: Entry,
                 expire: float | None = None) -> None:
        super().__init__(engine, caller.task)
        self.expire = expire
        self.queues = queues
        self.queue = queue
        self.caller = caller
        self.entry = entry
        self.ringing: dict[str, tuple[Member, float]] = {}  # leg name -> (member, rung at)
        self.legs: dict[str, Channel] = {}
        self._calling: Member | None = None

    # --- leg callbacks -------------------------------------------------------

    def agent_called(self, leg: Channel) -> None:
        member = self._calling
        self.engine.emit(ev.agent_event("AgentCalled", self.caller, leg, self.queue.name,
                                        member.interface, member.name))

    def leg_event(self, kind: str, leg: Channel) -> None:
        if kind == "ringing":  # the ;1 snapshot now shows the caller's exten and connected line
            leg.exten = self.caller.exten
            leg.conn_num, leg.conn_name = self.caller.cid_num, self.caller.cid_name
            self.engine.newexten(leg)
            self.engine.emit(ev.newconnectedline(leg))
        super().leg_event(kind, leg)

    # --- the caller's thread ---------------------------------------------------

    def run(self):
        while True:
            if self._expired():
                return self._timeout()
            self._ring()
            if not self.ringing:
                yield Sleep(self.queue.retry)
                continue
            deadline = self.engine.now() + self.queue.timeout
            answered = yield from self._wait_answer(deadline if self.expire is None else min(deadline, self.expire))
            if answered is not None:
                return (yield from self._connect(*answered))
            if self._expired():
                return self._timeout()
            yield Sleep(self.queue.retry)

    def _expired(self) -> bool:
        return self.expire is not None and self.engine.now() >= self.expire

    def _timeout(self) -> int:
        """queue_exec's exit with QUEUE_TIMEOUT: the caller leaves the queue and the dialplan goes on."""
        engine, caller = self.engine, self.caller
        engine.emit(ev.moh_stop(caller))
        self.queues.set_queue_variables(self.queue, caller)
        position = self.queues.leave(self.queue, self.entry)
        self.entry.handled = True
        engine.set_var(caller, "QUEUEPOSITION", str(position))
        engine.set_var(caller, "QUEUESTATUS", "TIMEOUT")
        return CONTINUE

    def _ring(self) -> None:
        tried = {member.interface for member, _ in self.ringing.values()}
        for member in self.queues.pick(self.queue, self.entry, tried):
            self._calling = member
            leg = queue_leg(self.engine, self.caller, member.interface, self)
            if leg is not None:
                self.ringing[leg.name] = (member, self.engine.now())
                self.legs[leg.name] = leg
            if self.queue.strategy in ("rrmemory", "rrordered", "roundrobin"):
                self.queues.advance_rr(self.queue, member)

    def _wait_answer(self, deadline: float):
        while self.ringing:
            item = yield from self.next_event(deadline)
            if item is None:
                self._no_answer()
                return None
            kind, leg = item
            if leg.name not in self.ringing:
                continue
            if kind == "ringing":
                self.engine.emit(ev.dial_state(self.caller, leg, "RINGING"))
            elif kind == "answer":
                return leg, self.ringing.pop(leg.name)
            elif kind in ("busy", "hangup"):
                member, rung_at = self.ringing.pop(leg.name)
                if kind == "busy":
                    self.engine.emit(ev.dial_end(self.caller, leg, "BUSY"))
                self._rna(leg, member, rung_at)
                self.engine.hangup(leg, 0)
                if self.queue.strategy != "ringall":
                    self._ring()
        return None

    def _rna(self, leg: Channel, member: Member, rung_at: float) -> None:
        ring_ms = int(round((self.engine.now() - rung_at) * 1000))
        self.engine.emit(ev.agent_event("AgentRingNoAnswer", self.caller, leg, self.queue.name,
                                        member.interface, member.name, ("RingTime", str(ring_ms))))

    def _no_answer(self) -> None:
        for name, (member, rung_at) in list(self.ringing.items()):
            leg = self.legs[name]
            self._rna(leg, member, rung_at)
            self.engine.emit(ev.dial_end(self.caller, leg, "NOANSWER"))
        self._hangup_ringing()

    def _hangup_ringing(self) -> None:
        """hangupcalls(): DialEnd CANCEL for every leg still up, then hang it up (Cause 0)."""
        for name in list(self.ringing):
            leg = self.legs[name]
            self.engine.emit(ev.dial_end(self.caller, leg, "CANCEL"))
            self.engine.hangup(leg, 0)
        self.ringing.clear()

    # --- connected ---------------------------------------------------------

    def _connect(self, leg: Channel, answered: tuple[Member, float]):
        engine, caller, queue, entry = self.engine, self.caller, self.queue, self.entry
        member, rung_at = answered
        self._hangup_ringing()
        engine.emit(ev.dial_end(caller, leg, "ANSWER"))
        engine.emit(ev.moh_stop(caller))
        hold = int(engine.wall()) - int(entry.wall_start)
        ring = int(round(engine.now() - rung_at))
        queue.recalc_holdtime(hold)
        in_sl = hold <= queue.servicelevel
        member_vars = [("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                       ("MEMBERCALLS", str(member.calls)), ("MEMBERLASTCALL", str(member.last_call)),
                       ("MEMBERPENALTY", str(member.penalty)), ("MEMBERDYNAMIC", "1"), ("MEMBERREALTIME", "0")]
        entry_vars = [("QEHOLDTIME", str(hold)), ("QEORIGINALPOS", str(entry.original_position))]
        for group in (member_vars, entry_vars, queue.variables()):
            for chan in (caller, leg):
                for name, value in group:
                    engine.set_var(chan, name, value)
        entry.handled = True
        position = self.queues.leave(queue, entry)
        engine.set_var(caller, "QUEUEPOSITION", str(position))
        engine.set_var(caller, "QUEUEWAIT", str(hold))
        engine.set_var(caller, "QUEUEWAIT_MS", str(hold * 1000))
        engine.emit(ev.agent_event("AgentConnect", caller, leg, queue.name, member.interface, member.name,
                                   ("HoldTime", str(hold)), ("RingTime", str(ring))))
        member.in_call = True
        talk_start = int(engine.wall())
        answered_at = engine.now()
        bridge = engine.bridge(leg, caller)
        reason, signal = "agent", None
        try:
            while True:
                item = yield from self.next_event(None)
                if item is not None and item[0] in ("hangup", "redirect") and item[1] is leg:
                    break
            if item[0] == "redirect":
                return self._leg_redirected(leg, member, bridge, hold, talk_start, answered_at, in_sl)
        except HangupSignal as exc:
            reason, signal = "caller", exc
        except RedirectSignal as exc:
            self._redirected(leg, member, bridge, exc, hold, talk_start, answered_at, in_sl)
            raise
        talk = int(engine.wall()) - talk_start
        engine.emit(ev.agent_event("AgentComplete", caller, leg, queue.name, member.interface, member.name,
                                   ("HoldTime", str(hold)), ("TalkTime", str(talk)), ("Reason", reason)))
        engine.clear_bridgepeers(bridge)
        if reason == "agent" and not caller.hangupcause:  # the caller goes down with its bridge peer's cause
            caller.hangupcause = leg.hangupcause or 16
        first, second = (leg, caller) if reason == "agent" else (caller, leg)
        engine.leave(first)
        if first is leg:
            engine.hangup(leg, 16)
        engine.leave(second)
        if second is leg:
            engine.hangup(leg, 16)
        engine.emit(ev.bridge_destroy(bridge))
        member.in_call = False
        member.calls += 1
        member.last_call = int(engine.wall())
        queue.completed += 1
        queue.completed_in_sl += 1 if in_sl else 0
        queue.add_talktime(talk)
        self.queues.set_queue_variables(queue, caller)
        engine.set_var(caller, "ANSWEREDTIME", str(int(engine.now() - answered_at)))
        engine.set_var(caller, "ANSWEREDTIME_MS", str(int((engine.now() - answered_at) * 1000)))
        _set_dialed(engine, caller)
        self.queues.set_queue_variables(queue, caller)
        if signal is not None:
            raise signal
        return HANGUP

    def _redirected(self, leg: Channel, member: Member, bridge, signal: RedirectSignal, hold: int,
                    talk_start: int, answered_at: float, in_sl: bool) -> None:
        """The caller was redirected out of the bridge (a hold, a blind transfer).

        As Asterisk 22.10.1 did (tests/test_real_asterisk_hold.py): no
        AgentComplete now; Queue() returns with its time and queue variables;
        the bridge then lets the agent leg go, to its own Redirect target
        (dual Redirect) or hung up.  AgentComplete (Reason caller) only comes
        if the caller hangs up before anything bridges it again.
        """
        engine, caller, queue = self.engine, self.caller, self.queue
        engine.clear_bridgepeers(bridge)
        engine.early_goto(caller, signal.target)
        engine.leave(caller)
        _set_dialed(engine, caller)
        engine.set_var(caller, "ANSWEREDTIME", str(int(engine.now() - answered_at)))
        engine.set_var(caller, "ANSWEREDTIME_MS", str(int((engine.now() - answered_at) * 1000)))
        self.queues.set_queue_variables(queue, caller)
        member.in_call = False
        engine.scheduler.soon(_release, engine, leg, bridge)
        self._complete_when_caller_goes(leg, member, hold, talk_start, in_sl)

    def _leg_redirected(self, leg: Channel, member: Member, bridge, hold: int, talk_start: int,
                        answered_at: float, in_sl: bool) -> int:
        """Only the agent leg was redirected: it runs its target; Queue() ends and the caller is hung up,
        AgentComplete (Reason caller) coming with that hangup (Asterisk 22.10.1)."""
        engine, caller, queue = self.engine, self.caller, self.queue
        engine.clear_bridgepeers(bridge)
        engine.release_leg(leg)
        engine.leave(caller)
        engine.emit(ev.bridge_destroy(bridge))
        member.in_call = False
        self.queues.set_queue_variables(queue, caller)
        engine.set_var(caller, "ANSWEREDTIME", str(int(engine.now() - answered_at)))
        engine.set_var(caller, "ANSWEREDTIME_MS", str(int((engine.now() - answered_at) * 1000)))
        _set_dialed(engine, caller)
        self.queues.set_queue_variables(queue, caller)
        self._complete_when_caller_goes(leg, member, hold, talk_start, in_sl)
        return HANGUP

    def _complete_when_caller_goes(self, leg: Channel, member: Member, hold: int, talk_start: int,
                                   in_sl: bool) -> None:
        engine, caller, queue = self.engine, self.caller, self.queue

        def complete() -> None:
            talk = int(engine.wall()) - talk_start
            engine.emit(ev.agent_event("AgentComplete", caller, leg, queue.name, member.interface, member.name,
                                       ("HoldTime", str(hold)), ("TalkTime", str(talk)), ("Reason", "caller")))
            member.calls += 1
            member.last_call = int(engine.wall())
            queue.completed += 1
            queue.completed_in_sl += 1 if in_sl else 0
            queue.add_talktime(talk)

        caller.on_hangup_request = complete

    # --- the caller left ------------------------------------------------------

    def abandon(self, signal: Interrupt) -> None:
        engine, caller, queue, entry = self.engine, self.caller, self.queue, self.entry
        engine.emit(ev.moh_stop(caller))
        for name in self.ringing:
            engine.emit(ev.dial_end(caller, self.legs[name], "CANCEL"))
        self._hangup_ringing()
        waited = int(engine.wall()) - int(entry.wall_start)
        engine.set_var(caller, "QUEUEWAIT", str(waited))
        engine.set_var(caller, "QUEUEWAIT_MS", str(waited * 1000))
        _set_dialed(engine, caller)
        engine.set_var(caller, "ANSWEREDTIME", "0")
        engine.set_var(caller, "ANSWEREDTIME_MS", "0")
        if isinstance(signal, RedirectSignal):
            engine.early_goto(caller, signal.target)
        engine.set_var(caller, "ABANDONED", "TRUE")
        self.queues.set_queue_variables(queue, caller)
        engine.emit(ev.queue_caller("QueueCallerAbandon", caller, queue.name,
                                    ("Position", str(queue.position(entry))),
                                    ("OriginalPosition", str(entry.original_position)),
                                    ("HoldTime", str(waited))))
        queue.abandoned += 1
        queue.abandoned_in_sl += 1 if waited <= queue.servicelevel else 0
        self.queues.set_queue_variables(queue, caller)
        position = self.queues.leave(queue, entry)
        engine.set_var(caller, "QUEUEPOSITION", str(position))


def _release(engine: Engine, leg: Channel, bridge) -> None:
    """The bridge thread lets the agent leg the caller left go: to its Redirect target, else hung up."""
    engine.release_leg(leg)
    engine.emit(ev.bridge_destroy(bridge))


def _set_dialed(engine: Engine, caller: Channel) -> None:
    elapsed = engine.now() - caller.created
    engine.set_var(caller, "DIALEDTIME", str(int(elapsed)))
    engine.set_var(caller, "DIALEDTIME_MS", str(int(elapsed * 1000)))


def app_queue(engine: Engine, chan: Channel, data: str):
    """Queue(name[,options[,URL[,announceoverride[,timeout]]]])."""
    queues: Queues = engine.queues
    args = data.split(",")
    queue = queues.get(args[0].strip())
    timeout = args[4].strip() if len(args) > 4 else ""
    expire = engine.now() + int(timeout) if timeout.isdigit() and int(timeout) > 0 else None
    for name in JOIN_VARS:
        engine.set_var(chan, name, "")
    if queue is None:
        engine.set_var(chan, "QUEUESTATUS", "UNKNOWN")
        return CONTINUE
    entry = queues.join(queue, chan)
    engine.emit(ev.moh_start(chan, "default"))
    call = QueueCall(engine, queues, queue, chan, entry, expire)
    try:
        return (yield from call.run())
    except (HangupSignal, RedirectSignal) as signal:
        if not entry.handled:
            call.abandon(signal)
        raise


def install(engine: Engine) -> None:
    engine.apps["Queue"] = app_queue
