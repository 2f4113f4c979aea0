"""Outgoing Local legs: the common part of Dial(), Queue() and Originate.

A dialled ``Local/<exten>@<context>[/n]`` is a pair: ``;1`` belongs to the
app that dialled it (its *owner*), ``;2`` runs the destination's dialplan.
What ``;2`` does reaches the owner as ``leg_event(kind, leg)`` with kind
``ringing``, ``answer``, ``busy`` or ``hangup``; the owner's thread reads
them from a mailbox (:meth:`Outgoing.next_event`).

Event order when the pair is made, as recorded:

* Dial: Newchannel x2, VarSet ;1 (DIALEDPEERNUMBER, inherited), Newexten ;1
  AppDial at the CALLER's exten, NewCallerid ;1 (CallerIDNum = the caller's
  exten), NewConnectedLine ;1, VarSet ;2, NewCallerid ;2, NewConnectedLine ;2,
  LocalBridge, DialBegin (DialString without ``Local/``); DialBegin and the
  ;2 thread come next in the scheduler's order, so work other threads had
  queued (a blind transfer's old agent leg going away) happens first;
* Queue: Newchannel x2, Newexten ;1 AppQueue, NewCallerid ;1, VarSet ;1
  (inherited, DIALEDPEERNUMBER), VarSet ;2 (DIALEDPEERNUMBER, inherited),
  NewCallerid ;2, NewConnectedLine ;2, LocalBridge, AgentCalled, DialBegin
  (DialString = the member interface);
* a destination that does not exist (Local/9999@sim-agents): no LocalBridge,
  no DialBegin: Hangup ;2 and ;1 with Cause 0 and device state INVALID.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from callcenter.sim import events as ev
from callcenter.sim.tasks import Wait

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel
    from callcenter.sim.pbx import Engine
    from callcenter.sim.tasks import Task


def parse_local(spec: str) -> tuple[str, str, bool]:
    """``Local/6001@sim-agents/n`` (or without ``Local/``) -> (exten, context, optimize)."""
    if spec.startswith("Local/"):
        spec = spec[len("Local/"):]
    target, _, options = spec.partition("/")
    exten, _, context = target.partition("@")
    return exten, context or "default", "n" not in options


def dialstring(spec: str) -> str:
    return spec[len("Local/"):] if spec.startswith("Local/") else spec


class Outgoing:
    """An app that dialled Local legs and waits for what they do."""

    def __init__(self, engine: Engine, task: Task | None) -> None:
        self.engine = engine
        self.task = task
        self.mailbox: deque[tuple[str, Channel]] = deque()

    def leg_event(self, kind: str, leg: Channel) -> None:
        self.mailbox.append((kind, leg))
        self.engine.scheduler.soon(self._wake)

    def _wake(self) -> None:
        if self.task is not None and not self.task.done:
            self.task.wake()

    def next_event(self, deadline: float | None):
        """Wait for the next leg event; None once ``deadline`` (clock seconds) has passed."""
        while not self.mailbox:
            remaining = None if deadline is None else deadline - self.engine.now()
            if remaining is not None and remaining <= 0:
                return None
            yield Wait(remaining)
        return self.mailbox.popleft()


def inherit(engine: Engine, source: Channel, target: Channel) -> None:
    for name, value in source.inheritable():
        engine.set_var(target, name, value)


def discard(engine: Engine, one: Channel, two: Channel) -> None:
    """A Local pair whose destination does not exist: ;2 then ;1 go away, Cause 0, INVALID."""
    for chan in (two, one):
        chan.hungup = True
        engine.emit(ev.hangup(chan))
        engine.channels.pop(chan.name, None)
        engine.local_device_changed(chan.name.rsplit("-", 1)[0], "INVALID")


def outgoing_line(engine: Engine, caller: Channel, chan: Channel, number: str) -> None:
    """What Dial() sets on the channel it rings for ``caller`` (a Local ``;1`` or a phone's channel):
    DIALEDPEERNUMBER, the inherited variables, the caller as connected line, AppDial, and the events."""
    engine.set_var(chan, "DIALEDPEERNUMBER", number)
    inherit(engine, caller, chan)
    chan.exten = caller.exten
    chan.cid_num, chan.cid_name = caller.exten, caller.cid_name
    chan.conn_num, chan.conn_name = caller.cid_num, caller.cid_name
    chan.app, chan.appdata = "AppDial", "(Outgoing Line)"
    engine.newexten(chan)
    engine.emit(ev.newcallerid(chan))
    engine.emit(ev.newconnectedline(chan))


def dial_leg(engine: Engine, caller: Channel, spec: str, owner: Outgoing) -> Channel | None:
    """Dial() one Local interface for ``caller``; None if the extension does not exist."""
    exten, context, optimize = parse_local(spec)
    number = dialstring(spec)
    one, two = engine.local_pair(exten, context, linkedid=caller.linkedid)
    one.owner = owner
    outgoing_line(engine, caller, one, number)
    engine.set_var(two, "DIALEDPEERNUMBER", number)
    inherit(engine, caller, two)
    two.cid_num, two.cid_name = caller.cid_num, caller.cid_name
    two.conn_num, two.conn_name = caller.exten, caller.cid_name
    engine.emit(ev.newcallerid(two))
    engine.emit(ev.newconnectedline(two))
    if not engine.dialplan.exists(context, exten):
        discard(engine, one, two)
        return None
    engine.emit(ev.local_bridge(one, two, context, exten, optimize))

    def call() -> None:  # ast_call returns, then the dialing thread publishes DialBegin
        if not one.hungup:
            engine.emit(ev.dial_begin(caller, one, number))
            engine.run_dialplan(two)

    engine.scheduler.soon(call)
    return one


def queue_leg(engine: Engine, caller: Channel, interface: str, owner) -> Channel | None:
    """Queue() rings one member interface; ``owner.agent_called(leg)`` emits AgentCalled before DialBegin."""
    exten, context, optimize = parse_local(interface)
    number = dialstring(interface)
    one, two = engine.local_pair(exten, context, linkedid=caller.linkedid)
    one.owner = owner
    # app_queue: the leg's caller is the queue caller's connected line, and its ;2 half
    # gets the queue caller's own caller id (an AGI rename shows on ;2 only)
    one.cid_num, one.cid_name = caller.conn_num, caller.conn_name
    one.app, one.appdata = "AppQueue", "(Outgoing Line)"
    engine.newexten(one)
    engine.emit(ev.newcallerid(one))
    inherit(engine, caller, one)
    engine.set_var(one, "DIALEDPEERNUMBER", number)
    engine.set_var(two, "DIALEDPEERNUMBER", number)
    inherit(engine, caller, two)
    two.cid_num, two.cid_name = caller.cid_num, caller.cid_name
    two.conn_num, two.conn_name = one.cid_num, one.cid_name
    engine.emit(ev.newcallerid(two))
    engine.emit(ev.newconnectedline(two))
    if not engine.dialplan.exists(context, exten):
        discard(engine, one, two)
        return None
    engine.emit(ev.local_bridge(one, two, context, exten, optimize))
    owner.agent_called(one)
    engine.emit(ev.dial_begin(caller, one, interface))
    engine.run_dialplan(two)
    return one
