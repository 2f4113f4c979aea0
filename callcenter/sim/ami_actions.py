"""AMI action handlers with the exact response texts of Asterisk 22 (ami_actions.txt, manager.c).

A handler gets the session and the parsed action and returns a :class:`Reply`:
the response message(s), and an ``after`` callable for the action's effects
(Asterisk writes the response before the events the action causes).  Sync
Originate and a failed Login return a Deferred (the session thread is busy
meanwhile: events and later actions wait).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet import defer

from callcenter.sim import ami_lists
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
    name, value, channel = action.get("Variable"), action.get("Value"), action.get("Channel")
    if not name:
        return error(action, "No variable specified")
    engine = session.engine
    chan = engine.find(channel) if channel else None
    if channel and chan is None:
        return error(action, "Channel not found")

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
    chan = session.engine.find(channel)
    if chan is None:
        return error(action, "No such channel")
    cause = action.get("Cause")
    return ok(action, "Channel Hungup",
              lambda: session.engine.request_hangup(chan, int(cause) if cause.isdigit() else 16))


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


def action_queueadd(session, action: Action) -> Reply:
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue:
        return error(action, "'Queue' not specified.")
    if not interface:
        return error(action, "'Interface' not specified.")
    penalty = action.get("Penalty")
    paused = action.get("Paused").strip().lower() in ("true", "yes", "1", "on")
    queues = session.engine.queues
    target = queues.get(queue)
    if target is None:
        return error(action, "Unable to add interface to queue: No such queue")
    if interface in target.members:
        return error(action, "Unable to add interface: Already there")
    return ok(action, "Added interface to queue",
              lambda: queues.add(queue, interface, action.get("MemberName") or None,
                                 int(penalty) if penalty.isdigit() else 0, paused, action.get("Reason")))


def action_queueremove(session, action: Action) -> Reply:
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue or not interface:
        return error(action, "Need 'Queue' and 'Interface' parameters.")
    queues = session.engine.queues
    target = queues.get(queue)
    if target is None:
        return error(action, "Unable to remove interface from queue: No such queue")
    if interface not in target.members:
        return error(action, "Unable to remove interface: Not there")
    return ok(action, "Removed interface from queue", lambda: queues.remove(queue, interface))


def action_queuepause(session, action: Action) -> Reply:
    interface, paused_text = action.get("Interface"), action.get("Paused")
    if not interface:
        return error(action, "Need 'Interface' parameter.")
    if not paused_text:
        return error(action, "Need 'Paused' parameter.")
    paused = paused_text.strip().lower() in ("true", "yes", "1", "on", "y", "t")
    queue = action.get("Queue") or None
    queues = session.engine.queues
    if not any(interface in q.members for q in queues.queues.values() if not queue or q.name == queue):
        return error(action, "Interface not found")
    return ok(action, "Interface paused successfully" if paused else "Interface unpaused successfully",
              lambda: queues.pause(interface, paused, queue, action.get("Reason")))


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
    "queuestatus": action_queuestatus, "queuesummary": action_queuesummary,
}

#: Actions allowed before Login (manager.c process_message).
BEFORE_LOGIN = ("login", "logoff", "challenge")
