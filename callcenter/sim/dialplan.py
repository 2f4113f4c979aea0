"""The dialplan the simulator runs: the lab's extensions.conf, plus the CC_RESULT contract.

Contexts are those of tests/fixtures/asterisk-22/lab-config/extensions.conf
and more/lab-config/extensions.conf (sim-caller, sim-agents, transfer,
cc-inbound, cc-wait, cc-fallback, cc-connect, cc-connect-t, cc-hold,
cc-agent-hold, cc-outbound, sim-customer) with one change: the inbound
[from-pstn] applies the daemon's contract (callcenter/asterisk/channel_vars.py)
after the FastAGI session, keeping the lab's eight priorities::

    exten => 4000,1,NoOp(Hotline call DNIS=${EXTEN} ANI=${CALLERID(num)} NAME=${CALLERID(name)})
     same => n,Answer()
     same => n,AGI(agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN})
     same => n,NoOp(AGISTATUS=${AGISTATUS} CC_RESULT=${CC_RESULT} CC_QUEUE=${CC_QUEUE})
     same => n,GotoIf($["${CC_RESULT}" = "done"]?done)
     same => n,Queue(<CC_QUEUE if CC_RESULT=queue and CC_QUEUE is a valid name, else FALLBACK_QUEUE>)
     same => n,NoOp(QUEUESTATUS=${QUEUESTATUS})
     same => n(done),Hangup()

so ``queue`` -> Queue(CC_QUEUE), ``done`` -> Hangup, anything else or unset
(FastAGI unreachable: AGISTATUS=FAILURE) -> Queue(FALLBACK_QUEUE).  The
inbound DNIS numbers are 4000 and 4001 (VIP line) unless configured.
``inbound="lab"`` runs the lab's original [from-pstn] instead (Queue(CC_QUEUE)
if the AGI set it, else Hangup), to replay the recordings made with it.

The simulated agent phones in [sim-agents] follow the lab's number plan
(6XXX answer after RING_SECS and talk TALK_SECS, 7XXX never answer, 8XXX
busy) unless :class:`AgentPhone` settings override them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callcenter.asterisk import channel_vars as cv

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel

#: AppData: a template with ${...} or a function of the channel.
Data = str | Callable[["Channel"], str]


@dataclass(frozen=True)
class Step:
    app: str
    data: Data = ""
    label: str | None = None


@dataclass
class AgentPhone:
    """How a simulated agent phone (``Local/<exten>@sim-agents/n``) behaves.

    ``mode``: ``answer`` (after ``ring`` seconds), ``noanswer`` (rings until the
    caller gives up), ``busy``, or ``manual`` (rings until ``Simulator.answer``);
    None follows the lab's number plan (6XXX answer, 7XXX never, 8XXX busy).
    ``ring``/``talk`` None means the lab defaults (RING_SECS/TALK_SECS channel
    variables, else the AGENT_RING_SECS/AGENT_TALK_SECS globals).
    """

    mode: str | None = None
    ring: float | None = None
    talk: float | None = None


#: [globals] of the lab; CTI_AGI_HOST (first) is set from the FastAGI address.
GLOBALS = {"AGENT_TALK_SECS": "30", "AGENT_RING_SECS": "1"}

#: The FILTER() argument asterisk_conf/extensions.conf uses for queue names.
_QUEUE_FILTER = "-_0-9A-Za-z"
_QUEUE_FROM_CONTRACT = (
    '${IF($["${CC_RESULT}" = "%s"]?${IF($["${FILTER(%s,${CC_QUEUE})}" = ""]?%s:${FILTER(%s,${CC_QUEUE})})}:%s)}'
    % (cv.RESULT_QUEUE, _QUEUE_FILTER, cv.FALLBACK_QUEUE, _QUEUE_FILTER, cv.FALLBACK_QUEUE)
)


def _inbound_lab(greeting: str) -> list[Step]:
    """The lab's own [from-pstn] (no CC_RESULT): Queue(${CC_QUEUE}), or hang up without one."""
    return [
        Step("NoOp", greeting + " DNIS=${EXTEN} ANI=${CALLERID(num)} NAME=${CALLERID(name)}"),
        Step("Answer"),
        Step("AGI", "agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN}"),
        Step("NoOp", "AGISTATUS=${AGISTATUS} CC_QUEUE=${CC_QUEUE}"),
        Step("GotoIf", '$["${CC_QUEUE}" = ""]?noqueue'),
        Step("Queue", "${CC_QUEUE}"),
        Step("NoOp", "QUEUESTATUS=${QUEUESTATUS}"),
        Step("Hangup", label="noqueue"),
    ]


def _inbound(greeting: str) -> list[Step]:
    return [
        Step("NoOp", greeting + " DNIS=${EXTEN} ANI=${CALLERID(num)} NAME=${CALLERID(name)}"),
        Step("Answer"),
        Step("AGI", "agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN}"),
        Step("NoOp", "AGISTATUS=${AGISTATUS} CC_RESULT=${CC_RESULT} CC_QUEUE=${CC_QUEUE}"),
        Step("GotoIf", '$["${CC_RESULT}" = "%s"]?done' % cv.RESULT_DONE),
        Step("Queue", _QUEUE_FROM_CONTRACT),
        Step("NoOp", "QUEUESTATUS=${QUEUESTATUS}"),
        Step("Hangup", label="done"),
    ]


_HOLD = '${IF($["${HOLD_SECS}" = ""]?60:${HOLD_SECS})}'

CONTEXTS: dict[str, list[tuple[str, list[Step]]]] = {
    "sim-caller": [
        ("s", [
            Step("NoOp", "Simulated caller ${CALLERID(num)} digits='${DIGITS}'"),
            Step("Wait", '${IF($["${PRE_WAIT}" = ""]?2:${PRE_WAIT})}'),
            Step("ExecIf", '$["${DIGITS}" != ""]?SendDTMF(${DIGITS})'),
            Step("Wait", _HOLD),
            Step("Hangup", label="hangup"),
        ]),
        ("silent", [Step("Wait", _HOLD), Step("Hangup", label="hangup")]),
    ],
    "transfer": [("_6XXX", [Step("Dial", "Local/${EXTEN}@sim-agents/n,20"), Step("Hangup")])],
    "cc-inbound": [("4100", [
        Step("NoOp", "ACD call DNIS=${EXTEN} ANI=${CALLERID(num)} NAME=${CALLERID(name)}"),
        Step("Goto", "cc-wait,s,1"),
    ])],
    "cc-wait": [("s", [
        Step("NoOp", "Waiting for an agent chosen by the CTI daemon"),
        Step("Answer"),
        Step("MusicOnHold", 'default,${IF($["${CC_WAIT_SECS}" = ""]?30:${CC_WAIT_SECS})}'),
        Step("Goto", "cc-fallback,s,1"),
    ])],
    "cc-fallback": [("s", [
        Step("NoOp", "No agent chosen in time: fallback Queue(support)"),
        Step("Queue", "support"),
        Step("NoOp", "QUEUESTATUS=${QUEUESTATUS}"),
        Step("Hangup"),
    ])],
    "cc-connect": [("s", [
        Step("NoOp", "Connecting caller to ${CC_AGENT_IFACE}"),
        Step("Dial", "${CC_AGENT_IFACE},15"),
        Step("NoOp", "DIALSTATUS=${DIALSTATUS}"),
        Step("Goto", "cc-wait,s,1"),
    ])],
    "cc-connect-t": [("s", [
        Step("NoOp", "Connecting caller to ${CC_AGENT_IFACE} (agent may transfer)"),
        Step("Dial", "${CC_AGENT_IFACE},15,t"),
        Step("NoOp", "DIALSTATUS=${DIALSTATUS}"),
        Step("Goto", "cc-wait,s,1"),
    ])],
    "cc-hold": [("s", [Step("NoOp", "Caller on hold"), Step("MusicOnHold", "default"), Step("Hangup")])],
    "cc-agent-hold": [("s", [
        Step("NoOp", "Agent leg parked while the caller is on hold"), Step("Wait", "300"), Step("Hangup"),
    ])],
    "cc-outbound": [("_5XXXXXX", [
        Step("NoOp", "Click-to-dial: ${CALLERID(num)} calls customer ${EXTEN}"),
        Step("Dial", "Local/${EXTEN}@sim-customer/n,30"),
        Step("NoOp", "DIALSTATUS=${DIALSTATUS}"),
        Step("Hangup"),
    ])],
    "sim-customer": [("_5XXXXXX", [
        Step("NoOp", "Simulated customer ${EXTEN} ringing"),
        Step("Ringing"),
        Step("Wait", '${IF($["${CUST_RING_SECS}" = ""]?2:${CUST_RING_SECS})}'),
        Step("Answer"),
        Step("Wait", '${IF($["${CUST_TALK_SECS}" = ""]?20:${CUST_TALK_SECS})}'),
        Step("Hangup"),
    ])],
}

_AGENT_RING = '${IF($["${RING_SECS}" = ""]?${AGENT_RING_SECS}:${RING_SECS})}'
_AGENT_TALK = '${IF($["${TALK_SECS}" = ""]?${AGENT_TALK_SECS}:${TALK_SECS})}'
_MODE_BY_DIGIT = {"6": "answer", "7": "noanswer", "8": "busy"}
#: How long a ``manual`` phone rings before answering by itself.
MANUAL_RING = 86400.0


def _seconds(value: float | None, template: str) -> Data:
    return template if value is None else (lambda chan: f"{value:g}")


def agent_steps(exten: str, phone: AgentPhone | None) -> list[Step] | None:
    """The [sim-agents] extension for ``exten`` (None: no such extension)."""
    mode = phone.mode if phone and phone.mode else _MODE_BY_DIGIT.get(exten[:1])
    if mode is None or not exten.isdigit() or len(exten) != 4:
        return None
    ring = phone.ring if phone else None
    talk = phone.talk if phone else None
    if mode in ("answer", "manual"):
        ring_data = _seconds(ring, _AGENT_RING) if mode == "answer" else _seconds(ring or MANUAL_RING, "")
        return [
            Step("NoOp", "Simulated agent phone ${EXTEN} ringing"),
            Step("Ringing"),
            Step("Wait", ring_data, label="ring"),
            Step("Answer", label="answer"),
            Step("Wait", _seconds(talk, _AGENT_TALK), label="talk"),
            Step("Hangup", label="hangup"),
        ]
    if mode == "noanswer":
        return [
            Step("NoOp", "Simulated agent phone ${EXTEN} that never answers"),
            Step("Ringing"),
            Step("Wait", _seconds(ring if ring else 300, "")),
            Step("Hangup", label="hangup"),
        ]
    if mode == "busy":
        return [Step("NoOp", "Simulated agent phone ${EXTEN} busy"), Step("Busy", "5")]
    raise ValueError(f"unknown agent phone mode {mode!r}")


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension patterns: ``_`` prefix, X N Z, ``.`` and ``!``."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    for char in pattern[1:]:
        regex += {"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]", ".": ".+", "!": ".*"}.get(char, re.escape(char))
    return re.fullmatch(regex, exten) is not None


class Dialplan:
    """Looks up extensions; [sim-agents] is built from the agent phone settings."""

    def __init__(self, agents: dict[str, AgentPhone] | None = None,
                 ivr_dnis: tuple[str, ...] = ("4000", "4001"), inbound: str = "contract") -> None:
        if inbound not in ("contract", "lab"):
            raise ValueError(f"inbound must be 'contract' or 'lab', not {inbound!r}")
        self.agents = agents if agents is not None else {}
        self.ivr_dnis = ivr_dnis
        self.inbound = _inbound if inbound == "contract" else _inbound_lab

    def extension(self, context: str, exten: str) -> list[Step] | None:
        if context == "sim-agents":
            return agent_steps(exten, self.agents.get(exten))
        if context == "from-pstn":
            if exten not in self.ivr_dnis:
                return None
            return self.inbound("VIP line call" if exten == "4001" else "Hotline call")
        for pattern, steps in CONTEXTS.get(context, ()):
            if pattern_matches(pattern, exten):
                return steps
        return None

    def exists(self, context: str, exten: str) -> bool:
        return self.extension(context, exten) is not None

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        steps = self.extension(context, exten)
        if steps is None or not 1 <= priority <= len(steps):
            return None
        return steps[priority - 1]

    def label(self, context: str, exten: str, label: str) -> int | None:
        for index, step in enumerate(self.extension(context, exten) or (), start=1):
            if step.label == label:
                return index
        return None
