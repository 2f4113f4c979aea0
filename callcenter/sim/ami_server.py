"""The AMI TCP server of the simulated Asterisk.

Wire behaviour as recorded (README.txt "AMI framing", more/README.txt):

* ``Asterisk Call Manager/11.0.0\\r\\n`` on connect, no blank line after it;
* input as manager.c get_input/do_message reads it: a line ends at ``\\n``
  (one ``\\r`` before it dropped), keys are case-insensitive, blanks after
  ``:`` are skipped, a line without ``:`` is ignored, a line over 1022 bytes
  answers "Failed to parse message: line too long", more than 128 lines
  "Too many lines in message or allocation failure", an empty message
  "Missing action in request";
* one action at a time per session; the response goes out before the events
  the action causes, and while an action blocks (sync Originate, a failed
  Login) events and later actions wait;
* before Login every other action gets "Permission denied"; a wrong secret is
  answered after 1 s with "Authentication failed" and the socket is closed;
  an unknown action gets the ListCommands hint and a RequestBadFormat
  security event; Logoff answers Goodbye and closes.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

from callcenter.sim import events as ev
from callcenter.sim.ami_actions import ACTIONS, BEFORE_LOGIN, UNKNOWN, Action, Reply

logger = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_LINE = 1022
MAX_LINES = 128
EVENT_CLASSES = ("system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
                 "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security",
                 "message")
_session_ids = itertools.count(0x5599C73D88A0, 0x1D0)


def parse_event_mask(text: str | None) -> frozenset[str] | None:
    """EventMask/Events: on|off|class list (manager.c strings_to_mask); None if invalid."""
    value = (text or "").strip().lower()
    if value in ("", "on", "yes", "true", "y", "t", "1", "all"):
        return frozenset(EVENT_CLASSES)
    if value in ("off", "no", "false", "n", "f", "0", "none"):
        return frozenset()
    classes = frozenset(part.strip() for part in value.split(",") if part.strip() in EVENT_CLASSES)
    return classes or None


class AMISession(Protocol):
    """One AMI connection."""

    def __init__(self, server) -> None:
        self.server = server
        self.authenticated = False
        self.username = ""
        self.events: frozenset[str] = frozenset()
        self.session_id = f"0x{next(_session_ids):x}"
        self.started_tv = ""
        self._buffer = b""
        self._lines: list[bytes] = []
        self._too_long = False
        self._queue: deque[Action | ev.Message] = deque()
        self._busy = False
        self._held: list[ev.Message] = []
        self._closing = False

    @property
    def engine(self):
        return self.server.engine

    # --- connection ------------------------------------------------------

    def connectionMade(self) -> None:
        self.started_tv = self.engine.event_tv()
        self.server.sessions.add(self)
        self.transport.write(BANNER)

    def connectionLost(self, reason=None) -> None:
        self.server.sessions.discard(self)
        self._closing = True

    def addresses(self) -> tuple[str, str]:
        host, peer = self.transport.getHost(), self.transport.getPeer()
        local = f"IPV4/TCP/{getattr(host, 'host', '127.0.0.1')}/{getattr(host, 'port', 5038)}"
        remote = f"IPV4/TCP/{getattr(peer, 'host', '127.0.0.1')}/{getattr(peer, 'port', 0)}"
        return local, remote

    # --- input -------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if len(line) > MAX_LINE:
                self._too_long = True
                continue
            if line:
                self._lines.append(line)
                continue
            self._queue.append(self._message(self._lines, self._too_long))
            self._lines, self._too_long = [], False
        self._process()

    def _message(self, lines: list[bytes], too_long: bool) -> Action | ev.Message:
        """The action, or the error response for a message Asterisk refuses to parse."""
        headers = []
        for line in lines[:MAX_LINES]:
            key, sep, value = line.decode("utf-8", "surrogateescape").partition(":")
            if sep:
                headers.append((key.strip(), value.lstrip(" \t")))
        action = Action(headers)
        if too_long:
            return ev.response("Error", action.action_id, [("Message", "Failed to parse message: line too long")])
        if len(lines) > MAX_LINES:
            return ev.response("Error", action.action_id,
                               [("Message", "Too many lines in message or allocation failure")])
        return action

    def _process(self) -> None:
        while self._queue and not self._busy and not self._closing:
            item = self._queue.popleft()
            if isinstance(item, ev.Message):
                self._write(item)
                continue
            self._busy = True  # events caused while the action runs wait for its response
            with self.engine.scheduler.turn():
                result = self._dispatch(item)
            if isinstance(result, defer.Deferred):
                result.addCallbacks(self._resume, self._failed)
                return
            self._finish(result)

    def _resume(self, reply: Reply) -> None:
        self._finish(reply)
        self._process()

    def _dispatch(self, action: Action):
        name = action.name.lower()
        if not name:
            self._security("RequestBadFormat", "Action: ")
            return Reply([ev.response("Error", None, [("Message", "Missing action in request")])])
        if not self.authenticated and name not in BEFORE_LOGIN:
            return Reply([ev.response("Error", action.action_id, [("Message", "Permission denied")])])
        handler = ACTIONS.get(name)
        if handler is None:
            self._security("RequestBadFormat", f"Action: {action.name}")
            return Reply([ev.response("Error", action.action_id,
                                      [("Message", UNKNOWN.format(action.name))])])
        return handler(self, action)

    def _finish(self, reply: Reply) -> None:
        self._busy = False
        for message in reply.messages + reply.extra:
            self._write(message)
        held, self._held = self._held, []
        for message in held:
            self._write(message)
        if reply.close:
            self._closing = True
            self.transport.loseConnection()
            return
        if reply.after is not None:
            with self.engine.scheduler.turn():
                reply.after()

    def _failed(self, failure) -> None:
        logger.error("AMI action failed: %s", failure.getTraceback())
        self._busy = False
        self._process()

    # --- output -------------------------------------------------------------

    def _write(self, message: ev.Message) -> None:
        if not self._closing and self.transport is not None:
            self.transport.write(message.encode())

    def deliver(self, message: ev.Message) -> None:
        """An event from the PBX: filtered by the session's event mask."""
        if not self.authenticated or self._closing or not (message.classes & self.events):
            return
        if self._busy:
            self._held.append(message)
        else:
            self._write(message)

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    # --- used by the action handlers -----------------------------------------

    def login(self, username: str, events: str) -> None:
        self.authenticated = True
        self.username = username
        self.events = parse_event_mask(events) or frozenset()

    def announce_login(self) -> None:
        engine = self.engine
        if engine.booted:
            uptime, last_reload = engine.uptimes()
            self.deliver(ev.fully_booted(uptime, last_reload, at_boot=False))
        local, remote = self.addresses()
        self.server.broadcast(ev.successful_auth(engine.event_tv(), self.username, self.session_id, local, remote))

    def set_events(self, mask: str) -> bool | None:
        classes = parse_event_mask(mask)
        if classes is None:
            return None
        self.events = classes
        return bool(classes)

    def _security(self, name: str, request_type: str) -> None:
        local, remote = self.addresses()
        self.server.broadcast(ev.request_bad_format(self.engine.event_tv(), self.username or "",
                                                    self.session_id, local, remote, request_type))


class AMIFactory(Factory):
    def __init__(self, server) -> None:
        self.server = server

    def buildProtocol(self, addr) -> AMISession:
        session = AMISession(self.server)
        session.factory = self
        return session


class AMIServer:
    """Users, sessions and the CLI of one simulator; survives Asterisk restarts."""

    def __init__(self, simulator, users: dict[str, str]) -> None:
        self.simulator = simulator
        self.users = users
        self.sessions: set[AMISession] = set()
        self.factory = AMIFactory(self)

    @property
    def engine(self):
        return self.simulator.engine

    @property
    def clock(self):
        return self.simulator.clock

    def check_secret(self, username: str, secret: str) -> bool:
        return username in self.users and self.users[username] == secret

    def broadcast(self, message: ev.Message) -> None:
        for session in list(self.sessions):
            session.deliver(message)

    def close_all(self) -> None:
        for session in list(self.sessions):
            session.close()

    def local_time(self, wall: float) -> tuple[str, str]:
        local = time.localtime(wall)
        return time.strftime("%Y-%m-%d", local), time.strftime("%H:%M:%S", local)

    def cli(self, command: str):
        from callcenter.sim.cli import run_cli

        return run_cli(self.simulator, command)
