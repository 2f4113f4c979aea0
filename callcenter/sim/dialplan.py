"""The dialplan the simulator runs: the lab's extensions.conf, plus the shipped contract.

Contexts are those of tests/fixtures/asterisk-22/lab-config/extensions.conf
and more/lab-config/extensions.conf (sim-caller, sim-agents, transfer,
cc-inbound, cc-wait, cc-fallback, cc-connect, cc-connect-t, cc-hold,
cc-agent-hold, cc-outbound, sim-customer), with two selectable parts.

``inbound``: the inbound [from-pstn] applies the daemon's CC_RESULT contract
(callcenter/asterisk/channel_vars.py) after the FastAGI session, keeping the
lab's eight priorities::

    exten => 4000,1,NoOp(Hotline call DNIS=${EXTEN} ANI=${CALLERID(num)} NAME=${CALLERID(name)})
     same => n,Answer()
     same => n,AGI(agi://${CTI_AGI_HOST}/ivr?dnis=${EXTEN})
     same => n,NoOp(AGISTATUS=${AGISTATUS} CC_RESULT=${CC_RESULT} CC_QUEUE=${CC_QUEUE})
     same => n,GotoIf($["${CC_RESULT}" = "done"]?done:<cc-wait,s,1 if CC_RESULT=acd>)
     same => n,Queue(<CC_QUEUE if CC_RESULT=queue and CC_QUEUE is a valid name, else FALLBACK_QUEUE>)
     same => n,NoOp(QUEUESTATUS=${QUEUESTATUS})
     same => n(done),Hangup()

so ``queue`` -> Queue(CC_QUEUE), ``done`` -> Hangup, ``acd`` -> [cc-wait],
anything else or unset (FastAGI unreachable: AGISTATUS=FAILURE) ->
Queue(FALLBACK_QUEUE).  The inbound DNIS numbers are 4000 and 4001 (VIP
line) unless configured.  ``inbound="lab"`` runs the lab's original
[from-pstn] instead (Queue(CC_QUEUE) if the AGI set it, else Hangup), to
replay the recordings made with it.

``acd``: the daemon-driven ACD contexts [cc-wait], [cc-connect],
[cc-connect-t], [cc-acd-exit], [cc-fallback] and [cc-last-resort] as
asterisk_conf/extensions.conf ships them (the heartbeat loop on the global
CTI_ACD_BEAT, CC_RING_SECS, Queue() with a timeout), with their [globals]
(:data:`CONTRACT_GLOBALS`, each overridable).  The one difference:
[cc-connect] also accepts ``Local/<digits>@sim-agents[/n]``, the simulated
phones.  ``acd="lab"`` runs the lab's versions (one MusicOnHold(default,30)
then Queue(support); Dial(${CC_AGENT_IFACE},15)) and only the lab's
[globals], which is what the ami_acd_* recordings were made with.  With
the contract come the daemon's consultation calls, [cc-consult]
(:data:`CONTRACT_CONSULT`: ``_6XXX`` and ``0`` = ``${CC_CONSULT_TO}``),
which ring the simulated phones (``Local/<exten>@sim-agents/n``).

The simulated agent phones in [sim-agents] follow the lab's number plan
(6XXX answer after RING_SECS and talk TALK_SECS, 7XXX never answer, 8XXX
busy) unless :class:`AgentPhone` settings override them.  An unregistered
phone has no extension (Dial: CHANUNAVAIL without DialBegin/DialEnd, as
Local/9999 in more/README.txt); a phone busy with a direct call answers
Busy().
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
    ``registered`` False: the phone is not registered (its extension does not
    exist); ``direct_call`` True: it is busy with a call that did not come
    through the call center.  ``Simulator.unregister``/``direct_call`` switch
    them at run time with the device-state events that go with it.
    """

    mode: str | None = None
    ring: float | None = None
    talk: float | None = None
    registered: bool = True        # False: no extension at all (CHANUNAVAIL), endpoint UNAVAILABLE
    direct_call: bool = False      # True: on a call of its own (device INUSE, new calls get Busy)


#: [globals] of the lab; CTI_AGI_HOST (first) is set from the FastAGI address.
GLOBALS = {"AGENT_TALK_SECS": "30", "AGENT_RING_SECS": "1"}

#: [globals] of asterisk_conf/extensions.conf the contract contexts read (same defaults;
#: tests/test_sim_acd_contract.py checks them against the shipped file).
CONTRACT_GLOBALS = {
    "CTI_FALLBACK_QUEUE": cv.FALLBACK_QUEUE,
    "CTI_QUEUE_WAIT_SECS": "300",
    "CTI_FALLBACK_WAIT_SECS": "600",
    "CTI_ACD_CHECK_SECS": "10",
    "CTI_ACD_DEAD_SECS": "20",
    "CTI_ACD_MAX_WAIT_SECS": "1800",
    cv.ACD_BEAT: "",
    "CTI_AGENT_RING_SECS": "15",
    "CTI_HOLD_MAX_SECS": "900",
    "CTI_MOH_CLASS": "default",
    "CTI_LAST_RESORT_MAILBOX": "",
    "CTI_LAST_RESORT_PROMPT": "vm-nobodyavail&vm-goodbye",
}

#: The FILTER() argument asterisk_conf/extensions.conf uses for queue names.
_QUEUE_FILTER = "-_0-9A-Za-z"
_QUEUE_FROM_CONTRACT = (
    '${IF($["${CC_RESULT}" = "%s"]?${IF($["${FILTER(%s,${CC_QUEUE})}" = ""]?%s:${FILTER(%s,${CC_QUEUE})})}:%s)}'
    % (cv.RESULT_QUEUE, _QUEUE_FILTER, cv.FALLBACK_QUEUE, _QUEUE_FILTER, cv.FALLBACK_QUEUE)
)


#: One GotoIf (the lab's priority 5): done -> Hangup, acd -> [cc-wait], else on to Queue().
_DONE_OR_ACD = '$["${CC_RESULT}" = "%s"]?done:${IF($["${FILTER(a-z,${CC_RESULT})}" = "%s"]?%s,s,1)}' % (
    cv.RESULT_DONE, cv.RESULT_ACD, cv.CONTEXT_WAIT)


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
        Step("GotoIf", _DONE_OR_ACD),
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

#: The simulator's customers answer at Local/<number>@sim-customer (see [sim-customer]).
SIM_CUSTOMER_DIAL = "Local/${FILTER(+0-9,${EXTEN})}@sim-customer/n,${CTI_OUTBOUND_RING_SECS}"

#: [cc-connect] takes the shipped forms plus the simulated phones (Local/<digits>@sim-agents).
_IFACE = "${FILTER(-_./@0-9A-Za-z,${CC_AGENT_IFACE})}"
_IFACE_OK = '${REGEX("^(Local/[0-9]+@(sim-)?agents(/n)?|PJSIP/[-_.0-9A-Za-z]+)$" %s)}' % _IFACE
_BEAT = "${FILTER(-_0-9A-Za-z,${%s})}" % cv.ACD_BEAT

#: The daemon-driven ACD as asterisk_conf/extensions.conf ships it (acd="contract").
CONTRACT_ACD: dict[str, list[tuple[str, list[Step]]]] = {
    "cc-wait": [("s", [
        Step("NoOp", "Waiting for an agent picked by the CTI daemon"),
        Step("Answer"),
        Step("Set", 'acd_since=${IF($["${acd_since}" = "" | "${DIALSTATUS}" = "ANSWER"]?${EPOCH}:${acd_since})}'),
        Step("Set", "beat_seen=" + _BEAT),
        Step("Set", "beat_at=${EPOCH}"),
        Step("GotoIf", "$[${EPOCH} - ${acd_since} >= ${CTI_ACD_MAX_WAIT_SECS}]?cc-fallback,s,1", label="check"),
        Step("GotoIf", '$["%s" = "${beat_seen}"]?still' % _BEAT),
        Step("Set", "beat_seen=" + _BEAT),
        Step("Set", "beat_at=${EPOCH}"),
        Step("GotoIf", "$[${EPOCH} - ${beat_at} >= ${CTI_ACD_DEAD_SECS}]?nodaemon", label="still"),
        Step("MusicOnHold", "${CTI_MOH_CLASS},${CTI_ACD_CHECK_SECS}"),
        Step("Goto", "check"),
        Step("NoOp", "No CTI daemon routes calls: no heartbeat for ${CTI_ACD_DEAD_SECS} s", label="nodaemon"),
        Step("Goto", "cc-fallback,s,1"),
    ])],
    "cc-connect": [("s", [
        Step("NoOp", "Connecting the caller to ${CC_AGENT_IFACE}"),
        Step("Set", "iface_ok=" + _IFACE_OK),
        Step("GotoIf", '$["${iface_ok}" != "1"]?cc-wait,s,1'),
        Step("Set", "ring=${FILTER(0-9,${CC_RING_SECS})}"),
        Step("Set", "ring=${IF($[0${ring:0:3} > 0 & 0${ring:0:3} <= 120]?${ring:0:3}:${CTI_AGENT_RING_SECS})}"),
        Step("Dial", _IFACE + ",${ring},t"),
        Step("NoOp", "Agent did not take the call: DIALSTATUS=${DIALSTATUS}"),
        Step("Goto", "cc-wait,s,1"),
    ])],
    "cc-connect-t": [("s", [Step("Goto", "cc-connect,s,1")])],
    "cc-fallback": [("s", [
        Step("NoOp", "Fallback queue ${CTI_FALLBACK_QUEUE}: AGISTATUS=${AGISTATUS} CC_RESULT=${CC_RESULT}"),
        Step("Queue", "${CTI_FALLBACK_QUEUE},t,,,${CTI_FALLBACK_WAIT_SECS}"),
        Step("NoOp", "Fallback queue returned QUEUESTATUS=${QUEUESTATUS}"),
        Step("Goto", "cc-last-resort,s,1"),
    ])],
    "cc-acd-exit": [
        ("queue", [Step("NoOp", "ACD: caller sent to the fallback queue"), Step("Goto", "cc-fallback,s,1")]),
        ("voicemail", [Step("NoOp", "ACD: caller sent to voicemail"), Step("Goto", "cc-last-resort,s,1")]),
        ("callback", [
            Step("NoOp", "ACD: caller offered a callback"),
            Step("Set", "CC_RESULT="),
            Step("AGI", "agi://${CTI_AGI_HOST}/callback-offer"),
            Step("GotoIf", '$["${FILTER(a-z,${CC_RESULT})}" = "done"]?done'),
            Step("Goto", "cc-fallback,s,1"),
            Step("Hangup", label="done"),
        ]),
    ],
    # the shipped [cc-callback]; Dial reaches the simulated customers (Local/5XXXXXX@sim-customer) instead
    # of the carrier trunk
    "cc-callback": [(pattern, [
        Step("NoOp", "Callback ${FILTER(0-9,${CC_CALLBACK_ID})}: agent ${CALLERID(num)} calls ${EXTEN}"),
        Step("Set", "CALLERID(num)=${CTI_OUTBOUND_CALLERID}"),
        Step("Dial", SIM_CUSTOMER_DIAL),
        Step("Set", "CC_CALLBACK_RESULT=${DIALSTATUS}"),
        Step("Hangup"),
    ]) for pattern in ("_XXX.", "_+XXX.")],
    "cc-last-resort": [("s", [
        Step("NoOp", "Nobody could take the call: QUEUESTATUS=${QUEUESTATUS}"),
        Step("GotoIf", '$["${CTI_LAST_RESORT_MAILBOX}" != ""]?voicemail'),
        Step("Playback", "${CTI_LAST_RESORT_PROMPT}"),
        Step("Hangup"),
        Step("VoiceMail", "${CTI_LAST_RESORT_MAILBOX},u", label="voicemail"),
        Step("Hangup"),
    ])],
}

#: [cc-consult] as asterisk_conf/extensions.conf ships it, the phones being Local/<exten>@sim-agents.
CONTRACT_CONSULT: dict[str, list[tuple[str, list[Step]]]] = {
    "cc-consult": [
        ("_6XXX", [
            Step("NoOp", "Consultation call to agent ${EXTEN}"),
            Step("Dial", "Local/${FILTER(0-9,${EXTEN})}@sim-agents/n,${CTI_AGENT_RING_SECS}"),
            Step("Hangup"),
        ]),
        ("0", [
            Step("NoOp", "Consultation call to agent ${%s}" % cv.CC_CONSULT_TO),
            Step("Set", "to=${FILTER(0-9,${%s})}" % cv.CC_CONSULT_TO),
            Step("GotoIf", '$["${REGEX("^6[0-9]{3}$" ${to})}" != "1"]?refuse'),
            Step("Dial", "Local/${to}@sim-agents/n,${CTI_AGENT_RING_SECS}"),
            Step("Hangup"),
            Step("NoOp", "No consultation target", label="refuse"),
            Step("Hangup"),
        ]),
    ],
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
    if phone is not None and not phone.registered:
        return None
    if phone is not None and phone.direct_call:
        return [Step("NoOp", "Simulated agent phone ${EXTEN} busy with a direct call"), Step("Busy", "5")]
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


def pattern_matches_more(pattern: str, exten: str) -> bool:
    """ast_matchmore_extension for one pattern: could a longer extension starting with ``exten`` match?"""
    if not pattern.startswith("_"):
        return len(pattern) > len(exten) and pattern.startswith(exten)
    classes = pattern[1:]
    for index, char in enumerate(exten):
        if index >= len(classes):
            return False
        wanted = classes[index]
        if wanted in ".!":
            return True
        if not re.fullmatch(_PATTERN_CHARS.get(wanted, re.escape(wanted)), char):
            return False
    return len(classes) > len(exten)


_PATTERN_CHARS = {"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]", ".": ".+", "!": ".*"}


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension patterns: ``_`` prefix, X N Z, ``.`` and ``!``."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    for char in pattern[1:]:
        regex += _PATTERN_CHARS.get(char, re.escape(char))
    return re.fullmatch(regex, exten) is not None


class Dialplan:
    """Looks up extensions; [sim-agents] is built from the agent phone settings."""

    def __init__(self, agents: dict[str, AgentPhone] | None = None,
                 ivr_dnis: tuple[str, ...] = ("4000", "4001"), inbound: str = "contract",
                 acd: str = "contract") -> None:
        if inbound not in ("contract", "lab"):
            raise ValueError(f"inbound must be 'contract' or 'lab', not {inbound!r}")
        if acd not in ("contract", "lab"):
            raise ValueError(f"acd must be 'contract' or 'lab', not {acd!r}")
        self.agents = agents if agents is not None else {}
        self.ivr_dnis = ivr_dnis
        self.inbound = _inbound if inbound == "contract" else _inbound_lab
        self.contexts = {**CONTEXTS, **CONTRACT_ACD, **CONTRACT_CONSULT} if acd == "contract" else CONTEXTS

    def extension(self, context: str, exten: str) -> list[Step] | None:
        if context == "sim-agents":
            return agent_steps(exten, self.agents.get(exten))
        if context == "from-pstn":
            if exten not in self.ivr_dnis:
                return None
            return self.inbound("VIP line call" if exten == "4001" else "Hotline call")
        for pattern, steps in self.contexts.get(context, ()):
            if pattern_matches(pattern, exten):
                return steps
        return None

    def exists(self, context: str, exten: str) -> bool:
        return self.extension(context, exten) is not None

    def matches_more(self, context: str, exten: str) -> bool:
        """ast_matchmore_extension: more digits could still make an extension of ``context``."""
        if context == "sim-agents":
            return exten.isdigit() and len(exten) < 4
        if context == "from-pstn":
            return any(len(dnis) > len(exten) and dnis.startswith(exten) for dnis in self.ivr_dnis)
        return any(pattern_matches_more(pattern, exten) for pattern, _ in self.contexts.get(context, ()))

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
