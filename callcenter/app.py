"""The composition root: the one place that builds and wires the services.

Start order (stop is the reverse): CRM store, live state, desktop, FastAGI,
AMI.  The AMI link goes last so that nothing reacts to call events before
the outputs they feed are ready, and stops first so that no event arrives
while the rest shuts down.
"""

from __future__ import annotations

from typing import Any

from agent_desktop.server import DesktopService
from callcenter.asterisk.ami_link import AMILinkService
from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.config import Config
from callcenter.livestate_service import LiveStateService
from callcenter.netservice import ListenService
from callcenter.service import AsyncMultiService
from crm_core.service import CrmService


class Root(AsyncMultiService):
    """The daemon: named children, reachable for tests and the demo."""

    name = "callcenter"

    def __init__(self) -> None:
        super().__init__()
        self.crm: CrmService
        self.live_state: LiveStateService
        self.desktop: DesktopService
        self.fastagi: ListenService
        self.ami: AMILinkService


def build_root(config: Config, reactor: Any) -> Root:
    root = Root()
    root.crm = CrmService(reactor, config.crm)
    root.live_state = LiveStateService(config.redis)
    root.desktop = DesktopService(config.desktop)
    # No IVR handler yet: every session takes the dialplan's fallback path to Queue().
    agi_factory = FastAGIServerFactory({}, reactor)
    root.fastagi = ListenService("fastagi", reactor, config.asterisk.agi_bind, config.asterisk.agi_port, agi_factory)
    root.ami = AMILinkService(reactor, config.asterisk)
    for svc in (root.crm, root.live_state, root.desktop, root.fastagi, root.ami):
        svc.setServiceParent(root)
    return root
