"""Dial(PJSIP/<exten>): a simulated agent phone reached as its endpoint, the way the shipped [agents] and
[cc-connect] dial real phones (tests/test_real_asterisk_actions.py: agents ``PJSIP/600X``).

The phone behaves as its ``Local/<exten>@sim-agents`` twin does (AgentPhone, or the lab's number plan:
6XXX answer after RING_SECS and talk TALK_SECS, 7XXX never answer, 8XXX busy), but as ONE channel,
``PJSIP/<exten>-<8 hex digits>`` (chan_pjsip's own counter), without dialplan of its own: its ringing,
answer and hangup are states and hangups of that channel, reported to the Dial() that rang it
(``leg_event``).  An unregistered phone or an unknown endpoint gives no channel at all (CHANUNAVAIL,
no DialBegin).  The endpoint device ``PJSIP/<exten>`` follows the channel (RINGING, INUSE) and its
DeviceStateChange events are published.

What the channel looks like is taken over from a Local ``;1`` Dial rang (the lab had no PJSIP phones;
not recorded): Context ``agent-phones`` (asterisk_conf/pjsip.conf), the caller's Exten and
``AppDial`` until answered, then an empty Exten; DIALEDPEERNUMBER and the caller's inheritable
variables.  Not simulated: Queue() and Originate of PJSIP interfaces (Local only), media, SIP.

Only a Local transferer gets every digit an AMI Atxfer queues; a PJSIP one keeps the first after the
feature code (atxfer.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import events as ev
from callcenter.sim.dialplan import agent_steps
from callcenter.sim.outgoing import outgoing_line
from callcenter.sim.tasks import Task, Wait

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel
    from callcenter.sim.outgoing import Outgoing
    from callcenter.sim.pbx import Engine

CONTEXT = "agent-phones"   # the agent endpoints' context in asterisk_conf/pjsip.conf
NEVER = 300.0              # a phone that never answers gives up after this (as [sim-agents] 7XXX does)


def dial_phone(engine: Engine, caller: Channel, spec: str, owner: Outgoing) -> Channel | None:
    """Dial() of ``PJSIP/<exten>`` for ``caller``: the phone's channel, or None (CHANUNAVAIL)."""
    exten = spec[len("PJSIP/"):].split("/", 1)[0]
    steps = agent_steps(exten, engine.dialplan.agents.get(exten))
    if steps is None:
        return None
    chan = engine.new_channel(engine.naming.pjsip(exten), CONTEXT, "s", 0, caller.linkedid)
    chan.owner = owner
    engine.emit(ev.newchannel(chan))
    engine.watch_device(f"PJSIP/{exten}")
    outgoing_line(engine, caller, chan, exten)
    chan.phone = Phone(engine, chan, steps)

    def call() -> None:  # ast_call returns, then the dialing thread publishes DialBegin
        if not chan.hungup:
            engine.emit(ev.dial_begin(caller, chan, exten))
            chan.phone.start()

    engine.scheduler.soon(call)
    return chan


class Phone:
    """The person at a PJSIP phone: rings, answers, talks, hangs up (its [sim-agents] steps, read as times)."""

    def __init__(self, engine: Engine, chan: Channel, steps) -> None:
        self.engine = engine
        self.chan = chan
        apps = [step.app for step in steps]
        self.busy = "Busy" in apps
        self.answers = "Answer" in apps
        waits = [step for step in steps if step.app == "Wait"]
        self.ring = waits[0].data if waits else ""
        self.talk = next((step.data for step in steps if step.label == "talk"), "")
        self.task: Task | None = None

    def start(self) -> None:
        self.task = Task(self.engine.scheduler, self._run(), f"phone {self.chan.name}")
        self.task.start()

    def answer(self) -> None:
        """The agent picks up now (a ``manual`` phone)."""
        if self.task is not None and self.chan.state == 5:
            self.task.wake("answer")

    def hangup(self) -> None:
        """The agent hangs up now (ringing: rejects the call)."""
        if self.task is not None:
            self.task.wake("hangup")

    def _seconds(self, data) -> float:
        text = self.engine.expand(self.chan, data) if data else ""
        try:
            return float(text)
        except ValueError:
            return NEVER

    def _run(self):
        engine, chan = self.engine, self.chan
        if self.busy:
            chan.hangupcause = 17
            self._tell("busy")
            return
        engine.set_state(chan, 5)
        self._tell("ringing")
        what = yield Wait(self._seconds(self.ring) if self.answers else NEVER)
        if self._gone():
            return
        if what == "hangup" or not self.answers:
            return self._hang_up()
        engine.set_state(chan, 6)
        self._tell("answer")
        what = yield Wait(self._seconds(self.talk))
        if not self._gone():
            self._hang_up()

    def _gone(self) -> bool:
        return self.chan.hungup or self.chan.soft_hangup

    def _tell(self, kind: str) -> None:
        if self.chan.owner is not None:
            self.chan.owner.leg_event(kind, self.chan)

    def _hang_up(self) -> None:
        """BYE from the phone: a soft hangup whoever owns the channel reacts to."""
        self.engine.request_hangup(self.chan, 16)
