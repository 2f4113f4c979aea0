"""The daemon's ACD on a real Asterisk 22: the daemon picks the agent, Asterisk connects it.

The shipped dialplan and the real daemon (``callcenter run``), SIPp agent
phones, SIPp callers.  A flow hands the caller straight to the ACD (DNIS
4060 -> queue ``support``, 4061 -> queue ``slow``, whose skill nobody has).
Agents are configured in the daemon's CRM store and logged in through its
control socket, as ``callcenter agents login`` does.  Each test checks what
Asterisk did (Dial targets and statuses, queue members paused), the agents'
states in the daemon and the stored contact record.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.real_asterisk import Daemon, until
from tests.util import always_open_routes, write_acd_flows

pytestmark = pytest.mark.real_asterisk

ROUTES = always_open_routes('"4060": {flow: acd, calendar: always, closed: after_hours}',
                            '"4061": {flow: acd_slow, calendar: always, closed: after_hours}')
AGENTS = ("6001", "6002", "6003")
RING = 4          # seconds an offer rings (the queue's ring_seconds)


def configure(daemon):
    """Queues and agents in the daemon's CRM store, with the CRM's own code."""
    from sqlalchemy import create_engine

    from crm_core.acd_config import NewAgent, thd_save_agent, thd_save_queue
    from crm_core.records import QueueConfig

    engine = create_engine(daemon.crm_url)
    try:
        thd_save_queue(engine, QueueConfig("support", "Support", (), 0, 20, strategy="longest-idle",
                                           ring_seconds=RING, wrap_up_seconds=2))
        thd_save_queue(engine, QueueConfig("slow", "Nobody's skill", (("klingon", 5),), 0, 20,
                                           ring_seconds=RING, wrap_up_seconds=2))
        for agent in AGENTS:
            thd_save_agent(engine, NewAgent(agent, f"Agent {agent}", interface=f"PJSIP/{agent}",
                                            skills=(("english", 3),), queues=(("support", 0), ("slow", 0))))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def acd_daemon(pbx, tmp_path_factory):
    import ivr_flows

    workdir = tmp_path_factory.mktemp("acd")
    flows = workdir / "flows"
    shutil.copytree(Path(ivr_flows.__file__).parent / "flows", flows, ignore=shutil.ignore_patterns(".history"))
    (flows / "routes.yaml").write_text(ROUTES, encoding="utf-8")
    write_acd_flows(flows, acd="support", acd_slow="slow")
    proc = Daemon(workdir, pbx.asterisk, flows)
    proc.start()
    configure(proc)
    until(lambda: {a["agent"] for a in proc.control("agents.list")["agents"]} >= set(AGENTS), 15,
          "the ACD to load its agents from the CRM")
    yield proc
    assert proc.stop() in (0, None, -9), proc.log_tail()


@pytest.fixture
def acd(lab, acd_daemon):
    if not acd_daemon.running():
        acd_daemon.start()
        until(lambda: acd_daemon.control("agents.list")["ok"], 15, "the control socket")
    yield acd_daemon
    if acd_daemon.running():
        for agent in AGENTS:
            acd_daemon.control("agents.logout", agent=agent)
        # a logout asked for during a call or its wrap-up takes effect after it: wait for a clean slate
        until(lambda: all(acd_daemon.agent(agent)["state"] == "logged-out" for agent in AGENTS), 20,
              "every agent logged out")


def login(daemon, agent, ready=True, reason=None):
    answer = daemon.control("agents.login", agent=agent, ready=ready)
    assert answer["ok"], answer
    if not ready and reason:
        answer = daemon.control("agents.state", agent=agent, state="not-ready", reason=reason)
        assert answer["ok"], answer
    return answer["agent"]


def state_of(daemon, agent):
    row = daemon.agent(agent)
    return row["state"], row["reason"]


def wait_state(daemon, agent, state, reason=None, timeout=20.0):
    return until(lambda: state_of(daemon, agent) == (state, reason), timeout,
                 f"agent {agent} to be {state}{f' ({reason})' if reason else ''}: now {state_of(daemon, agent)}")


def dial_end(lab, caller, agent, status, timeout=30.0):
    """Asterisk's DialEnd of the caller's Dial to ``PJSIP/<agent>`` with ``status``."""
    return lab.observer.wait_event(
        lambda e: e.get("Event") == "DialEnd" and e.get("Linkedid") == caller.linkedid
        and (e.get("DestChannel") or "").startswith(f"PJSIP/{agent}-") and e.get("DialStatus") == status,
        timeout, f"{caller.ani}'s Dial of {agent} to end {status}")


def dialled(lab, caller):
    """The agents Asterisk dialled for this caller, in order (DialBegin)."""
    with lab.observer._lock:
        events = list(lab.observer.events)
    return [(e.get("DestChannel") or "").split("-")[0] for e in events
            if e.get("Event") == "DialBegin" and e.get("Linkedid") == caller.linkedid]


def record_of(daemon, linkedid, timeout=15.0):
    return until(lambda: (lambda r: r if r is not None and r.ended_at is not None else None)(daemon.contact(linkedid)),
                 timeout, "the contact record")


def hang_up(caller):
    caller.hangup()
    caller.wait_gone()


def test_a_ready_agent_is_connected_then_wraps_up_and_is_ready_again(lab, acd):
    """The daemon Redirects the caller into cc-connect with 6001's interface; 6001 answers; wrap-up; ready."""
    lab.phone("6001", "answer")
    login(acd, "6001")
    caller = lab.call("+8613900001001", "4060")
    dial_end(lab, caller, "6001", "ANSWER")
    assert state_of(acd, "6001") == ("on-call", None)
    assert acd.agent("6001")["call_id"] == caller.linkedid
    hang_up(caller)
    wait_state(acd, "6001", "wrap-up")
    wait_state(acd, "6001", "ready", timeout=10)
    record = record_of(acd, caller.linkedid)
    assert record.agent == "6001" and record.queue == "support" and record.abandoned is False
    assert record.answered_at is not None and record.talk_seconds > 0
    assert dialled(lab, caller) == ["PJSIP/6001"]
    assert "Connecting the caller to PJSIP/6001" in lab.asterisk.log()
    support = next(q for q in acd.control("queues.status")["queues"] if q["queue"] == "support")
    assert support["answered"] >= 1 and support["asa"] is not None and support["aht"] is not None


def test_the_operators_cli_logs_an_agent_in_and_lists_it(lab, acd):
    """`callcenter agents login/state/list` and `queues status` against the running daemon's control socket."""
    import subprocess
    import sys

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "callcenter", *args, "--config", str(acd.config)],
                              capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout + done.stderr

    assert cli("agents", "login", "6002", "--queues", "support") == (0, "6002: not-ready (login)\n")
    assert cli("agents", "state", "6002", "ready") == (0, "6002: ready\n")
    code, out = cli("agents", "state", "6002", "not-ready", "--reason", "lunch")
    assert (code, out) == (0, "6002: not-ready (lunch)\n")
    code, out = cli("agents", "list")
    assert code == 0 and any(line.split()[:3] == ["6002", "not-ready", "lunch"] for line in out.splitlines()), out
    code, out = cli("queues", "status")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["QUEUE", "WAITING", "LONGEST"], out
    code, out = cli("agents", "state", "6099", "ready")
    assert code == 2 and "refused" in out and "6099" in out


def test_ring_no_answer_makes_the_agent_missed_and_the_next_agent_gets_the_call(lab, acd):
    """6001 (longest idle) rings RING s and never answers: NOANSWER, 6001 not ready (missed); 6002 answers."""
    lab.phone("6001", "noanswer")
    lab.phone("6002", "answer")
    login(acd, "6001")
    login(acd, "6002")
    caller = lab.call("+8613900001002", "4060")
    end = dial_end(lab, caller, "6001", "NOANSWER", timeout=RING + 15)
    dial_end(lab, caller, "6002", "ANSWER")
    assert state_of(acd, "6001") == ("not-ready", "missed")
    assert state_of(acd, "6002") == ("on-call", None)
    assert end is not None
    hang_up(caller)
    record = record_of(acd, caller.linkedid)
    assert record.agent == "6002" and record.abandoned is False
    assert dialled(lab, caller) == ["PJSIP/6001", "PJSIP/6002"]


def test_a_busy_phone_makes_the_agent_missed_and_the_next_agent_gets_the_call(lab, acd):
    """6001 answers 486 Busy Here: BUSY at once, 6001 not ready (missed); 6002 answers."""
    lab.phone("6001", "busy")
    lab.phone("6002", "answer")
    login(acd, "6001")
    login(acd, "6002")
    caller = lab.call("+8613900001003", "4060")
    dial_end(lab, caller, "6001", "BUSY")
    dial_end(lab, caller, "6002", "ANSWER")
    assert state_of(acd, "6001") == ("not-ready", "missed")
    hang_up(caller)
    assert record_of(acd, caller.linkedid).agent == "6002"


def test_an_unregistered_phone_is_not_offered_a_call(lab, acd):
    """6003 has no contact (Asterisk: UNAVAILABLE); though longest idle, the call goes to 6002 at once."""
    lab.phone("6002", "answer")
    login(acd, "6003")
    login(acd, "6002")
    caller = lab.call("+8613900001004", "4060")
    dial_end(lab, caller, "6002", "ANSWER")
    hang_up(caller)
    assert record_of(acd, caller.linkedid).agent == "6002"
    assert "PJSIP/6003" not in dialled(lab, caller)
    assert state_of(acd, "6003") == ("ready", None)


def test_a_caller_hanging_up_while_the_agent_rings_frees_the_agent(lab, acd):
    """6001 rings; the caller gives up: the call is abandoned and 6001 is ready again, not missed."""
    lab.phone("6001", "noanswer")
    login(acd, "6001")
    caller = lab.call("+8613900001005", "4060")
    lab.observer.wait_event(lambda e: e.get("Event") == "DialBegin" and e.get("Linkedid") == caller.linkedid,
                            15, "6001 to ring")
    wait_state(acd, "6001", "reserved")
    hang_up(caller)
    wait_state(acd, "6001", "ready")
    record = record_of(acd, caller.linkedid)
    assert record.abandoned is True and record.agent is None and record.answered_at is None


def test_an_agent_on_a_direct_call_is_passed_over(lab, acd):
    """6001's phone is busy with a call the ACD did not route (in use): the caller goes to 6002."""
    lab.phone("6001", "answer")
    lab.phone("6002", "answer")
    login(acd, "6001")
    login(acd, "6002")
    reply = lab.observer.action("Originate", Channel="PJSIP/6001", Application="Wait", Data="60",
                                CallerID='"Direct" <5550100>', Async="true")
    assert reply[0].get("Response") == "Success", reply[0]
    # Asterisk shows the member whose state interface is PJSIP/6001 as BUSY (3) or INUSE (2)
    lab.observer.wait_event(lambda e: e.get("Event") == "QueueMemberStatus" and e.get("Status") in ("2", "3")
                            and "6001" in (e.get("StateInterface") or e.get("Interface") or ""), 15,
                            "6001 to be in use")
    caller = lab.call("+8613900001006", "4060")
    dial_end(lab, caller, "6002", "ANSWER")
    assert "PJSIP/6001" not in dialled(lab, caller)
    assert state_of(acd, "6001") == ("ready", None)
    hang_up(caller)
    assert record_of(acd, caller.linkedid).agent == "6002"


def test_with_the_daemon_killed_a_waiting_caller_reaches_the_fallback_queue_and_only_ready_agents_ring(lab, acd):
    """A caller waits (nobody has the skill); 6001 ready, 6002 on lunch (paused in support by the daemon).
    The daemon is killed: the heartbeat stops, cc-wait sends the caller to Queue(support), which rings only 6001."""
    lab.phone("6001", "answer")
    lab.phone("6002", "answer")
    login(acd, "6001")
    login(acd, "6002", ready=False, reason="lunch")
    lab.observer.wait_event(lambda e: e.get("Event") == "QueueMemberPause" and e.get("Queue") == "support"
                            and "6002" in (e.get("Interface") or "") and e.get("Paused") == "1", 15,
                            "the daemon to pause 6002 in the fallback queue")
    caller = lab.call("+8613900001007", "4061")
    lab.observer.wait_event(lambda e: e.get("Event") == "MusicOnHoldStart" and e.get("Linkedid") == caller.linkedid,
                            15, "the caller to wait in cc-wait")
    mark = lab.observer.mark()
    acd.stop(signal.SIGKILL)
    joined = lab.observer.wait_event(lambda e: e.get("Event") == "QueueCallerJoin"
                                     and e.get("Linkedid") == caller.linkedid, 20,
                                     "the fallback queue to take the caller", since=mark)
    assert joined["Queue"] == "support"
    connect = lab.observer.wait_event(lambda e: e.get("Event") == "AgentConnect"
                                      and e.get("Linkedid") == caller.linkedid, 20, "an agent to answer",
                                      since=mark)
    assert "6001" in connect["Interface"]
    with lab.observer._lock:
        called = {e.get("Interface") for e in list(lab.observer.events)[mark:]
                  if e.get("Event") == "AgentCalled" and e.get("Linkedid") == caller.linkedid}
    assert all("6002" not in iface for iface in called), called
    assert "No CTI daemon routes calls" in lab.asterisk.log()
    acd.start()
    hang_up(caller)
    record = record_of(acd, caller.linkedid)
    assert record.agent == "6001"
    # the IVR handed the caller to slow; Asterisk's fallback queue support answered (either may be recorded,
    # depending on which of the daemon's two writes for this call is merged last)
    assert record.queue in ("slow", "support")


def callback_in(daemon, number, timeout=40.0, done=lambda c: c.status != "dialing" and c.attempts > 0):
    """Create a callback request in the daemon's CRM; a function polling it until ``done``."""
    from sqlalchemy import create_engine

    from crm_core.callbacks import thd_callback, thd_create_callback

    engine = create_engine(daemon.crm_url)
    try:
        created = thd_create_callback(engine, number, "support", max_attempts=2)
    finally:
        engine.dispose()

    def finished():
        engine = create_engine(daemon.crm_url)
        try:
            record = thd_callback(engine, created.id)
        finally:
            engine.dispose()
        return record if done(record) else None

    return lambda: until(finished, timeout, f"callback {created.id} to {number} to be dialled")


def test_a_callback_rings_the_agent_first_then_the_customer_and_is_recorded(lab, acd):
    """A due callback: 6001 (ready) is rung first by Originate, answers, then the carrier dials the
    customer, who answers: the request is done (answered, 1 attempt) and the call is in the contact log."""
    lab.phone("6001", "answer")
    lab.customer("answer")
    login(acd, "6001")
    record = callback_in(acd, "5552001")()
    assert (record.status, record.last_outcome, record.attempts) == ("done", "answered", 1)
    legs = lab.observer.wait_event(
        lambda e: e.get("Event") == "DialEnd" and e.get("Linkedid") == record.last_linkedid
        and (e.get("DestChannel") or "").startswith("PJSIP/carrier-") and e.get("DialStatus") == "ANSWER",
        10, "the customer leg to be answered")
    assert legs["Channel"].startswith("PJSIP/6001-")      # the agent's leg dialled the customer
    assert state_of(acd, "6001") == ("on-call", None)
    lab.observer.action("Hangup", Channel=legs["Channel"])
    wait_state(acd, "6001", "ready")
    logged = record_of(acd, record.last_linkedid)
    assert logged.direction == "outbound" and logged.answered_at is not None and logged.agent == "6001"


def test_a_callback_the_customer_does_not_answer_is_tried_again_later(lab, acd):
    """The customer's phone rings out (CTI_OUTBOUND_RING_SECS 5 in the lab): outcome noanswer, the
    request pending again with its next attempt after the queue's spacing; 6001 is free again."""
    lab.phone("6001", "answer")
    lab.customer("noanswer")
    login(acd, "6001")
    record = callback_in(acd, "5552002")()
    assert (record.status, record.last_outcome, record.attempts) == ("pending", "noanswer", 1)
    assert record.next_attempt_at > record.updated_at.replace(microsecond=0)
    wait_state(acd, "6001", "ready")
