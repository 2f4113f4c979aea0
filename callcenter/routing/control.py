"""The operators' control socket: ``callcenter agents ...`` and ``callcenter queues status`` talk to the daemon.

A UNIX socket (mode 0600, path ``[acd] control_socket``) carrying one JSON
object per line each way.  Requests::

    {"op": "agents.list"}
    {"op": "agents.login", "agent": "6001", "interface": "PJSIP/6001", "queues": ["support"], "ready": false}
    {"op": "agents.logout", "agent": "6001"}
    {"op": "agents.state", "agent": "6001", "state": "ready" | "not-ready", "reason": "lunch"}
    {"op": "queues.status"}

Answers are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.  A
bad line gets an error answer and the connection stays usable; a line over
64 KiB closes it.  Agent commands go through ``AcdService.command``, so they
reach the routing daemon wherever it runs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from acd import inputs as inp
from callcenter.aio import as_deferred
from callcenter.routing import codec
from callcenter.service import AsyncService

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024


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
                return {"ok": True, "agents": self.agent_rows()}
            if op == "queues.status":
                return {"ok": True, "queues": self.queue_rows()}
            command = self._command(op, request)
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": f"bad {op} request: {exc}"}
        if command is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        return await as_deferred(self._acd.command(command))

    @staticmethod
    def _command(op: str, request: dict[str, Any]) -> inp.Input | None:
        agent = request["agent"]
        if not isinstance(agent, str) or not agent:
            raise ValueError("agent must be a non-empty string")
        if op == "agents.login":
            queues = request.get("queues")
            if queues is not None and (not isinstance(queues, list) or not all(isinstance(q, str) for q in queues)):
                raise ValueError("queues must be a list of queue names")
            interface = request.get("interface")
            if interface is not None and not isinstance(interface, str):
                raise ValueError("interface must be a string")
            return inp.Login(agent, interface, tuple(queues) if queues is not None else None,
                             bool(request.get("ready", False)))
        if op == "agents.logout":
            return inp.Logout(agent)
        if op == "agents.state":
            state = request["state"]
            if state == "ready":
                return inp.SetReady(agent)
            if state == "not-ready":
                reason = request.get("reason") or "break"
                if not isinstance(reason, str) or len(reason) > 32:
                    raise ValueError("reason must be a string of at most 32 characters")
                return inp.SetNotReady(agent, reason)
            raise ValueError(f"state must be ready or not-ready, not {state!r}")
        return None

    def agent_rows(self) -> list[dict[str, Any]]:
        now = self._acd.now()
        views = {a.agent: a for a in self._acd.agents()}
        rows = []
        for profile in self._acd.distributor.setup.agents:
            view = views.pop(profile.agent, None)
            rows.append(self._agent_row(profile.agent, view, profile.interface, now))
        for agent, view in views.items():
            rows.append(self._agent_row(agent, view, view.interface, now))
        return rows

    @staticmethod
    def _agent_row(agent: str, view: Any, interface: str | None, now: float) -> dict[str, Any]:
        if view is None:
            return {"agent": agent, "state": "logged-out", "reason": None, "seconds": None,
                    "interface": interface, "queues": [], "call_id": None, "calls_handled": 0}
        return {"agent": agent, "state": view.state.value, "reason": view.reason,
                "seconds": round(now - view.since, 1), "interface": view.interface, "queues": list(view.queues),
                "call_id": view.call_id, "calls_handled": view.calls_handled}

    def queue_rows(self) -> list[dict[str, Any]]:
        stats = getattr(self._acd, "queue_figures", None)
        rows = []
        now = self._acd.now()
        for rules in self._acd.distributor.setup.queues:
            if stats is not None:
                rows.append(codec.plain(stats(rules.name)))
                continue
            waiting = self._acd.distributor.waiting(rules.name)
            states: dict[str, int] = {}
            for view in self._acd.agents():
                if rules.name in view.queues:
                    states[view.state.value] = states.get(view.state.value, 0) + 1
            rows.append({"queue": rules.name, "waiting": len(waiting),
                         "longest_wait": round(max((now - c.enqueued_at for c in waiting), default=0.0), 1),
                         "agents_by_state": states})
        return rows
