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


def seed_customers(url: str, region: str) -> None:
    """A few known callers, so lookups, balances and the VIP line show (blocking: before the reactor runs)."""
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
    finally:
        engine.dispose()


class DemoLab:
    """The simulated Asterisk plus a caller every ``interval`` seconds."""

    def __init__(self, reactor: Any, agi_port: int, *, interval: float = 6.0, seed: int = 7):
        self.sim = Simulator(reactor, agi_port=agi_port)
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
