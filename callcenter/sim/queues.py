"""app_queue as the lab configured it: queues, dynamic members, their events and device states.

queues.conf of the lab: support (rrmemory), sales (leastrecent), vip (ringall,
weight 10, timeout 20); timeout 15, retry 2, wrapuptime 0, joinempty=yes,
ringinuse=no, autofill=yes, servicelevel 60, setinterfacevar/setqueueentryvar/
setqueuevar=yes.  Members are added at run time (QueueAdd).

Device states, as recorded: ``Queue:<q>`` RINGING while callers wait,
``Queue:<q>_avail`` NOT_INUSE while a member can take a call, and
``Queue:<q>_pause_<interface>`` INUSE while that member is paused; they are
reported on change only.  A Local member ringing is ``Status: 2`` (INUSE),
never 6 (RINGING).  Events about a call (Agent*) name the CALLER in Channel
and the member leg in Dest*.

A member's status is the device state of its StateInterface (QueueAdd
``StateInterface``, else the interface), as app_queue keeps it:

* ``Local/<exten>@<context>[/n]`` (core_local.c local_devicestate): INVALID
  (4) when the extension does not exist (an unregistered simulated phone),
  INUSE (2) while a Local channel of it rings, talks or is busy, or while the
  simulated phone has a direct call, else NOT_INUSE (1);
* ``PJSIP/<exten>``: the simulated phone's endpoint: UNAVAILABLE (5) when
  not registered, INUSE (2) on a call (direct, through [sim-agents] or
  Dial(PJSIP/<exten>) answered), RINGING (6) while it rings, else NOT_INUSE (1; also when it
  answers Busy).  Its DeviceStateChange is published (on change) once a
  member follows it or the phone was (un)registered or had a direct call
  (the lab had no PJSIP phones: the recordings have none of these).

A status change publishes QueueMemberStatus (update_status).  As in
is_member_available/can_ring_entry with the lab's ``ringinuse = no``, only an
unpaused member whose status is NOT_INUSE or UNKNOWN is rung or counts as
available.  Interfaces are compared without regard to case (interface_exists).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter.sim import events as ev

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel
    from callcenter.sim.pbx import Engine

#: AST_DEVICE_* numbers (the Status of queue member events) and the DeviceStateChange names.
UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING = 0, 1, 2, 3, 4, 5, 6
STATE_NAMES = {UNKNOWN: "UNKNOWN", NOT_INUSE: "NOT_INUSE", INUSE: "INUSE", BUSY: "BUSY", INVALID: "INVALID",
               UNAVAILABLE: "UNAVAILABLE", RINGING: "RINGING"}

#: In the order Asterisk listed them (QueueStatus, QueueSummary).
LAB_QUEUES = {
    "support": {"strategy": "rrmemory"},
    "vip": {"strategy": "ringall", "weight": 10, "timeout": 20},
    "sales": {"strategy": "leastrecent"},
}


@dataclass
class Member:
    interface: str
    name: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    status: int = NOT_INUSE  # an AST_DEVICE_* number (the device state of state_interface)
    state_interface: str = ""   # QueueAdd StateInterface; empty: the interface itself
    ringinuse: bool = False     # the queue's ringinuse when the member was added

    def __post_init__(self) -> None:
        self.state_interface = self.state_interface or self.interface

    @property
    def device(self) -> str:
        """The device whose state is the member's: ``Local/6001@sim-agents/n`` -> ``Local/6001@sim-agents``."""
        return device_name(self.state_interface)

    def available(self) -> bool:
        """is_member_available: unpaused and free (or ringinuse and merely busy)."""
        if self.paused or self.status in (INVALID, UNAVAILABLE):
            return False
        return self.status in (NOT_INUSE, UNKNOWN) or self.ringinuse


def phone_devices(exten: str) -> tuple[str, str]:
    """The two devices of simulated phone ``exten``: its Local extension and its endpoint."""
    return f"Local/{exten}@sim-agents", f"PJSIP/{exten}"


def related_devices(device: str) -> tuple[str, ...]:
    """A Local device of [sim-agents] moves its phone's endpoint state too."""
    exten, _, context = device.partition("/")[2].partition("@")
    return phone_devices(exten) if device.startswith("Local/") and context == "sim-agents" else (device,)


def device_name(interface: str) -> str:
    """A dial string's device: Local channels drop their ``/n`` options."""
    if interface.lower().startswith("local/"):
        return interface.split("/", 2)[0] + "/" + interface.split("/", 2)[1]
    return interface


@dataclass(eq=False)
class Entry:
    """A caller in a queue (struct queue_ent)."""

    chan: Channel
    start: float
    wall_start: float
    original_position: int
    handled: bool = False


@dataclass(eq=False)
class Queue:
    name: str
    strategy: str = "ringall"
    timeout: float = 15.0
    retry: float = 2.0
    weight: int = 0
    servicelevel: int = 60
    ringinuse: bool = False
    members: dict[str, Member] = field(default_factory=dict)
    callers: list[Entry] = field(default_factory=list)
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    rrpos: int = 0

    def position(self, entry: Entry) -> int:
        return self.callers.index(entry) + 1

    def perf(self) -> str:
        value = 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0
        return f"{value:.1f}"

    def perf2(self) -> str:
        total = self.completed + self.abandoned
        value = 100.0 * (self.completed_in_sl + self.abandoned_in_sl) / total if total else 0.0
        return f"{value:.1f}"

    def recalc_holdtime(self, seconds: int) -> None:
        if self.completed + self.abandoned == 0:
            self.holdtime = seconds
        else:
            self.holdtime = ((self.holdtime << 2) - self.holdtime + seconds) >> 2

    def add_talktime(self, seconds: int) -> None:
        if self.completed <= 1:
            self.talktime = seconds
        else:
            self.talktime = ((self.talktime << 2) - self.talktime + seconds) >> 2

    def variables(self) -> list[tuple[str, str]]:
        """setqueuevar=yes (set_queue_variables)."""
        return [
            ("QUEUENAME", self.name), ("QUEUEMAX", "0"), ("QUEUESTRATEGY", self.strategy),
            ("QUEUECALLS", str(len(self.callers))), ("QUEUEHOLDTIME", str(self.holdtime)),
            ("QUEUETALKTIME", str(self.talktime)), ("QUEUECOMPLETED", str(self.completed)),
            ("QUEUEABANDONED", str(self.abandoned)), ("QUEUESRVLEVEL", str(self.servicelevel)),
            ("QUEUESRVLEVELPERF", self.perf()),
        ]

    def available(self) -> list[Member]:
        return [m for m in self.members.values() if m.available()]

    def member(self, interface: str) -> Member | None:
        """interface_exists: the member with that interface, compared without regard to case."""
        found = self.members.get(interface)
        if found is not None:
            return found
        wanted = interface.lower()
        return next((m for m in self.members.values() if m.interface.lower() == wanted), None)


class Queues:
    """All queues of the running Asterisk, and member bookkeeping (QueueAdd & co)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queues: dict[str, Queue] = {name: Queue(name, **conf) for name, conf in LAB_QUEUES.items()}

    def get(self, name: str) -> Queue | None:
        """A queue by name; app_queue compares queue names without regard to case."""
        found = self.queues.get(name)
        if found is None:
            found = next((q for q in self.queues.values() if q.name.lower() == name.lower()), None)
        return found

    # --- member management (AMI QueueAdd / QueueRemove / QueuePause) --------

    def add(self, queue_name: str, interface: str, name: str | None = None, penalty: int = 0,
            paused: bool = False, reason: str = "", state_interface: str = "") -> str | None:
        """add_to_queue: None on success, else the AMI error message."""
        queue = self.queues.get(queue_name)
        if queue is None:
            return "Unable to add interface to queue: No such queue"
        if queue.member(interface) is not None:
            return "Unable to add interface: Already there"
        now = int(self.engine.wall())
        member = Member(interface, name or interface, penalty, paused, reason if paused else "",
                        last_pause=now if paused else 0, login_time=now, state_interface=state_interface,
                        ringinuse=queue.ringinuse)
        member.status = self.device_status(member.device)
        queue.members[interface] = member
        self.engine.device_state(self._pause_device(queue, member), "INUSE" if paused else "NOT_INUSE")
        self.engine.emit(ev.queue_member_event("QueueMemberAdded", queue.name, member))
        if member.available():
            self.engine.device_state(f"Queue:{queue.name}_avail", "NOT_INUSE")
        self._watch(member)
        return None

    def remove(self, queue_name: str, interface: str) -> str | None:
        queue = self.queues.get(queue_name)
        if queue is None:
            return "Unable to remove interface from queue: No such queue"
        member = queue.member(interface)
        if member is None:
            return "Unable to remove interface: Not there"
        del queue.members[member.interface]
        self.engine.emit(ev.queue_member_event("QueueMemberRemoved", queue.name, member))
        self.engine.device_state(self._pause_device(queue, member), "NOT_INUSE")
        self._update_avail(queue)
        return None

    def pause(self, interface: str, paused: bool, queue_name: str | None = None, reason: str = "") -> bool:
        """set_member_paused: False when no queue (or not the given one) has that interface."""
        found = False
        for queue in self.queues.values():
            if queue_name and queue.name.lower() != queue_name.lower():
                continue
            member = queue.member(interface)
            if member is None:
                continue
            found = True
            member.paused = paused
            member.paused_reason = reason if paused else ""
            member.last_pause = int(self.engine.wall())
            self.engine.device_state(self._pause_device(queue, member), "INUSE" if paused else "NOT_INUSE")
            self._update_avail(queue)
            self.engine.emit(ev.queue_member_event("QueueMemberPause", queue.name, member))
        return found

    # --- device states ----------------------------------------------------

    def device_changed(self, devices: Iterable[str] | None = None) -> None:
        """``devices`` (None: all) changed state: publish the watched endpoints among them (on change)
        and QueueMemberStatus for every member whose status moved (device_state_cb -> update_status)."""
        wanted = None if devices is None else {device.lower() for device in devices}
        for device in sorted(self.watched):
            if wanted is None or device.lower() in wanted:
                self.engine.device_state(device, STATE_NAMES[self.device_status(device)])
        for queue in self.queues.values():
            changed = False
            for member in queue.members.values():
                if wanted is not None and member.device.lower() not in wanted:
                    continue
                status = self.device_status(member.device)
                if status != member.status:
                    member.status = status
                    changed = True
                    self.engine.emit(ev.queue_member_event("QueueMemberStatus", queue.name, member))
            if changed:
                self._update_avail(queue)

    def device_status(self, device: str) -> int:
        """The AST_DEVICE_* state of ``device`` (see the module docstring)."""
        engine = self.engine
        tech, _, resource = device.partition("/")
        if tech.lower() == "local":
            exten, _, context = resource.partition("@")
            if not engine.dialplan.exists(context or "default", exten):
                return INVALID
            prefix = device + "-"
            busy = any(name.startswith(prefix) and chan.state in (5, 6, 7) for name, chan in engine.channels.items())
            phone = engine.dialplan.agents.get(exten) if context == "sim-agents" else None
            return INUSE if busy or (phone is not None and phone.direct_call) else NOT_INUSE
        if tech.upper() == "PJSIP":
            phone = engine.dialplan.agents.get(resource)
            if phone is not None and not phone.registered:
                return UNAVAILABLE
            if phone is not None and phone.direct_call:
                return INUSE
            # the phone's calls are its [sim-agents] Local pairs (;1 shows it ringing, ;2 answering)
            # and its own PJSIP channels (pjsip.py)
            states = {chan.state for name, chan in engine.channels.items()
                      if name.startswith((f"Local/{resource}@sim-agents-", f"PJSIP/{resource}-"))}
            if 6 in states:
                return INUSE
            return RINGING if 5 in states else NOT_INUSE
        return INVALID   # no such channel driver in the simulator

    @property
    def watched(self) -> set[str]:
        return self.engine.watched_devices

    def _watch(self, member: Member) -> None:
        """A member following a PJSIP endpoint: its changes are published from now on."""
        if member.device.upper().startswith("PJSIP/"):
            self.engine.watch_device(member.device)

    def _pause_device(self, queue: Queue, member: Member) -> str:
        return f"Queue:{queue.name}_pause_{member.interface}"

    def _update_avail(self, queue: Queue) -> None:
        self.engine.device_state(f"Queue:{queue.name}_avail", "NOT_INUSE" if queue.available() else "INUSE")

    # --- callers ---------------------------------------------------------------

    def join(self, queue: Queue, chan: Channel) -> Entry:
        entry = Entry(chan, self.engine.now(), self.engine.wall(), len(queue.callers) + 1)
        queue.callers.append(entry)
        self.engine.device_state(f"Queue:{queue.name}", "RINGING")
        self.engine.emit(ev.queue_caller("QueueCallerJoin", chan, queue.name,
                                         ("Position", str(queue.position(entry))),
                                         ("Count", str(len(queue.callers)))))
        return entry

    def leave(self, queue: Queue, entry: Entry) -> int:
        position = queue.position(entry)
        queue.callers.remove(entry)
        if not queue.callers:
            self.engine.device_state(f"Queue:{queue.name}", "NOT_INUSE")
        self.engine.emit(ev.queue_caller("QueueCallerLeave", entry.chan, queue.name,
                                         ("Position", str(position)), ("Count", str(len(queue.callers)))))
        return position

    def set_queue_variables(self, queue: Queue, chan: Channel) -> None:
        for name, value in queue.variables():
            self.engine.set_var(chan, name, value)

    def pick(self, queue: Queue, entry: Entry, exclude: set[str]) -> list[Member]:
        """Members to ring now, by strategy; empty if it is not this caller's turn (autofill)."""
        # can_ring_entry: paused or (ringinuse=no) not free members are never rung; the statuses
        # are current (device_changed runs on every change of a device)
        candidates = [m for m in queue.available() if m.interface not in exclude]
        free = len(queue.available())
        if not candidates or queue.position(entry) > max(free, 1):
            return []
        order = list(queue.members)
        best = min(m.penalty for m in candidates)
        candidates = [m for m in candidates if m.penalty == best]
        if queue.strategy == "ringall":
            return candidates
        if queue.strategy == "leastrecent":
            return [min(candidates, key=lambda m: (m.last_call, order.index(m.interface)))]
        if queue.strategy == "fewestcalls":
            return [min(candidates, key=lambda m: (m.calls, order.index(m.interface)))]
        if queue.strategy in ("random", "wrandom"):
            return [self.engine.rng.choice(candidates)]
        if queue.strategy in ("rrmemory", "rrordered", "roundrobin"):
            size = len(order)
            return [min(candidates, key=lambda m: (order.index(m.interface) - queue.rrpos) % size)]
        return [candidates[0]]

    def advance_rr(self, queue: Queue, member: Member) -> None:
        order = list(queue.members)
        if member.interface in order:
            queue.rrpos = (order.index(member.interface) + 1) % len(order)
