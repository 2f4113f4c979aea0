"""Two daemons of one center in one process, against the Asterisk simulator: one Redis, one PostgreSQL CRM.

Daemon A is the simulator's FastAGI server and starts first, so it leads; daemon B follows (its FastAGI
port is one nobody calls).  Both have their own AMI link, desktop server and REST API.  An agent's
desktop, a supervisor's wallboard and the REST API connected to B see what A's ACD decides: A broadcasts
its offers, agents' states and figures through Redis (``AcdService`` "With several daemons").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from acd import effects as fx
from acd import inputs as inp
from callcenter.aio import as_deferred
from callcenter.app import build_root
from callcenter.config import build_config
from callcenter.routing.coordinator import RedisCoordinator
from callcenter.routing.service import REPUBLISH_EVERY
from callcenter.sim.scenarios import Simulator
from tests.servers import forget_keys, free_port
from tests.test_acd_sim import AGENTS, ROUTES, SHORT, configure, until
from tests.test_desktop_server import basic, open_desktop, post, url
from tests.util import copy_flows, write_acd_flows

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

GROUP = "floor"
BOSS = "boss"


def password(login: str) -> str:
    return f"pw-{login}"


def accounts(engine) -> None:
    """The simulator lab's queues and agents; 6001 and a supervisor with desktop passwords, in one group
    with the support queue."""
    from crm_core.acd_config import NewAgent, thd_change_queue, thd_save_agent

    configure(engine)
    thd_change_queue(engine, "support", groups=(GROUP,))
    thd_save_agent(engine, NewAgent("6001", "Agent 6001", password=password("6001"),
                                    interface="Local/6001@sim-agents/n", queues=(("support", 0),), groups=(GROUP,)))
    thd_save_agent(engine, NewAgent(BOSS, "The boss", password=password(BOSS), role="supervisor", groups=(GROUP,)))


@dataclass
class Pair:
    sim: Simulator
    a: Any
    b: Any
    redis_url: str
    channel: str


@pytest.fixture
def pair(tmp_path, redis_url, postgres_url):
    from tests.crm_servers import migrate_new_database
    from tests.test_real_asterisk_acd_multi import drop_database

    crm_url = migrate_new_database(postgres_url, f"crm_broadcast_{uuid.uuid4().hex[:10]}")
    agi_port = free_port()
    sim = Simulator(reactor, agi_port=agi_port, ivr_dnis=("4060", "4061", "4062"), dialplan_globals=SHORT)
    sim.start()
    flows = copy_flows(tmp_path)
    Path(flows, "routes.yaml").write_text(ROUTES)
    write_acd_flows(flows, acd="support", acd_slow="slow", acd_sales="sales")
    prefix = f"test-broadcast-{uuid.uuid4().hex}:"
    roots = {}
    for name, agi in (("a", agi_port), ("b", free_port())):
        cfg = build_config({
            "asterisk": {"ami_port": sim.port, "ami_secret": "cti-secret", "agi_port": agi},
            "crm": {"url": crm_url, "journal": str(tmp_path / f"journal-{name}.db")},
            "redis": {"url": redis_url},
            "desktop": {"port": free_port(), "api_enabled": True, "api_port": free_port()},
            "ivr": {"flows_dir": flows, "routes": str(Path(flows, "routes.yaml"))},
            "acd": {"control_socket": str(tmp_path / f"control-{name}.sock")},
        }, environ={})
        root = roots[name] = build_root(cfg, reactor)
        # a center of its own in the session's Redis (the daemons' default prefix is cc:acd:)
        root.acd.coordinator = RedisCoordinator(redis_url, prefix=prefix, daemon_id=f"daemon-{name}")
    a, b = roots["a"], roots["b"]
    try:
        pytest_twisted.blockon(a.startService())
        pytest_twisted.blockon(defer.ensureDeferred(until(lambda: a.acd.coordinator.leader, 10, "A to lead")))
        pytest_twisted.blockon(b.startService())
        yield Pair(sim, a, b, redis_url, f"{prefix}events")
    finally:
        for root in (b, a):
            if root.running:
                pytest_twisted.blockon(root.stopService())
        sim.stop()
        pytest_twisted.blockon(as_deferred(forget_keys(redis_url, prefix)))
        drop_database(crm_url)


async def ready_pair(pair: Pair) -> Pair:
    for root in (pair.a, pair.b):
        await until(lambda: root.ami.client is not None and root.ami.client.logged_in.is_set(), 10, "AMI login")
    await pair.a.crm.pool.run(accounts, pair.a.crm.engine)
    for root in (pair.a, pair.b):
        await until(lambda: {p.agent for p in root.acd.distributor.setup.agents} >= {*AGENTS, BOSS}, 10,
                    "the ACD to load its configuration")
    assert pair.a.acd.coordinator.leader and not pair.b.acd.coordinator.leader
    return pair


async def sign_in(root, login: str) -> str:
    status, _, body = await threads.deferToThread(post, url(root.desktop, "/api/login"),
                                                  basic(login, password(login)))
    assert status == 200, body
    return body["token"]


class Desktop:
    """A websocket to one daemon's desktop server (an asyncio coroutine reads it), every frame kept with
    the time it arrived."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.arrived: list[float] = []
        self._ids = itertools.count(1)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, root, token: str) -> "Desktop":
        return cls(await open_desktop(root.desktop, token))

    async def _read(self) -> None:
        async for raw in self.ws:
            self.frames.append(json.loads(raw))
            self.arrived.append(time.monotonic())

    def find(self, kind: str, **where) -> dict | None:
        for frame in self.frames:
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in where.items()):
                return frame
        return None

    def last(self, kind: str) -> dict | None:
        return next((f for f in reversed(self.frames) if f.get("type") == kind), None)

    async def request(self, kind: str, **body) -> dict:
        ident = next(self._ids)
        await self.ws.send(json.dumps({"type": kind, "id": ident, **body}))
        deadline = time.monotonic() + 10
        while self.find("result", id=ident) is None:
            assert time.monotonic() < deadline, f"no result of {kind}"
            await asyncio.sleep(0.02)
        return self.find("result", id=ident)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait([self._reader], timeout=2)


async def frame(desktop: Desktop, kind: str, what: str, timeout: float = 10.0, **where) -> dict:
    await until(lambda: desktop.find(kind, **where) is not None, timeout, what)
    return desktop.find(kind, **where)


def rest_get(root, path: str, token: str) -> dict:
    host, port = root.rest.address
    request = urllib.request.Request(f"http://{host}:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def row(rows, key: str, name: str) -> dict:
    return next(r for r in rows if r[key] == name)


async def command(root, command) -> dict:
    answer = await as_deferred(root.acd.command(command))
    assert answer["ok"], answer
    return answer


@pytest_twisted.ensureDeferred
async def test_desktops_wallboards_and_the_api_on_the_follower_see_what_the_leader_decides(pair):
    """6001's desktop and the supervisor's wallboard are on B.  6001 logs in ready through B (relayed to A).
    A offers it a caller: B's desktop gets the pop with the caller's number, then ``connected``; B's
    wallboard and B's REST API show 6001 on the call, as A has it; the caller hangs up: ``ended``."""
    sim, a, b = (await ready_pair(pair)).sim, pair.a, pair.b
    sim.agent("6001", ring=0.5, talk=60)
    offered: list[tuple[float, str]] = []
    a.acd.subscribe(lambda e: offered.append((time.monotonic(), e.call_id)) if isinstance(e, fx.Offer) else None)
    agent_token, boss_token = await sign_in(b, "6001"), await sign_in(b, BOSS)
    agent = await as_deferred(Desktop.open(b, agent_token))
    boss = await as_deferred(Desktop.open(b, boss_token))
    try:
        result = await as_deferred(agent.request("login", queues=["support"], ready=True))
        assert result["ok"], result
        await frame(agent, "agent", "6001 ready on B's desktop", agent="6001", state="ready")

        call = sim.call("5551234", "Jane", dnis="4060")
        pop = await frame(agent, "pop", "the pop on B's desktop", timeout=15)
        assert (pop["ani"], pop["call_id"], pop["queue"], pop["state"]) == ("5551234", call.linkedid, "support",
                                                                             "ringing")
        (offered_at, offered_call), = offered
        assert offered_call == call.linkedid
        delay = agent.arrived[agent.frames.index(pop)] - offered_at
        print(f"pop on the follower's desktop {delay * 1000:.1f} ms after the leader's offer")
        assert delay < 1.0, delay
        await frame(agent, "call", "connected on B's desktop", call_id=call.linkedid, state="connected")
        await frame(agent, "agent", "6001 on-call on B's desktop", agent="6001", state="on-call")

        def on_call_on_the_wallboard() -> bool:
            board = boss.last("wallboard")
            return board is not None and row(board["agents"], "agent", "6001")["state"] == "on-call"

        await until(on_call_on_the_wallboard, 10, "6001 on-call on B's wallboard")
        board = boss.last("wallboard")
        assert {q["queue"] for q in board["queues"]} == {"support"}
        assert row(board["agents"], "agent", "6001")["call_id"] == call.linkedid

        agents = await threads.deferToThread(rest_get, b, "/api/v1/agents", boss_token)
        assert row(agents["agents"], "agent", "6001")["state"] == "on-call"
        queues = await threads.deferToThread(rest_get, b, "/api/v1/queues", boss_token)
        assert row(queues["queues"], "queue", "support")["agents_by_state"] == {"on-call": 1}

        call.hangup()
        await frame(agent, "call", "ended on B's desktop", call_id=call.linkedid, state="ended")
        await frame(agent, "agent", "6001 in wrap-up on B's desktop", agent="6001", state="wrap-up")
        assert len([f for f in agent.frames if f["type"] == "pop"]) == 1
    finally:
        await as_deferred(agent.close())
        await as_deferred(boss.close())


@pytest_twisted.ensureDeferred
async def test_the_followers_rows_and_chart_are_the_leaders_and_malformed_broadcasts_are_dropped(pair):
    """After a call answered, B's agent rows, queue rows and chart are A's (times in state within a second
    or so); malformed broadcasts on the channel are logged and dropped, and B carries on."""
    import redis.asyncio as aioredis

    sim, a, b = (await ready_pair(pair)).sim, pair.a, pair.b
    sim.agent("6001", ring=0.3, talk=0.5)
    client = aioredis.Redis.from_url(pair.redis_url)
    for garbage in ("no sender at all", "intruder\nnot json", 'intruder\n{"figures": {"queues": 3}}',
                    'intruder\n{"effects": [{"type": "Offer", "data": {"agent": 6001}}]}'):
        await as_deferred(client.publish(pair.channel, garbage))
    await as_deferred(client.aclose())
    await command(b, inp.Login("6001", ready=True))
    sim.call("5551001", "Jane", dnis="4060")
    await until(lambda: a.acd.queue_figures("support")["answered"] == 1, 15, "the call answered")

    def without(rows, key: str, *moving: str) -> list[dict]:
        return sorted(({k: v for k, v in r.items() if k not in moving} for r in rows), key=lambda r: r[key])

    await until(lambda: without(a.acd.queue_rows(), "queue", "longest_wait")
                == without(b.acd.queue_rows(), "queue", "longest_wait")
                and without(a.acd.agent_rows(), "agent", "seconds", "occupancy")
                == without(b.acd.agent_rows(), "agent", "seconds", "occupancy"), 10, "B's rows to be A's")
    assert row(b.acd.queue_rows(), "queue", "support")["answered"] == 1
    mine, leaders = row(b.acd.agent_rows(), "agent", "6001"), row(a.acd.agent_rows(), "agent", "6001")
    assert abs(mine["seconds"] - leaders["seconds"]) < 0.5, (mine, leaders)        # aged by B since the copy
    assert abs(mine["occupancy"] - leaders["occupancy"]) < 0.1, (mine, leaders)    # at most a republish old
    assert b.acd.queue_figures("support") == row(b.acd.queue_rows(), "queue", "support")
    await until(lambda: a.acd.chart() == b.acd.chart() and a.acd.chart(["support"]) == b.acd.chart(["support"]),
                10, "B's chart to be A's")
    assert b.acd.chart(["support"]) and b.acd.chart(["support"], since=time.time() + 120) == []
    assert b.acd.chart(["no-such-queue"]) == []


async def subscribed(pair: Pair, heard: list[str]):
    """A task that keeps the sender of every broadcast on the center's channel."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(pair.redis_url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(pair.channel)

    async def listen():
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    heard.append(message["data"].split("\n", 1)[0])
        finally:
            await pubsub.aclose()
            await client.aclose()

    return asyncio.ensure_future(listen())


@pytest_twisted.ensureDeferred
async def test_a_leader_that_loses_the_lease_falls_silent(pair):
    """Another holder takes A's lease: A stops broadcasting (nothing from A for longer than its republishing
    period), and B, which does not lead either, keeps the last copy it had."""
    await ready_pair(pair)
    a, b = pair.a, pair.b
    await command(b, inp.Login("6001", ready=True))
    await until(lambda: row(b.acd.agent_rows(), "agent", "6001")["state"] == "ready", 10, "B to see 6001 ready")
    heard: list[str] = []
    listener = await as_deferred(subscribed(pair, heard))
    try:
        await until(lambda: "daemon-a" in heard, 5, "A's periodic broadcast")
        await as_deferred(a.acd.coordinator._redis.set(a.acd.coordinator._key("leader"), "intruder", px=4000))
        await until(lambda: not a.acd.coordinator.leader, 5, "A to lose the lease")
        heard.clear()
        await as_deferred(asyncio.sleep(REPUBLISH_EVERY + 1.0))
        assert "daemon-a" not in heard, heard
        assert row(b.acd.agent_rows(), "agent", "6001")["state"] == "ready"
    finally:
        listener.cancel()
        await as_deferred(asyncio.wait([listener], timeout=2))


@pytest_twisted.ensureDeferred
async def test_a_follower_that_takes_over_answers_from_its_own_state_and_broadcasts(pair):
    """A stops (giving its lease up): B leads, restores 6001 ready from A's snapshot, answers its views from
    its own distributor, tells its own listeners of its effects, and broadcasts them in turn."""
    await ready_pair(pair)
    a, b = pair.a, pair.b
    await command(b, inp.Login("6001", ready=True))
    await until(lambda: row(b.acd.agent_rows(), "agent", "6001")["state"] == "ready", 10, "B to see 6001 ready")
    effects: list = []
    b.acd.subscribe(effects.append)
    heard: list[str] = []
    listener = await as_deferred(subscribed(pair, heard))
    try:
        await a.stopService()
        await until(lambda: b.acd.coordinator.leader and b.acd.distributor.agent("6001") is not None, 10,
                    "B to take over")
        assert b.acd.distributor.agent("6001").state.value == "ready"
        assert row(b.acd.agent_rows(), "agent", "6001")["state"] == "ready"
        effects.clear()
        await command(b, inp.SetNotReady("6001", "lunch"))
        assert [(e.agent, e.state.value, e.reason) for e in effects if isinstance(e, fx.AgentChanged)] == [
            ("6001", "not-ready", "lunch")]
        assert row(b.acd.agent_rows(), "agent", "6001")["reason"] == "lunch"
        await until(lambda: "daemon-b" in heard, 5, "B's broadcasts")
    finally:
        listener.cancel()
        await as_deferred(asyncio.wait([listener], timeout=2))
