"""The few Asterisk CLI commands the simulator answers through the AMI Command action.

``core show version``, ``queue show [queue]`` (the header line is app_queue's
format as recorded; member lines follow app_queue's print_queue without the
terminal colours), ``core show channels concise``, ``core reload``/``reload``,
``core restart now|gracefully|when convenient`` and ``core stop ...``.
Anything else gets the recorded "No such command" text; its help hint
mimics cli.c find_best (words up to the first one no command continues with).
"""

from __future__ import annotations

from collections.abc import Callable

VERSION = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 15:39:43 UTC"

#: Multi-word CLI commands known to find_best (cli.c also has one-word commands,
#: so the first word always "matches").
_KNOWN = [
    "core show version", "core show channels", "core show channel", "core show help", "core show uptime",
    "core show settings", "core reload", "core restart now", "core restart gracefully", "core stop now",
    "core stop gracefully", "core set verbose", "core set debug", "core waitfullybooted", "queue show",
    "queue add member", "queue remove member", "queue pause member", "queue reload all", "module reload",
    "module load", "module unload", "module show", "dialplan show", "dialplan reload", "manager show connected",
    "manager show commands", "manager reload", "agi show commands", "agi set debug", "channel request hangup",
    "database show", "database put", "database get", "database del", "logger reload", "logger rotate",
    "moh show classes", "moh reload", "features show", "local show channels", "bridge show all", "cdr show status",
]

Result = tuple[str, Callable[[], None] | None, bool]


def find_best(words: list[str]) -> str:
    known = [entry.split() for entry in _KNOWN]
    taken = words[:1]
    for index in range(1, len(words)):
        if not any(len(entry) >= index + 1 and entry[:index] == words[:index] for entry in known):
            taken = words[:index + 1]
            break
        taken = words[:index + 1]
    return " ".join(taken)


def run_cli(simulator, command: str) -> Result:
    words = command.split()
    lowered = [word.lower() for word in words]
    engine = simulator.engine
    if lowered == ["core", "show", "version"]:
        return VERSION + "\n", None, True
    if lowered[:2] == ["queue", "show"]:
        return queue_show(simulator, words[2] if len(words) > 2 else None), None, True
    if lowered == ["core", "show", "channels", "concise"]:
        return channels_concise(simulator), None, True
    if lowered in (["core", "reload"], ["reload"]):
        return "", engine.reload, True
    if lowered[:2] in (["core", "restart"], ["core", "stop"]) and len(lowered) >= 3:
        restart = lowered[1] == "restart"
        return "", (lambda: simulator.shutdown(restart=restart)), True
    hint = find_best(words)
    return f"No such command '{command}' (type 'core show help {hint}' for other possible commands)\n", None, False


def queue_show(simulator, name: str | None) -> str:
    engine = simulator.engine
    lines = []
    for queue in engine.queues.queues.values():
        if name and queue.name != name:
            continue
        lines.append(f"{queue.name} has {len(queue.callers)} calls (max unlimited) in '{queue.strategy}' strategy "
                     f"({queue.holdtime}s holdtime, {queue.talktime}s talktime), W:{queue.weight}, "
                     f"C:{queue.completed}, A:{queue.abandoned}, SL:{queue.perf()}%, SL2:{queue.perf2()}% "
                     f"within {queue.servicelevel}s")
        if not queue.members:
            lines.append("   No Members")
        else:
            lines.append("   Members: ")
            for member in queue.members.values():
                text = f"      {member.name}"
                if member.name != member.interface:
                    text += f" ({member.interface})"
                if member.penalty:
                    text += f" with penalty {member.penalty}"
                text += " (ringinuse disabled) (dynamic)"
                if member.in_call:
                    text += " (in call)"
                if member.paused:
                    text += f" (paused{':' + member.paused_reason if member.paused_reason else ''})"
                text += " (Not in use)" if member.status == 1 else " (In use)"
                text += (f" has taken {member.calls} calls (last was {int(engine.wall()) - member.last_call} "
                         "secs ago)" if member.calls else " has taken no calls yet")
                text += f" (login was {int(engine.wall()) - member.login_time} secs ago)"
                lines.append(text)
        if not queue.callers:
            lines.append("   No Callers")
        else:
            lines.append("   Callers: ")
            for position, entry in enumerate(queue.callers, start=1):
                waited = int(engine.wall()) - int(entry.wall_start)
                lines.append(f"      {position}. {entry.chan.name} (wait: {waited // 60}:{waited % 60:02d}, prio: 0)")
        lines.append("")
    if name and not lines:
        return f"No such queue: {name}.\n"
    return "\n".join(lines) + "\n"


def channels_concise(simulator) -> str:
    engine = simulator.engine
    rows = []
    for chan in reversed(list(engine.channels.values())):
        state = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}.get(chan.state, "Unknown")
        rows.append("!".join([chan.name, chan.context, chan.exten, str(chan.priority), state, chan.app,
                              chan.appdata, chan.cid_num or "", "", "", "3",
                              str(int(engine.now() - chan.created)),
                              chan.bridge.uniqueid if chan.bridge else "", chan.uniqueid]))
    return "".join(row + "\n" for row in rows)
