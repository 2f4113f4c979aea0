"""Supervisors see and act on their groups only, over real websockets: the login carries the person's groups,
each wallboard gets the rows of its scope (one frame built per scope, not per desktop), and spy/force_state
on an agent outside the groups are refused.

The first tests run the desktop server with a stand-in ACD (its setup is ``tests.test_groups_scope.SETUP``);
the last one runs the whole daemon against the Asterisk simulator with the real CRM, and moves a queue
between groups while supervisors watch.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer, threads

from acd import inputs as inp
from acd.model import AcdSetup
from agent_desktop import messages, wallboard
from agent_desktop.actions import DesktopActions
from agent_desktop.wallboard import WallboardFeed
from callcenter.aio import as_deferred
from crm_core.records import AgentConfig
from tests.test_acd_sim import lab as sim_lab  # noqa: F401
from tests.test_acd_sim import ready_lab, until
from tests.test_desktop_server import basic, make_desktop, open_desktop, post, url
from tests.test_groups_scope import SETUP

#: login -> (role, groups); every password is "pw-" + login.
PEOPLE = {"east1": ("supervisor", ("east",)), "east2": ("supervisor", ("east",)), "west1": ("supervisor", ("west",)),
          "both": ("supervisor", ("east", "west")), "nobody": ("supervisor", ()), "root": ("admin", ()),
          "1001": ("agent", ("east",))}


def check_password(login, password):
    """The CRM store's check_password for these people, groups included."""
    if login not in PEOPLE or password != f"pw-{login}":
        return defer.succeed(None)
    role, groups = PEOPLE[login]
    return defer.succeed(AgentConfig(login, login, None, role, True, groups=groups))


class TeamAcd:
    """The ACD as the desktop uses it: its setup, the wallboard's rows, commands."""

    def __init__(self, setup: AcdSetup):
        self.distributor = SimpleNamespace(setup=setup)
        self.commands: list = []

    def queue_rows(self):
        return [{"queue": q.name, "waiting": 0} for q in self.distributor.setup.queues]

    def agent_rows(self):
        return [{"agent": p.agent, "state": "ready"} for p in self.distributor.setup.agents]

    async def command(self, command):
        self.commands.append(command)
        return {"ok": True, "agent": {"agent": command.agent, "state": "not-ready"}}


class FakeCalls:
    def __init__(self):
        self.spied: list[tuple[str, str, str]] = []

    async def spy(self, supervisor, agent, mode):
        self.spied.append((supervisor, agent, mode))
        return f"call-of-{agent}"


@pytest.fixture
def acd():
    return TeamAcd(SETUP)


@pytest.fixture
def calls():
    return FakeCalls()


@pytest.fixture
def desktop(acd, calls):
    svc = make_desktop(check_password=check_password, acd=lambda: acd)
    svc.wallboard = WallboardFeed(svc.hub, lambda: acd)
    svc.actions = DesktopActions(lambda: acd, lambda: calls, lambda: None, lambda *a: None)
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())


async def sign_in(svc, login):
    """Log in over HTTP as ``login``; the token."""
    status, _, body = await threads.deferToThread(post, url(svc, "/api/login"), basic(login, f"pw-{login}"))
    assert status == 200, body
    return body["token"]


def board(frame):
    assert frame["type"] == "wallboard", frame
    return {q["queue"] for q in frame["queues"]}, {a["agent"] for a in frame["agents"]}


EAST = ({"billing", "support"}, {"1001", "1002", "3001", "9001"})
WEST = ({"sales", "support"}, {"1002", "2001", "3001"})
ALL = ({"billing", "sales", "support", "lab"}, {"1001", "1002", "2001", "3001", "4001", "9001"})


@pytest_twisted.ensureDeferred
async def test_the_login_gives_the_session_the_persons_groups(desktop):
    token = await sign_in(desktop, "both")
    session = desktop.sessions.get(token)
    assert (session.role, session.groups) == ("supervisor", frozenset({"east", "west"}))
    assert desktop.sessions.get(await sign_in(desktop, "root")).groups == frozenset()


@pytest_twisted.ensureDeferred
async def test_each_supervisor_gets_the_wallboard_of_their_groups_built_once_per_scope(desktop, acd, monkeypatch):
    """On connect and on every tick: east and west see their own queues and agents, two east supervisors
    get the same frame (built once), an admin everything, a supervisor in no group nothing; an agent none."""
    names = ("east1", "east2", "west1", "root", "nobody", "1001")
    tokens = {name: await sign_in(desktop, name) for name in names}
    built = []
    real_frame = messages.frame

    def counting_frame(kind, **body):
        built.append(kind)
        return real_frame(kind, **body)

    async def scenario():
        ws = {name: await open_desktop(desktop, token) for name, token in tokens.items()}
        snapshots = {name: json.loads(await ws[name].recv()) for name in names if name != "1001"}
        monkeypatch.setattr(wallboard.messages, "frame", counting_frame)
        desktop.wallboard.on_figures(acd.queue_rows())
        raw = {name: await ws[name].recv() for name in names if name != "1001"}
        await ws["1001"].send(json.dumps({"type": "ping", "id": 1}))
        agent_next = json.loads(await ws["1001"].recv())     # nothing queued before the pong
        for w in ws.values():
            await w.close()
        return snapshots, raw, agent_next

    snapshots, raw, agent_next = await as_deferred(scenario())
    expected = {"east1": EAST, "east2": EAST, "west1": WEST, "root": ALL, "nobody": (set(), set())}
    assert {name: board(frame) for name, frame in snapshots.items()} == expected
    assert {name: board(json.loads(frame)) for name, frame in raw.items()} == expected
    assert raw["east1"] == raw["east2"]
    assert built.count("wallboard") == 4       # east, west, everything, nothing: not one per desktop
    assert agent_next == {"type": "pong", "v": 1, "id": 1}


@pytest_twisted.ensureDeferred
async def test_a_queue_moved_to_another_group_moves_on_the_next_tick(desktop, acd):
    """The scope follows the ACD's current setup: sales joins east; east's next frame has it and its agents."""
    token = await sign_in(desktop, "east1")

    async def scenario():
        ws = await open_desktop(desktop, token)
        first = json.loads(await ws.recv())
        queues = tuple(q if q.name != "sales" else type(q)("sales", groups=frozenset({"east"}))
                       for q in SETUP.queues)
        acd.distributor.setup = AcdSetup(queues, SETUP.agents)
        desktop.wallboard.on_figures(acd.queue_rows())
        second = json.loads(await ws.recv())
        await ws.close()
        return first, second

    first, second = await as_deferred(scenario())
    assert board(first) == EAST
    assert board(second) == ({"billing", "sales", "support"}, {"1001", "1002", "2001", "3001", "9001"})


@pytest_twisted.ensureDeferred
async def test_spy_and_force_state_are_refused_outside_the_supervisors_groups(desktop, acd, calls):
    tokens = {name: await sign_in(desktop, name) for name in ("east1", "nobody", "root")}

    async def ask(ws, request, **body):
        await ws.send(json.dumps({"type": request, "id": request, **body}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "result":
                return {k: v for k, v in frame.items() if k not in ("type", "v", "id", "request")}

    async def scenario():
        ws = {name: await open_desktop(desktop, token) for name, token in tokens.items()}
        got = {
            "east spies west's 2001": await ask(ws["east1"], "spy", agent="2001", mode="listen"),
            "east forces west's 2001": await ask(ws["east1"], "force_state", agent="2001", state="not-ready"),
            "east spies 3001 (answers billing)": await ask(ws["east1"], "spy", agent="3001", mode="whisper"),
            "east forces its 1001": await ask(ws["east1"], "force_state", agent=" 1001 ", state="not-ready"),
            "no groups spies 1001": await ask(ws["nobody"], "spy", agent="1001", mode="listen"),
            "admin spies the lab's 4001": await ask(ws["root"], "spy", agent="4001", mode="barge"),
            "east spies an unknown agent": await ask(ws["east1"], "spy", agent="nobody-here", mode="listen"),
        }
        for w in ws.values():
            await w.close()
        return got

    got = await as_deferred(scenario())
    assert got == {
        "east spies west's 2001": {"ok": False, "error": "agent 2001 is not in your groups"},
        "east forces west's 2001": {"ok": False, "error": "agent 2001 is not in your groups"},
        "east spies 3001 (answers billing)": {"ok": True, "call_id": "call-of-3001"},
        "east forces its 1001": {"ok": True, "agent": {"agent": "1001", "state": "not-ready"}},
        "no groups spies 1001": {"ok": False, "error": "agent 1001 is not in your groups"},
        "admin spies the lab's 4001": {"ok": True, "call_id": "call-of-4001"},
        "east spies an unknown agent": {"ok": False, "error": "agent nobody-here is not in your groups"},
    }
    assert calls.spied == [("east1", "3001", "whisper"), ("root", "4001", "barge")]
    assert acd.commands == [inp.SetNotReady("1001", "forced")]


# -- the whole daemon, the real CRM ------------------------------------------------------------------------------


@pytest.fixture
def lab(sim_lab):  # noqa: F811
    return sim_lab



@pytest_twisted.ensureDeferred
async def test_two_supervisors_watch_their_own_teams_and_a_group_change_reaches_them_live(lab):
    """front answers support, back answers slow, sales is nobody's.  Supervisors log in with their CRM
    passwords: each wallboard shows its team's queue and agents only.  Then sales joins front in the
    CRM: once the ACD reloads, front's next frame has sales and its agents; back's still does not."""
    from crm_core.acd_config import NewAgent, thd_change_agent, thd_change_queue, thd_save_agent

    sim, root = await ready_lab(lab)

    def teams(engine):
        thd_change_queue(engine, "support", groups=("front",))
        thd_change_queue(engine, "slow", groups=("back",))
        thd_change_agent(engine, "6001", queues=(("support", 0),))
        thd_change_agent(engine, "6002", queues=(("slow", 0),))
        for agent in ("6003", "7001", "8001"):
            thd_change_agent(engine, agent, queues=(("sales", 0),))
        thd_save_agent(engine, NewAgent("boss-front", "Front boss", password="pw-boss-front", role="supervisor",
                                        groups=("front",)))
        thd_save_agent(engine, NewAgent("boss-back", "Back boss", password="pw-boss-back", role="supervisor",
                                        groups=("back",)))

    await root.crm.pool.run(teams, root.crm.engine)
    await until(lambda: "front" in root.acd.distributor.setup.queue("support").groups
                and any(p.agent == "boss-back" for p in root.acd.distributor.setup.agents), 10, "the teams")
    tokens = {name: await sign_in(root.desktop, name) for name in ("boss-front", "boss-back")}
    frames: dict[str, list[dict]] = {name: [] for name in tokens}

    async def watch(name, ws):
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "wallboard":
                frames[name].append(frame)

    async def connect_all():
        sockets = {name: await open_desktop(root.desktop, token) for name, token in tokens.items()}
        return sockets, [asyncio.ensure_future(watch(name, ws)) for name, ws in sockets.items()]

    sockets, readers = await as_deferred(connect_all())
    try:
        await until(lambda: all(frames.values()), 5, "both wallboards")
        # (the grid on connect is the last tick's: the supervisors' own rows may not be in it yet)
        assert board(frames["boss-front"][0])[0] == {"support"}
        assert board(frames["boss-front"][0])[1] - {"boss-front"} == {"6001"}
        assert board(frames["boss-back"][0])[0] == {"slow"}
        assert board(frames["boss-back"][0])[1] - {"boss-back"} == {"6002"}
        await root.crm.pool.run(thd_change_queue, root.crm.engine, "sales", groups=("front",))
        await until(lambda: root.acd.distributor.setup.queue("sales").groups == {"front"}, 10, "the ACD to reload")
        seen = len(frames["boss-front"])
        await as_deferred(root.acd.command(inp.Login("6003", ready=True)))   # the figures change: a tick pushes
        await until(lambda: len(frames["boss-front"]) > seen, 5, "front's next wallboard")
        assert board(frames["boss-front"][-1]) == ({"support", "sales"},
                                                   {"6001", "6003", "7001", "8001", "boss-front"})
        assert all(board(f)[0] == {"slow"} and board(f)[1] - {"boss-back"} == {"6002"} for f in frames["boss-back"])
    finally:
        async def close_all():
            for ws in sockets.values():
                await ws.close()
            await asyncio.wait(readers, timeout=2)
        await as_deferred(close_all())
