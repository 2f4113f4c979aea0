"""The operators' control socket: ``callcenter agents ...`` and ``callcenter queues status`` talk to the daemon.

A UNIX socket (mode 0600, path ``[acd] control_socket``) carrying one JSON
object per line each way.  Requests::

    {"op": "agents.list"}
    {"op": "agents.login", "agent": "6001", "interface": "PJSIP/6001", "queues": ["support"], "ready": false}
    {"op": "agents.logout", "agent": "6001"}
    {"op": "agents.state", "agent": "6001", "state": "ready" | "not-ready", "reason": "lunch"}
    {"op": "agents.wrap-up", "agent": "6001", "extend": 30}      (no "extend": wrap-up done)
    {"op": "queues.status"}
    {"op": "calls.hold" | "calls.unhold" | "calls.hangup" | "calls.cancel_transfer", "agent": "6001"}
    {"op": "calls.transfer", "agent": "6001", "target": "6002" | "queue:billing", "kind": "blind" | "attended"}
    {"op": "calls.dial", "agent": "6001", "number": "+8613800138000"}
    {"op": "calls.spy", "supervisor": "6002", "agent": "6001", "mode": "listen" | "whisper" | "barge"}

Answers are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.  A
bad line gets an error answer and the connection stays usable; a line over
64 KiB closes it.  Agent commands go through ``AcdService.command``, so they
reach the routing daemon wherever it runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from acd import inputs as inp
from callcenter.aio import as_deferred
from callcenter.routing.call_actions import ActionRefused, CallActions
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
AGENT_OPS = frozenset({"agents.login", "agents.logout", "agents.state", "agents.wrap-up"})
#: Agent devices: what cc-connect dials (and the simulator's Local/<exten>@sim-agents phones).
INTERFACE = re.compile(r"(PJSIP|SIP|IAX2|DAHDI)/[-_.0-9A-Za-z]{1,80}|Local/[0-9A-Za-z_+-]{1,40}@[-_0-9A-Za-z]{1,40}(/n)?")
REASON = re.compile(r"[-_0-9A-Za-z]{1,32}")


class ControlProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, control: "ControlService") -> None:
        self.control = control

    def lineReceived(self, line: bytes) -> None:  # noqa: N802 (Twisted API)
        d = ensureDeferred(self.control.answer(line))
        d.addErrback(lambda f: (logger.error("control request failed", exc_info=f.value),
                                {"ok": False, "error": "internal error; see the daemon's log"})[1])
        d.addCallback(self._reply)

    def _reply(self, answer: dict[str, Any]) -> None:
        if self.transport is not None:
            self.transport.write(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")

    def lineLengthExceeded(self, line: bytes) -> None:  # noqa: N802
        self._reply({"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
        if self.transport is not None:
            self.transport.loseConnection()


class ControlService(AsyncService):
    name = "control"

    def __init__(self, reactor: Any, path: str, acd: Any) -> None:
        self._reactor = reactor
        self.path = path
        self._acd = acd
        self.calls = CallActions(acd, acd.tracker)
        self._port: Any = None

    async def start(self) -> None:
        if not self.path:
            logger.info("no operators' control socket ([acd] control_socket is not set)")
            return
        path = Path(self.path)
        if path.exists() and path.is_socket():
            path.unlink()  # left by a daemon that did not stop cleanly
        factory = Factory.forProtocol(lambda: ControlProtocol(self))
        old = os.umask(0o177)
        try:
            self._port = self._reactor.listenUNIX(str(path), factory, mode=0o600)
        finally:
            os.umask(old)
        logger.info("operators' control socket at %s", path)

    async def stop(self) -> None:
        if self._port is not None:
            await self._port.stopListening()
            self._port = None

    async def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return {"ok": False, "error": f"not a JSON line: {exc}"}
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return {"ok": False, "error": "a request is a JSON object with an \"op\""}
        op = request["op"]
        try:
            if op == "agents.list":
                return await as_deferred(self._acd.query("agents"))
            if op == "queues.status":
                return await as_deferred(self._acd.query("queues"))
            if op.startswith("calls."):
                return await as_deferred(self._call_action(op, request))
            command = self._command(op, request)
        except (TypeError, ValueError) as exc:
            return {"ok": False, "error": f"bad {op} request: {exc}"}
        if command is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        return await as_deferred(self._acd.command(command))

    async def _call_action(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        def text(name: str) -> str:
            value = request.get(name)
            if not isinstance(value, str) or not value or len(value) > 64:
                raise ValueError(f"{name} must be a string of 1 to 64 characters")
            return value

        try:
            method = {"calls.hold": self.calls.hold, "calls.unhold": self.calls.unhold,
                      "calls.hangup": self.calls.hangup, "calls.cancel_transfer": self.calls.cancel_transfer}.get(op)
            if method is not None:
                return {"ok": True, "call_id": await method(text("agent"))}
            if op == "calls.transfer":
                kind = request.get("kind", "blind")
                return {"ok": True, "call_id": await self.calls.transfer(text("agent"), text("target"), str(kind))}
            if op == "calls.dial":
                await self.calls.dial(text("agent"), text("number"))
                return {"ok": True}
            if op == "calls.spy":
                return {"ok": True, "call_id": await self.calls.spy(text("supervisor"), text("agent"),
                                                                     text("mode"))}
        except ValueError as exc:
            return {"ok": False, "error": f"bad {op} request: {exc}"}
        except ActionRefused as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r}"}

    @staticmethod
    def _command(op: str, request: dict[str, Any]) -> inp.Input | None:
        if op not in AGENT_OPS:
            return None
        agent = request.get("agent")
        if not isinstance(agent, str) or not agent or len(agent) > 64:
            raise ValueError("agent must be a login of 1 to 64 characters")
        if op == "agents.login":
            queues = request.get("queues")
            if queues is not None and (not isinstance(queues, list) or not all(isinstance(q, str) for q in queues)):
                raise ValueError("queues must be a list of queue names")
            interface = request.get("interface")
            if interface is not None and not (isinstance(interface, str) and INTERFACE.fullmatch(interface)):
                raise ValueError(f"interface must look like PJSIP/<endpoint> or Local/<exten>@<context>[/n], "
                                 f"not {interface!r}")
            return inp.Login(agent, interface, tuple(queues) if queues is not None else None,
                             request.get("ready") is True)
        if op == "agents.logout":
            return inp.Logout(agent)
        if op == "agents.wrap-up":
            extend = request.get("extend")
            if extend is None:
                return inp.EndWrapUp(agent)
            if isinstance(extend, bool) or not isinstance(extend, (int, float)) or not 0 < extend <= 3600:
                raise ValueError("extend must be a number of seconds from 1 to 3600")
            return inp.ExtendWrapUp(agent, float(extend))
        state = request.get("state")
        if state == "ready":
            return inp.SetReady(agent)
        if state == "not-ready":
            reason = request.get("reason") or "break"
            if not isinstance(reason, str) or not REASON.fullmatch(reason):
                raise ValueError("reason must be a code of 1 to 32 letters, digits, '-' or '_'")
            return inp.SetNotReady(agent, reason)
        raise ValueError(f"state must be ready or not-ready, not {state!r}")


def ask(path: str, *requests: dict[str, Any] | bytes, timeout: float = 10.0) -> list[dict[str, Any] | None]:
    """The blocking client side (the CLI, tests): send each request (an object, or raw bytes of a line) and
    read its one-line answer; None when the daemon closed the connection instead.  Raises ``OSError``."""
    import socket

    answers: list[dict[str, Any] | None] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        pending = b""
        for item in requests:
            sock.sendall(item if isinstance(item, bytes) else json.dumps(item).encode("utf-8") + b"\n")
            while b"\n" not in pending:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                pending += chunk
            line, _, pending = pending.partition(b"\n")
            answers.append(json.loads(line) if line else None)
    return answers
