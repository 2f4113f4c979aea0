"""The supervisors' live view: the figures of their groups' queues and their agents' grid.

The ACD streams the queue figures when they change, at most once a tick
(``AcdService.subscribe_figures``, one second), so a wallboard gets at most
one ``wallboard`` frame a second: ``queues`` (waiting, longest wait, service
level, ASA, AHT, abandon rate, agents by state; ``AcdService.queue_rows``) and
``agents`` (state, reason, time in state, calls, occupancy; ``agent_rows``).

Each frame also carries ``chart``: ``[minute start, waiting, service level]``
per minute for the scope's queues together (``AcdService.chart``): the last
hours right after ``welcome``, the last ``LIVE_CHART_SECONDS`` in live frames
(the page merges them by minute).  So a wallboard opened mid-shift shows the
shift so far, not only what happened since it was opened.

Each supervisor desktop gets only the rows of its scope (``agent_desktop.scope``:
the queues of the supervisor's groups and their agents; admins everything).
Many supervisors share a team, so a tick builds one frame per distinct scope,
not one per desktop.  A supervisor's desktop gets the latest figures, in its
scope, right after ``welcome`` (``snapshot``).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from agent_desktop import messages
from agent_desktop.scope import Scope, scope_for, scope_key

#: Live frames carry the chart's points of this many last seconds (the current and the previous minute).
LIVE_CHART_SECONDS = 120.0


def _setup_of(acd: Any) -> Any:
    distributor = getattr(acd, "distributor", None) if acd is not None else None
    return distributor.setup if distributor is not None else None


class WallboardFeed:
    def __init__(self, hub: Any, acd: Callable[[], Any]) -> None:
        self._hub = hub
        self._acd = acd
        #: The latest (queue rows, agent rows), and their frame per scope (built on first use).
        self._rows: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._frames: dict[Scope, str] = {}

    def on_figures(self, queues: list[dict[str, Any]]) -> None:
        """New figures (at most once a tick): each supervisor desktop gets them in its scope."""
        acd = self._acd()
        self._rows = (queues, acd.agent_rows() if acd is not None else [])
        self._frames = {}
        setup = _setup_of(acd)
        scopes: dict[Hashable, Scope] = {}
        for desktop in self._hub.supervisors():
            s = desktop.session
            key = scope_key(s.role, s.groups, setup, s.agent)
            if key not in scopes:
                scopes[key] = scope_for(s.role, s.groups, setup, s.agent)
            desktop.push(self._frame(scopes[key]))

    def snapshot(self, scope: Scope) -> str:
        """The latest wallboard frame in ``scope``, with the chart of the last hours (the figures read now
        if none were pushed yet)."""
        if self._rows is None:
            acd = self._acd()
            self._rows = (acd.queue_rows() if acd else [], acd.agent_rows() if acd else [])
        return self._build(scope, full_chart=True)

    def _frame(self, scope: Scope) -> str:
        frame = self._frames.get(scope)
        if frame is None:
            frame = self._frames[scope] = self._build(scope, full_chart=False)
        return frame

    def _build(self, scope: Scope, full_chart: bool) -> str:
        assert self._rows is not None
        queues, agents = self._rows
        visible = [q for q in queues if scope.sees_queue(q["queue"])]
        return messages.frame("wallboard", queues=visible, agents=[a for a in agents if scope.sees_agent(a["agent"])],
                              chart=self._chart([q["queue"] for q in visible], full_chart))

    def _chart(self, queues: list[str], full: bool) -> list[list[Any]]:
        acd = self._acd()
        if acd is None or not queues or not hasattr(acd, "chart"):
            return []
        return acd.chart(queues, None if full else acd.now() - LIVE_CHART_SECONDS)
