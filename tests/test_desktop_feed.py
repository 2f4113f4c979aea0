"""Screen pops and call updates on real websocket desktops, the daemon routing simulator calls through its ACD."""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_twisted
from websockets.asyncio.client import connect

from acd import inputs as inp
from callcenter.aio import as_deferred
from crm_core.acd_config import thd_change_agent, thd_change_queue
from crm_core.customers import NewCustomer, thd_create_customer
from tests.test_acd_sim import AGENTS, ready_lab, until
from tests.test_acd_sim import lab as sim_lab  # noqa: F401


@pytest.fixture
def lab(sim_lab):  # noqa: F811
    return sim_lab


class Desk:
    """A desktop: a websocket client that authenticates with a session token and keeps every frame."""

    def __init__(self, root, agent, role="agent", groups=()):
        self.root, self.agent, self.role, self.frames, self.ws, self.task = root, agent, role, [], None, None
        self.groups = frozenset(groups)

    async def open(self):
        session = self.root.desktop.sessions.open(self.agent, self.role, self.groups)
        host, port = self.root.desktop.address
        self.ws = await connect(f"ws://{host}:{port}/ws")
        await self.ws.send(json.dumps({"type": "auth", "v": 1, "token": session.token}))
        self.task = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        async for raw in self.ws:
            self.frames.append(json.loads(raw))

    def of(self, kind):
        return [f for f in self.frames if f["type"] == kind]

    async def ask(self, request, **body):
        """Send a request; its result frame."""
        request_id = f"r{len(self.frames)}-{request}"
        await self.ws.send(json.dumps({"type": request, "v": 1, "id": request_id, **body}))
        for _ in range(200):
            found = [f for f in self.of("result") if f["id"] == request_id]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no result for {request}")

    async def close(self):
        await self.ws.close()
        await asyncio.wait({self.task}, timeout=2)


async def desk(root, agent, role="agent", groups=()):
    return await as_deferred(Desk(root, agent, role, groups).open())


async def given_a_team(root, team="floor", queues=("support", "slow", "sales"), agents=AGENTS):
    """``queues`` and ``agents`` in group ``team`` in the CRM, and the ACD's setup has them."""
    def put(engine):
        for queue in queues:
            thd_change_queue(engine, queue, groups=(team,))
        for agent in agents:
            thd_change_agent(engine, agent, groups=(team,))

    await root.crm.pool.run(put, root.crm.engine)
    setup = lambda: root.acd.distributor.setup  # noqa: E731
    await until(lambda: all(team in setup().queue(q).groups for q in queues)
                and {p.agent for p in setup().agents if team in p.groups} >= set(agents), 10,
                f"the ACD to load group {team}")


def asked(desktop, request, **body):
    return as_deferred(desktop.ask(request, **body))


@pytest_twisted.ensureDeferred
async def test_the_ringing_agent_gets_the_pop_and_the_calls_progress_and_nobody_else_does(lab):
    """6001 is offered a call from a known customer: its desktop pops her view (name, the service line,
    the wait), then connected and ended; 6002's desktop never sees that call."""
    sim, root = await ready_lab(lab)
    await root.crm.pool.run(thd_create_customer, root.crm.engine,
                            NewCustomer("Zoë Müller", tier="vip", phones=("5551001",)), "CN")
    sim.agent("6001", ring=0.5, talk=1)
    first, second = await desk(root, "6001"), await desk(root, "6002")
    await as_deferred(root.acd.command(inp.Login("6001", ready=True)))
    await as_deferred(root.acd.command(inp.Login("6002", ready=False)))
    call = sim.call("5551001", "Zoë", dnis="4060")
    await until(lambda: any(f.get("state") == "ended" for f in first.of("call")), 20, "the call to end on 6001")
    (pop,) = first.of("pop")
    assert (pop["call_id"], pop["state"], pop["dnis"], pop["queue"]) == (call.linkedid, "ringing", "4060", "support")
    assert pop["customer"]["name"] == "Zoë Müller" and pop["customer"]["vip"] is True
    assert [f["state"] for f in first.of("call")] == ["connected", "ended"]
    assert [f["type"] for f in first.frames][:2] == ["welcome", "snapshot"]
    assert not second.of("pop") and not second.of("call")
    assert root.desktop.feed.latencies and max(root.desktop.feed.latencies) < 1.0
    await as_deferred(first.close())
    await as_deferred(second.close())


@pytest_twisted.ensureDeferred
async def test_a_desktop_that_reconnects_mid_call_gets_the_call_once_and_an_ended_call_never(lab):
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.3, talk=3)
    first = await desk(root, "6001")
    await as_deferred(root.acd.command(inp.Login("6001", ready=True)))
    call = sim.call("5551002", "Unknown", dnis="4060")
    await until(lambda: first.of("call"), 10, "the call to connect")
    await as_deferred(first.close())
    again = await desk(root, "6001")
    await until(lambda: again.of("snapshot"), 5, "the snapshot")
    (snapshot,) = again.of("snapshot")
    assert snapshot["call"]["call_id"] == call.linkedid and snapshot["call"]["state"] == "connected"
    assert snapshot["call"]["new_customer"]["phone"] == "5551002"
    assert snapshot["agent"]["state"] == "on-call"
    assert not again.of("pop")                   # the call came in the snapshot, not as a second pop
    await until(lambda: any(f.get("state") == "ended" for f in again.of("call")), 10, "the call to end")
    await as_deferred(again.close())
    late = await desk(root, "6001")
    await until(lambda: late.of("snapshot"), 5, "the snapshot")
    assert late.of("snapshot")[0]["call"] is None     # no stale pop
    await as_deferred(late.close())


@pytest_twisted.ensureDeferred
async def test_an_agent_works_a_call_from_the_desktop_and_the_wrap_up_lands_in_the_contact_record(lab):
    """login and ready, the call pops, hold and take back (call frames held/resumed come from Asterisk),
    a ticket linked to the call, then wrap-up with a disposition and notes: saved on the contact record."""
    sim, root = await ready_lab(lab)
    sim.agent("6001", ring=0.3, talk=4)
    me = await desk(root, "6001")
    assert (await asked(me, "login", ready=True))["agent"]["state"] == "ready"
    call = sim.call("5551003", "Jane", dnis="4060")
    await until(lambda: any(f.get("state") == "connected" for f in me.of("call")), 10, "the call to connect")
    assert (await asked(me, "hold"))["ok"] is True
    await until(lambda: any(f.get("state") == "held" for f in me.of("call")), 5, "held")
    assert (await asked(me, "unhold"))["ok"] is True
    await until(lambda: any(f.get("state") == "resumed" for f in me.of("call")), 5, "resumed")
    ticket = await asked(me, "ticket", call_id=call.linkedid, subject="Router <b>broken</b>", kind="complaint")
    assert ticket["ok"] and ticket["ticket"]["subject"] == "Router <b>broken</b>"
    changed = await asked(me, "ticket", ticket_id=ticket["ticket"]["id"], priority="high", note="Customer called back")
    assert changed["ok"] and changed["ticket"]["priority"] == "high", changed
    refused = await asked(me, "ticket", ticket_id=ticket["ticket"]["id"], subject="renamed")
    assert refused["ok"] is False and "not subject" in refused["error"]
    refused = await asked(me, "ticket", ticket_id=ticket["ticket"]["id"], status="no-such-status")
    assert refused["ok"] is False and "status" in refused["error"], refused
    missing = await asked(me, "ticket", ticket_id=999999, priority="low")
    assert missing["ok"] is False and "999999" in missing["error"], missing
    await until(lambda: any(f.get("state") == "ended" for f in me.of("call")), 15, "the call to end")
    await until(lambda: root.acd.distributor.agent("6001").state.value == "wrap-up", 5, "wrap-up")
    done = await asked(me, "wrap_up", call_id=call.linkedid, disposition="resolved", notes="Reset the router. 已解决")
    assert done["ok"] and done["agent"]["state"] == "ready", done
    await root.crm.writer.wait_flushed()
    record = await root.crm.store.contact(call.linkedid)
    assert (record.disposition, record.notes, record.agent) == ("resolved", "Reset the router. 已解决", "6001")
    assert ticket["ticket"]["id"] in record.ticket_ids
    await as_deferred(me.close())


@pytest_twisted.ensureDeferred
async def test_requests_are_checked_and_supervisor_actions_are_for_supervisors(lab):
    sim, root = await ready_lab(lab)
    await given_a_team(root)
    agent, boss = await desk(root, "6001"), await desk(root, "6002", role="supervisor", groups={"floor"})
    refused = await asked(agent, "spy", agent="6002", mode="listen")
    assert refused == {"type": "result", "v": 1, "id": refused["id"], "request": "spy", "ok": False,
                       "error": "spy is for supervisors"}
    assert (await asked(agent, "hold"))["error"] == "agent 6001 has no call in conversation"
    assert (await asked(agent, "not_ready", reason="<script>"))["ok"] is False
    assert (await asked(agent, "wrap_up", call_id="nope", disposition="resolved"))["error"].startswith("no call")
    assert (await asked(agent, "dial", number="12; DROP"))["ok"] is False
    assert (await asked(agent, "login"))["ok"] is True
    forced = await asked(boss, "force_state", agent="6001", state="not-ready")
    assert forced["ok"] and forced["agent"]["state"] == "not-ready" and forced["agent"]["reason"] == "forced"
    found = await asked(agent, "search", query="Nobody Known")
    assert found["ok"] and found["customers"] == []
    await as_deferred(agent.close())
    await as_deferred(boss.close())


@pytest_twisted.ensureDeferred
async def test_supervisors_get_the_wallboard_and_agents_do_not(lab):
    """A supervisor's desktop gets the wallboard at once and again when a call is answered; an agent's never."""
    sim, root = await ready_lab(lab)
    await given_a_team(root)
    sim.agent("6001", ring=0.3, talk=1)
    boss, agent = await desk(root, "6002", role="supervisor", groups={"floor"}), await desk(root, "6001")
    await until(lambda: boss.of("wallboard"), 5, "the first wallboard")
    first = boss.of("wallboard")[0]
    assert {q["queue"] for q in first["queues"]} >= {"support", "slow"}
    assert {a["agent"] for a in first["agents"]} >= {"6001", "6002"}
    await asked(agent, "login", ready=True)
    sim.call("5551004", "Jane", dnis="4060")

    def support(frame):
        return next(q for q in frame["queues"] if q["queue"] == "support")

    await until(lambda: any(support(f)["answered"] == 1 for f in boss.of("wallboard")), 15, "the answered call")
    times = [f for f in boss.frames if f["type"] == "wallboard"]
    assert len(times) <= 40          # coalesced: at most one a tick, not one per event
    assert not agent.of("wallboard")
    # the chart: this minute's point, with the answered call within the service level
    answered = next(f for f in boss.of("wallboard") if support(f)["answered"] == 1)
    (minute, waiting, level), = answered["chart"][-1:]
    assert level == 1.0 and minute <= root.acd.now() < minute + 60 and waiting >= 0
    await as_deferred(boss.close())
    await as_deferred(agent.close())
    # a wallboard opened later gets the chart of the last hours at once
    late = await desk(root, "6002", role="supervisor", groups={"floor"})
    await until(lambda: late.of("wallboard"), 5, "the late wallboard")
    assert late.of("wallboard")[0]["chart"] and late.of("wallboard")[0]["chart"][-1][2] == 1.0
    await as_deferred(late.close())
