"""Simulated channels and bridges: names, Uniqueids, variables, snapshot state.

Naming follows the lab (every call is made of Local channels):
``Local/<exten>@<context>-<8 hex digits>;1`` and ``;2``, the counter shared
by every Local pair and restarting at 00000000 with Asterisk; a simulated
PJSIP phone's channel is ``PJSIP/<endpoint>-<8 hex digits>`` on a counter
of its own (pjsip.py).  Uniqueid is
``<epoch seconds>.<sequence>`` and Linkedid is the Uniqueid of the first
channel of the call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from random import Random
from typing import Any

UNSET = object()


def bare_name(name: str) -> str:
    """A variable's name without its inheritance prefix (``__TALK_SECS`` -> ``TALK_SECS``)."""
    return name.lstrip("_")


@dataclass(eq=False)
class Channel:
    """The state Asterisk publishes in a channel snapshot, plus what the sim needs."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    created: float
    priority: int = 1
    state: int = 0
    cid_num: str | None = None
    cid_name: str | None = None
    conn_num: str | None = None
    conn_name: str | None = None
    language: str = "en"
    accountcode: str = ""
    app: str = ""
    appdata: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    half: int | None = None            # 1 or 2 for a Local channel
    peer: Channel | None = None        # the other half of the Local pair
    bridge: Any = None                 # Bridge while bridged
    task: Any = None                   # the running dialplan (tasks.Task)
    owner: Any = None                  # the Dial/Queue/Originate that created this ;1
    hungup: bool = False
    hangupcause: int = 0
    soft_hangup: bool = False
    answered_at: float | None = None
    emitted_location: tuple[str, str, int] | None = None
    call: Any = None                   # scenario handle (CallHandle) for the caller legs
    dtmf_reader: Any = None            # callable(digit) while an app reads DTMF
    agi: Any = None                    # the AgiSession while AGI() runs
    after_bridge: tuple[str, str, int] | None = None  # a Redirect waiting for this leg to leave its bridge
    on_hangup_request: Any = None      # callable() when a soft hangup reaches the channel (Queue's AgentComplete)
    callerid_on_hangup: bool = False   # a caller id change its thread has not published yet (Engine.newexten)
    may_transfer: bool = False         # Dial option t (callee) / T (caller): its bridge runs the DTMF transfers
    phone: Any = None                  # the simulated person at a PJSIP phone channel (pjsip.Phone)
    plan: Any = None                   # ((context, exten), steps) of the extension it runs (Engine.step)

    @property
    def tech(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def location(self) -> tuple[str, str, int]:
        return self.context, self.exten, self.priority

    def get_var(self, name: str) -> str | None:
        wanted = bare_name(name)
        for key in reversed(list(self.variables)):
            if bare_name(key) == wanted:
                return self.variables[key]
        return None

    def set_var(self, name: str, value: str) -> None:
        wanted = bare_name(name)
        for key in list(self.variables):
            if bare_name(key) == wanted:
                del self.variables[key]
        self.variables[name] = value

    def inheritable(self) -> list[tuple[str, str]]:
        """Variables a channel created by this one inherits: ``__X`` stays ``__X``, ``_X`` becomes ``X``."""
        found = []
        for key, value in self.variables.items():
            if key.startswith("__"):
                found.append((key, value))
            elif key.startswith("_"):
                found.append((key[1:], value))
        return found


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    channels: list[Channel] = field(default_factory=list)
    transfer: Any = None               # the attended transfer started in it (atxfer.AttendedTransfer)
    ami: bool = False                  # made by AMI Bridge (ami_bridge.py): its channels run their own dialplan


class Naming:
    """Uniqueid and Local-channel counters; ``reset()`` is an Asterisk restart."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        self.reset()

    def reset(self) -> None:
        self._sequence = 0
        self._local = 0
        self._pjsip = 0

    def continue_from(self, local: int, sequence: int) -> None:
        """Number the next Local pair and Uniqueid from these (to line up with a recording)."""
        self._local, self._sequence = local, sequence

    def uniqueid(self, wall: float) -> str:
        value = f"{int(wall)}.{self._sequence}"
        self._sequence += 1
        return value

    def local_pair(self, exten: str, context: str) -> tuple[str, str]:
        base = f"Local/{exten}@{context}-{self._local:08x}"
        self._local += 1
        return base + ";1", base + ";2"

    def pjsip(self, endpoint: str) -> str:
        """``PJSIP/<endpoint>-<8 hex digits>``: chan_pjsip numbers its channels on a counter of its own."""
        name = f"PJSIP/{endpoint}-{self._pjsip:08x}"
        self._pjsip += 1
        return name

    def bridge_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def command_id(self) -> int:
        return self._rng.randrange(1, 2**31)
