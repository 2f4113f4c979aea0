"""The daemon's ACD against the Asterisk simulator, over real TCP (AMI and FastAGI): the fast twin of
``tests/test_real_asterisk_acd.py``.

The simulator runs the shipped dialplan contract (``cc-wait`` heartbeat, ``cc-connect``, ``cc-acd-exit``,
``cc-callback``) with short times: a music pass of 1 s and a dead heartbeat after 3 s.  Its agent phones
follow the lab's number plan: 6XXX answer, 7XXX never answer, 8XXX answer busy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from acd import inputs as inp
from callcenter.aio import as_deferred
from callcenter.app import build_root
from callcenter.config import build_config
from callcenter.sim.scenarios import Simulator
from tests.servers import free_port
from tests.util import always_open_routes, copy_flows, sleep, until, write_acd_flows

ROUTES = always_open_routes('"4060": {flow: acd, calendar: always, closed: after_hours}',
                            '"4061": {flow: acd_slow, calendar: always, closed: after_hours}',
                            '"4062": {flow: acd_sales, calendar: always, closed: after_hours}')
SHORT = {"CTI_ACD_CHECK_SECS": "1", "CTI_ACD_DEAD_SECS": "3", "CTI_ACD_MAX_WAIT_SECS": "120"}
AGENTS = ("6001", "6002", "6003", "7001", "8001")



def configure(engine, slow_max_wait=None, on_max_wait="voicemail"):
    from crm_core.acd_config import NewAgent, thd_save_agent, thd_save_queue
    from crm_core.records import QueueConfig

    thd_save_queue(engine, QueueConfig("support", "Support", (), 0, 20, ring_seconds=2, wrap_up_seconds=1))
    thd_save_queue(engine, QueueConfig("slow", "Nobody's skill", (("klingon", 5),), 0, 20, ring_seconds=2,
                                       wrap_up_seconds=1, max_wait=slow_max_wait, on_max_wait=on_max_wait))
    thd_save_queue(engine, QueueConfig("sales", "Sales (Asterisk's own strategy)", (), 0, 20, engine="asterisk"))
    for agent in AGENTS:
        thd_save_agent(engine, NewAgent(agent, f"Agent {agent}", interface=f"Local/{agent}@sim-agents/n",
                                        queues=(("support", 0), ("slow", 0), ("sales", 1))))


@pytest.fixture
def lab(tmp_path):
    agi_port = free_port()
    sim = Simulator(reactor, agi_port=agi_port, ivr_dnis=("4000", "4001", "4060", "4061", "4062"), dialplan_globals=SHORT)
    sim.start()
    flows = copy_flows(tmp_path)
    Path(flows, "routes.yaml").write_text(ROUTES)
    write_acd_flows(flows, acd="support", acd_slow="slow", acd_sales="sales")
    cfg = build_config({
        "asterisk": {"ami_port": sim.port, "ami_secret": "cti-secret", "agi_port": agi_port},
        "crm": {"url": f"sqlite:///{tmp_path / 'crm.db'}", "journal": str(tmp_path / "journal.db")},
        "desktop": {"port": free_port()},
        "ivr": {"flows_dir": flows, "routes": str(Path(flows, "routes.yaml"))},
        "acd": {"state_file": str(tmp_path / "acd-state.json"), "control_socket": str(tmp_path / "control.sock")},
    }, environ={})
    root = build_root(cfg, reactor)
    pytest_twisted.blockon(root.startService())
    yield sim, root, cfg
    if root.running:
        pytest_twisted.blockon(root.stopService())
    sim.stop()


async def ready_lab(lab, slow_max_wait=None, on_max_wait="voicemail"):
    sim, root, _ = lab
    await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    await root.crm.pool.run(configure, root.crm.engine, slow_max_wait, on_max_wait)
    await until(lambda: {a.agent for a in root.acd.distributor.setup.agents} >= set(AGENTS), 10,
                "the ACD to load its configuration")
    return sim, root


async def login(root, agent, ready=True, reason=None):
    answer = await as_deferred(root.acd.command(inp.Login(agent, ready=ready)))
    assert answer["ok"], answer
    if reason:
        answer = await as_deferred(root.acd.command(inp.SetNotReady(agent, reason)))
        assert answer["ok"], answer


def state(root, agent):
    view = root.acd.distributor.agent(agent)
    return (view.state.value, view.reason) if view else ("logged-out", None)


def dialled(sim, linkedid):
    """The agent interfaces the caller's channel dialled, in order (DialBegin events)."""
    return [dict(m.headers).get("DestChannel", "").rsplit("-", 1)[0] for _, m in sim.events
            if m.name == "DialBegin" and dict(m.headers).get("Linkedid") == linkedid]


async def contact(root, linkedid):
    await root.crm.writer.wait_flushed()
    return await root.crm.store.contact(linkedid)


@pytest_twisted.ensureDeferred
async def test_a_ready_agent_is_connected_wraps_up_and_is_ready_again(lab):
    """Hand-off to the ACD, Setvar+Redirect into cc-connect, 6001 answers; wrap-up, then ready; figures count it."""
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.5, talk=1)
    await login(root, "6001")
    call = sim.call("5551001", "Jane", dnis="4060")
    await until(lambda: state(root, "6001") == ("on-call", None), 10, "6001 on the call")
    await until(lambda: state(root, "6001")[0] == "wrap-up", 10, "6001 in wrap-up")
    await until(lambda: state(root, "6001") == ("ready", None), 5, "6001 ready again")
    assert dialled(sim, call.linkedid) == ["Local/6001@sim-agents"]
    record = await contact(root, call.linkedid)
    assert record.agent == "6001" and record.queue == "support" and record.abandoned is False
    figures = root.acd.queue_figures("support")
    assert (figures["answered"], figures["abandoned"]) == (1, 0)
    assert figures["service_level"] == 1.0 and figures["aht"] is not None and figures["aht"] >= 1.0
    assert root.acd.agent_figures("6001")["calls_handled"] == 1


@pytest_twisted.ensureDeferred
async def test_ring_no_answer_then_busy_then_an_answer(lab):
    """7001 (longest idle) never answers, 8001 is busy: both not ready (missed); 6002 gets the call."""
    sim, root = await ready_lab(lab)
    sim.agent("6002", ring=0.5, talk=1)
    for agent in ("7001", "8001", "6002"):
        await login(root, agent)
        await sleep(0.01)
    call = sim.call("5551002", "Jane", dnis="4060")
    await until(lambda: state(root, "6002")[0] == "on-call", 15, "6002 on the call")
    assert state(root, "7001") == ("not-ready", "missed")
    assert state(root, "8001") == ("not-ready", "missed")
    assert dialled(sim, call.linkedid) == ["Local/7001@sim-agents", "Local/8001@sim-agents", "Local/6002@sim-agents"]
    await until(lambda: call.hungup, 10, "the call to end")
    assert (await contact(root, call.linkedid)).agent == "6002"


@pytest_twisted.ensureDeferred
async def test_unregistered_and_direct_call_phones_are_passed_over(lab):
    """6003 is unregistered and 6001 is on a direct call: both are ready but neither is rung; 6002 is."""
    sim, root = await ready_lab(lab)
    sim.agent("6002", ring=0.5, talk=1)
    sim.unregister("6003")
    sim.direct_call("6001")
    for agent in ("6003", "6001", "6002"):
        await login(root, agent)
    await until(lambda: root.acd.distributor.agent("6001").device_busy, 5, "6001's phone in use")
    call = sim.call("5551003", "Jane", dnis="4060")
    await until(lambda: state(root, "6002")[0] == "on-call", 10, "6002 on the call")
    assert dialled(sim, call.linkedid) == ["Local/6002@sim-agents"]
    assert state(root, "6001") == ("ready", None) and state(root, "6003") == ("ready", None)


@pytest_twisted.ensureDeferred
async def test_a_caller_hanging_up_while_the_agent_rings_frees_the_agent(lab):
    """7001 rings; the caller hangs up: abandoned, and 7001 is ready again (not missed)."""
    sim, root = await ready_lab(lab)
    await login(root, "7001")
    call = sim.call("5551004", "Jane", dnis="4060")
    await until(lambda: state(root, "7001")[0] == "reserved", 10, "7001 to ring")
    call.hangup()
    await until(lambda: state(root, "7001") == ("ready", None), 5, "7001 ready again")
    record = await contact(root, call.linkedid)
    assert record.abandoned is True and record.agent is None
    assert root.acd.queue_figures("support")["abandoned"] == 1


@pytest_twisted.ensureDeferred
async def test_a_queue_with_asterisks_own_strategy_is_handed_to_queue_with_members_kept_by_the_daemon(lab):
    """sales has engine asterisk: the IVR hands the caller to Queue(sales); the daemon added 6001 to sales
    (penalty 1) unpaused while ready, and pauses it when 6001 goes not ready."""
    lab[0].add_queue("sales")
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.3, talk=1)
    await login(root, "6001")

    def member():
        return next((m for m in sim.queue("sales").members.values() if m.interface.startswith("Local/6001")), None)

    await until(lambda: member() is not None and not member().paused, 5, "6001 an unpaused member of sales")
    assert member().penalty == 1
    call = sim.call("5551009", "Jane", dnis="4062")
    await until(lambda: any(m.name == "AgentConnect" and dict(m.headers).get("Linkedid") == call.linkedid
                            and dict(m.headers).get("Queue") == "sales" for _, m in sim.events), 10,
                "Queue(sales) to connect 6001")
    assert root.acd.distributor.calls() == ()      # the daemon's distributor never held it
    await until(lambda: call.hungup, 10, "the call to end")
    await login(root, "6001", ready=False, reason="break")
    await until(lambda: member().paused, 5, "6001 paused in sales")


@pytest_twisted.ensureDeferred
async def test_at_max_wait_the_caller_goes_to_the_queues_fallback(lab):
    """Nobody has the skill of queue slow (max wait 2 s, then voicemail): Redirect to cc-acd-exit,voicemail."""
    sim, root = await ready_lab(lab, slow_max_wait=2)
    await login(root, "6001")
    call = sim.call("5551005", "Jane", dnis="4061")
    await until(lambda: any(m.name == "Newexten" and dict(m.headers).get("Context") == "cc-acd-exit"
                            and dict(m.headers).get("Linkedid") == call.linkedid for _, m in sim.events),
                15, "the caller in cc-acd-exit")
    exten = next(dict(m.headers)["Exten"] for _, m in sim.events if m.name == "Newexten"
                 and dict(m.headers).get("Context") == "cc-acd-exit")
    assert exten == "voicemail"
    assert root.acd.distributor.calls() == ()
    assert root.acd.queue_figures("slow")["offered"] == 1


@pytest_twisted.ensureDeferred
async def test_at_max_wait_a_callback_offer_takes_the_callers_request(lab):
    """Queue slow says callback at max wait: cc-acd-exit,callback runs the callback-offer flow; the caller
    presses 1; a callback request for the caller's number in queue support is stored, and the call ends."""
    sim, root = await ready_lab(lab, slow_max_wait=2, on_max_wait="callback")
    call = sim.call("5551008", "Jane", dnis="4061", keys=["1"])
    await until(lambda: call.hungup, 30, "the caller to leave a callback request and hang up")
    # any status: the ACD's next poll may already have claimed it (it is due at once) to route it to an agent
    requests = await root.crm.store.list_callbacks()
    assert [(c.number, c.queue, c.origin_linkedid) for c in requests] == [("5551008", "support", call.linkedid)]
    assert requests[0].status in ("pending", "dialing")
    record = await contact(root, call.linkedid)
    assert record.queue == "slow" and record.agent is None


@pytest_twisted.ensureDeferred
async def test_with_the_daemon_stopped_the_caller_reaches_the_fallback_queue_where_only_ready_agents_ring(lab):
    """6001 ready, 6002 on lunch (paused in support by the daemon); a caller waits (nobody has the skill).
    The daemon stops: no heartbeat, cc-wait sends the caller to Queue(support), which rings only 6001."""
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.5, talk=5)
    sim.agent("6002", ring=0.5, talk=5)
    await login(root, "6001")
    await login(root, "6002", ready=False, reason="lunch")
    await until(lambda: any(m.paused and m.interface.startswith("Local/6002") for m in sim.queue("support").members.values()),
                5, "6002 paused in support")
    call = sim.call("5551006", "Jane", dnis="4061")
    await until(lambda: root.acd.distributor.calls(), 10, "the caller waiting in the ACD")
    await root.stopService()
    await until(lambda: any(m.name == "QueueCallerJoin" and dict(m.headers).get("Linkedid") == call.linkedid
                            for _, m in sim.events), 10, "the fallback queue to take the caller")
    await until(lambda: any(m.name == "AgentConnect" and dict(m.headers).get("Linkedid") == call.linkedid
                            for _, m in sim.events), 10, "an agent to answer")
    called = [dict(m.headers).get("Interface") for _, m in sim.events
              if m.name == "AgentCalled" and dict(m.headers).get("Linkedid") == call.linkedid]
    assert called and all(iface.startswith("Local/6001") for iface in called), called


@pytest_twisted.ensureDeferred
async def test_a_callback_rings_the_agent_first_then_the_customer_and_records_the_outcome(lab):
    """A due callback in queue support: claimed, routed to 6001, Originate of 6001's phone into cc-callback,
    the customer answers: the request is done with outcome answered, and the call is in the contact log."""
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.5, talk=30)
    created = await root.crm.store.create_callback("5552001", "support")
    await login(root, "6001")
    root.acd.callbacks._last_poll = -1e18
    await until(lambda: state(root, "6001")[0] == "on-call", 20, "6001 on the callback")

    async def finished():
        record = await root.crm.store.callback(created.id)
        return record if record.status != "dialing" else None

    record = None
    for _ in range(200):
        record = await finished()
        if record is not None:
            break
        await sleep(0.1)
    assert record is not None and (record.status, record.last_outcome, record.attempts) == ("done", "answered", 1)
    assert record.last_linkedid and record.last_linkedid.startswith(f"cb{created.id}-")
    sim.agent_hangup("6001")
    await until(lambda: state(root, "6001")[0] in ("wrap-up", "ready"), 10, "6001 off the callback")
    logged = await contact(root, record.last_linkedid)
    assert logged is not None and logged.direction == "outbound" and logged.answered_at is not None


@pytest_twisted.ensureDeferred
async def test_agents_stay_logged_in_across_a_daemon_restart(lab):
    """Without Redis the ACD state is saved in [acd] state_file: after a restart 6001 is still ready."""
    sim, root = await ready_lab(lab)
    await login(root, "6002", ready=False, reason="training")
    await login(root, "6001")
    await sleep(1.5)   # a tick saves the state
    await root.stopService()
    again = build_root(lab[2], reactor)
    await again.startService()
    try:
        await until(lambda: state(again, "6001") == ("ready", None), 10, "6001 restored as ready")
        assert state(again, "6002") == ("not-ready", "training")
    finally:
        await again.stopService()
