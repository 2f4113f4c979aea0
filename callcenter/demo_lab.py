"""The demo's simulated Asterisk and callers.

``callcenter demo`` runs the real daemon against ``callcenter.sim`` (a
protocol-faithful Asterisk 22 simulator on loopback): agents sit in the
shipped queues, and a caller dials the hotline or the VIP line every few
seconds and keys through the IVR.  Everything the daemon does with those
calls is what it would do with a real Asterisk: the same AMI and FastAGI
bytes, the same CRM contact log.
"""

from __future__ import annotations

import logging
import random
from decimal import Decimal
from typing import Any

from twisted.internet.task import LoopingCall

from callcenter.sim import SHIPPED_FEATUREMAP
from callcenter.sim.scenarios import Simulator

logger = logging.getLogger(__name__)

#: (extension, queues, ring seconds, talk seconds)
AGENTS = [("6001", ("support", "complaints"), 2, 8), ("6002", ("support", "billing"), 3, 10),
          ("6003", ("vip", "billing"), 1, 12)]
#: (number, name, tier, language, balance, arrears)
CUSTOMERS = [
    ("13800138000", "张伟", "vip", "zh", "2300.00", "0.00"),
    ("13912345678", "王芳", "normal", "zh", "88.20", "35.00"),
    ("+15551234567", "Jane Doe", "normal", "en", "120.50", "15.00"),
    ("+447700900123", "Zoë Müller", "key_account", "en", "0.00", "0.00"),
]
#: Every demo customer's self-service PIN (the hotline asks for it before it reads out account data).
DEMO_PIN = "1234"
#: The demo's desktop logins: its agents (6001-6003) and ``supervisor``, all with this password.  The demo
#: listens on 127.0.0.1 only; a real site sets its own with ``callcenter agents set --password-stdin``.
DEMO_PASSWORD = "demo"
DEMO_SUPERVISOR = "supervisor"
#: IVR key scripts: English then an agent; billing self-service (PIN, then hear it again); Chinese
#: complaints; support; nothing (timeouts).
SCRIPTS = [["1", "0"], ["1", "1", DEMO_PIN, "1"], ["2", "3"], ["1", "2"], []]
ALWAYS_OPEN = """\
# The demo's routes: open around the clock, so that every demo call meets the IVR and an agent.
timezone: Asia/Shanghai
calendars:
  always:
    hours: {mon-sun: ["00:00-24:00"]}
transfers: {allow: ["_6XXX"]}
routes:
  "4000": {flow: hotline, calendar: always, closed: after_hours, description: Hotline}
  "4001": {flow: vip, calendar: always, closed: after_hours, description: VIP line}
default: {flow: hotline, calendar: always, closed: after_hours}
"""


#: The demo's ACD queues: (name, label, strategy, required skills, wrap-up seconds)
ACD_QUEUES = [("support", "Support", "longest-idle", (), 5), ("vip", "VIP line", "best-skill", (("vip", 1),), 5),
              ("billing", "Billing", "fewest-calls", (("billing", 2),), 8),
              ("complaints", "Complaints", "longest-idle", (), 10)]
#: Each demo agent's skills (proficiency 1-5)
SKILLS = {"6001": (("english", 5), ("mandarin", 3)), "6002": (("billing", 4), ("english", 3)),
          "6003": (("billing", 3), ("mandarin", 5), ("vip", 5))}


def seed_acd(engine: Any) -> None:
    """The demo's queues and agents in the CRM (what is missing only): the daemon's ACD routes the demo's
    calls to the simulated phones ``Local/<exten>@sim-agents/n``.  All are in group ``hotline``
    (``crm_core.seed_data.DEMO_GROUP``), so a supervisor of that group sees the whole demo."""
    from sqlalchemy import select

    from crm_core.acd_config import NewAgent, thd_save_agent, thd_save_queue
    from crm_core.models import agents, queues
    from crm_core.records import QueueConfig
    from crm_core.seed_data import DEMO_GROUP

    with engine.connect() as conn:
        have_queues = set(conn.execute(select(queues.c.name)).scalars())
        have_agents = set(conn.execute(select(agents.c.login)).scalars())
    for name, label, strategy, skills, wrap_up in ACD_QUEUES:
        if name not in have_queues:
            thd_save_queue(engine, QueueConfig(name, label, skills, 0, 20, strategy=strategy, ring_seconds=10,
                                               wrap_up_seconds=wrap_up, max_wait=120, on_max_wait="callback",
                                               groups=(DEMO_GROUP,)))
    for exten, member_of, _ring, _talk in AGENTS:
        if exten not in have_agents:
            thd_save_agent(engine, NewAgent(exten, f"Agent {exten}", DEMO_PASSWORD,
                                            interface=f"Local/{exten}@sim-agents/n", skills=SKILLS[exten],
                                            queues=tuple((q, 0) for q in ("support", *member_of) if q != "support")
                                            + (("support", 0),), groups=(DEMO_GROUP,)))
    if DEMO_SUPERVISOR not in have_agents:
        thd_save_agent(engine, NewAgent(DEMO_SUPERVISOR, "Demo supervisor", DEMO_PASSWORD, role="supervisor",
                                        groups=(DEMO_GROUP,)))


def seed_customers(url: str, region: str) -> None:
    """A few known callers, so lookups, balances and the VIP line show, and the ACD's queues and agents
    (blocking: before the reactor runs)."""
    from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
    from crm_core.db import make_engine
    from crm_core.lookup import thd_lookup_by_ani
    from crm_core.migrate import thd_upgrade

    engine = make_engine(url)
    try:
        thd_upgrade(engine)
        for n, (number, name, tier, language, balance, arrears) in enumerate(CUSTOMERS):
            if thd_lookup_by_ani(engine, number, region):
                continue
            cid = thd_create_customer(engine, NewCustomer(name, tier=tier, language=language, phones=(number,),
                                                          secret=DEMO_PIN), region)
            thd_add_account(engine, cid, NewAccount(f"8800{n:04d}", balance=Decimal(balance),
                                                    arrears=Decimal(arrears)))
        seed_acd(engine)
    finally:
        engine.dispose()


class DemoLab:
    """The simulated Asterisk plus a caller every ``interval`` seconds."""

    def __init__(self, reactor: Any, agi_port: int, *, interval: float = 6.0, seed: int = 7):
        # the shipped features.conf codes: agents can make attended transfers from the desktop
        self.sim = Simulator(reactor, agi_port=agi_port, featuremap=SHIPPED_FEATUREMAP)
        self._reactor = reactor
        self._interval = interval
        self._random = random.Random(seed)
        self._caller = LoopingCall(self._place_call)
        self._caller.clock = reactor
        self.placed = 0

    def start(self) -> int:
        port = self.sim.start()
        for queue in ("billing", "complaints"):
            self.sim.add_queue(queue, strategy="rrmemory")
        for exten, queues, ring, talk in AGENTS:
            self.sim.agent(exten, ring=ring, talk=talk)
            for queue in queues:
                self.sim.add_member(queue, exten, name=f"Agent {exten}")
        logger.info("simulated Asterisk: AMI on 127.0.0.1:%d, agents %s", port,
                    ", ".join(a[0] for a in AGENTS))
        return port

    def log_agents_in(self, root: Any) -> None:
        """The demo's agents log in, ready, through the daemon's ACD (as ``callcenter agents login`` does)."""
        from acd.inputs import Login
        from callcenter.aio import as_deferred

        for exten, *_ in AGENTS:
            d = as_deferred(root.acd.command(Login(exten, ready=True)))
            d.addCallback(lambda answer, who=exten: logger.info("demo agent %s: %s", who, answer.get("agent", {})
                                                               .get("state") if answer.get("ok") else answer))

    def start_calling(self) -> None:
        self._caller.start(self._interval, now=False)

    def _place_call(self) -> None:
        try:
            number, name, tier, *_ = self._random.choice(CUSTOMERS + [("5559999", "Unknown Caller", "", "")])
            dnis = "4001" if tier == "vip" else "4000"
            keys = self._random.choice(SCRIPTS)
            self.sim.call(number, name, dnis=dnis, keys=list(keys), hold=40)
            self.placed += 1
            logger.info("demo call %d: %s (%s) dials %s, will key %s", self.placed, name, number, dnis,
                        ",".join(keys) or "nothing")
        except Exception:  # a LoopingCall stops for good on an exception
            logger.exception("the demo caller failed")

    def stop(self) -> None:
        if self._caller.running:
            self._caller.stop()
        self.sim.stop()
