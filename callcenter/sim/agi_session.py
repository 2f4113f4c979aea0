"""The AGI() application: one FastAGI session driven from the channel's thread.

Recorded behaviour (agi_session.txt, README.txt "FastAGI"):

* environment block with LF line ends, ``agi_network: yes`` and
  ``agi_network_script`` first, then setup_env's keys, then an empty line;
* while the channel is up the server's commands are executed one at a time;
* when the channel hangs up Asterisk writes ``HANGUP\\n``: after the result of
  a command that was running (``200 result=-1`` then HANGUP ~40 ms later), at
  once if none was; then it stays in "dead AGI" mode (commands not allowed
  on a dead channel answer 511) until the server closes;
* ``HANGUP\\n`` is written again when the session ends (unless AGISIGHUP=no);
  with AGIEXITONHANGUP=yes the session ends at the hangup (two HANGUP lines);
* AGISTATUS: SUCCESS, FAILURE (could not connect, or a command failed while
  the channel was up), HANGUP (then AGI() returns -1 and the dialplan ends).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from callcenter.sim import events as ev
from callcenter.sim.agi_codes import FAILURE, SHOWUSAGE, SUCCESS, parse_args
from callcenter.sim.agi_commands import find_command
from callcenter.sim.agi_usage import usage_reply
from callcenter.sim.channels import Channel
from callcenter.sim.pbx import CONTINUE, HANGUP, JUMPED, Engine
from callcenter.sim.tasks import HangupSignal, RedirectSignal, Sleep, Wait

logger = logging.getLogger(__name__)

AGI_PORT = 4573
HANGUP_AFTER_COMMAND = 0.04
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


@dataclass
class SoundLibrary:
    """Which sound files exist and how long they play (8 kHz samples for ``endpos``).

    ``beep`` is 3404 samples as recorded; every file lasts ``default`` seconds
    unless listed in ``durations``.  A file exists unless it is in ``missing``
    or, when ``available`` is given (a box with only those prompts installed),
    not in ``available``.  A name holding ``&`` never exists: ast_streamfile
    opens one file (GET DATA, STREAM FILE); only Playback splits on ``&``.
    What a missing file gives, as res_agi.c answers on a live channel:
    GET DATA ``200 result=-1``, STREAM FILE ``200 result=-1 endpos=0``
    (AGISTATUS=FAILURE), EXEC Playback ``200 result=0`` (PLAYBACKSTATUS=FAILED).
    """

    durations: dict[str, float] = field(default_factory=lambda: {"beep": 3404 / 8000})
    default: float = 1.0
    missing: frozenset[str] = frozenset()
    available: frozenset[str] | None = None

    def exists(self, name: str) -> bool:
        if not name or "&" in name or name in self.missing:
            return False
        return self.available is None or name in self.available

    def duration(self, name: str) -> float:
        return self.durations.get(name, self.default)

    def samples(self, name: str) -> int:
        return int(round(self.duration(name) * 8000))


Connector = Callable[[str, int, "AgiSession"], None]


class AgiSession:
    """Asterisk's side of one FastAGI connection (res_agi.c run_agi)."""

    def __init__(self, engine: Engine, chan: Channel, url: str, args: list[str],
                 connector: Connector, sounds: SoundLibrary) -> None:
        self.engine = engine
        self.chan = chan
        self.url = url
        self.args = args
        self.connector = connector
        self.sounds = sounds
        self.protocol = None
        self.state = "connecting"
        self.lines: deque[str] = deque()
        self.eof = False
        self.dead = False
        self.needhup = False
        self.status = "SUCCESS"
        self.redirect: RedirectSignal | None = None
        self._digits: deque[str] = deque()
        self._asked = False
        self._autohangup = None
        self.transcript: list[tuple[str, str]] = []  # ("A->S"|"S->A", text) for tests

    # --- protocol callbacks --------------------------------------------------

    def connected(self, protocol) -> None:
        self.protocol = protocol
        self.state = "up"
        self._wake()

    def failed(self, reason: object) -> None:
        logger.info("FastAGI %s for %s failed: %s", self.url, self.chan.name, reason)
        self.state = "failed"
        self._wake()

    def line_received(self, text: str) -> None:
        self.transcript.append(("S->A", text))
        self.lines.append(text)
        self._wake()

    def connection_closed(self) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        task = self.chan.task
        if task is not None and not task.done:
            self.engine.scheduler.soon(task.wake)

    def write(self, text: str) -> None:
        self.transcript.append(("A->S", text))
        if self.protocol is not None and self.state != "closed":
            self.protocol.send(text)

    def reply(self, text: str) -> None:
        self.write(text + "\n")

    # --- the AGI() application ----------------------------------------------

    def run(self):
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or AGI_PORT
        self.connector(host, port, self)
        while self.state == "connecting":
            try:
                yield Wait()
            except HangupSignal:
                self._hangup_detected()
            except RedirectSignal as redirect:
                self.redirect = redirect
        if self.state == "failed":
            self.engine.set_var(self.chan, "AGISTATUS", "FAILURE")
            if self.redirect is not None:
                raise self.redirect
            return CONTINUE
        sighup = self.engine.get_var(self.chan, "AGISIGHUP")
        send_sighup = not (sighup is not None and sighup.lower() in ("no", "false", "0", "off"))
        exit_on_hangup = is_true_word(self.engine.get_var(self.chan, "AGIEXITONHANGUP"))
        self.write(self._environment())
        while True:
            if self.needhup:
                self.needhup = False
                self.dead = True
                if send_sighup:
                    self.write("HANGUP\n")
                if exit_on_hangup:
                    break
            if self.lines:
                yield from self._execute(self.lines.popleft())
                if self.needhup and not exit_on_hangup:
                    yield from self._pause(HANGUP_AFTER_COMMAND)
                continue
            if self.eof:
                break
            try:
                yield Wait()
            except HangupSignal:
                self._hangup_detected()
            except RedirectSignal as redirect:
                self.redirect = redirect
                self._hangup_detected()
        if send_sighup:
            self.write("HANGUP\n")
        self._close()
        self.engine.set_var(self.chan, "AGISTATUS", self.status)
        if self.redirect is not None:
            raise self.redirect
        return HANGUP if self.status == "HANGUP" else CONTINUE

    def _pause(self, seconds: float):
        try:
            yield Sleep(seconds)
        except HangupSignal:
            pass

    def _hangup_detected(self) -> None:
        if self.dead or self.needhup:
            return
        self.needhup = True
        if self.status == "SUCCESS":
            self.status = "HANGUP"

    def _close(self) -> None:
        if self._autohangup is not None and self._autohangup.active():
            self._autohangup.cancel()
        if self.protocol is not None and self.state != "closed":
            self.protocol.close()
        self.state = "closed"

    def _environment(self) -> str:
        chan = self.chan
        script = self.url.split("/", 3)[3] if self.url.count("/") >= 3 else ""
        lines = [
            ("agi_network", "yes"), ("agi_network_script", script), ("agi_request", self.url),
            ("agi_channel", chan.name), ("agi_language", chan.language), ("agi_type", chan.tech),
            ("agi_uniqueid", chan.uniqueid), ("agi_version", self.engine.version),
            ("agi_callerid", chan.cid_num if chan.cid_num is not None else "unknown"),
            ("agi_calleridname", chan.cid_name if chan.cid_name is not None else "unknown"),
            ("agi_callingpres", "0"), ("agi_callingani2", "0"), ("agi_callington", "0"),
            ("agi_callingtns", "0"), ("agi_dnid", "unknown"), ("agi_rdnis", "unknown"),
            ("agi_context", chan.context), ("agi_extension", chan.exten), ("agi_priority", str(chan.priority)),
            ("agi_enhanced", "0.0"), ("agi_accountcode", chan.accountcode),
            ("agi_threadid", str(self.engine.thread_id())),
        ]
        lines += [(f"agi_arg_{index}", arg) for index, arg in enumerate(self.args, start=1)]
        return "".join(f"{key}: {value}\n" for key, value in lines) + "\n"

    def _execute(self, line: str):
        engine, chan = self.engine, self.chan
        self._asked = False
        command_id = engine.naming.command_id()
        engine.emit(ev.agi_exec_start(chan, command_id, line))
        found = find_command(parse_args(line))
        if found is None:
            self.reply("510 Invalid or unknown command")
            engine.emit(ev.agi_exec_end(chan, command_id, line, 510, "Invalid or unknown command"))
            return
        name, handler, dead_ok = found
        if self.dead and not dead_ok:
            self.reply(DEAD)
            engine.emit(ev.agi_exec_end(chan, command_id, line, 511, DEAD[4:]))
            return
        result = yield from handler(self, parse_args(line))
        code, text = {SUCCESS: (200, "Success"), SHOWUSAGE: (520, "Usage"),
                      FAILURE: (-1, "Failure")}.get(result, (200, "Unknown Result"))
        engine.emit(ev.agi_exec_end(chan, command_id, line, code, text))
        if result == SHOWUSAGE:
            self.write(usage_reply(name))
        elif result == FAILURE and (self.dead or not chan.soft_hangup):
            self.status = "FAILURE"

    # --- helpers for the command handlers ------------------------------------

    def media(self, seconds: float | None, accept: str | None):
        """Play/wait ``seconds`` (None: forever); ('done'|'digit'|'hangup', digit or None)."""
        if self.dead or self.needhup:
            return "hangup", None
        deadline = None if seconds is None else self.engine.now() + seconds
        self._digits.clear()
        self.chan.dtmf_reader = self._digit
        if accept and not self._asked:  # a command starts reading digits: a scripted caller may answer
            self._asked = True
            self.engine.notify("reading", self.chan)
        try:
            while True:
                while self._digits:
                    digit = self._digits.popleft()
                    if accept is not None and digit in accept:
                        return "digit", digit
                remaining = None if deadline is None else deadline - self.engine.now()
                if remaining is not None and remaining <= 0:
                    return "done", None
                try:
                    yield Wait(remaining)
                except HangupSignal:
                    self._hangup_detected()
                    return "hangup", None
                except RedirectSignal as redirect:
                    self.redirect = redirect
                    self._hangup_detected()
                    return "hangup", None
        finally:
            self.chan.dtmf_reader = None

    def _digit(self, digit: str) -> None:
        self._digits.append(digit)
        task = self.chan.task
        if task is not None and not task.done:
            task.wake()

    def playback(self, files: str):
        """app_playback.c playback_exec: the ``&``-separated files in turn; one that
        is missing or cut short by a hang-up sets PLAYBACKSTATUS=FAILED and the
        next is tried; 0 either way (-1 only without a file name)."""
        if not files:
            return -1
        failed = False
        for name in (part.strip() for part in files.split("&")):
            if self.dead or self.needhup or not self.sounds.exists(name):
                failed = True
                continue
            outcome = yield from self.media(self.sounds.duration(name), None)
            failed = failed or outcome[0] == "hangup"
        self.engine.set_var(self.chan, "PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
        return 0

    def run_app(self, impl, data: str):
        try:
            result = yield from impl(self.engine, self.chan, data)
        except HangupSignal:
            self._hangup_detected()
            return -1
        return 0 if result in (CONTINUE, JUMPED) else -1

    def set_autohangup(self, seconds: float) -> None:
        if self._autohangup is not None and self._autohangup.active():
            self._autohangup.cancel()
        self._autohangup = None
        if seconds > 0:
            self._autohangup = self.engine.scheduler.call_later(
                seconds, self.engine.request_hangup, self.chan, 0)


def is_true_word(value: str | None) -> bool:
    """ast_true: yes, true, y, t, 1, on."""
    return value is not None and value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def app_agi(engine: Engine, chan: Channel, data: str):
    args = data.split(",")
    session = AgiSession(engine, chan, args[0], args[1:], engine.agi_connector, engine.sounds)
    engine.notify("agi", chan)
    chan.agi = session
    return (yield from session.run())


def install(engine: Engine) -> None:
    engine.apps["AGI"] = app_agi
