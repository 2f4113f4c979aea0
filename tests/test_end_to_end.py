"""The whole daemon against the Asterisk simulator over real TCP (AMI and FastAGI).

A caller dials the hotline, keys through the IVR to an agent, talks and hangs
up; the call is tracked end to end with its timestamps and lands in the CRM
contact log exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from acd.events import (CallArrived, CallCompleted, CallConnected, CallEnded, CallEnteredIvr, CallOffered,
                        CallQueued)
from callcenter.app import build_root
from callcenter.config import build_config
from callcenter.sim import SoundLibrary
from callcenter.sim.scenarios import Simulator
from tests.servers import free_port
from tests.util import always_open_routes, copy_flows, sleep, until

ALWAYS_OPEN = always_open_routes()



def running_lab(tmp_path, sounds=None):
    agi_port = free_port()
    sim = Simulator(reactor, agi_port=agi_port, sounds=sounds)
    sim.start()
    flows = copy_flows(tmp_path)
    Path(flows, "routes.yaml").write_text(ALWAYS_OPEN)
    cfg = build_config({
        "asterisk": {"ami_port": sim.port, "ami_secret": "cti-secret", "agi_port": agi_port},
        "crm": {"url": f"sqlite:///{tmp_path / 'crm.db'}", "journal": str(tmp_path / "journal.db")},
        "desktop": {"port": free_port()},
        "ivr": {"flows_dir": flows, "routes": str(Path(flows, "routes.yaml"))},
    }, environ={})
    root = build_root(cfg, reactor)
    events = []
    root.calls.subscribe(events.append)
    pytest_twisted.blockon(root.startService())
    yield sim, root, events
    pytest_twisted.blockon(root.stopService())
    sim.stop()


@pytest.fixture
def lab(tmp_path):
    yield from running_lab(tmp_path)


@pytest.fixture
def lab_missing_prompts(tmp_path):
    """A box without the welcome and main-menu prompt files."""
    yield from running_lab(tmp_path, SoundLibrary(missing=frozenset({"custom/cc-welcome", "custom/cc-main-menu"})))


@pytest_twisted.ensureDeferred
async def test_a_hotline_call_is_tracked_end_to_end_and_logged_once(lab):
    """IVR (English, then 0), queue support, agent 6001 rings 1 s, answers, talks 1 s, hangs up."""
    sim, root, events = lab
    await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    from crm_core.customers import NewCustomer, thd_create_customer

    customer = await root.crm.pool.run(thd_create_customer, root.crm.engine,
                                       NewCustomer("Zoë 张伟", language="en", phones=("5551001",)), "CN")
    sim.agent("6001", ring=1, talk=1)
    sim.add_member("support", "6001")
    call = sim.call("5551001", "Zoë 张伟", dnis="4000", keys=["1", "0"])
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 30, "the call to end")

    kinds = [type(e).__name__ for e in events if getattr(e, "call_id", None)]
    for earlier, later in [("CallArrived", "CallEnteredIvr"), ("CallEnteredIvr", "CallQueued"),
                           ("CallQueued", "CallOffered"), ("CallOffered", "CallConnected"),
                           ("CallConnected", "CallCompleted"), ("CallCompleted", "CallEnded")]:
        assert kinds.index(earlier) < kinds.index(later), kinds
    arrived = next(e for e in events if isinstance(e, CallArrived))
    assert (arrived.ani, arrived.caller_name, arrived.dnis) == ("5551001", "Zoë 张伟", "4000")
    at = {type(e).__name__: e.at for e in events if isinstance(
        e, (CallArrived, CallEnteredIvr, CallQueued, CallOffered, CallConnected, CallCompleted, CallEnded))}
    assert at["CallArrived"] <= at["CallEnteredIvr"] < at["CallQueued"] <= at["CallOffered"]
    connected = next(e for e in events if isinstance(e, CallConnected))
    assert connected.ring_seconds == pytest.approx(1.0, abs=0.3)
    completed = next(e for e in events if isinstance(e, CallCompleted))
    # The lab agent answers (0.5 s, as recorded) then talks 1 s: the real full call shows 4.5 s for 4.
    assert completed.talk_seconds == pytest.approx(1.5, abs=0.3)
    ended = next(e for e in events if isinstance(e, CallEnded))
    assert ended.record.queue == "support" and ended.record.state.value == "ended"
    assert root.calls.tracker.calls == {}

    await root.crm.writer.wait_flushed()
    contact = await root.crm.store.contact(ended.call_id)
    assert contact is not None
    assert (contact.ani, contact.dnis, contact.queue, contact.self_service) == ("5551001", "4000", "support",
                                                                                "queue")
    assert [s.digits for s in contact.ivr_path if s.digits] == ["1", "0"]
    assert contact.talk_seconds == pytest.approx(completed.talk_seconds, abs=0.01)
    assert contact.answered_at is not None and contact.abandoned is False
    assert contact.agent
    assert contact.customer_id == customer
    assert contact.linkedid == call.line.linkedid
    assert (root.contacts.refused, root.crm.writer.refused) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_missing_prompts_on_the_box_still_queue_the_caller_with_the_keys_pressed(lab_missing_prompts):
    """STREAM FILE and GET DATA answer -1 on a live channel: the IVR skips the welcome,
    reads the main menu's key with WAIT FOR DIGIT, and the caller (1, then 0) reaches
    support; the contact record has both keys."""
    sim, root, events = lab_missing_prompts
    await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    sim.agent("6001", ring=1, talk=1)
    sim.add_member("support", "6001")
    sim.call("5551001", "Jane Doe", dnis="4000", keys=["1", "0"])
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 30, "the call to end")
    ended = next(e for e in events if isinstance(e, CallEnded))
    assert ended.record.queue == "support"
    await root.crm.writer.wait_flushed()
    contact = await root.crm.store.contact(ended.call_id)
    assert (contact.queue, contact.self_service, contact.abandoned) == ("support", "queue", False)
    assert [s.digits for s in contact.ivr_path if s.digits] == ["1", "0"]
    assert contact.answered_at is not None


@pytest_twisted.ensureDeferred
async def test_a_caller_hanging_up_in_the_ivr_is_logged_where_they_left(lab):
    """The caller leaves in the main menu: the contact says so, and the call is not in the tracker."""
    sim, root, events = lab
    await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    call = sim.call("5551001", "Jane Doe", dnis="4000", keys=["1"])
    await until(lambda: any(getattr(e, "call_id", None) and type(e).__name__ == "CallEnteredIvr" for e in events),
                10, "the IVR")
    await sleep(2.0)
    call.hangup()
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 10, "the call to end")
    ended = next(e for e in events if isinstance(e, CallEnded))
    await until(lambda: root.fastagi.factory.active_sessions == 0, 5, "the FastAGI session to close")
    await root.crm.writer.wait_flushed()
    contact = await root.crm.store.contact(ended.call_id)
    assert contact.self_service == "abandoned"
    assert contact.ivr_path[-1].node.startswith("end:hotline:")
    assert contact.answered_at is None and contact.queue is None
    assert root.calls.tracker.calls == {}


@pytest_twisted.ensureDeferred
async def test_an_asterisk_restart_mid_call_drops_the_call_and_the_link_comes_back(lab):
    """core restart now with a caller waiting: the call ends, AMI reconnects and resyncs."""
    sim, root, events = lab
    await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    sim.agent("7001")  # never answers: the caller waits in the queue
    sim.add_member("support", "7001")
    sim.call("5551001", "Jane Doe", dnis="4000", keys=["1", "0"])
    await until(lambda: any(isinstance(e, CallQueued) for e in events), 15, "the caller to queue")
    sim.shutdown(restart=True)
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 10, "the call to end")
    await until(lambda: not root.ami.client.logged_in.is_set(), 10, "the link to drop")
    await until(lambda: root.ami.client.logged_in.is_set(), 15, "the link to come back")
    assert root.calls.tracker.calls == {}
    ended = next(e for e in events if isinstance(e, CallEnded))
    assert ended.record.abandoned is False  # hung up by the shutdown, not by the caller
