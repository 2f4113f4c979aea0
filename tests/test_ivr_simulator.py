"""The IVR against the Asterisk simulator (callcenter/sim): a call dialled on the
simulated box runs the real dialplan contract, our FastAGI server and the
shipped flows, and reaches an agent through Queue()."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from twisted.internet import task

from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.ivr.handler import IvrHandler
from ivr_flows.flowset import load_flowset
from ivr_flows.memory import FixedQueueStats, InMemoryCustomers, MemoryContactRecords

from callcenter.sim import scenarios  # noqa: E402
from callcenter.sim import SoundLibrary  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"
MONDAY_10_SHANGHAI = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc).timestamp()
CUSTOMERS = [
    {"id": "C2001", "ani": "5552001", "name": "Li Wei", "tier": "vip", "language": "zh"},
    {"id": "C1001", "ani": "5551001", "name": "Jane Doe", "tier": "standard", "language": "en"},
]


class Lab:
    def __init__(self, sounds=None) -> None:
        self.clock = task.Clock()
        self.clock.advance(MONDAY_10_SHANGHAI)
        flow_set = load_flowset(SHIPPED)[0]
        self.records = MemoryContactRecords()
        handler = IvrHandler(lambda: flow_set, InMemoryCustomers(CUSTOMERS), self.records, FixedQueueStats(),
                             self.clock)
        self.factory = FastAGIServerFactory({"ivr": handler.handle}, self.clock)
        self.factory.doStart()
        self.sim = scenarios.Simulator(None, clock=self.clock, agi_server=self.factory, sounds=sounds)
        self.sim.start()

    def events(self, name: str) -> list:
        return [message for _, message in self.sim.events if message.is_event and message.name == name]


def test_a_vip_call_on_the_simulated_box_reaches_a_vip_agent():
    """4001 from a known VIP: IVR, CC_RESULT=queue, Queue(vip), the agent answers."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=2)
    lab.sim.add_member("vip", "6001")
    call = lab.sim.call("5552001", "Li Wei", dnis="4001")
    lab.sim.advance(10)
    [record] = lab.records.records
    assert record.outcome == "queue" and record.handoff.queue == "vip" and record.handoff.priority == 100
    assert [(m.get("Queue"), m.get("Channel")) for m in lab.events("QueueCallerJoin")] == [("vip", call.line.name)]
    assert [m.get("Queue") for m in lab.events("AgentConnect")] == ["vip"]


def test_a_hotline_caller_keys_through_the_menus_to_support():
    """DTMF from the simulated caller: 1 (English), then 0 (an agent)."""
    lab = Lab()
    lab.sim.agent("6002", ring=1, talk=2)
    lab.sim.add_member("support", "6002")
    call = lab.sim.call("5551001", "Jane Doe", dnis="4000", digits="1")
    lab.sim.advance(4)
    call.press("0")
    lab.sim.advance(10)
    [record] = lab.records.records
    assert [(e.node, e.value) for e in record.path if e.event == "digits"] == [
        ("choose_language", "1"), ("main_menu", "0")]
    assert record.outcome == "queue" and record.handoff.queue == "support"
    assert [m.get("Queue") for m in lab.events("AgentConnect")] == ["support"]


def test_a_caller_hanging_up_in_the_main_menu_on_the_simulated_box():
    """The caller leaves while the main menu waits for a key: recorded as abandoned there."""
    lab = Lab()
    call = lab.sim.call("5551001", "Jane Doe", dnis="4000", digits="1")
    lab.sim.advance(4)
    call.hangup()
    lab.sim.advance(5)
    [record] = lab.records.records
    assert record.outcome == "abandoned" and record.left_at == "hotline:main_menu"
    assert lab.events("QueueCallerJoin") == []


def test_missing_prompts_on_the_simulated_box_still_route_the_caller_by_keys():
    """The box lacks the welcome and the main-menu prompts: STREAM FILE and GET DATA
    answer -1 with the channel up, the IVR goes on, reads the main menu's key with
    WAIT FOR DIGIT, and 1 then 0 reach support; the FastAGI session ends normally."""
    lab = Lab(SoundLibrary(missing=frozenset({"custom/cc-welcome", "custom/cc-main-menu"})))
    lab.sim.agent("6002", ring=1, talk=2)
    lab.sim.add_member("support", "6002")
    lab.sim.call("5551001", "Jane Doe", dnis="4000", keys=["1", "0"])
    lab.sim.advance(20)
    [record] = lab.records.records
    assert [(e.node, e.value) for e in record.path if e.event == "digits"] == [
        ("choose_language", "1"), ("main_menu", "0")]
    assert record.outcome == "queue" and record.handoff.queue == "support"
    commands = [m.get("Command") for m in lab.events("AGIExecEnd")]
    assert commands[commands.index('GET DATA "custom/cc-main-menu" 5000 1') + 1:][:2] == [
        "CHANNEL STATUS", "WAIT FOR DIGIT 5000"]
    assert [m.get("Queue") for m in lab.events("AgentConnect")] == ["support"]
    assert lab.factory.active_sessions == 0
