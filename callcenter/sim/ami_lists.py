"""The list actions: CoreShowChannels, Status, QueueStatus, QueueSummary.

Formats as recorded in ami_actions.txt: ``Response: Success`` with
``EventList: start`` before ``Message``, then the events, then
``...Complete`` with ``EventList: Complete`` and ``ListItems`` (StatusComplete
also ``Items``).  ActionID is the FIRST header of CoreShowChannel and of the
Complete events but the LAST of QueueParams, QueueMember, QueueEntry,
QueueSummary and Status.  List events carry no Privilege, except Status
(``Privilege: Call``).  Status has BridgeID/Data, CoreShowChannel has
BridgeId/ApplicationData; QueueParams says ``Holdtime``, QueueSummary
``HoldTime``; QueueMember uses Name/Location.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import events as ev
from callcenter.sim.queues import INVALID, UNAVAILABLE

if TYPE_CHECKING:
    from callcenter.sim.channels import Channel
    from callcenter.sim.pbx import Engine
    from callcenter.sim.queues import Queue

Headers = ev.Headers


def _with_id(headers: Headers, action_id: str | None, first: bool) -> ev.Message:
    if action_id is None:
        return ev.Message(headers)
    if first:
        return ev.Message(headers[:1] + [("ActionID", action_id)] + headers[1:])
    return ev.Message(headers + [("ActionID", action_id)])


def start(action_id: str | None, message: str) -> ev.Message:
    return ev.response("Success", action_id, [("EventList", "start"), ("Message", message)])


def complete(name: str, action_id: str | None, count: int, items: bool = False) -> ev.Message:
    headers = [("Event", name), ("EventList", "Complete"), ("ListItems", str(count))]
    if items:
        headers.append(("Items", str(count)))
    return _with_id(headers, action_id, first=True)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _listed(engine: Engine) -> list[Channel]:
    return list(reversed(list(engine.channels.values())))


def core_show_channels(engine: Engine, action_id: str | None) -> list[ev.Message]:
    out = [start(action_id, "Channels will follow")]
    for chan in _listed(engine):
        headers = [("Event", "CoreShowChannel")] + ev.snapshot(chan) + [
            ("Application", chan.app), ("ApplicationData", chan.appdata),
            ("Duration", _duration(engine.now() - chan.created)),
            ("BridgeId", chan.bridge.uniqueid if chan.bridge else ""),
        ]
        out.append(_with_id(headers, action_id, first=True))
    out.append(complete("CoreShowChannelsComplete", action_id, len(out) - 1))
    return out


def status_event(engine: Engine, chan: Channel, action_id: str | None, variables: list[str]) -> ev.Message:
    moh = chan.app in ("MusicOnHold", "Queue")
    headers = [("Event", "Status"), ("Privilege", "Call")] + ev.snapshot(chan) + [
        ("Type", chan.tech), ("DNID", ""),
        ("EffectiveConnectedLineNum", chan.conn_num if chan.conn_num is not None else "<unknown>"),
        ("EffectiveConnectedLineName", ev.escape_c(chan.conn_name) if chan.conn_name is not None else "<unknown>"),
        ("TimeToHangup", "0"), ("BridgeID", chan.bridge.uniqueid if chan.bridge else ""),
        ("Application", chan.app), ("Data", chan.appdata), ("Nativeformats", "(slin)"),
        ("Readformat", "slin"), ("Readtrans", ""), ("Writeformat", "gsm" if moh else "slin"),
        ("Writetrans", "(gsm@8000)->(slin@8000)" if moh else ""), ("Callgroup", "0"), ("Pickupgroup", "0"),
        ("Seconds", str(int(engine.now() - chan.created))),
    ]
    for name in variables:
        value = engine.get_var(chan, name)
        headers.append(("Variable", f"{name}={value if value is not None else '(null)'}"))
    return _with_id(headers, action_id, first=False)


def status(engine: Engine, action_id: str | None, channel: str | None, variables: list[str]) -> list[ev.Message]:
    chans = _listed(engine)
    if channel:
        found = engine.find(channel)
        if found is None:
            return [ev.response("Error", action_id, [("Message", "No such channel")])]
        chans = [found]
    out = [start(action_id, "Channel status will follow")]
    out += [status_event(engine, chan, action_id, variables) for chan in chans]
    out.append(complete("StatusComplete", action_id, len(chans), items=True))
    return out


def queue_params(queue: Queue, action_id: str | None) -> ev.Message:
    return _with_id([
        ("Event", "QueueParams"), ("Queue", queue.name), ("Max", "0"), ("Strategy", queue.strategy),
        ("Calls", str(len(queue.callers))), ("Holdtime", str(queue.holdtime)), ("TalkTime", str(queue.talktime)),
        ("Completed", str(queue.completed)), ("Abandoned", str(queue.abandoned)),
        ("ServiceLevel", str(queue.servicelevel)), ("ServicelevelPerf", queue.perf()),
        ("ServicelevelPerf2", queue.perf2()), ("Weight", str(queue.weight)),
    ], action_id, first=False)


def queue_member(queue: Queue, member, action_id: str | None) -> ev.Message:
    return _with_id([
        ("Event", "QueueMember"), ("Queue", queue.name), ("Name", member.name), ("Location", member.interface),
        ("StateInterface", member.state_interface), ("Membership", "dynamic"), ("Penalty", str(member.penalty)),
        ("CallsTaken", str(member.calls)), ("LastCall", str(member.last_call)),
        ("LastPause", str(member.last_pause)), ("LoginTime", str(member.login_time)),
        ("InCall", "1" if member.in_call else "0"), ("Status", str(member.status)),
        ("Paused", "1" if member.paused else "0"), ("PausedReason", member.paused_reason), ("Wrapuptime", "0"),
    ], action_id, first=False)


def queue_entry(engine: Engine, queue: Queue, entry, action_id: str | None) -> ev.Message:
    chan = entry.chan
    return _with_id([
        ("Event", "QueueEntry"), ("Queue", queue.name), ("Position", str(queue.position(entry))),
        ("Channel", chan.name), ("Uniqueid", chan.uniqueid),
        ("CallerIDNum", chan.cid_num or "unknown"), ("CallerIDName", chan.cid_name or "unknown"),
        ("ConnectedLineNum", chan.conn_num or "unknown"), ("ConnectedLineName", chan.conn_name or "unknown"),
        ("Wait", str(int(engine.wall()) - int(entry.wall_start))), ("Priority", "0"),
    ], action_id, first=False)


def queue_status(engine: Engine, action_id: str | None, queue_name: str | None,
                 member_filter: str | None) -> list[ev.Message]:
    out = [start(action_id, "Queue status will follow")]
    for queue in engine.queues.queues.values():
        if queue_name and queue.name != queue_name:
            continue
        out.append(queue_params(queue, action_id))
        for member in queue.members.values():
            if member_filter and member.interface != member_filter and member.name != member_filter:
                continue
            out.append(queue_member(queue, member, action_id))
        out += [queue_entry(engine, queue, entry, action_id) for entry in queue.callers]
    out.append(complete("QueueStatusComplete", action_id, len(out) - 1))
    return out


def queue_summary(engine: Engine, action_id: str | None, queue_name: str | None) -> list[ev.Message]:
    out = [start(action_id, "Queue summary will follow")]
    for queue in engine.queues.queues.values():
        if queue_name and queue.name != queue_name:
            continue
        waits = [int(engine.wall()) - int(entry.wall_start) for entry in queue.callers]
        out.append(_with_id([
            ("Event", "QueueSummary"), ("Queue", queue.name),
            ("LoggedIn", str(sum(1 for m in queue.members.values() if m.status not in (INVALID, UNAVAILABLE)))), ("Available", str(len(queue.available()))),
            ("Callers", str(len(queue.callers))), ("HoldTime", str(queue.holdtime)),
            ("TalkTime", str(queue.talktime)), ("LongestHoldTime", str(max(waits, default=0))),
        ], action_id, first=False))
    out.append(complete("QueueSummaryComplete", action_id, len(out) - 1))
    return out
