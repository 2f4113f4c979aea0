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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter.sim import events as ev

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel
    from callcenter.sim.pbx import Engine

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
    status: int = 1  # 1 NOT_INUSE, 2 INUSE (a Local member ringing or talking)

    @property
    def device(self) -> str:
        """``Local/6001@sim-agents/n`` -> ``Local/6001@sim-agents``."""
        return self.interface.removesuffix("/n")


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
        return [m for m in self.members.values() if not m.paused and m.status == 1]


class Queues:
    """All queues of the running Asterisk, and member bookkeeping (QueueAdd & co)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queues: dict[str, Queue] = {name: Queue(name, **conf) for name, conf in LAB_QUEUES.items()}

    def get(self, name: str) -> Queue | None:
        return self.queues.get(name)

    # --- member management (AMI QueueAdd / QueueRemove / QueuePause) --------

    def add(self, queue_name: str, interface: str, name: str | None = None, penalty: int = 0,
            paused: bool = False, reason: str = "") -> str | None:
        """None on success, else the AMI error message."""
        queue = self.queues.get(queue_name)
        if queue is None:
            return "Unable to add interface to queue: No such queue"
        if interface in queue.members:
            return "Unable to add interface: Already there"
        now = int(self.engine.wall())
        member = Member(interface, name or interface, penalty, paused, reason if paused else "",
                        last_pause=now if paused else 0, login_time=now)
        member.status = self._device_status(member)
        queue.members[interface] = member
        self.engine.device_state(self._pause_device(queue, member), "INUSE" if paused else "NOT_INUSE")
        self.engine.emit(ev.queue_member_event("QueueMemberAdded", queue.name, member))
        self._update_avail(queue)
        return None

    def remove(self, queue_name: str, interface: str) -> str | None:
        queue = self.queues.get(queue_name)
        if queue is None:
            return "Unable to remove interface from queue: No such queue"
        member = queue.members.pop(interface, None)
        if member is None:
            return "Unable to remove interface: Not there"
        self.engine.emit(ev.queue_member_event("QueueMemberRemoved", queue.name, member))
        self.engine.device_state(self._pause_device(queue, member), "NOT_INUSE")
        self._update_avail(queue)
        return None

    def pause(self, interface: str, paused: bool, queue_name: str | None = None, reason: str = "") -> bool:
        """False when no queue (or not the given one) has that interface."""
        found = False
        for queue in self.queues.values():
            if queue_name and queue.name != queue_name:
                continue
            member = queue.members.get(interface)
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

    def device_changed(self) -> None:
        """Recompute member statuses from the live Local channels; report changes."""
        for queue in self.queues.values():
            changed = False
            for member in queue.members.values():
                status = self._device_status(member)
                if status != member.status:
                    member.status = status
                    changed = True
                    self.engine.emit(ev.queue_member_event("QueueMemberStatus", queue.name, member))
            if changed:
                self._update_avail(queue)

    def _device_status(self, member: Member) -> int:
        prefix = member.device + "-"
        busy = any(name.startswith(prefix) and chan.state in (5, 6, 7)
                   for name, chan in self.engine.channels.items())
        return 2 if busy else 1

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
