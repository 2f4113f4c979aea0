"""AGI command handlers with the replies Asterisk 22 gives (agi_session.txt, res_agi.c).

A handler is a generator ``handler(session, argv)`` that writes its reply with
``session.reply()`` and returns SUCCESS, FAILURE, SHOWUSAGE or another int
(AMI says "Unknown Result", as for ``EXEC NoSuchApp`` -> ``200 result=-2``).
The ones that take time on the channel are in agi_media.py.  The table says
which commands still run on a dead channel (res_agi.c ``dead`` column); the
others answer ``511``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import events as ev
from callcenter.sim.agi_codes import SHOWUSAGE, SUCCESS
from callcenter.sim.agi_media import (
    h_control_stream_file,
    h_exec,
    h_get_data,
    h_get_option,
    h_say_alpha,
    h_say_digits,
    h_say_number,
    h_stream_file,
    h_wait_for_digit,
)
from callcenter.sim.apps import answer
from callcenter.sim.originate import parse_callerid
from callcenter.sim.pbx import channel_info
from callcenter.sim.tasks import instant

if TYPE_CHECKING:
    from callcenter.sim.agi_session import AgiSession


@instant
def h_answer(s: AgiSession, argv):
    if s.chan.state != 6:
        answer(s.engine, s.chan)
    s.reply("200 result=0")
    return SUCCESS


@instant
def h_channel_status(s: AgiSession, argv):
    if len(argv) == 2:
        s.reply(f"200 result={s.chan.state}")
    elif len(argv) == 3:
        other = s.engine.find(argv[2])
        s.reply(f"200 result={other.state}" if other else "200 result=-1")
    else:
        return SHOWUSAGE
    return SUCCESS


@instant
def h_db_get(s: AgiSession, argv):
    if len(argv) != 4:
        return SHOWUSAGE
    value = s.engine.astdb.get((argv[2], argv[3]))
    s.reply("200 result=0" if value is None else f"200 result=1 ({value})")
    return SUCCESS


@instant
def h_db_put(s: AgiSession, argv):
    if len(argv) != 5:
        return SHOWUSAGE
    s.engine.astdb[(argv[2], argv[3])] = argv[4]
    s.reply("200 result=1")
    return SUCCESS


@instant
def h_db_del(s: AgiSession, argv):
    if len(argv) != 4:
        return SHOWUSAGE
    found = s.engine.astdb.pop((argv[2], argv[3]), None) is not None
    s.reply(f"200 result={1 if found else 0}")
    return SUCCESS


@instant
def h_db_deltree(s: AgiSession, argv):
    if len(argv) not in (3, 4):
        return SHOWUSAGE
    prefix = argv[3] if len(argv) == 4 else ""
    doomed = [key for key in s.engine.astdb if key[0] == argv[2] and key[1].startswith(prefix)]
    for key in doomed:
        del s.engine.astdb[key]
    s.reply(f"200 result={0 if doomed else 1}")
    return SUCCESS


@instant
def h_get_full_variable(s: AgiSession, argv):
    if len(argv) not in (4, 5):
        return SHOWUSAGE
    chan = s.chan if len(argv) == 4 else s.engine.find(argv[4])
    if chan is None:
        s.reply("200 result=0")
    else:
        s.reply(f"200 result=1 ({s.engine.expand(chan, argv[3])})")
    return SUCCESS


@instant
def h_get_variable(s: AgiSession, argv):
    if len(argv) != 3:
        return SHOWUSAGE
    name = argv[2]
    if name.upper().startswith("CALLERID(") and name.endswith(")"):
        value = channel_info(s.chan, "CALLERID(" + name[9:-1].lower() + ")") or ""
    elif name.endswith(")"):
        value = s.engine.expand(s.chan, "${" + name + "}")
    else:
        value = channel_info(s.chan, name) or s.engine.get_var(s.chan, name)
    s.reply("200 result=0" if value is None else f"200 result=1 ({value})")
    return SUCCESS


@instant
def h_hangup(s: AgiSession, argv):
    if len(argv) == 1:
        target = s.chan
    elif len(argv) == 2:
        target = s.engine.find(argv[1])
        if target is None:
            s.reply("200 result=-1")
            return SUCCESS
    else:
        return SHOWUSAGE
    s.engine.emit(ev.soft_hangup_request(target, 32))
    s.reply("200 result=1")
    s.engine.request_hangup(target, 0)
    return SUCCESS


@instant
def h_noop(s: AgiSession, argv):
    s.reply("200 result=0")
    return SUCCESS


@instant
def h_set_callerid(s: AgiSession, argv):
    if len(argv) > 2:
        number, name = parse_callerid(argv[2])
        s.engine.set_callerid(s.chan, number or "", name or "")
    s.reply("200 result=1")
    return SUCCESS


def h_set_location(field: str):
    @instant
    def handler(s: AgiSession, argv):
        if len(argv) != 3:
            return SHOWUSAGE
        if field == "priority":
            target = int(argv[2]) if argv[2].isdigit() else s.engine.dialplan.label(
                s.chan.context, s.chan.exten, argv[2])
            if not target:
                return SHOWUSAGE
            s.chan.priority = target
        else:
            setattr(s.chan, field, argv[2])
        s.reply("200 result=0")
        return SUCCESS
    return handler


@instant
def h_set_music(s: AgiSession, argv):
    if len(argv) < 3:
        return SHOWUSAGE
    if argv[2].lower().startswith("on"):
        s.engine.emit(ev.moh_start(s.chan, argv[3] if len(argv) > 3 else "default"))
    elif argv[2].lower().startswith("off"):
        s.engine.emit(ev.moh_stop(s.chan))
    s.reply("200 result=0")
    return SUCCESS


@instant
def h_set_variable(s: AgiSession, argv):
    if len(argv) != 4:
        return SHOWUSAGE
    name, value = argv[2], argv[3]
    if name.upper().startswith("CALLERID(") and name.endswith(")"):
        part = name[9:-1].lower()
        number, cid_name = s.chan.cid_num, s.chan.cid_name
        if part == "name":
            cid_name = value
        elif part in ("num", "number"):
            number = value
        elif part == "all":
            number, cid_name = parse_callerid(value)
        s.engine.set_callerid(s.chan, number, cid_name)
    else:
        s.engine.set_var(s.chan, name, value)
    s.reply("200 result=1")
    return SUCCESS


@instant
def h_set_autohangup(s: AgiSession, argv):
    if len(argv) != 3:
        return SHOWUSAGE
    try:
        seconds = float(argv[2])
    except ValueError:
        return SHOWUSAGE
    s.set_autohangup(max(0.0, seconds))
    s.reply("200 result=0")
    return SUCCESS


@instant
def h_verbose(s: AgiSession, argv):
    if len(argv) < 2:
        return SHOWUSAGE
    s.reply("200 result=1")
    return SUCCESS


def h_constant(reply: str, argc: int | None = None):
    """Commands a Local channel cannot really do (text, TDD, speech): the reply Asterisk ends with.

    (RECEIVE CHAR/TEXT answer at once, where Asterisk first waits out the timeout.)
    """

    @instant
    def handler(s: AgiSession, argv):
        if argc is not None and len(argv) != argc:
            return SHOWUSAGE
        s.reply(reply)
        return SUCCESS
    return handler


#: (words, handler, runs on a dead channel)
COMMANDS = [
    (("answer",), h_answer, False),
    (("asyncagi", "break"), h_constant("200 result=0"), True),
    (("channel", "status"), h_channel_status, False),
    (("database", "del"), h_db_del, True),
    (("database", "deltree"), h_db_deltree, True),
    (("database", "get"), h_db_get, True),
    (("database", "put"), h_db_put, True),
    (("exec",), h_exec, True),
    (("get", "data"), h_get_data, False),
    (("get", "full", "variable"), h_get_full_variable, True),
    (("get", "option"), h_get_option, False),
    (("get", "variable"), h_get_variable, True),
    (("hangup",), h_hangup, False),
    (("noop",), h_noop, True),
    (("receive", "char"), h_constant("200 result=0 (timeout)", 3), False),
    (("receive", "text"), h_constant("200 result=-1", 3), False),
    (("say", "alpha"), h_say_alpha, False),
    (("say", "digits"), h_say_digits, False),
    (("say", "number"), h_say_number, False),
    (("say", "phonetic"), h_say_alpha, False),
    (("send", "text"), h_constant("200 result=0", 3), False),
    (("set", "autohangup"), h_set_autohangup, False),
    (("set", "callerid"), h_set_callerid, False),
    (("set", "context"), h_set_location("context"), False),
    (("set", "extension"), h_set_location("exten"), False),
    (("set", "music"), h_set_music, False),
    (("set", "priority"), h_set_location("priority"), False),
    (("set", "variable"), h_set_variable, True),
    (("stream", "file"), h_stream_file, False),
    (("control", "stream", "file"), h_control_stream_file, False),
    (("verbose",), h_verbose, True),
    (("wait", "for", "digit"), h_wait_for_digit, False),
]


def find_command(argv: list[str]):
    """res_agi.c find_command: words compared case-insensitively, longer commands need all words."""
    lowered = [word.lower() for word in argv]
    for words, handler, dead_ok in COMMANDS:
        if lowered[:len(words)] == list(words):
            return " ".join(words), handler, dead_ok
    return None
