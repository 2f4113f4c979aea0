"""The composition root: the one place that builds and wires the services.

Start order (stop is the reverse): CRM store, live state, IVR flows, call
tracking, desktop, FastAGI, AMI.  The AMI link goes last so that nothing
reacts to call events before the outputs they feed are ready, and stops
first so that no event arrives while the rest shuts down.  FastAGI stops
before the CRM so that the IVR's last contact records are written.
"""

from __future__ import annotations

from typing import Any

from agent_desktop.server import DesktopService
from callcenter.asterisk.ami_link import AMILinkService
from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.calls_service import CallsService
from callcenter.config import Config
from callcenter.contact_recorder import ContactRecorder
from callcenter.crm_ports import CrmCustomerPort
from callcenter.ivr.handler import IvrHandler
from callcenter.ivr.reload import FlowService
from callcenter.livestate_service import LiveStateService
from callcenter.netservice import ListenService
from callcenter.service import AsyncMultiService
from crm_core.service import CrmService
from ivr_flows.registry import FlowRegistry


class Root(AsyncMultiService):
    """The daemon: named children, reachable for tests and the demo."""

    name = "callcenter"

    def __init__(self) -> None:
        super().__init__()
        self.crm: CrmService
        self.live_state: LiveStateService
        self.ivr_flows: FlowService
        self.calls: CallsService
        self.desktop: DesktopService
        self.fastagi: ListenService
        self.ami: AMILinkService
        #: Turns call events and IVR results into contact records; ``refused`` counts those not taken.
        self.contacts: ContactRecorder


def build_root(config: Config, reactor: Any) -> Root:
    root = Root()
    root.crm = CrmService(reactor, config.crm)
    root.live_state = LiveStateService(config.redis)
    root.ivr_flows = FlowService(FlowRegistry(config.ivr.flows_dir, config.ivr.routes), reactor)
    root.calls = CallsService(reactor)
    root.desktop = DesktopService(config.desktop)

    def write_contact(record: Any) -> Any:
        if root.crm.writer is None:
            raise ConnectionError("the CRM writer is not running")
        return root.crm.writer.log(record)

    recorder = root.contacts = ContactRecorder(write_contact, reactor.seconds, root.calls.call_started)
    root.calls.subscribe(recorder.on_call_event)
    root.calls.at_stop(recorder.calls_unfinished)
    ivr = IvrHandler(root.ivr_flows.registry.snapshot, customers=CrmCustomerPort(lambda: root.crm.store),
                     records=recorder, queue_stats=root.calls, clock=reactor)
    agi_factory = FastAGIServerFactory({"ivr": ivr.handle}, reactor,
                                       allowed_peers=config.asterisk.agi_allowed_peers)
    root.fastagi = ListenService("fastagi", reactor, config.asterisk.agi_bind, config.asterisk.agi_port, agi_factory)
    root.ami = AMILinkService(reactor, config.asterisk, listener=root.calls.tracker)
    for svc in (root.crm, root.live_state, root.ivr_flows, root.calls, root.desktop, root.fastagi, root.ami):
        svc.setServiceParent(root)
    return root
