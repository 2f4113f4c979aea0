"""The supervisors' live view: every queue's figures and the agent grid, pushed to supervisor desktops.

The ACD streams the queue figures when they change, at most once a tick
(``AcdService.subscribe_figures``, one second), so a wallboard gets at most
one ``wallboard`` frame a second: ``queues`` (waiting, longest wait, service
level, ASA, AHT, abandon rate, agents by state; ``AcdService.queue_rows``) and
``agents`` (state, reason, time in state, calls, occupancy; ``agent_rows``).
A supervisor's desktop gets the last one right after ``welcome``.
"""

from __future__ import annotations

from typing import Any, Callable

from agent_desktop import messages


class WallboardFeed:
    def __init__(self, hub: Any, acd: Callable[[], Any]) -> None:
        self._hub = hub
        self._acd = acd
        self._last: str | None = None

    def on_figures(self, queues: list[dict[str, Any]]) -> None:
        acd = self._acd()
        agents = acd.agent_rows() if acd is not None else []
        self._last = messages.frame("wallboard", queues=queues, agents=agents)
        self._hub.send_to_supervisors(self._last)

    def snapshot(self) -> str:
        """The latest wallboard frame (built now if none was pushed yet)."""
        if self._last is None:
            acd = self._acd()
            self._last = messages.frame("wallboard", queues=acd.queue_rows() if acd else [],
                                        agents=acd.agent_rows() if acd else [])
        return self._last
