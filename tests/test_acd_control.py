"""The operators' control socket of a running daemon (against the simulator): commands, queries, bad input."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import threads

from callcenter.routing.control import ask
from callcenter.sim import SHIPPED_FEATUREMAP

from tests.test_acd_sim import AGENTS, ready_lab, sleep, state, until  # noqa: F401 (fixture helpers)
from tests.test_acd_sim import lab as sim_lab  # noqa: F401


@pytest.fixture
def lab(sim_lab):  # noqa: F811
    return sim_lab


def exchange(path, *lines):
    """Send requests to the control socket (in a thread: the daemon runs on this reactor); the answers."""
    return threads.deferToThread(ask, path, *lines)


@pytest_twisted.ensureDeferred
async def test_agent_commands_and_queries_over_the_socket(lab):
    """login, state, wrap-up and logout go to the distributor; agents.list and queues.status answer from it."""
    sim, root = await ready_lab(lab)
    path = root.control.path
    login, ready, lunch, listing, status = await exchange(
        path, {"op": "agents.login", "agent": "6001", "queues": ["support"]},
        {"op": "agents.state", "agent": "6001", "state": "ready"},
        {"op": "agents.state", "agent": "6001", "state": "not-ready", "reason": "lunch"},
        {"op": "agents.list"}, {"op": "queues.status"})
    assert (login["ok"], login["agent"]["state"], login["agent"]["reason"]) == (True, "not-ready", "login")
    assert ready["agent"]["state"] == "ready"
    assert (lunch["agent"]["state"], lunch["agent"]["reason"]) == ("not-ready", "lunch")
    row = next(a for a in listing["agents"] if a["agent"] == "6001")
    assert (row["state"], row["reason"], row["queues"]) == ("not-ready", "lunch", ["support"])
    assert {a["agent"] for a in listing["agents"]} >= set(AGENTS)
    support = next(q for q in status["queues"] if q["queue"] == "support")
    assert support["waiting"] == 0 and support["agents_by_state"] == {"not-ready": 1}
    (logout,) = await exchange(path, {"op": "agents.logout", "agent": "6001"})
    assert logout["agent"]["state"] == "logged-out" and state(root, "6001") == ("logged-out", None)


@pytest_twisted.ensureDeferred
async def test_call_actions_over_the_socket(lab):
    """calls.* on 6001's call: refused without a call; an attended transfer to 6002 cancelled (the cancel
    refused before the consultation and after it); hold and unhold; hangup.  Each answer only says Asterisk took the action:
    the test waits for the tracker to see what happened."""
    sim, root = await ready_lab(lab)
    sim.featuremap.update(SHIPPED_FEATUREMAP)
    sim.agent("6001", ring=0.2, talk=120)
    sim.agent("6002", ring=0.2, talk=120)
    path, tracker = root.control.path, root.calls.tracker

    def record():
        return tracker.get(call.linkedid)

    (idle,) = await exchange(path, {"op": "calls.hold", "agent": "6001"})
    assert idle == {"ok": False, "error": "agent 6001 has no call in conversation"}
    await exchange(path, {"op": "agents.login", "agent": "6001", "ready": True})
    call = sim.call("5551012", "Jane", dnis="4060")
    await until(lambda: state(root, "6001")[0] == "on-call" and record().agent_channel, 10, "6001 on the call")
    (early,) = await exchange(path, {"op": "calls.cancel_transfer", "agent": "6001"})
    assert early == {"ok": False, "error": "no attended transfer in progress on the call"}
    (consult,) = await exchange(path, {"op": "calls.transfer", "agent": "6001", "target": "6002",
                                       "kind": "attended"})
    assert consult["ok"] is True
    await until(lambda: record().consulting, 10, "6001 consulting 6002")
    (cancelled,) = await exchange(path, {"op": "calls.cancel_transfer", "agent": "6001"})
    assert cancelled == {"ok": True, "call_id": call.linkedid}
    await until(lambda: not record().consulting and record().holds[-1].ended_at is not None, 10,
                "the consultation over")
    assert not record().transfers and record().agent_id == "6001"
    assert not [name for name in sim.engine.channels if "6002" in name or "cc-consult" in name]
    (late,) = await exchange(path, {"op": "calls.cancel_transfer", "agent": "6001"})
    assert late["ok"] is False
    (held,) = await exchange(path, {"op": "calls.hold", "agent": "6001"})
    assert held == {"ok": True, "call_id": call.linkedid}
    await until(lambda: record().holds[-1].ended_at is None, 5, "the caller on hold")
    (again,) = await exchange(path, {"op": "calls.hold", "agent": "6001"})
    assert again == {"ok": False, "error": "the call is on hold already"}
    (back,) = await exchange(path, {"op": "calls.unhold", "agent": "6001"})
    assert back["ok"] is True
    await until(lambda: record().holds[-1].ended_at is not None, 5, "the caller back")
    (hangup,) = await exchange(path, {"op": "calls.hangup", "agent": "6001"})
    assert hangup["ok"] is True
    await until(lambda: call.hungup, 5, "the call to end")
    assert sim.errors == []


@pytest_twisted.ensureDeferred
async def test_bad_requests_get_a_clear_error_and_the_connection_stays_usable(lab):
    sim, root = await ready_lab(lab)
    answers = await exchange(
        root.control.path, b"not json\n", b"[1, 2]\n", b'{"op": "agents.dance", "agent": "6001"}\n',
        b'{"op": "agents.state", "agent": "6001", "state": "asleep"}\n',
        b'{"op": "agents.login", "agent": "nobody"}\n',
        b'{"op": "agents.login", "agent": "6001", "interface": "PJSIP/6001&PJSIP/6002"}\n',
        b'{"op": "agents.state", "agent": "6001", "state": "not-ready", "reason": "<script>"}\n',
        b'{"op": "agents.wrap-up", "agent": "6001", "extend": -5}\n',
        b'{"op": "agents.state", "agent": "6001", "state": "ready"}\n',
        b'{"op": "agents.list"}\n')
    errors = [a["error"] for a in answers[:-1]]
    assert errors[0].startswith("not a JSON line")
    assert errors[1] == 'a request is a JSON object with an "op"'
    assert errors[2] == "unknown op 'agents.dance'"
    assert errors[3] == "bad agents.state request: state must be ready or not-ready, not 'asleep'"
    assert "nobody" in errors[4]
    assert errors[5].startswith("bad agents.login request: interface must look like")
    assert errors[6].startswith("bad agents.state request: reason must be")
    assert errors[7].startswith("bad agents.wrap-up request: extend must be")
    assert "logged" in errors[8] and "6001" in errors[8]        # not logged in: refused by the distributor
    assert answers[-1]["ok"] is True


@pytest_twisted.ensureDeferred
async def test_a_line_over_64_kib_is_refused_and_the_connection_closed(lab):
    sim, root = await ready_lab(lab)
    (answer,) = await exchange(root.control.path, b"x" * (70 * 1024) + b"\n")
    assert answer == {"ok": False, "error": "request longer than 65536 bytes"}
    (listing,) = await exchange(root.control.path, {"op": "agents.list"})
    assert listing["ok"] is True


@pytest_twisted.ensureDeferred
async def test_wrap_up_is_extended_and_ended_by_the_agent(lab):
    """After a call 6001 is in wrap-up (1 s); extended by 30 s it stays there; ended, it is ready."""
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.2, talk=0.5)
    (login,) = await exchange(root.control.path, {"op": "agents.login", "agent": "6001", "ready": True})
    sim.call("5551010", "Jane", dnis="4060")
    await until(lambda: state(root, "6001")[0] == "wrap-up", 10, "6001 in wrap-up")
    (extended,) = await exchange(root.control.path, {"op": "agents.wrap-up", "agent": "6001", "extend": 30})
    assert extended["agent"]["state"] == "wrap-up"
    await sleep(1.5)
    assert state(root, "6001")[0] == "wrap-up"
    (ended,) = await exchange(root.control.path, {"op": "agents.wrap-up", "agent": "6001"})
    assert ended["agent"]["state"] == "ready"


@pytest_twisted.ensureDeferred
async def test_a_configuration_change_in_the_crm_is_picked_up_without_a_restart(lab):
    """queues set --strategy round-robin and a new skill for 6002 reach the distributor within seconds."""
    from crm_core.acd_config import thd_change_agent, thd_change_queue

    sim, root = await ready_lab(lab)
    await root.crm.pool.run(thd_change_queue, root.crm.engine, "support", strategy="round-robin", wrap_up_seconds=7)
    await root.crm.pool.run(thd_change_agent, root.crm.engine, "6002", skills=(("billing", 4),))
    await until(lambda: root.acd.distributor.setup.queue("support").strategy == "round-robin", 10,
                "the new strategy")
    assert root.acd.distributor.setup.queue("support").wrap_up_seconds == 7.0
    await until(lambda: dict(next(a for a in root.acd.distributor.setup.agents if a.agent == "6002").skills)
                == {"billing": 4}, 10, "6002's new skill")


@pytest_twisted.ensureDeferred
async def test_queue_figures_are_streamed_when_they_change(lab):
    sim, root = await ready_lab(lab)
    pushed = []
    root.acd.subscribe_figures(pushed.append)
    sim.agent("6001", ring=0.2, talk=0.5)
    await exchange(root.control.path, {"op": "agents.login", "agent": "6001", "ready": True})
    sim.call("5551011", "Jane", dnis="4060")
    await until(lambda: any(next(q for q in rows if q["queue"] == "support")["answered"] == 1 for rows in pushed),
                15, "a pushed figure with the answered call")
    # the chart has this minute: the one call answered was within the service level
    (at, waiting, level), = root.acd.chart(["support"], since=root.acd.now() - 60)[-1:]
    assert waiting >= 0 and level == 1.0 and at <= root.acd.now() < at + 60
    assert root.acd.chart([]) == []
