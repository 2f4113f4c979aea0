"""AGI commands that take time on the channel: prompts, digits, spoken numbers, EXEC.

They wait through ``session.media()``, which returns early on an accepted
digit or a hangup.  Replies and timings as recorded in agi_session.txt:
``GET DATA`` (prompt interruptible by any digit, 6 s for the first digit and
2 s between digits unless a timeout is given, ``#`` ends the input,
``200 result= (timeout)`` with no digit, ``200 result=-1`` on hangup and for
a prompt that cannot be opened, the channel staying up; an empty prompt only
reads digits), ``STREAM FILE`` (``endpos`` in 8 kHz samples, ``-1 endpos=0``
for a missing file, which is a command failure), ``CONTROL STREAM FILE``
(``endpos`` in ms), ``SAY DIGITS`` (about 0.83 s a digit), ``EXEC`` (``-2``
for an unknown application; Playback answers 0 even for a missing file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim.agi_codes import FAILURE, SHOWUSAGE, SUCCESS

if TYPE_CHECKING:
    from callcenter.sim.agi_session import AgiSession

DIGITS = "0123456789*#ABCD"
SAY_SECONDS = 0.8275  # one digit file (SAY DIGITS 12 took 1.655 s)
FIRST_DIGIT_TIMEOUT, BETWEEN_DIGITS_TIMEOUT = 6.0, 2.0  # ast_app_getdata_full defaults
GET_OPTION_TIMEOUT = 5.0  # the pbx digit timeout


def h_exec(s: AgiSession, argv):
    if len(argv) < 2:
        return SHOWUSAGE
    app, data = argv[1], argv[2] if len(argv) > 2 else ""
    if app.lower() == "playback":
        result = yield from s.playback(data.split(",")[0])
    elif app.lower() in ("saydigits", "saynumber"):
        outcome = yield from s.media(SAY_SECONDS * max(1, len(data)), None)
        result = -1 if outcome[0] == "hangup" else 0
    else:
        impl = next((fn for name, fn in s.engine.apps.items() if name.lower() == app.lower()), None)
        if impl is None or app.lower() in ("agi", "queue", "dial"):
            s.reply("200 result=-2")
            return -2
        result = yield from s.run_app(impl, data)
    s.reply(f"200 result={result}")
    return result


def h_get_data(s: AgiSession, argv):
    """ast_app_getdata_full: prompt (any digit interrupts it), 6 s for the first digit and 2 s
    between digits unless a timeout is given, ``#`` ends the input."""
    if len(argv) < 3:
        return SHOWUSAGE
    timeout = _atoi(argv[3]) if len(argv) >= 4 else 0
    maximum = _atoi(argv[4]) if len(argv) >= 5 else 1024
    if timeout > 0:
        first = between = timeout / 1000
    elif timeout < 0:
        first = between = None
    else:
        first, between = FIRST_DIGIT_TIMEOUT, BETWEEN_DIGITS_TIMEOUT
    prompt = argv[2]
    if prompt and not s.sounds.exists(prompt):  # ast_app_getdata_full: ast_streamfile's -1
        s.reply("200 result=-1")
        return SUCCESS
    digits, wait = "", first
    outcome = yield from s.media(s.sounds.duration(prompt) if prompt else 0.0, DIGITS)
    while True:
        if outcome[0] == "done":
            outcome = yield from s.media(wait, DIGITS)
            if outcome[0] == "done":
                s.reply(f"200 result={digits} (timeout)")
                return SUCCESS
        if outcome[0] == "hangup":
            s.reply("200 result=-1")
            return SUCCESS
        digit = outcome[1]
        if digit == "#" and not digits:
            s.reply("200 result=#")
            return SUCCESS
        if digit != "#":
            digits += digit
        if digit == "#" or len(digits) >= maximum:
            s.reply(f"200 result={digits}")
            return SUCCESS
        wait, outcome = between, ("done", None)


def _atoi(text: str) -> int:
    digits = ""
    for index, char in enumerate(text.strip()):
        if char.isdigit() or (index == 0 and char in "+-"):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _stream(s: AgiSession, argv, per_second: int = 8000, wait_after: float | None = None):
    """Play argv[2]; ``endpos`` counts ``per_second`` units (samples, or ms for CONTROL STREAM FILE)."""
    name, escapes = argv[2], argv[3] if len(argv) > 3 else ""
    if not s.sounds.exists(name):
        s.reply("200 result=-1 endpos=0")
        return FAILURE
    started = s.engine.now()
    outcome = yield from s.media(s.sounds.duration(name), escapes or None)
    elapsed = s.engine.now() - started
    if outcome[0] == "done" and wait_after:
        outcome = yield from s.media(wait_after, escapes or None)
        outcome = ("done", None) if outcome[0] == "done" else outcome
    result = {"hangup": -1, "digit": ord(outcome[1]) if outcome[1] else 0}.get(outcome[0], 0)
    if outcome[0] == "done" and per_second == 8000:
        s.engine.set_var(s.chan, "PLAYBACKSTATUS", "SUCCESS")
    if per_second == 8000:
        endpos = min(s.sounds.samples(name), int(elapsed * 8000))
    else:
        endpos = int(min(s.sounds.duration(name), elapsed) * per_second)
    s.reply(f"200 result={result} endpos={endpos}")
    return SUCCESS if result >= 0 else FAILURE


def h_stream_file(s: AgiSession, argv):
    if len(argv) not in (4, 5):
        return SHOWUSAGE
    return (yield from _stream(s, argv))


def h_control_stream_file(s: AgiSession, argv):
    """res_agi.c handle_controlstreamfile: 5 to 10 words, ``200 result=N endpos=<ms>``."""
    if not 5 <= len(argv) <= 10:
        return SHOWUSAGE
    return (yield from _stream(s, argv[:2] + [argv[3], argv[4]], per_second=1000))


def h_get_option(s: AgiSession, argv):
    if len(argv) not in (4, 5):
        return SHOWUSAGE
    wait = int(argv[4]) / 1000 if len(argv) == 5 and argv[4].isdigit() else GET_OPTION_TIMEOUT
    return (yield from _stream(s, argv[:4], wait_after=wait))


def _say(s: AgiSession, words: int, escapes: str):
    outcome = yield from s.media(SAY_SECONDS * max(1, words), escapes or None)
    result = {"hangup": -1, "digit": ord(outcome[1]) if outcome[1] else 0}.get(outcome[0], 0)
    s.reply(f"200 result={result}")
    return SUCCESS if result >= 0 else FAILURE


def h_say_digits(s: AgiSession, argv):
    if len(argv) != 4 or not argv[2].isdigit():
        return SHOWUSAGE
    return (yield from _say(s, len(argv[2]), argv[3]))


def h_say_number(s: AgiSession, argv):
    if len(argv) not in (4, 5) or not argv[2].lstrip("-").isdigit():
        return SHOWUSAGE
    return (yield from _say(s, number_words(int(argv[2])), argv[3]))


def h_say_alpha(s: AgiSession, argv):
    if len(argv) != 4:
        return SHOWUSAGE
    return (yield from _say(s, len(argv[2]), argv[3]))


def number_words(value: int) -> int:
    """How many sound files ast_say_number_full (en) plays for ``value``."""
    words, value = (1, -value) if value < 0 else (0, value)
    for unit in (1_000_000, 1000, 100):
        if value >= unit:
            words += number_words(value // unit) + 1
            value %= unit
    if value >= 20:
        words += 1
        value %= 10
    return words + (1 if value or not words else 0)


def h_wait_for_digit(s: AgiSession, argv):
    if len(argv) != 4 or not argv[3].lstrip("-").isdigit():
        return SHOWUSAGE
    timeout = int(argv[3])
    outcome = yield from s.media(None if timeout < 0 else timeout / 1000, DIGITS)
    result = {"hangup": -1, "digit": ord(outcome[1]) if outcome[1] else 0}.get(outcome[0], 0)
    s.reply(f"200 result={result}")
    return SUCCESS if result >= 0 else FAILURE
