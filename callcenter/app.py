"""The composition root: the one place that builds and wires the services.

Start order (stop is the reverse): CRM store, live state, IVR flows, call
tracking, ACD, desktop, REST API (when enabled), FastAGI, AMI.  The AMI link
goes last so that nothing reacts to call events before the outputs they feed
are ready, and stops first so that no event arrives while the rest shuts
down.  FastAGI stops before the CRM so that the IVR's last contact records are
written.
"""

from __future__ import annotations

from typing import Any

from agent_desktop.actions import DesktopActions
from agent_desktop.auth import SessionStore
from agent_desktop.call_feed import CallFeed
from agent_desktop.rest import RestService
from agent_desktop.server import DesktopService
from agent_desktop.sessions_redis import RedisSessions
from agent_desktop.wallboard import WallboardFeed
from callcenter.asterisk.ami_link import AMILinkService
from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.asterisk.originate_watch import ListenerFanout, OriginateWatch
from callcenter.calls_service import CallsService
from callcenter.config import Config
from callcenter.contact_recorder import ContactRecorder
from callcenter.crm_ports import CrmCustomerPort
from callcenter.ivr.handler import IvrHandler
from callcenter.ivr.reload import FlowService
from callcenter.livestate_service import LiveStateService
from callcenter.netservice import ListenService
from callcenter.routing.control import ControlService
from callcenter.routing.coordinator import InProcessCoordinator, RedisCoordinator
from callcenter.routing.service import AcdService
from callcenter.service import AsyncMultiService
from crm_core.service import CrmService
from ivr_flows.registry import FlowRegistry


#: The flow ``cc-acd-exit,callback`` runs (AGI script ``callback-offer``) when a queue's max wait says callback.
CALLBACK_OFFER_FLOW = "acd_callback_offer"


class Root(AsyncMultiService):
    """The daemon: named children, reachable for tests and the demo."""

    name = "callcenter"

    def __init__(self) -> None:
        super().__init__()
        self.crm: CrmService
        self.live_state: LiveStateService
        self.ivr_flows: FlowService
        self.calls: CallsService
        #: The daemon's ACD: agents, waiting calls, routing (the leader's, with several daemons).
        self.acd: AcdService
        #: The operators' CLI socket (``[acd] control_socket``).
        self.control: ControlService
        self.desktop: DesktopService
        #: The integrations' JSON REST API (``[desktop] api_enabled``), or None.
        self.rest: RestService | None = None
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

    def write_contact(record: Any) -> Any:
        if root.crm.writer is None:
            raise ConnectionError("the CRM writer is not running")
        return root.crm.writer.log(record)

    recorder = root.contacts = ContactRecorder(write_contact, reactor.seconds, root.calls.call_started)
    root.calls.subscribe(recorder.on_call_event)
    root.calls.at_stop(recorder.calls_unfinished)
    root.acd = build_acd(root, config, reactor)
    root.calls.subscribe(root.acd.on_call_event)
    root.control = ControlService(reactor, config.acd.control_socket, root.acd)

    def check_password(login: str, password: str) -> Any:
        if root.crm.store is None:
            raise ConnectionError("the CRM store is not running")
        return root.crm.store.check_password(login, password)

    # with Redis, desktop sessions are the center's: a login on one daemon is good on all of them
    shared = (RedisSessions(config.redis.url, SessionStore(reactor, config.desktop.session_minutes * 60))
              if config.redis.enabled else None)
    root.desktop = DesktopService(config.desktop, reactor, check_password, acd=lambda: root.acd, shared=shared)
    feed = root.desktop.feed = CallFeed(root.desktop.hub, lambda: root.crm.store, root.calls.tracker,
                                        reactor.seconds)
    root.acd.subscribe(feed.on_effect)
    root.calls.subscribe(feed.on_call_event)
    root.desktop.wallboard = WallboardFeed(root.desktop.hub, lambda: root.acd)
    root.acd.subscribe_figures(root.desktop.wallboard.on_figures)
    root.desktop.actions = DesktopActions(lambda: root.acd, lambda: root.control.calls, lambda: root.crm.store,
                                          recorder.wrap_up)
    ivr = IvrHandler(root.ivr_flows.registry.snapshot, customers=CrmCustomerPort(lambda: root.crm.store),
                     records=recorder, queue_stats=root.calls, clock=reactor, acd=root.acd)
    agi_factory = FastAGIServerFactory({"ivr": ivr.handle, "callback-offer": ivr.flow_script(CALLBACK_OFFER_FLOW)},
                                       reactor,
                                       allowed_peers=config.asterisk.agi_allowed_peers)
    root.fastagi = ListenService("fastagi", reactor, config.asterisk.agi_bind, config.asterisk.agi_port, agi_factory)
    watch = OriginateWatch(root.acd.on_watch_event)
    root.ami = AMILinkService(reactor, config.asterisk, listener=ListenerFanout(root.calls.tracker, watch))
    if config.desktop.api_enabled:
        root.rest = RestService(config.desktop, reactor, root.desktop.sessions, root.desktop.scope_of,
                                lambda: root.crm.store, lambda: root.acd, shared=root.desktop.shared)
    for svc in (root.crm, root.live_state, root.ivr_flows, root.calls, root.acd, root.control, root.desktop,
                root.rest, root.fastagi, root.ami):
        if svc is not None:
            svc.setServiceParent(root)
    return root


def build_acd(root: Root, config: Config, reactor: Any) -> AcdService:
    """The ACD, its configuration read from the CRM store, shared through Redis when configured."""
    coordinator: Any = (RedisCoordinator(config.redis.url) if config.redis.enabled
                        else InProcessCoordinator(snapshot_path=config.acd.state_file or None))

    def store() -> Any:
        if root.crm.store is None:
            raise ConnectionError("the CRM store is not running")
        return root.crm.store

    def load_setup() -> Any:
        return store().acd_config()

    def config_stamp() -> Any:
        return store().acd_config_stamp()

    def last_agent(customer_id: str, days: int) -> Any:
        from datetime import datetime, timedelta, timezone

        since = datetime.fromtimestamp(reactor.seconds(), timezone.utc) - timedelta(days=days)
        return store().last_agent(int(customer_id), since)

    def contact_figures(since: float) -> Any:
        from datetime import datetime, timezone

        return store().contact_figures(datetime.fromtimestamp(since, timezone.utc))

    return AcdService(reactor, tracker=root.calls.tracker, ami=lambda: root.ami.client, coordinator=coordinator,
                      load_setup=load_setup, config_stamp=config_stamp, last_agent=last_agent,
                      contact_figures=contact_figures, callbacks=_Lazy(store))


class _Lazy:
    """Attribute access on the object ``get()`` returns at call time (the CRM store once it runs)."""

    def __init__(self, get: Any) -> None:
        self._get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)
