"""The simulator's public API: start it, define agents and queues, place calls, restart it.

    clock = task.Clock()                        # or the reactor, for the demo
    sim = Simulator(reactor, clock=clock, ami_port=0, agi_port=4573)
    # FastAGI: TCP to agi_host:agi_port by default; agi_server=<Factory> connects
    # in memory instead (deterministic on a Clock, no sockets)
    port = sim.start()                          # AMI listening on 127.0.0.1:port
    sim.agent("6001", ring=1, talk=4)           # Local/6001@sim-agents/n (or PJSIP/6001) answers after 1 s
    sim.add_member("support", "6001", name="Agent 6001")
    call = sim.call(ani="5551001", name="Zoë", dnis="4000", digits="1")
    clock.advance(...)                          # IVR -> queue -> agent -> hangup
    call.hangup()                               # the caller hangs up, at any point
    sim.shutdown(restart=True)                  # 'core restart now'

    # the shipped ACD contract on short times; agent phones that cannot take a call
    sim = Simulator(None, clock=clock, dialplan_globals={"CTI_ACD_CHECK_SECS": "1", "CTI_ACD_DEAD_SECS": "3"})
    sim.unregister("6001"); sim.register("6001")  # Dial: CHANUNAVAIL, no DialBegin/DialEnd
    sim.direct_call("6002"); sim.end_direct_call("6002")  # device INUSE, Dial: BUSY

    # features.conf: no feature codes unless given (the lab's base config); the shipped ones make
    # AMI Atxfer on a Dial(...,t) callee an attended transfer (atxfer.py)
    sim = Simulator(None, clock=clock, featuremap=SHIPPED_FEATUREMAP)   # or sim.featuremap["atxfer"] = "*2"

A call is made the way the lab made them (README.txt): an Originate of
``Local/<dnis>@from-pstn`` whose ``;1`` half plays the caller (dialplan
[sim-caller]: wait ``pre_wait`` s, send ``digits`` as DTMF, stay ``hold`` s,
hang up) and whose ``;2`` half is the call the CTI daemon sees (FastAGI IVR,
then the CC_RESULT contract).  DNIS 4100 goes straight to the daemon-driven
ACD ([cc-inbound] -> [cc-wait]), as does CC_RESULT=acd after the IVR; the
daemon connects with Setvar+Redirect into [cc-connect].

``acd="contract"`` (default) runs [cc-wait], [cc-connect], [cc-acd-exit],
[cc-fallback] and [cc-last-resort] as asterisk_conf/extensions.conf ships
them, with its [globals]; ``dialplan_globals`` overrides any of them (as if
extensions.conf said so: announced at boot), e.g. short CTI_ACD_* times for
tests.  ``acd="lab"`` (with ``inbound="lab"``) is the lab's dialplan the
recordings in tests/fixtures/asterisk-22/ were made with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callcenter.sim import agi_session, apps, dial, queue_app
from callcenter.sim import events as ev
from callcenter.sim.agi_client import tcp_connector
from callcenter.sim.agi_session import SoundLibrary
from callcenter.sim.ami_server import AMIServer
from callcenter.sim.channels import Channel
from callcenter.sim.dialplan import AgentPhone
from callcenter.sim.loopback import loopback_connector
from callcenter.sim.originate import Originate, OriginateRequest
from callcenter.sim.pbx import Engine
from callcenter.sim.queues import Queue, phone_devices

logger = logging.getLogger(__name__)

#: Asterisk sleeps about 1 s after hanging the calls up before it says Shutdown.
SHUTDOWN_AFTER_HANGUPS = 1.1
SHUTDOWN_IDLE = 0.018
CLOSE_AFTER_SHUTDOWN = 0.01
RESTART_DOWNTIME = 1.5   # 'core restart now' until the port accepts again
STARTUP_DELAY = 0.35     # start.sh until the port accepts (after 'core stop now')
BOOT_TIME = 0.05         # port accepting until FullyBooted
ACD_DNIS = ("4100",)


def _unreachable(host: str, port: int, session) -> None:
    """No reactor and no in-memory server: nothing listens on the FastAGI port."""
    session.failed("Connection refused")


class CallHandle:
    """One simulated inbound call: ``phone`` is the caller's ;1 half, ``line`` the ;2 half."""

    def __init__(self, sim: Simulator, ani: str, dnis: str, keys: list[str] | None = None,
                 key_delay: float = 1.0) -> None:
        self.sim = sim
        self.ani = ani
        self.dnis = dnis
        self.phone: Channel | None = None
        self.line: Channel | None = None
        self.history: list[tuple[float, str]] = []
        self.keys = list(keys or [])
        self.key_delay = key_delay

    @property
    def uniqueid(self) -> str | None:
        """Uniqueid of the channel the daemon sees (the ;2 half)."""
        return self.line.uniqueid if self.line else None

    @property
    def linkedid(self) -> str | None:
        return self.phone.linkedid if self.phone else None

    @property
    def hungup(self) -> bool:
        return self.line is None or self.line.hungup

    @property
    def agi(self):
        """The AgiSession of the IVR (its ``transcript`` lists both directions)."""
        return self.line.agi if self.line else None

    def hangup(self) -> None:
        """The caller hangs up now (the lab's caller ran Hangup() in [sim-caller])."""
        with self.sim.engine.scheduler.turn():
            phone = self.phone
            if phone is None or phone.hungup:
                return
            if isinstance(phone.owner, Originate):  # not answered yet
                phone.owner.cancel()
            else:
                self.sim.jump(phone, "hangup")

    def press(self, digits: str) -> None:
        """The caller keys ``digits`` now (DTMF received on the line)."""
        with self.sim.engine.scheduler.turn():
            line = self.line
            if line is not None and not line.hungup:
                self.sim.engine.dtmf(line, digits)

    def _watch(self, what: str, chan: Channel) -> None:
        if chan is self.phone or chan is self.line:
            self.history.append((self.sim.engine.now(), f"{what} {chan.name}"))
            if what == "reading" and self.keys:
                self.sim.engine.scheduler.call_later(self.key_delay, self.press, self.keys.pop(0))
            if self.hungup and self.phone is not None and self.phone.hungup:
                self.sim.engine.watchers.remove(self._watch)


class Simulator:
    """A simulated Asterisk 22 process (and its restarts) with an AMI server and a FastAGI client."""

    def __init__(self, reactor=None, *, clock=None, ami_host: str = "127.0.0.1", ami_port: int = 0,
                 agi_host: str = "127.0.0.1", agi_port: int = 4573, users: dict[str, str] | None = None,
                 epoch: float | None = None, seed: int = 0, sounds: SoundLibrary | None = None,
                 agi_connector: Callable | None = None, agi_server=None, ivr_dnis: tuple[str, ...] = ("4000", "4001"),
                 inbound: str = "contract", acd: str = "contract", dialplan_globals: dict[str, str] | None = None,
                 record: bool = True, restart_downtime: float = RESTART_DOWNTIME,
                 featuremap: dict[str, str] | None = None) -> None:
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.ami_host, self.ami_port = ami_host, ami_port
        self.agi_address = f"{agi_host}:{agi_port}"
        self._wall_offset = 0.0 if epoch is None else epoch - self.clock.seconds()
        self.seed = seed
        self.sounds = sounds or SoundLibrary()
        self.agents: dict[str, AgentPhone] = {}
        self.extra_queues: dict[str, dict] = {}
        self.ivr_dnis = ivr_dnis
        self.inbound = inbound
        self.acd = acd
        self.dialplan_globals = dict(dialplan_globals or {})
        #: features.conf [featuremap]; the running process reads it live (a 'features reload')
        self.featuremap: dict[str, str] = dict(featuremap or {})
        self.restart_downtime = restart_downtime
        self.record = record
        self.events: list[tuple[float, ev.Message]] = []  # every event, with its clock time (record=True)
        self.calls: list[CallHandle] = []  # every call placed (record=True)
        self.server = AMIServer(self, users if users is not None else {"cti": "cti-secret"})
        if agi_connector is None and agi_server is not None:
            agi_connector = loopback_connector(agi_server)
        if agi_connector is None:
            agi_connector = tcp_connector(reactor) if reactor is not None else _unreachable
        self._connector = agi_connector
        self._listening = None
        self._stale = False
        self.running = False
        self.boots = 0
        self.engine = self._new_engine()

    # --- process lifecycle ------------------------------------------------------

    def _new_engine(self) -> Engine:
        engine = Engine(self.clock, epoch=self.clock.seconds() + self._wall_offset, seed=self.seed + self.boots,
                        agents=self.agents, agi_connector=self._connector, sounds=self.sounds,
                        agi_host=self.agi_address,
                        ivr_dnis=self.ivr_dnis, inbound=self.inbound, acd=self.acd,
                        dialplan_globals=self.dialplan_globals, featuremap=self.featuremap)
        for install in (apps.install, dial.install, queue_app.install, agi_session.install):
            install(engine)
        for name, conf in self.extra_queues.items():
            engine.queues.queues[name] = Queue(name, **conf)
        engine.listeners.append(self.server.broadcast)
        if self.record:
            engine.listeners.append(lambda message: self.events.append((self.clock.seconds(), message)))
        self.boots += 1
        return engine

    def start(self) -> int:
        """Listen for AMI; returns the port.

        The first start gives an Asterisk that has long been running (FullyBooted
        right after a Login).  After ``shutdown(restart=False)`` it is start.sh:
        the port accepts 0.35 s later and FullyBooted follows the boot.
        """
        if self.running:
            return self.port
        if self._stale:  # started again after 'core stop now': a fresh process boots
            self.clock.callLater(STARTUP_DELAY, self._boot)
        else:
            self._listen()
        return self.port

    @property
    def port(self) -> int:
        return self._listening.getHost().port if self._listening is not None else self.ami_port

    def _listen(self) -> None:
        if self.reactor is not None:
            self._listening = self.reactor.listenTCP(self.ami_port, self.server.factory, interface=self.ami_host)
            self.ami_port = self._listening.getHost().port
        self.running = True

    def _boot(self) -> None:
        """A restarted process: listening first, FullyBooted (after the [globals]) a moment later."""
        self.engine = self._new_engine()
        self._stale = False
        self.engine.booted = False
        self._listen()
        self.clock.callLater(BOOT_TIME, self._booted)

    def _booted(self) -> None:
        engine = self.engine
        engine.booted = True
        engine.started_at = engine.reloaded_at = engine.wall()
        engine.announce_globals()
        engine.emit(ev.fully_booted(0, 0, at_boot=True))

    def shutdown(self, restart: bool = True) -> None:
        """'core restart now' (or 'core stop now' with ``restart=False``).

        Calls are hung up first (SoftHangupRequest Cause 4 on every channel,
        then Hangup Cause 0), ``Shutdown`` follows about 1.1 s later (at once
        when idle), then every AMI connection is closed and the port refuses
        connections; a restart listens again ``restart_downtime`` seconds after
        the command, with FullyBooted ``Uptime: 0``.
        """
        engine = self.engine
        busy = bool(engine.channels)
        self._stale = True
        with engine.scheduler.turn():
            for chan in list(engine.channels.values()):
                engine.emit(ev.soft_hangup_request(chan, 4))
            for chan in list(engine.channels.values()):
                engine.signal_hangup(chan)
        delay = SHUTDOWN_AFTER_HANGUPS if busy else SHUTDOWN_IDLE
        self.clock.callLater(delay, self._announce_shutdown, engine, restart)
        if restart:
            self.clock.callLater(self.restart_downtime, self._boot)

    def _announce_shutdown(self, engine: Engine, restart: bool) -> None:
        engine.emit(ev.shutdown(restart))
        self.clock.callLater(CLOSE_AFTER_SHUTDOWN, self._go_down, engine)

    def _go_down(self, engine: Engine) -> None:
        if engine is not self.engine:
            return
        self.server.close_all()
        engine.listeners.clear()
        if self._listening is not None:
            self._listening.stopListening()
            self._listening = None
        self.running = False

    def stop(self) -> None:
        """Stop listening and drop every connection at once (tearing a test down)."""
        self.server.close_all()
        if self._listening is not None:
            self._listening.stopListening()
            self._listening = None
        self.running = False

    # --- agents and queues -------------------------------------------------------

    def agent(self, exten: str, mode: str | None = None, ring: float | None = None,
              talk: float | None = None) -> AgentPhone:
        """Configure the simulated phone ``Local/<exten>@sim-agents/n`` (see AgentPhone); its
        registration and direct call (:meth:`unregister`, :meth:`direct_call`) stay as they were."""
        phone = self.agents.setdefault(exten, AgentPhone())
        phone.mode, phone.ring, phone.talk = mode, ring, talk
        return phone

    def unregister(self, exten: str) -> None:
        """Phone ``exten`` drops its registration: its extension is gone (Dial: CHANUNAVAIL without
        DialBegin/DialEnd, Local device INVALID), its endpoint ``PJSIP/<exten>`` UNAVAILABLE."""
        self._phone(exten, registered=False)

    def register(self, exten: str) -> None:
        """Phone ``exten`` registers again (it answers by its mode)."""
        self._phone(exten, registered=True)

    def direct_call(self, exten: str, seconds: float | None = None) -> None:
        """Phone ``exten`` is busy with a call of its own (not through the call center): its devices
        are INUSE (QueueMemberStatus Status 2, Queue() with ringinuse=no skips it) and a Dial to it
        gets BUSY.  It ends after ``seconds`` if given, else with :meth:`end_direct_call`."""
        self._phone(exten, direct_call=True)
        if seconds is not None:
            self.engine.scheduler.call_later(seconds, self.end_direct_call, exten)

    def end_direct_call(self, exten: str) -> None:
        self._phone(exten, direct_call=False)

    def _phone(self, exten: str, **change: bool) -> None:
        engine = self.engine
        with engine.scheduler.turn():
            phone = self.agents.setdefault(exten, AgentPhone())
            before = engine.queues.device_status(phone_devices(exten)[0])
            for name, value in change.items():
                setattr(phone, name, value)
            engine.phone_changed(exten, before)

    def add_queue(self, name: str, strategy: str = "ringall", timeout: float = 15.0, retry: float = 2.0,
                  weight: int = 0, ringinuse: bool = False) -> None:
        conf = {"strategy": strategy, "timeout": timeout, "retry": retry, "weight": weight, "ringinuse": ringinuse}
        self.extra_queues[name] = conf
        self.engine.queues.queues[name] = Queue(name, **conf)

    @staticmethod
    def interface(exten_or_interface: str) -> str:
        if "/" in exten_or_interface:
            return exten_or_interface
        return f"Local/{exten_or_interface}@sim-agents/n"

    def add_member(self, queue: str, agent: str, name: str | None = None, penalty: int = 0,
                   paused: bool = False, reason: str = "", state_interface: str = "") -> None:
        """What ``Action: QueueAdd`` does (same events); raises ValueError on the AMI error."""
        with self.engine.scheduler.turn():
            problem = self.engine.queues.add(queue, self.interface(agent), name, penalty, paused, reason,
                                             state_interface)
        if problem:
            raise ValueError(problem)

    def remove_member(self, queue: str, agent: str) -> None:
        with self.engine.scheduler.turn():
            problem = self.engine.queues.remove(queue, self.interface(agent))
        if problem:
            raise ValueError(problem)

    def pause_member(self, agent: str, paused: bool = True, queue: str | None = None, reason: str = "") -> None:
        with self.engine.scheduler.turn():
            if not self.engine.queues.pause(self.interface(agent), paused, queue, reason):
                raise ValueError("Interface not found")

    def queue(self, name: str) -> Queue | None:
        return self.engine.queues.get(name)

    # --- calls -----------------------------------------------------------------

    def call(self, ani: str, name: str | None = None, dnis: str = "4000", digits: str = "",
             pre_wait: float | None = None, hold: float | None = None,
             variables: list[tuple[str, str]] | None = None, action_id: str | None = None,
             keys: list[str] | None = None, key_delay: float = 1.0) -> CallHandle:
        """An inbound call from ``ani``/``name`` to ``dnis``.

        ``digits`` are keyed ``pre_wait`` seconds (default 2) after the answer, as the
        lab's caller did, whatever the IVR is doing then.  ``keys`` are answers to
        the IVR instead: each string is keyed ``key_delay`` seconds after an AGI
        command starts reading DTMF (GET DATA, WAIT FOR DIGIT...).  ``hold``: the
        caller hangs up after that many seconds (default 60); ``variables`` are
        extra Originate variables (``__TALK_SECS``...).
        """
        handle = CallHandle(self, ani, dnis, keys, key_delay)
        acd = dnis in ACD_DNIS
        request_vars: list[tuple[str, str]] = []
        if digits:
            request_vars.append(("DIGITS", digits))
        if pre_wait is not None:
            request_vars.append(("PRE_WAIT", f"{pre_wait:g}"))
        if hold is not None:
            request_vars.append(("HOLD_SECS", f"{hold:g}"))
        request_vars += list(variables or [])
        request = OriginateRequest(
            channel=f"Local/{dnis}@{'cc-inbound' if acd else 'from-pstn'}", context="sim-caller",
            exten="silent" if acd else "s", cid_num=ani, cid_name=name, variables=request_vars,
            action_id=action_id,
        )
        engine = self.engine
        with engine.scheduler.turn():
            engine.watchers.append(handle._watch)
            phone = Originate(engine, request).start()
            if phone is not None:
                handle.phone, handle.line = phone, phone.peer
                phone.call = handle.line.call = handle
        if self.record:
            self.calls.append(handle)
        return handle

    def originate(self, request: OriginateRequest) -> Channel | None:
        """An Originate as the AMI action does it (async); returns the ;1 channel."""
        with self.engine.scheduler.turn():
            return Originate(self.engine, request).start()

    def jump(self, chan: Channel, label: str) -> None:
        """Move a simulated phone's dialplan to a labelled priority (answer, hangup)."""
        engine = self.engine
        priority = engine.label(chan, chan.context, chan.exten, label)
        if priority is None:
            raise ValueError(f"{chan.name} has no '{label}' step in {chan.context},{chan.exten}")
        engine.redirect(chan, chan.context, chan.exten, priority)

    def _agent_leg(self, exten: str) -> Channel:
        prefix = f"Local/{exten}@sim-agents-"
        for chan in reversed(list(self.engine.channels.values())):
            if chan.name.startswith(prefix) and chan.half == 2 and not chan.hungup:
                return chan
        raise ValueError(f"agent {exten} has no call")

    def _pjsip_phone(self, exten: str):
        prefix = f"PJSIP/{exten}-"
        for chan in reversed(list(self.engine.channels.values())):
            if chan.name.startswith(prefix) and chan.phone is not None and not chan.hungup:
                return chan.phone
        return None

    def answer(self, exten: str) -> None:
        """A ``manual`` agent phone picks up."""
        with self.engine.scheduler.turn():
            phone = self._pjsip_phone(exten)
            if phone is not None:
                phone.answer()
            else:
                self.jump(self._agent_leg(exten), "answer")

    def agent_hangup(self, exten: str) -> None:
        """The agent hangs up (ringing or talking)."""
        with self.engine.scheduler.turn():
            phone = self._pjsip_phone(exten)
            if phone is not None:
                phone.hangup()
            else:
                self.jump(self._agent_leg(exten), "hangup")

    # --- helpers for tests and benchmarks ---------------------------------------

    def advance(self, seconds: float) -> None:
        """Advance a ``task.Clock`` by ``seconds``, timer by timer, so each fires at its own time."""
        end = self.clock.seconds() + seconds
        while True:
            due = self.next_timer()
            if due is None or due > end:
                self.clock.advance(max(0.0, end - self.clock.seconds()))
                return
            self.clock.advance(max(0.0, due - self.clock.seconds()))

    def next_timer(self) -> float | None:
        """When the clock's next pending call is due (None if nothing is pending)."""
        pending = [call.getTime() for call in self.clock.getDelayedCalls() if call.active()]
        return min(pending) if pending else None

    @property
    def errors(self) -> list[str]:
        """Exceptions inside simulated threads so far (should stay empty)."""
        return self.engine.scheduler.errors

    def event_names(self) -> list[str]:
        return [message.name for _, message in self.events if message.is_event]
