"""Authenticated desktops by agent and by role, each with its own bounded send queue.

A frame for an agent goes only to that agent's desktops; a frame for the
supervisors goes to supervisor and admin desktops (``send_to_supervisors``
sends one frame to all; a feed whose frames depend on who reads them, like
the wallboard, pushes to each of ``supervisors()``).  ``push`` never waits: each
desktop's queue is drained by its own task, and a desktop whose queue is full
(it stopped reading) is dropped with close code 1013, so one slow browser
never holds up the others.

``GhostWatch`` sets an agent not ready (reason ``desktop-lost``) when their
last desktop went away and none came back within the heartbeat time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Protocol

from acd.inputs import SetNotReady

from agent_desktop.auth import Session

logger = logging.getLogger(__name__)

SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})
CLOSE_TOO_SLOW = 1013
GHOST_REASON = "desktop-lost"


class Socket(Protocol):
    """What a desktop needs of a websocket connection."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Desktop:
    """One authenticated connection and the task that writes its queue."""

    def __init__(self, ws: Socket, session: Session, queue_size: int, on_drop: Callable[["Desktop"], None]):
        self.ws = ws
        self.session = session
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._on_drop = on_drop
        self._writer = asyncio.ensure_future(self._write())
        self.dropped = False

    @property
    def agent(self) -> str:
        return self.session.agent

    @property
    def role(self) -> str:
        return self.session.role

    def push(self, frame: str) -> bool:
        """Queue ``frame``; a full queue drops this desktop.  False when it was not queued."""
        if self.dropped:
            return False
        try:
            self._queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            logger.warning("desktop of %s stopped reading (%d frames queued): dropped",
                           self.agent, self._queue.qsize())
            self.close(CLOSE_TOO_SLOW, "too slow")
            return False

    def close(self, code: int, reason: str) -> None:
        """Stop writing, leave the hub and close the websocket (in the background)."""
        if self.dropped:
            return
        self.dropped = True
        self._writer.cancel()
        self._on_drop(self)
        asyncio.ensure_future(self.ws.close(code, reason))

    def stop(self) -> None:
        """The connection ended by itself: just stop writing."""
        self.dropped = True
        self._writer.cancel()

    async def _write(self) -> None:
        while True:
            frame = await self._queue.get()
            try:
                await self.ws.send(frame)
            except Exception as exc:  # closed underneath us: the handler cleans up
                logger.debug("desktop of %s: send failed: %s", self.agent, exc)
                return


class Hub:
    """Desktops by agent login; ``listeners`` hear when an agent's first comes and last goes."""

    def __init__(self) -> None:
        self._by_agent: dict[str, set[Desktop]] = {}
        self.on_agent_back: list[Callable[[str], None]] = []
        self.on_agent_gone: list[Callable[[str], None]] = []

    def add(self, desktop: Desktop) -> None:
        desktops = self._by_agent.setdefault(desktop.agent, set())
        first = not desktops
        desktops.add(desktop)
        if first:
            for listener in self.on_agent_back:
                _guarded(listener, desktop.agent)

    def remove(self, desktop: Desktop) -> None:
        desktops = self._by_agent.get(desktop.agent)
        if desktops is None or desktop not in desktops:
            return
        desktops.discard(desktop)
        if not desktops:
            del self._by_agent[desktop.agent]
            for listener in self.on_agent_gone:
                _guarded(listener, desktop.agent)

    def desktops(self, agent: str | None = None) -> list[Desktop]:
        if agent is not None:
            return list(self._by_agent.get(agent, ()))
        return [d for ds in self._by_agent.values() for d in ds]

    def agents(self) -> list[str]:
        return sorted(self._by_agent)

    def send_to_agent(self, login: str, frame: str) -> int:
        """Queue ``frame`` to every desktop of ``login``; how many took it."""
        return sum(d.push(frame) for d in self.desktops(login))

    def supervisors(self) -> list[Desktop]:
        """The supervisor and admin desktops."""
        return [d for d in self.desktops() if d.role in SUPERVISOR_ROLES]

    def send_to_supervisors(self, frame: str) -> int:
        return sum(d.push(frame) for d in self.supervisors())

    def close_session(self, token: str, code: int, reason: str) -> None:
        for desktop in [d for d in self.desktops() if d.session.token == token]:
            desktop.close(code, reason)


class AcdPort(Protocol):
    def agent_rows(self) -> list[dict[str, Any]]: ...

    async def command(self, command: Any) -> dict[str, Any]: ...


class GhostWatch:
    """Agents whose desktops are all gone for ``grace`` seconds are set not ready ``desktop-lost``.

    ``clock`` is the reactor (``callLater``); ``acd`` returns the ACD service or None.
    """

    def __init__(self, clock: Any, acd: Callable[[], AcdPort | None], grace: float):
        self._clock = clock
        self._acd = acd
        self._grace = grace
        self._pending: dict[str, Any] = {}
        #: ``(agent, answer)`` for each not-ready command sent (for logs and tests).
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def watch(self, hub: Hub) -> None:
        hub.on_agent_gone.append(self.agent_gone)
        hub.on_agent_back.append(self.agent_back)

    def agent_gone(self, agent: str) -> None:
        if agent not in self._pending:
            self._pending[agent] = self._clock.callLater(self._grace, self._expired, agent)

    def agent_back(self, agent: str) -> None:
        call = self._pending.pop(agent, None)
        if call is not None and call.active():
            call.cancel()

    def stop(self) -> None:
        for agent in list(self._pending):
            self.agent_back(agent)

    def _expired(self, agent: str) -> None:
        self._pending.pop(agent, None)
        acd = self._acd()
        if acd is None:
            return
        states = {row["agent"]: row["state"] for row in acd.agent_rows()}
        if states.get(agent, "logged-out") == "logged-out":
            return
        asyncio.ensure_future(self._set_not_ready(acd, agent))

    async def _set_not_ready(self, acd: AcdPort, agent: str) -> None:
        try:
            answer = await acd.command(SetNotReady(agent, GHOST_REASON))
        except Exception:
            logger.exception("could not set %s not ready after their desktop was lost", agent)
            return
        self.sent.append((agent, answer))
        logger.info("%s has no desktop for %ss: set not ready (%s): %s", agent, self._grace, GHOST_REASON, answer)


def _guarded(listener: Callable[[str], None], agent: str) -> None:
    try:
        listener(agent)
    except Exception:
        logger.exception("desktop listener failed for %s", agent)
