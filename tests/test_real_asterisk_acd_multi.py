"""Two routing daemons, one center: a real Asterisk 22, one real Redis, one shared CRM database.

Daemon A is Asterisk's FastAGI server (the overlay's ``CTI_AGI_HOST``), so
every caller's IVR runs there; daemon B listens for FastAGI on a port nobody
calls, so it never runs an IVR session.  Both have their own AMI link and see
every call.  Exactly one of them routes (the leader lease in Redis); the other
relays operators' commands to it.  When the leader is killed, the other takes
the lease over and routes the callers who were waiting.  An agent's desktop
and a supervisor's wallboard connected to the daemon that does not lead see
the leader's offers and figures (its broadcasts through Redis).

The CRM is one PostgreSQL database (the session's server) for both daemons:
the ACD setup (queues, agents) is read by both from it and both write contact
records to it, as two daemons of one center do in production.  Each daemon
keeps its own contact journal file (the journal is per process by design);
SQLite shared by two writing processes would test SQLite's locking rather
than the daemons.
"""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.desktop_client import DesktopClient
from tests.real_asterisk import Daemon, free_tcp_port, until
from tests.util import write_acd_flows
from tests.test_real_asterisk_acd import AGENTS, configure, dial_end, hang_up, login, state_of, wait_state
from tests.util import always_open_routes

pytestmark = pytest.mark.real_asterisk

ROUTES = always_open_routes('"4060": {flow: acd, calendar: always, closed: after_hours}',
                            '"4062": {flow: hold, calendar: always, closed: after_hours}')
#: 4062: the caller stays in a menu until the test moves it into cc-wait (see ``wait_in_acd``).
HOLD_FLOW = """
description: Keeps the caller in a menu until the test moves it on.
start: wait
language: en
nodes:
  wait:
    type: menu
    prompt: custom/cc-main-menu
    choices:
      1: wait
    timeout: 20
    max_tries: 3
"""
ACD_KEYS = "cc:acd:*"          # the RedisCoordinator's default prefix, which the daemons use
ROUTING = "routing calls"      # what a daemon logs when it takes the lead (AcdService._take_over)
OFFERED = "offered to agent"   # what the leader logs for each offer (AcdService._carry_out)
LOST = "no longer routes calls"


class Center:
    """Daemons A (FastAGI server) and B, one Redis, one CRM."""

    def __init__(self, a: Daemon, b: Daemon, redis_url: str) -> None:
        self.a, self.b = a, b
        self.daemons = (a, b)
        self.redis_url = redis_url
        self.started: dict[Daemon, int] = {}      # each daemon's first log line of its current process

    def start(self, daemon: Daemon) -> None:
        self.started[daemon] = len(daemon.lines())
        daemon.start()

    def running(self) -> list[Daemon]:
        return [d for d in self.daemons if d.running()]

    def leading(self) -> list[Daemon]:
        """The running daemons whose log, since they last started, says they took the lead and kept it."""
        out = []
        for daemon in self.running():
            lines = daemon.lines()
            started = self.started.get(daemon, 0)
            took = [i for i, line in enumerate(lines) if i >= started and ROUTING in str(line.get("msg", ""))]
            lost = [i for i, line in enumerate(lines) if i >= started and LOST in str(line.get("msg", ""))]
            if took and (not lost or took[-1] > lost[-1]):
                out.append(daemon)
        return out

    def leader(self) -> Daemon | None:
        leading = self.leading()
        return leading[0] if len(leading) == 1 else None

    def follower(self) -> Daemon:
        leader = self.leader()
        return next(d for d in self.running() if d is not leader)

    def marks(self) -> dict[Daemon, int]:
        return {d: len(d.lines()) for d in self.daemons}

    def offers(self, since: dict[Daemon, int]) -> list[tuple[Daemon, str]]:
        """(daemon, call id) of every "offered to agent" line since ``since``, in both logs."""
        out = []
        for daemon in self.daemons:
            for line in daemon.find(OFFERED, since=since.get(daemon, 0)):
                out.append((daemon, str(line["msg"]).split()[1].rstrip(":")))
        return out


def saved_snapshot(redis_url: str) -> str:
    """The ACD state the leader saved in Redis (what a new leader restores from)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.get(ACD_KEYS.rstrip("*") + "snapshot") or ""
    finally:
        client.close()


def support_of(daemon: Daemon) -> dict:
    return next(q for q in daemon.control("queues.status")["queues"] if q["queue"] == "support")


def waiting(daemon: Daemon) -> int:
    return support_of(daemon)["waiting"]


def when(line: dict) -> float:
    """The wall-clock time of a JSON log line (``ts``, UTC with milliseconds)."""
    return datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def clear_acd_keys(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(ACD_KEYS):
            client.delete(key)
    finally:
        client.close()


def drop_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)")


def make_daemon(workdir: Path, pbx, crm_url: str, redis_url: str, agi_port: int | None = None) -> Daemon:
    import ivr_flows

    flows = workdir / "flows"
    shutil.copytree(Path(ivr_flows.__file__).parent / "flows", flows, ignore=shutil.ignore_patterns(".history"))
    (flows / "routes.yaml").write_text(ROUTES, encoding="utf-8")
    write_acd_flows(flows, acd="support")
    (flows / "hold.yaml").write_text(HOLD_FLOW, encoding="utf-8")
    daemon = Daemon(workdir, pbx.asterisk, flows, crm_url=crm_url, extra=f'[redis]\nurl = "{redis_url}"\n')
    if agi_port is not None:
        text = daemon.config.read_text(encoding="utf-8")
        shipped = f"agi_port = {pbx.asterisk.ports.agi}\n"
        assert shipped in text, text
        daemon.config.write_text(text.replace(shipped, f"agi_port = {agi_port}\n"), encoding="utf-8")
    return daemon


@pytest.fixture(scope="module")
def center(pbx, redis_url, postgres_url, tmp_path_factory):
    from tests.crm_servers import migrate_new_database

    clear_acd_keys(redis_url)      # no lease or snapshot left by another test of the session
    crm_url = migrate_new_database(postgres_url, f"crm_acd_multi_{uuid.uuid4().hex[:10]}")
    a = make_daemon(tmp_path_factory.mktemp("acd-a"), pbx, crm_url, redis_url)
    b = make_daemon(tmp_path_factory.mktemp("acd-b"), pbx, crm_url, redis_url, agi_port=free_tcp_port())
    made = Center(a, b, redis_url)
    try:
        configure(a)
        made.start(a)              # A first: it leads, B relays (any order works; this one is known)
        until(lambda: a.find(ROUTING), 10, "daemon A to take the lead")
        made.start(b)
        until(lambda: {r["agent"] for r in b.control("agents.list")["agents"]} >= set(AGENTS), 15,
              "daemon B to list the agents (relayed to A)")
        yield made
    finally:
        codes = {name: d.stop() for name, d in (("a", a), ("b", b))}
        clear_acd_keys(redis_url)
        drop_database(crm_url)
    assert all(code in (0, None, -9) for code in codes.values()), (codes, a.log_tail(), b.log_tail())


@pytest.fixture
def multi(lab, center):
    """Both daemons running (a daemon killed by a test is started again, as a follower)."""
    for daemon in center.daemons:
        if not daemon.running():
            center.start(daemon)
    until(lambda: center.leader() is not None, 10, "a daemon to lead")
    yield center
    anyone = next(iter(center.running()), None)
    for agent in AGENTS if anyone is not None else ():
        anyone.control("agents.logout", agent=agent)


# -- a. one leader; commands through either daemon ------------------------------------------------------------

def test_exactly_one_daemon_routes_and_the_other_relays_agent_commands_to_it(multi):
    """Only one log says it routes calls; an agent logged in through the other daemon's control socket is in
    the leader's agents list, and both daemons answer the same (the follower relays queries too)."""
    assert len(multi.running()) == 2
    assert len(multi.leading()) == 1, [d.log_tail(5) for d in multi.daemons]
    leader, follower = multi.leader(), multi.follower()
    assert not follower.find(ROUTING, since=multi.started[follower])
    answer = login(follower, "6001", ready=False, reason="training")
    assert answer["state"] == "not-ready"
    assert state_of(leader, "6001") == ("not-ready", "training")
    assert state_of(follower, "6001") == ("not-ready", "training")
    assert follower.control("agents.state", agent="6001", state="ready")["ok"]
    assert state_of(leader, "6001") == ("ready", None)
    refused = follower.control("agents.state", agent="6099", state="ready")
    assert refused["ok"] is False and "6099" in refused["error"]
    assert support_of(follower)["agents_by_state"] == support_of(leader)["agents_by_state"]


# -- b. many calls, two agents: one call per agent, one offer per call -----------------------------------------

class HandOffLost(AssertionError):
    """The IVR's hand-off to the daemons' ACD failed: the caller went to Asterisk's own queue instead."""


def wait_in_acd(lab, caller, since: int) -> None:
    """Move a caller held by the 4062 menu into cc-wait, where the daemons' ACD takes it (in its default
    queue, support), and wait until it hears the hold music there."""
    lab.wait_collecting(caller)
    reply = lab.observer.action("Redirect", Channel=caller.channel, Context="cc-wait", Exten="s", Priority="1")
    assert reply[0].get("Response") == "Success", reply[0]
    lab.observer.wait_event(lambda e: e.get("Event") == "MusicOnHoldStart" and e.get("Linkedid") == caller.linkedid,
                            15, f"{caller.ani} to wait in cc-wait", since=since)


def legs_overlap(events, linkedids):
    """From Asterisk's own events: the most Dials one caller had at once, and the most agent legs one agent
    had at once (a leg lasts from its DialBegin to the Hangup of its channel)."""
    per_caller: Counter[str] = Counter()
    per_agent: dict[str, set[str]] = {}
    most_caller, most_agent = 0, 0
    for e in events:
        kind = e.get("Event")
        if kind == "DialBegin" and e.get("Linkedid") in linkedids:
            per_caller[e["Linkedid"]] += 1
            dest = e.get("DestChannel") or ""
            per_agent.setdefault(dest.split("-")[0], set()).add(dest)
        elif kind == "DialEnd" and e.get("Linkedid") in linkedids:
            per_caller[e["Linkedid"]] -= 1
        elif kind == "Hangup":
            for legs in per_agent.values():
                legs.discard(e.get("Channel"))
        most_caller = max([most_caller, *per_caller.values()])
        most_agent = max([most_agent, *(len(legs) for legs in per_agent.values())])
    return most_caller, most_agent


def test_four_callers_two_agents_each_agent_takes_one_call_at_a_time_and_each_call_is_offered_once(lab, multi):
    """Two agents, four callers in a row: two are connected, two wait; as each conversation ends (wrap-up)
    the agent takes the next caller.  Asterisk never rings an agent for two calls at once nor Dials one caller
    twice at once, and across both daemons' logs each call is offered exactly once, by the leader."""
    lab.phone("6001", "answer")
    lab.phone("6002", "answer")
    leader, follower = multi.leader(), multi.follower()
    marks, event_mark = multi.marks(), lab.observer.mark()
    login(follower, "6001")
    login(follower, "6002")
    handled = [leader.agent(a)["calls_handled"] for a in ("6001", "6002")]
    callers = [lab.call(f"+86139000020{n:02d}", "4062") for n in range(4)]
    for caller in callers:
        wait_in_acd(lab, caller, event_mark)
    linkedids = {c.linkedid for c in callers}

    def answered_by(caller, timeout):
        end = lab.observer.wait_event(lambda e: e.get("Event") == "DialEnd" and e.get("Linkedid") == caller.linkedid
                                      and e.get("DialStatus") == "ANSWER", timeout, f"{caller.ani} to be answered",
                                      since=event_mark)
        return end["DestChannel"].split("-")[0]

    assert {answered_by(c, 20) for c in callers[:2]} == {"PJSIP/6001", "PJSIP/6002"}
    until(lambda: waiting(leader) == 2, 10, "two callers to wait in support")
    hang_up(callers[0])
    third = answered_by(callers[2], 20)
    hang_up(callers[1])
    fourth = answered_by(callers[3], 20)
    assert {third, fourth} == {"PJSIP/6001", "PJSIP/6002"}
    hang_up(callers[2])
    hang_up(callers[3])
    for agent in ("6001", "6002"):
        wait_state(leader, agent, "ready", timeout=10)

    with lab.observer._lock:
        events = list(lab.observer.events[event_mark:])
    assert legs_overlap(events, linkedids) == (1, 1), "a caller Dialled twice at once, or an agent rung twice"
    offers = multi.offers(marks)
    assert Counter(call for _, call in offers) == Counter({c.linkedid: 1 for c in callers}), offers
    assert {d for d, _ in offers} == {leader}, "only the leader offers calls"
    assert [leader.agent(a)["calls_handled"] - n for a, n in zip(("6001", "6002"), handled)] == [2, 2]


# -- c. failover: the leader is killed, the other daemon routes the waiting caller --------------------------------

def beat(lab) -> str:
    """The ACD heartbeat Asterisk holds now (``<daemon id>-<count>``)."""
    reply = lab.observer.action("Getvar", Variable="CTI_ACD_BEAT")
    return reply[0].get("Value") or ""


def test_when_the_leader_is_killed_the_other_daemon_routes_the_waiting_caller_within_seconds(lab, multi):
    """A caller waits in support (its only agent not ready).  The leader is killed (-9) just after a heartbeat:
    the other daemon takes the lead in under 5 s, keeps the heartbeat going (the caller stays in cc-wait, not
    Asterisk's fallback queue), and when the agent is made ready through it, offers it the caller, who is
    answered."""
    lab.phone("6001", "answer")
    leader, survivor = multi.leader(), multi.follower()
    login(survivor, "6001", ready=False, reason="lunch")
    event_mark = lab.observer.mark()
    caller = lab.call("+8613900002100", "4062")
    wait_in_acd(lab, caller, event_mark)
    until(lambda: waiting(leader) == 1, 10, "the leader to queue the caller")
    until(lambda: caller.linkedid in saved_snapshot(multi.redis_url), 5, "the leader to save the waiting call")
    survivor_mark = len(survivor.lines())
    last = beat(lab)
    until(lambda: beat(lab) != last, 7, "the leader's next heartbeat")
    killed_at = time.time()
    leader.stop(signal.SIGKILL)

    took = until(lambda: survivor.find(ROUTING, since=survivor_mark), 8, "the survivor to take the lead")[0]
    failover = when(took) - killed_at
    print(f"failover: the survivor routes {failover:.2f} s after the kill ({took['msg']})")
    assert failover < 5.0, failover
    assert "1 calls" in took["msg"], took["msg"]          # restored from the snapshot the leader saved
    until(lambda: beat(lab).split("-")[0] != last.split("-")[0], 3, "the survivor's heartbeat")

    assert survivor.control("agents.state", agent="6001", state="ready")["ok"]
    dial_end(lab, caller, "6001", "ANSWER", timeout=15)
    assert state_of(survivor, "6001") == ("on-call", None)
    assert survivor.agent("6001")["call_id"] == caller.linkedid
    assert lab.observer.find(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Linkedid") == caller.linkedid,
                             since=event_mark) is None, "the caller fell to Asterisk's fallback queue"
    assert [line for line in survivor.find(OFFERED, since=survivor_mark) if caller.linkedid in line["msg"]]
    hang_up(caller)
    wait_state(survivor, "6001", "ready", timeout=10)


# -- the IVR's hand-off with Redis ---------------------------------------------------------------------------------

def test_a_caller_handed_off_by_the_ivr_is_routed_by_the_leader(lab, multi):
    """DNIS 4060's flow hands the caller to the ACD: it waits in cc-wait and the leader offers it to the
    ready agent (logged in through the follower), who answers."""
    lab.phone("6002", "answer")
    leader, follower = multi.leader(), multi.follower()
    marks, event_mark = multi.marks(), lab.observer.mark()
    login(follower, "6002")
    caller = lab.call("+8613900002200", "4060")

    def where():
        for e in lab.observer.events[event_mark:]:
            if e.get("Linkedid") == caller.linkedid and e.get("Event") in ("MusicOnHoldStart", "QueueCallerJoin"):
                return e["Event"]
        return None

    went = until(where, 15, "the caller to leave the IVR")
    if went == "QueueCallerJoin":
        raise HandOffLost("; ".join(line["msg"] for line in multi.a.find("hand-off failed", since=marks[multi.a]))
                          or "the caller went to Asterisk's queue")
    dial_end(lab, caller, "6002", "ANSWER", timeout=15)
    assert [call for _, call in multi.offers(marks)] == [caller.linkedid]
    assert leader.agent("6002")["call_id"] == caller.linkedid
    hang_up(caller)


# -- d. desktops connected to the daemon that does not lead -------------------------------------------------------

SUPERVISOR = "sup-multi"
GROUP = "floor-multi"


def password(login: str) -> str:
    return f"pw-{login}-multi"


@pytest.fixture(scope="module")
def accounts(center):
    """Desktop passwords for 6001 and a supervisor of its group, in the center's CRM."""
    from sqlalchemy import create_engine

    from crm_core.acd_config import NewAgent, thd_save_agent

    engine = create_engine(center.a.crm_url)
    try:
        thd_save_agent(engine, NewAgent("6001", "Agent 6001", password=password("6001"), interface="PJSIP/6001",
                                        skills=(("english", 3),), queues=(("support", 0), ("slow", 0)),
                                        groups=(GROUP,)))
        thd_save_agent(engine, NewAgent(SUPERVISOR, "Supervisor of the floor", password=password(SUPERVISOR),
                                        role="supervisor", groups=(GROUP,)))
    finally:
        engine.dispose()


def test_a_desktop_and_a_wallboard_on_the_follower_see_the_call_the_leader_offers(lab, multi, accounts):
    """6001 logs in ready from a desktop connected to the daemon that does not lead; a supervisor of its
    group watches the wallboard there.  The leader offers 6001 a caller: the follower's desktop gets the pop
    with the caller's number, then ``connected``; the follower's wallboard shows 6001 on the call; the
    caller hangs up: ``ended``."""
    lab.phone("6001", "answer")
    leader, follower = multi.leader(), multi.follower()
    ani = "+8613900002300"
    boss = DesktopClient(follower.desktop_port, SUPERVISOR, password(SUPERVISOR))
    agent = DesktopClient(follower.desktop_port, "6001", password("6001"))
    try:
        agent.wait_type("snapshot")
        agent.ok("login", queues=["support"], ready=True)
        agent.wait_type("agent", state="ready")
        marks = multi.marks()
        caller = lab.call(ani, "4060")
        pop = agent.wait_type("pop", timeout=30)
        popped_at = time.time()
        assert (pop["ani"], pop["queue"], pop["dnis"], pop["call_id"]) == (ani, "support", "4060", caller.linkedid)
        offer = until(lambda: [line for line in leader.find(OFFERED, since=marks[leader])
                               if caller.linkedid in line["msg"]], 5, "the leader's offer in its log")[0]
        print(f"pop on the follower's desktop {1000 * (popped_at - when(offer)):.0f} ms after the leader "
              f"logged the offer (log timestamps in ms)")
        assert [d for d, call in multi.offers(marks) if call == caller.linkedid] == [leader]
        dial_end(lab, caller, "6001", "ANSWER")
        agent.wait_type("call", call_id=caller.linkedid, state="connected")
        agent.wait_type("agent", state="on-call")
        board = boss.wait(lambda f: f.get("type") == "wallboard" and any(
            a["agent"] == "6001" and a["state"] == "on-call" for a in f["agents"]), 15,
            "6001 on the call on the follower's wallboard")
        assert next(a for a in board["agents"] if a["agent"] == "6001")["call_id"] == caller.linkedid
        hang_up(caller)
        agent.wait_type("call", call_id=caller.linkedid, state="ended")
        assert len([f for f in agent.frames if f["type"] == "pop"]) == 1
    finally:
        agent.close()
        boss.close()
