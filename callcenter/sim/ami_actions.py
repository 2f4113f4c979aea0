"""AMI action handlers with the exact response texts of Asterisk 22 (ami_actions.txt, manager.c).

A handler gets the session and the parsed action and returns a :class:`Reply`:
the response message(s), and an ``after`` callable for the action's effects
(Asterisk writes the response before the events the action causes).  Sync
Originate and a failed Login return a Deferred (the session thread is busy
meanwhile: events and later actions wait).

The texts of QueuePenalty, QueueLog, Bridge, Atxfer, BlindTransfer, PlayDTMF,
Hangup by /regex/ and of the argument errors were taken from Asterisk
22.10.1 as the ``cti`` user (tests/test_real_asterisk_ami.py), CancelAtxfer's
from tests/test_real_asterisk_actions.py.  Atxfer's and CancelAtxfer's
digits and the attended transfer they start and abort are in atxfer.py, the
bridge AMI Bridge makes in ami_bridge.py.  What the sim
does not do: check the user's write classes (Command, and Originate of
System() & co., which Asterisk refuses to ``cti``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet import defer

from callcenter.sim import ami_bridge, ami_lists, atxfer
from callcenter.sim import events as ev
from callcenter.sim.originate import Originate, OriginateRequest, parse_callerid

LOGIN_FAIL_DELAY = 1.0
UNKNOWN = "Invalid/unknown command: {}. Use Action: ListCommands to show available commands."


class Action:
    """A parsed action: headers in order, keys compared case-insensitively."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers

    def get(self, key: str, default: str = "") -> str:
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def getall(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    @property
    def name(self) -> str:
        return self.get("Action").strip()

    @property
    def action_id(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "actionid":
                return value
        return None


@dataclass
class Reply:
    messages: list[ev.Message]
    after: Callable[[], None] | None = None
    close: bool = False
    extra: list[ev.Message] = field(default_factory=list)  # sent to this session after the response


def ok(action: Action, message: str, after=None) -> Reply:
    return Reply([ev.response("Success", action.action_id, [("Message", message)])], after)


def error(action: Action, message: str, close: bool = False) -> Reply:
    return Reply([ev.response("Error", action.action_id, [("Message", message)])], close=close)


def action_login(session, action: Action):
    username, secret = action.get("Username"), action.get("Secret")
    if not session.server.check_secret(username, secret):
        d = defer.Deferred()
        session.server.clock.callLater(LOGIN_FAIL_DELAY, d.callback, error(action, "Authentication failed",
                                                                           close=True))
        return d
    session.login(username, action.get("Events", "on"))
    return Reply([ev.response("Success", action.action_id, [("Message", "Authentication accepted")])],
                 after=session.announce_login)


def action_logoff(session, action: Action) -> Reply:
    return Reply([ev.response("Goodbye", action.action_id, [("Message", "Thanks for all the fish.")])], close=True)


def action_ping(session, action: Action) -> Reply:
    wall = session.engine.wall()
    return Reply([ev.response("Success", action.action_id, [("Ping", "Pong"), ("Timestamp", f"{wall:.6f}")])])


def action_events(session, action: Action) -> Reply:
    enabled = session.set_events(action.get("EventMask"))
    if enabled is None:
        return error(action, "Invalid event mask")
    return Reply([ev.response("Success", action.action_id, [("Events", "On" if enabled else "Off")])])


def action_corestatus(session, action: Action) -> Reply:
    engine = session.engine
    start, reload = session.server.local_time(engine.started_at), session.server.local_time(engine.reloaded_at)
    return Reply([ev.response("Success", action.action_id, [
        ("CoreStartupDate", start[0]), ("CoreStartupTime", start[1]),
        ("CoreReloadDate", reload[0]), ("CoreReloadTime", reload[1]),
        ("CoreCurrentCalls", str(sum(1 for c in engine.channels.values() if c.half == 1))),
        ("CoreProcessedCalls", str(engine.processed_calls)),
    ])])


def action_command(session, action: Action) -> Reply:
    command = action.get("Command").strip()
    output, after, known = session.server.cli(command)
    lines = output[:-1].split("\n") if output.endswith("\n") else output.split("\n")
    body = [("Message", "Command output follows")] + [("Output", line) for line in lines]
    return Reply([ev.response("Success" if known else "Error", action.action_id, body)], after)


def action_setvar(session, action: Action) -> Reply:
    """Without Channel a global (VarSet ``Channel: none``, read in the dialplan as ${NAME});
    a function needs a channel there (manager.c: "Variable not set"), except GLOBAL()."""
    name, value, channel = action.get("Variable"), action.get("Value"), action.get("Channel")
    if not name:
        return error(action, "No variable specified")
    engine = session.engine
    chan = engine.find(channel) if channel else None
    if channel and chan is None:
        return error(action, "No such channel")
    if chan is None and name.endswith(")"):
        inner = re.fullmatch(r"GLOBAL\((.+)\)", name, re.IGNORECASE)
        if inner is None:
            return error(action, "Variable not set")
        name = inner.group(1)

    def apply() -> None:
        if chan is not None and name.upper().startswith("CALLERID(") and name.endswith(")"):
            part = name[9:-1].lower()
            number = value if part in ("num", "number") else chan.cid_num
            cid_name = value if part == "name" else chan.cid_name
            engine.set_callerid(chan, number, cid_name)
        else:
            engine.set_var(chan, name, value)

    return ok(action, "Variable Set", apply)


def action_getvar(session, action: Action) -> Reply:
    name, channel = action.get("Variable"), action.get("Channel")
    if not name:
        return error(action, "No variable specified")
    engine = session.engine
    chan = engine.find(channel) if channel else None
    if channel and chan is None:
        return error(action, "No such channel")
    if chan is not None and name.endswith(")"):
        value = engine.expand(chan, "${" + name + "}")
    else:
        value = engine.get_var(chan, name)
    return Reply([ev.response("Success", action.action_id, [("Variable", name), ("Value", value or "")])])


def action_hangup(session, action: Action) -> Reply:
    channel = action.get("Channel")
    if not channel:
        return error(action, "No channel specified")
    cause = action.get("Cause")
    code = int(cause) if cause.isdigit() else 16
    if len(channel) > 1 and channel.startswith("/") and channel.endswith("/"):
        return _hangup_matching(session, action, channel, code)
    chan = session.engine.find(channel)
    if chan is None:
        return error(action, "No such channel")
    return ok(action, "Channel Hungup", lambda: session.engine.request_hangup(chan, code))


def _hangup_matching(session, action: Action, channel: str, cause: int) -> Reply:
    """``Channel: /regex/``: every matching channel, answered as a list (ChannelsHungupListComplete)."""
    try:
        pattern = re.compile(channel[1:-1])
    except re.error:
        return error(action, f"Regex compile failed on: {channel}")
    engine, aid = session.engine, action.action_id
    chans = [chan for chan in list(engine.channels.values()) if pattern.search(chan.name)]
    items = [ev.Message([("Event", "ChannelHungup"), ("Channel", chan.name)]
                        + ([("ActionID", aid)] if aid is not None else [])) for chan in chans]

    def apply() -> None:
        for chan in chans:
            if not chan.hungup:
                engine.request_hangup(chan, cause)

    return Reply([ami_lists.start(aid, "Channels hung up will follow")], apply,
                 extra=items + [ami_lists.complete("ChannelsHungupListComplete", aid, len(items))])


def action_redirect(session, action: Action) -> Reply:
    name, context, exten = action.get("Channel"), action.get("Context"), action.get("Exten")
    priority, extra = action.get("Priority"), action.get("ExtraChannel")
    engine = session.engine
    if not name:
        return error(action, "Channel not specified")
    if not context:
        return error(action, "Context not specified")
    if not exten:
        return error(action, "Exten not specified")
    if not priority:
        return error(action, "Priority not specified")
    number = int(priority) if priority.isdigit() else engine.dialplan.label(context, exten, priority)
    if not number or number < 1:
        return error(action, "Priority is invalid")
    chan = engine.find(name)
    if chan is None:
        return error(action, f"Channel does not exist: {name}")
    other = engine.find(extra) if extra else None
    if extra and other is None:
        return error(action, f"ExtraChannel does not exist: {extra}")

    def apply() -> None:
        engine.redirect(chan, context, exten, number)
        if other is not None:
            other_context = action.get("ExtraContext") or context
            other_exten = action.get("ExtraExten") or exten
            other_priority = action.get("ExtraPriority")
            engine.redirect(other, other_context, other_exten, int(other_priority) if other_priority.isdigit()
                            else number)

    return ok(action, "Dual Redirect successful" if other else "Redirect successful", apply)


def split_variables(values: list[str]) -> list[tuple[str, str]]:
    """Originate ``Variable:`` headers, each split at commas like AST_STANDARD_APP_ARGS."""
    found = []
    for header in values:
        for part in _split_args(header):
            name, sep, value = part.partition("=")
            if sep and name:
                found.append((name, value))
    return found


def _split_args(text: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def action_originate(session, action: Action):
    channel = action.get("Channel")
    if not channel:
        return error(action, "Channel not specified")
    priority = action.get("Priority", "1") or "1"
    if not priority.isdigit():
        return error(action, "Invalid priority")
    timeout = action.get("Timeout")
    number, name = parse_callerid(action.get("CallerID"))
    request = OriginateRequest(
        channel=channel, context=action.get("Context") or None, exten=action.get("Exten") or None,
        priority=int(priority), application=action.get("Application") or None, data=action.get("Data"),
        cid_num=number, cid_name=name, variables=split_variables(action.getall("Variable")),
        timeout=int(timeout) / 1000 if timeout.isdigit() else 30.0, action_id=action.action_id,
        channel_id=action.get("ChannelId") or None, other_channel_id=action.get("OtherChannelId") or None,
    )
    if action.get("Async").strip().lower() in ("true", "yes", "1", "on", "y", "t"):
        return ok(action, "Originate successfully queued", lambda: Originate(session.engine, request).start())
    request.asynchronous = False
    d = defer.Deferred()

    def done(success: bool, chan) -> None:
        if not d.called:
            d.callback(ok(action, "Originate successfully queued") if success else error(action, "Originate failed"))

    session.engine.scheduler.soon(lambda: Originate(session.engine, request, done).start())
    return d


def ast_true(text: str) -> bool:
    """utils.c ast_true."""
    return text.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _penalty(text: str) -> int:
    """sscanf("%30d"), and 0 for a negative or missing one (manager_add_queue_member)."""
    match = re.match(r"\s*([-+]?\d+)", text)
    value = int(match.group(1)) if match else 0
    return value if value >= 0 else 0


def action_queueadd(session, action: Action) -> Reply:
    """Queue, Interface, Penalty, Paused, MemberName, StateInterface, Reason (app_queue.c)."""
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue:
        return error(action, "'Queue' not specified.")
    if not interface:
        return error(action, "'Interface' not specified.")
    paused = ast_true(action.get("Paused"))
    queues = session.engine.queues
    target = queues.get(queue)
    if target is None:
        return error(action, "Unable to add interface to queue: No such queue")
    if target.member(interface) is not None:
        return error(action, "Unable to add interface: Already there")
    return ok(action, "Added interface to queue",
              lambda: queues.add(target.name, interface, action.get("MemberName") or None,
                                 _penalty(action.get("Penalty")), paused, action.get("Reason"),
                                 action.get("StateInterface")))


def action_queueremove(session, action: Action) -> Reply:
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue or not interface:
        return error(action, "Need 'Queue' and 'Interface' parameters.")
    queues = session.engine.queues
    target = queues.get(queue)
    if target is None:
        return error(action, "Unable to remove interface from queue: No such queue")
    if target.member(interface) is None:
        return error(action, "Unable to remove interface: Not there")
    return ok(action, "Removed interface from queue", lambda: queues.remove(target.name, interface))


def action_queuepause(session, action: Action) -> Reply:
    """Interface and Paused required; Queue optional (else every queue the interface is in); Reason."""
    interface, paused_text = action.get("Interface"), action.get("Paused")
    if not interface or not paused_text:
        return error(action, "Need 'Interface' and 'Paused' parameters.")
    paused = ast_true(paused_text)
    queue = action.get("Queue") or None
    queues = session.engine.queues
    if not any(q.member(interface) is not None for q in queues.queues.values()
               if not queue or q.name.lower() == queue.lower()):
        return error(action, "Interface not found")
    return ok(action, "Interface paused successfully" if paused else "Interface unpaused successfully",
              lambda: queues.pause(interface, paused, queue, action.get("Reason")))


def action_queuepenalty(session, action: Action) -> Reply:
    interface, penalty_text = action.get("Interface"), action.get("Penalty")
    if not interface or not penalty_text:
        return error(action, "Need 'Interface' and 'Penalty' parameters.")
    match = re.match(r"\s*([-+]?\d+)", penalty_text)
    penalty = int(match.group(1)) if match else 0          # atoi: "x" is 0
    queue_name = action.get("Queue") or None
    queues = session.engine.queues
    found = [(q, q.member(interface)) for q in queues.queues.values()
             if q.member(interface) is not None and (not queue_name or q.name.lower() == queue_name.lower())]
    if not found or penalty < 0:
        return error(action, "Invalid interface, queuename or penalty")

    def apply() -> None:
        for queue, member in found:
            member.penalty = penalty
            session.engine.emit(ev.queue_member_event("QueueMemberPenalty", queue.name, member))

    return ok(action, "Interface penalty set successfully", apply)


def action_queuelog(session, action: Action) -> Reply:
    if not action.get("Queue") or not action.get("Event"):
        return error(action, "Need 'Queue' and 'Event' parameters.")
    return ok(action, "Event added successfully")   # the sim keeps no queue_log


def action_playdtmf(session, action: Action) -> Reply:
    channel, digit = action.get("Channel"), action.get("Digit")
    chan = session.engine.find(channel) if channel else None
    if chan is None:
        return error(action, "Channel not found")
    if not digit:
        return error(action, "No digit specified")
    # The digit goes out on the channel: a Local ;1's peer ;2 receives it.
    target = chan.peer if chan.peer is not None else chan
    return ok(action, "DTMF successfully queued", lambda: session.engine.dtmf(target, digit[0]))


def action_bridge(session, action: Action) -> Reply:
    name1, name2 = action.get("Channel1"), action.get("Channel2")
    if not name1 or not name2:
        return error(action, "Missing channel parameter in request")
    engine = session.engine
    first = engine.find(name1)
    if first is None:
        return error(action, f"Channel1 does not exist: {name1}")
    second = engine.find(name2)
    if second is None:
        return error(action, f"Channel2 does not exist: {name2}")
    if first is second:
        return error(action, f"Unable to add Channel2 to bridge: Surrogate/{name2}")
    return ok(action, "Channels have been bridged", lambda: ami_bridge.bridge(engine, first, second))


def action_atxfer(session, action: Action) -> Reply:
    channel, exten = action.get("Channel"), action.get("Exten")
    if not channel:
        return error(action, "No channel specified")
    if not exten:
        return error(action, "No extension specified")
    engine = session.engine
    chan = engine.find(channel)
    if chan is None:
        return error(action, "Channel specified does not exist")
    code = atxfer.feature_code(engine, chan)   # features.conf [featuremap] (Simulator featuremap=...)
    if not code:
        return error(action, "No attended transfer feature code found")
    return ok(action, "Atxfer successfully queued",
              lambda: atxfer.queue_digits(engine, chan, code, exten, action.get("Context")))


def action_cancelatxfer(session, action: Action) -> Reply:
    """Answered the same whether or not a transfer runs: Asterisk only queues the abort code."""
    channel = action.get("Channel")
    if not channel:
        return error(action, "No channel specified")
    engine = session.engine
    chan = engine.find(channel)
    if chan is None:
        return error(action, "Channel specified does not exist")
    code = atxfer.abort_code(chan)
    return ok(action, "CancelAtxfer successfully queued", lambda: atxfer.queue_abort(engine, chan, code))


def action_blindtransfer(session, action: Action) -> Reply:
    channel, exten, context = action.get("Channel"), action.get("Exten"), action.get("Context")
    if not channel:
        return error(action, "No channel specified")
    if not exten:
        return error(action, "No extension specified")
    engine = session.engine
    chan = engine.find(channel)
    if chan is None:
        return error(action, "Channel specified does not exist")
    others = [c for c in chan.bridge.channels if c is not chan] if chan.bridge is not None else []
    if len(others) != 1:
        return error(action, "Transfer invalid")
    # The transferer's bridge peer goes to Context/Exten (TRANSFER_CONTEXT or the transferer's context).
    target = context or chan.get_var("TRANSFER_CONTEXT") or chan.context
    return ok(action, "Transfer succeeded", lambda: engine.redirect(others[0], target, exten, 1))


def _list_reply(messages: list[ev.Message]) -> Reply:
    return Reply(messages[:1], extra=messages[1:])


def action_coreshowchannels(session, action: Action) -> Reply:
    return _list_reply(ami_lists.core_show_channels(session.engine, action.action_id))


def action_status(session, action: Action) -> Reply:
    variables = [v.strip() for v in action.get("Variables").split(",") if v.strip()]
    return _list_reply(ami_lists.status(session.engine, action.action_id, action.get("Channel") or None, variables))


def action_queuestatus(session, action: Action) -> Reply:
    return _list_reply(ami_lists.queue_status(session.engine, action.action_id, action.get("Queue") or None,
                                              action.get("Member") or None))


def action_queuesummary(session, action: Action) -> Reply:
    return _list_reply(ami_lists.queue_summary(session.engine, action.action_id, action.get("Queue") or None))


ACTIONS = {
    "login": action_login, "logoff": action_logoff, "ping": action_ping, "events": action_events,
    "corestatus": action_corestatus, "command": action_command, "setvar": action_setvar,
    "getvar": action_getvar, "hangup": action_hangup, "redirect": action_redirect,
    "originate": action_originate, "queueadd": action_queueadd, "queueremove": action_queueremove,
    "queuepause": action_queuepause, "coreshowchannels": action_coreshowchannels, "status": action_status,
    "queuestatus": action_queuestatus, "queuesummary": action_queuesummary, "queuepenalty": action_queuepenalty,
    "queuelog": action_queuelog, "playdtmf": action_playdtmf, "bridge": action_bridge, "atxfer": action_atxfer,
    "cancelatxfer": action_cancelatxfer, "blindtransfer": action_blindtransfer,
}

#: Actions allowed before Login (manager.c process_message).
BEFORE_LOGIN = ("login", "logoff", "challenge")
