"""Compare an AMI event stream of the simulator with one recorded from Asterisk.

Two runs of the same call on a real Asterisk do not give the same byte stream:
Uniqueids, Local channel numbers, bridge ids and times differ, and events
produced by different threads interleave differently (README.txt: the
OriginateResponse position, AgentComplete vs the agent leg's Hangup;
more/README.txt: "pair events by channel, not by order").  This normaliser
keeps what is stable:

1. identities: every ``-<8 hex digits>`` Local counter becomes ``#<n>`` in
   order of first appearance, bridge ids ``bridge#<n>``, so the simulator's
   and Asterisk's channel names line up;
2. the multiset of event names is the same (every event, once each);
3. per channel, the ordered list of what happened to it is the same: each
   event goes to the channel it is about (``Channel``, else ``DestChannel``
   for an Originate's Dial events, ``LocalOneChannel`` for LocalBridge, the
   bridge for Bridge* events), with what happened (VarSet's variable, the
   Cause of SoftHangupRequest/HangupRequest, Newstate's state,
   Newexten's application, DialState/DialEnd's status, AGIExecEnd's code,
   MusicOnHoldStart's class; not Hangup's Cause: a Local ;2 half left alone
   reported 0 or 16 in otherwise identical situations).  A HangupRequest
   on one half of a Local pair is published by the OTHER half as it hangs up
   (core_local.c), so it goes to that half's list (as ``HangupRequest(peer)``):
   a run where it overtook the Newstate its target's own thread published
   (ami_click2dial_fail, sync vs async busy) is not a different call;
4. across channels only the order of each channel's own events counts here;
   :func:`displaced` then lists the events whose place among the OTHER
   channels' events differs, for a test to pin each known thread race
   explicitly.  DeviceStateChange, QueueMemberStatus
   (both from the device-state taskprocessor), OriginateResponse and
   AgentComplete (README.txt: its order against the agent leg's Hangup swaps
   between identical runs) are compared as multisets only;
5. per event name, the header names (and their order) are the same, except
   that AgentComplete may lack the Dest* block (published after the agent leg
   was gone: the same race).

Responses to the connection's own actions count too: they belong to the
connection ('-', in order with the other events about no channel), compared
by status and Message text, and by header names.  CoreShowChannel and Status
items of one list are taken in any order (Asterisk walks a hash container).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Headers = Sequence[tuple[str, str]]

#: Events whose position is decided by another thread (see the module docstring).
FLOATING = frozenset({"DeviceStateChange", "QueueMemberStatus", "OriginateResponse", "AgentComplete"})

_LOCAL_ID = re.compile(r"-([0-9a-f]{8})(?=;[12]\b)")


@dataclass
class Comparison:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return "\n".join(self.problems) or "identical after normalisation"


class _Identities:
    def __init__(self) -> None:
        self.locals: dict[str, int] = {}
        self.bridges: dict[str, int] = {}

    def channel(self, name: str) -> str:
        def replace(match: re.Match) -> str:
            index = self.locals.setdefault(match.group(1), len(self.locals))
            return f"-#{index}"

        return _LOCAL_ID.sub(replace, name)

    def bridge(self, uniqueid: str) -> str:
        return f"bridge#{self.bridges.setdefault(uniqueid, len(self.bridges))}"


def _get(headers: Headers, key: str) -> str | None:
    for name, value in headers:
        if name == key:
            return value
    return None


def messages_of(messages: Iterable[Headers]) -> list[Headers]:
    return [m for m in messages if m and m[0][0] in ("Event", "Response")]


def kind(headers: Headers) -> str:
    """``Newchannel`` for an event, ``Response(Success: Variable Set)`` for a response."""
    if headers[0][0] == "Event":
        return headers[0][1]
    message = _get(headers, "Message")
    return f"Response({headers[0][1]}: {message})" if message is not None else f"Response({headers[0][1]})"


def subject(headers: Headers, ids: _Identities) -> str:
    """The channel (or bridge) an event is about, normalised; '-' for none."""
    name = headers[0][1]
    if headers[0][0] == "Response":
        return "-"
    channel = _get(headers, "Channel")
    if name == "HangupRequest" and channel and channel[-2:] in (";1", ";2"):
        return ids.channel(channel[:-1] + ("2" if channel.endswith("1") else "1"))
    if channel and channel != "none":
        return ids.channel(channel)
    if name.startswith("Bridge"):
        return ids.bridge(_get(headers, "BridgeUniqueid") or "")
    for key in ("DestChannel", "LocalOneChannel"):
        value = _get(headers, key)
        if value:
            return ids.channel(value)
    return "-"


#: The one value per event that says what happened, compared with the event name.
_DETAIL = {"VarSet": "Variable", "SoftHangupRequest": "Cause", "DialEnd": "DialStatus",
           "DialState": "DialStatus", "Newstate": "ChannelStateDesc", "Newexten": "Application",
           "AGIExecEnd": "ResultCode", "MusicOnHoldStart": "Class"}


def token(headers: Headers) -> str:
    if headers[0][0] != "Event":
        return kind(headers)
    name = headers[0][1]
    if name == "HangupRequest":
        return f"HangupRequest(peer, {_get(headers, 'Cause')})"
    if name in _DETAIL:
        return f"{name}({_get(headers, _DETAIL[name])})"
    return name


def timeline(messages: Iterable[Headers]) -> dict[str, list[str]]:
    """subject -> ordered tokens, floating events left out."""
    ids = _Identities()
    lines: dict[str, list[str]] = {}
    for headers in messages_of(messages):
        key = subject(headers, ids)  # identities in order of appearance, floating ones too
        if kind(headers) not in FLOATING:
            lines.setdefault(key, []).append(token(headers))
    return lines


def header_names(messages: Iterable[Headers]) -> dict[str, set[tuple[str, ...]]]:
    found: dict[str, set[tuple[str, ...]]] = {}
    for headers in messages_of(messages):
        names = tuple(name for name, _ in headers)
        if kind(headers) == "AgentComplete":
            names = tuple(name for name in names if not name.startswith("Dest"))
        found.setdefault(kind(headers), set()).add(names)
    return found


def compare(simulated: Iterable[Headers], recorded: Iterable[Headers]) -> Comparison:
    sim, real = list(simulated), list(recorded)
    result = Comparison()
    sim_names = Counter(kind(m) for m in messages_of(sim))
    real_names = Counter(kind(m) for m in messages_of(real))
    if sim_names != real_names:
        result.problems.append(f"event counts differ: simulator {dict(sim_names - real_names)} "
                               f"more, {dict(real_names - sim_names)} fewer")
    sim_lines, real_lines = timeline(sim), timeline(real)
    for key in sorted(set(sim_lines) | set(real_lines)):
        if sim_lines.get(key) != real_lines.get(key):
            result.problems.append(f"{key}:\n  simulator {sim_lines.get(key)}\n  recorded  {real_lines.get(key)}")
    sim_headers, real_headers = header_names(sim), header_names(real)
    for name in sorted(set(sim_headers) & set(real_headers)):
        if sim_headers[name] != real_headers[name]:
            result.problems.append(f"{name} headers: simulator {sorted(sim_headers[name])} "
                                   f"recorded {sorted(real_headers[name])}")
    return result


#: List events Asterisk produces by walking a hash container (channels): their order is arbitrary.
HASHED_LISTS = frozenset({"CoreShowChannel", "Status"})


def global_sequence(messages: Iterable[Headers]) -> list[str]:
    """``token @subject`` of every non-floating message, in arrival order.

    Consecutive CoreShowChannel/Status events of one action are sorted: Asterisk
    lists channels in the order of its hash container.
    """
    ids = _Identities()
    out: list[str] = []
    run: list[str] = []
    run_key = None
    for headers in messages_of(messages):
        key = subject(headers, ids)
        if kind(headers) in FLOATING:
            continue
        item = f"{token(headers)} @{key}"
        this_run = (kind(headers), _get(headers, "ActionID")) if kind(headers) in HASHED_LISTS else None
        if this_run != run_key:
            out += sorted(run)
            run, run_key = [], this_run
        if this_run is None:
            out.append(item)
        else:
            run.append(item)
    return out + sorted(run)


def displaced(simulated: Iterable[Headers], recorded: Iterable[Headers]) -> list[str]:
    """What the simulator emitted at another place among the OTHER channels' events.

    ``compare`` already requires each channel's own order; this lists the
    cross-thread interleavings that differ (tokens of the simulated stream
    outside difflib's alignment), for a test to pin them explicitly.
    """
    a, b = global_sequence(simulated), global_sequence(recorded)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[str] = []
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            out += a[i1:i2]
    return sorted(out)
