"""The simulated Asterisk core: channels, dialplan threads, hangups, bridges, device states.

Everything another part of the simulator does to a channel goes through the
:class:`Engine`, which emits the AMI events in the order Asterisk 22 does
(see the README files next to the transcripts):

* a channel that ran dialplan ends with ``SoftHangupRequest Cause: 16``
  (AST_SOFTHANGUP_APPUNLOAD), then ``Hangup``;
* hanging up one half of a Local pair sends ``HangupRequest`` to the other
  half (with the hangup cause) before the ``Hangup`` of the first; the
  other half's thread reacts next (through the scheduler);
* when a ``;2`` half that ran Dial hangs up while its ``;1`` is still there,
  ``;1`` gets ``VarSet CHANLOCALSTATUS=<DIALSTATUS>`` first (core_local.c);
* ``Newexten`` only when context/exten/priority change;
* a caller id a Local half took from its partner's connected line is
  published by its own thread: after its next ``Newexten``, else after its
  ``Hangup`` (more/ami_atxfer.txt, more/ami_hold_extrachannel_bridge.txt);
* a channel entering a bridge with ``ATTENDEDTRANSFER`` set gets it cleared
  right after its ``BridgeEnter`` (more/ami_atxfer.txt).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from random import Random

from callcenter.sim import events as ev
from callcenter.sim.channels import Bridge, Channel, Naming
from callcenter.sim.dialplan import CONTRACT_GLOBALS, GLOBALS, AgentPhone, Dialplan, Step
from callcenter.sim.expressions import substitute
from callcenter.sim.queues import STATE_NAMES, Queues, phone_devices, related_devices
from callcenter.sim.tasks import HangupSignal, RedirectSignal, Scheduler, Sleep, Task

logger = logging.getLogger(__name__)

Listener = Callable[[ev.Message], None]

#: An app returns CONTINUE (next priority), JUMPED (it moved the channel) or HANGUP.
CONTINUE, JUMPED, HANGUP = 0, 1, -1


class Engine:
    """One running (simulated) Asterisk process."""

    version = "22.10.1"

    def __init__(self, clock, *, epoch: float | None = None, seed: int = 0,
                 agents: dict[str, AgentPhone] | None = None, agi_connector=None, sounds=None,
                 agi_host: str = "127.0.0.1:4573", ivr_dnis: tuple[str, ...] = ("4000", "4001"),
                 inbound: str = "contract", acd: str = "contract",
                 dialplan_globals: dict[str, str] | None = None,
                 featuremap: dict[str, str] | None = None) -> None:
        self.scheduler = Scheduler(clock)
        self.clock = clock
        self._epoch_offset = 0.0 if epoch is None else epoch - clock.seconds()
        self.rng = Random(seed)
        self.naming = Naming(self.rng)
        self.dialplan = Dialplan(agents, ivr_dnis, inbound, acd)
        self.agi_connector = agi_connector
        self.sounds = sounds
        # [globals] of extensions.conf: the lab's, the shipped contract's, then the caller's overrides
        self.file_globals = {"CTI_AGI_HOST": agi_host, **GLOBALS,
                             **(CONTRACT_GLOBALS if acd == "contract" else {}), **(dialplan_globals or {})}
        self.globals: dict[str, str] = dict(self.file_globals)
        self.astdb: dict[tuple[str, str], str] = {}
        #: features.conf [featuremap] (atxfer, blindxfer, ...); empty: no feature codes (the lab's base config)
        self.featuremap: dict[str, str] = featuremap if featuremap is not None else {}
        self.channels: dict[str, Channel] = {}
        self.listeners: list[Listener] = []
        self.apps: dict[str, Callable] = {}
        self.queues = Queues(self)
        self.devstates: dict[str, str] = {}
        self.watched_devices: set[str] = set()   # endpoints whose DeviceStateChange is published
        self.processed_calls = 0
        self.started_at = self.wall()
        self.reloaded_at = self.started_at
        self.booted = True
        self.watchers: list[Callable[[str, Channel], None]] = []

    # --- time and events ---------------------------------------------------

    def now(self) -> float:
        return self.clock.seconds()

    def wall(self) -> float:
        """Wall-clock seconds (Uniqueids, Ping Timestamp, EventTV)."""
        return self.clock.seconds() + self._epoch_offset

    def uptimes(self) -> tuple[int, int]:
        """FullyBooted Uptime and LastReload: seconds since start and since the last reload."""
        wall = self.wall()
        return int(wall - self.started_at), int(wall - self.reloaded_at)

    def announce_globals(self) -> None:
        """[globals] of extensions.conf (re)read: VarSet with Channel: none, as at boot and reload."""
        for name, value in self.file_globals.items():
            self.globals[name] = value
            self.emit(ev.varset(None, name, value))

    def reload(self) -> None:
        """CLI 'core reload': the [globals] again, then Event: Reload."""
        self.reloaded_at = self.wall()
        self.announce_globals()
        self.emit(ev.reload())

    def thread_id(self) -> int:
        """A pthread_self()-looking number for agi_threadid."""
        return 139_800_000_000_000 + self.rng.randrange(0, 2**28) * 4096

    def event_tv(self) -> str:
        wall = self.wall()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall))
        return f"{stamp}.{int(wall * 1000) % 1000:03d}+0000"

    def emit(self, message: ev.Message) -> None:
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception:  # a broken AMI session must not stop the PBX
                logger.exception("event listener failed on %s", message.name)

    def notify(self, what: str, chan: Channel) -> None:
        """Tell scenario watchers about a milestone ('hangup', 'answer', ...)."""
        for watcher in list(self.watchers):
            watcher(what, chan)

    # --- channels ------------------------------------------------------------

    def new_channel(self, name: str, context: str, exten: str, state: int, linkedid: str | None,
                    uniqueid: str | None = None) -> Channel:
        """A new channel; ``uniqueid`` as an Originate's ``ChannelId`` gives it, else the next one."""
        uniqueid = uniqueid or self.naming.uniqueid(self.wall())
        chan = Channel(name=name, uniqueid=uniqueid, linkedid=linkedid or uniqueid, context=context,
                       exten=exten, state=state, created=self.now())
        self.channels[name] = chan
        return chan

    def local_pair(self, exten: str, context: str, linkedid: str | None = None,
                   ids: tuple[str | None, str | None] = (None, None)) -> tuple[Channel, Channel]:
        """Allocate ``;1`` (Down) and ``;2`` (Ring) and emit their two Newchannel events."""
        name1, name2 = self.naming.local_pair(exten, context)
        one = self.new_channel(name1, context, exten, 0, linkedid, ids[0])
        two = self.new_channel(name2, context, exten, 4, one.linkedid, ids[1])
        one.half, two.half, one.peer, two.peer = 1, 2, two, one
        self.processed_calls += 1
        self.emit(ev.newchannel(one))
        self.emit(ev.newchannel(two))
        return one, two

    def find(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def set_var(self, chan: Channel | None, name: str, value: str) -> None:
        if chan is None:
            self.globals[name] = value
        else:
            chan.set_var(name, value)
        self.emit(ev.varset(chan, name, value))

    def get_var(self, chan: Channel | None, name: str) -> str | None:
        if chan is not None:
            found = chan.get_var(name)
            if found is not None:
                return found
        return self.globals.get(name)

    def set_state(self, chan: Channel, state: int) -> None:
        chan.state = state
        if state == 6 and chan.answered_at is None:
            chan.answered_at = self.now()
        self.emit(ev.newstate(chan))
        if chan.tech == "Local" and state in (5, 6, 7):
            self.local_device_changed(local_device(chan), "INUSE")
        elif chan.tech == "PJSIP":
            self.queues.device_changed((local_device(chan),))

    def set_callerid(self, chan: Channel, num: str | None, name: str | None) -> None:
        chan.cid_num, chan.cid_name = num, name
        self.emit(ev.newcallerid(chan))

    def set_connected(self, chan: Channel, num: str | None, name: str | None) -> None:
        chan.conn_num, chan.conn_name = num, name
        self.emit(ev.newconnectedline(chan))

    def expand(self, chan: Channel, template: str | Callable[[Channel], str]) -> str:
        if callable(template):
            return template(chan)
        return substitute(template, lambda name: self.get_var(chan, name), lambda key: self._builtin(chan, key))

    def _builtin(self, chan: Channel, key: str) -> str | None:
        if key == "EPOCH":
            return str(int(self.wall()))
        return channel_info(chan, key)

    # --- dialplan threads --------------------------------------------------

    def run_dialplan(self, chan: Channel) -> None:
        chan.task = Task(self.scheduler, self._pbx(chan), chan.name)
        chan.task.start()

    def goto(self, chan: Channel, context: str, exten: str, priority: int) -> None:
        chan.context, chan.exten, chan.priority = context, exten, priority

    def newexten(self, chan: Channel) -> None:
        if chan.emitted_location != chan.location:
            chan.emitted_location = chan.location
            self.emit(ev.newexten(chan))
            self.publish_callerid(chan)

    def publish_callerid(self, chan: Channel) -> None:
        """The caller id ``chan`` took from its Local partner, once its own thread runs (see above)."""
        if chan.callerid_on_hangup:
            chan.callerid_on_hangup = False
            self.emit(ev.newcallerid(chan))

    def connected_line(self, chan: Channel, num: str | None, name: str | None) -> None:
        """``chan`` now talks to ``num``/``name``: NewConnectedLine; its Local partner takes that as its
        caller id, published by the partner's thread later (:meth:`publish_callerid`)."""
        self.set_connected(chan, num, name)
        peer = chan.peer
        if peer is not None and not peer.hungup:
            peer.cid_num, peer.cid_name = num, name
            peer.callerid_on_hangup = True

    def step(self, chan: Channel) -> Step | None:
        """The priority ``chan`` is at.  A channel keeps the extension it entered: an agent phone
        re-configured meanwhile (unregistered, a direct call) changes only later calls."""
        context, exten, priority = chan.location
        if chan.plan is None or chan.plan[0] != (context, exten):
            chan.plan = ((context, exten), self.dialplan.extension(context, exten))
        steps = chan.plan[1]
        if steps is None or not 1 <= priority <= len(steps):
            return None
        return steps[priority - 1]

    def label(self, chan: Channel, context: str, exten: str, label: str) -> int | None:
        """The priority of ``label``, in the extension ``chan`` runs if it is that one."""
        pinned = chan.plan is not None and chan.plan[0] == (context, exten)
        steps = chan.plan[1] if pinned else self.dialplan.extension(context, exten)
        return next((index for index, step in enumerate(steps or (), start=1) if step.label == label), None)

    def _pbx(self, chan: Channel):
        while not chan.soft_hangup:
            step: Step | None = self.step(chan)
            if step is None:
                break
            chan.app, chan.appdata = step.app, self.expand(chan, step.data)
            self.newexten(chan)
            try:
                result = yield from self.apps[step.app](self, chan, chan.appdata)
            except RedirectSignal as redirect:
                self.goto(chan, *redirect.target)
                continue
            except HangupSignal:
                break
            if result == HANGUP:
                break
            if result != JUMPED:
                chan.priority += 1
        self.end_dialplan(chan)

    def end_dialplan(self, chan: Channel) -> None:
        """The end of __ast_pbx_run: APPUNLOAD soft hangup, then ast_hangup."""
        if not chan.hungup:
            self.emit(ev.soft_hangup_request(chan, 16))
            hook, chan.on_hangup_request = chan.on_hangup_request, None
            if hook is not None:
                hook()
            self.hangup(chan)

    # --- hangups -------------------------------------------------------------

    def hangup(self, chan: Channel, cause: int | None = None) -> None:
        """ast_hangup: tell the Local peer, emit Hangup, forget the channel."""
        if chan.hungup:
            return
        if cause is not None and not chan.hangupcause:
            chan.hangupcause = cause
        peer = chan.peer
        if peer is not None and not peer.hungup:
            status = chan.get_var("DIALSTATUS") if chan.half == 2 else None
            if status is not None:
                self.set_var(peer, "CHANLOCALSTATUS", status)
            self.emit(ev.hangup_request(peer, chan.hangupcause))
            if not peer.hangupcause:
                peer.hangupcause = chan.hangupcause
            self.signal_hangup(peer)
        chan.hungup = True
        if chan.task is not None and not chan.task.done and chan.task.waiting is not None:
            chan.task.interrupt(HangupSignal())
        self.emit(ev.hangup(chan))
        self.publish_callerid(chan)
        self.channels.pop(chan.name, None)
        if chan.tech == "Local":
            self.local_device_changed(local_device(chan), "NOT_INUSE")
        elif chan.tech == "PJSIP":
            self.queues.device_changed((local_device(chan),))
        self.notify("hangup", chan)

    def signal_hangup(self, chan: Channel) -> None:
        """A soft hangup reaching a channel: its thread, or the app that owns it, reacts next."""
        chan.soft_hangup = True
        hook, chan.on_hangup_request = chan.on_hangup_request, None
        if hook is not None:
            hook()
        if chan.task is not None and not chan.task.done:
            chan.task.interrupt(HangupSignal())
        elif chan.owner is not None:
            self.scheduler.soon(chan.owner.leg_event, "hangup", chan)

    def request_hangup(self, chan: Channel, cause: int = 16) -> None:
        """AMI Hangup action / AGI HANGUP: no event of its own (README), the thread ends."""
        if not chan.hangupcause:
            chan.hangupcause = cause
        self.signal_hangup(chan)

    def early_goto(self, chan: Channel, target: tuple[str, str, int]) -> None:
        """A Redirect that lands while Queue() or a Dial bridge still owns the channel.

        The next snapshot already has the new location but the OLD application,
        so its Newexten says e.g. ``cc-connect,s,1 Dial`` (more/README.txt); the
        target priority itself then gets no Newexten of its own.
        """
        self.goto(chan, *target)
        self.newexten(chan)

    def redirect(self, chan: Channel, context: str, exten: str, priority: int) -> None:
        """ast_async_goto: the running app stops and the dialplan resumes at the target.

        A dialled leg in its caller's bridge (the ``;1`` Dial() or Queue()
        answered) has no dialplan of its own: it gets an after-bridge goto and
        leaves when the bridge lets it go (tests/test_real_asterisk_hold.py).
        """
        if chan.task is not None and not chan.task.done:
            chan.task.interrupt(RedirectSignal(context, exten, priority))
        elif chan.bridge is not None and chan.owner is not None:
            self.scheduler.soon(self._redirect_bridged_leg, chan, (context, exten, priority))
        else:
            self.goto(chan, context, exten, priority)
            self.run_dialplan(chan)

    def _redirect_bridged_leg(self, leg: Channel, target: tuple[str, str, int]) -> None:
        if leg.hungup or leg.bridge is None:
            return
        leg.after_bridge = target
        self.early_goto(leg, target)
        if len(leg.bridge.channels) > 1:   # its caller is still there: the app that bridged them reacts
            self.scheduler.soon(leg.owner.leg_event, "redirect", leg)

    def release_leg(self, leg: Channel) -> None:
        """A dialled leg leaves the bridge its caller left: it runs its after-bridge goto, else it is hung up."""
        self.leave(leg)
        if leg.after_bridge is not None and not leg.hungup and not leg.soft_hangup:
            leg.after_bridge, leg.owner = None, None
            self.run_dialplan(leg)
        else:
            self.hangup(leg, 16)

    # --- DTMF ---------------------------------------------------------------

    def deliver_dtmf(self, chan: Channel, digit: str) -> None:
        """Hand a received digit to whatever reads DTMF on ``chan`` (an AGI GET DATA...)."""
        if chan.dtmf_reader is not None:
            self.scheduler.soon(chan.dtmf_reader, digit)

    def dtmf(self, chan: Channel, digits: str) -> None:
        """``digits`` received on ``chan`` from outside its dialplan: 100 ms tone, 250 ms apart."""

        def body():
            for digit in digits:
                if chan.hungup:
                    return
                self.emit(ev.dtmf_begin(chan, digit))
                yield Sleep(0.1)
                if chan.hungup:
                    return
                self.emit(ev.dtmf_end(chan, digit, 100))
                self.deliver_dtmf(chan, digit)
                yield Sleep(0.25)

        Task(self.scheduler, body(), f"dtmf {chan.name}").start()

    def run_application(self, chan: Channel, app: str, data: str) -> None:
        """Originate with Application: the ;1 half runs just that app, then hangs up."""

        def body():
            chan.app, chan.appdata = app, data
            impl = self.apps.get(app)
            try:
                if impl is not None:
                    yield from impl(self, chan, data)
            except (HangupSignal, RedirectSignal):
                pass
            self.end_dialplan(chan)

        chan.task = Task(self.scheduler, body(), chan.name)
        chan.task.start()

    # --- bridges ----------------------------------------------------------

    def bridge_create_only(self) -> Bridge:
        bridge = Bridge(self.naming.bridge_id())
        self.emit(ev.bridge_create(bridge))
        return bridge

    def bridge(self, first: Channel, second: Channel) -> Bridge:
        """BridgeCreate, BridgeEnter (first, then second), BRIDGEPEER both ways."""
        bridge = self.bridge_create_only()
        self.enter(bridge, first)
        self.enter(bridge, second)
        self.set_var(first, "BRIDGEPEER", second.name)
        self.set_var(second, "BRIDGEPEER", first.name)
        return bridge

    def enter(self, bridge: Bridge, chan: Channel) -> None:
        chan.on_hangup_request = None   # app_queue mostly reports no AgentComplete for a caller bridged again
        bridge.channels.append(chan)
        chan.bridge = bridge
        self.emit(ev.bridge_enter(bridge, chan))
        if chan.get_var("ATTENDEDTRANSFER"):
            self.set_var(chan, "ATTENDEDTRANSFER", "")

    def leave(self, chan: Channel) -> None:
        bridge = chan.bridge
        if bridge is None:
            return
        bridge.channels.remove(chan)
        chan.bridge = None
        self.emit(ev.bridge_leave(bridge, chan))

    def clear_bridgepeers(self, bridge: Bridge) -> None:
        for chan in list(bridge.channels):
            self.set_var(chan, "BRIDGEPEER", "")

    def destroy(self, bridge: Bridge) -> None:
        for chan in list(bridge.channels):
            self.leave(chan)
        self.emit(ev.bridge_destroy(bridge))

    # --- device states ------------------------------------------------------

    def local_device_changed(self, device: str, state: str) -> None:
        """A Local device's state, published on every channel change (not cached); the queues follow."""
        self.emit(ev.device_state_change(device, state))
        self.queues.device_changed(related_devices(device))

    def phone_changed(self, exten: str, before: int) -> None:
        """Simulated phone ``exten`` (un)registered or started/ended a direct call: its Local
        device (if its state moved from ``before``) and its endpoint are published, the queues follow."""
        local, endpoint = phone_devices(exten)
        self.watch_device(endpoint)
        after = self.queues.device_status(local)
        if after != before:
            self.emit(ev.device_state_change(local, STATE_NAMES[after]))
        self.queues.device_changed((local, endpoint))

    def watch_device(self, device: str) -> None:
        """Publish ``device``'s state changes from now on (its current state is known, not news)."""
        if device not in self.watched_devices:
            self.watched_devices.add(device)
            self.devstates.setdefault(device, STATE_NAMES[self.queues.device_status(device)])

    def device_state(self, device: str, state: str) -> None:
        """Queue:* devices only report a change (the devstate cache dedups them)."""
        if self.devstates.get(device) != state:
            self.devstates[device] = state
            self.emit(ev.device_state_change(device, state))


def local_device(chan: Channel) -> str:
    """``Local/6001@sim-agents-00000001;2`` -> ``Local/6001@sim-agents`` (``PJSIP/6001-00000000`` -> ``PJSIP/6001``)."""
    return chan.name.rsplit("-", 1)[0]


def channel_info(chan: Channel, key: str) -> str | None:
    if key == "EXTEN":
        return chan.exten
    if key == "CONTEXT":
        return chan.context
    if key == "CHANNEL":
        return chan.name
    if key in ("UNIQUEID", "CHANNEL(uniqueid)"):
        return chan.uniqueid
    if key == "CHANNEL(linkedid)":
        return chan.linkedid
    if key == "CHANNEL(name)":
        return chan.name
    if key == "CALLERID(num)":
        return chan.cid_num
    if key == "CALLERID(name)":
        return chan.cid_name
    if key == "CALLERID(all)":
        return f'"{chan.cid_name or ""}" <{chan.cid_num or ""}>'
    return None
