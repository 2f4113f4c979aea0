"""The distributor as a whole: offers that fail, timers, snapshot and restore, reconfiguration,
and properties over random input sequences."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.distributor import Distributor
from acd.effects import AgentChanged, Fallback, Offer
from acd.errors import AcdError
from acd.inputs import (Answered, ConfigChanged, DeviceBusy, EndWrapUp, Enqueue, ExtendWrapUp, Gone, Login,
                        Logout, Missed, Released, SetNotReady, SetReady)
from acd.model import STRATEGIES, AcdSetup, AgentState, QueueRules
from acd.routing import qualifies
from tests.test_acd_helpers import Run, agent, setup

READY, RESERVED, ON_CALL, LOGGED_OUT = (AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL,
                                        AgentState.LOGGED_OUT)

TWO = setup([QueueRules("sales", ring_seconds=15, wrap_up_seconds=10)],
            [agent("1001", "sales"), agent("1002", "sales")])


# -- offers that fail ---------------------------------------------------------

def test_ring_no_answer_offers_the_next_agent():
    """The agent that let it ring is not ready (missed); the call rings the next agent at once."""
    run = Run(TWO)
    run.login(0, "1001", "1002")
    run.at(0, Enqueue("c1", "sales"))
    run.at(15, Missed("c1", "1001", "noanswer"))
    assert run.timeline(agents=False) == ["offer@0 c1 1001", "offer@15 c1 1002"]
    assert run.distributor.agent("1001").reason == "missed"


def test_busy_agent_is_skipped_and_the_call_keeps_its_place():
    """A 486 busy is a miss: the call goes back to the head of the queue and rings the next agent."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    run.at(2, Missed("c1", "1001", "busy"))
    assert [c.call_id for c in run.distributor.waiting("sales")] == ["c1", "c2"]
    run.login(3, "1002")
    assert run.offers() == ["offer@1 c1 1001", "offer@3 c1 1002"]


def test_ring_guard_takes_a_silent_offer_as_missed():
    """No answer, miss nor hang-up within ring_seconds + 5 s: the offer counts as missed."""
    run = Run(TWO)
    run.login(0, "1001", "1002")
    run.at(0, Enqueue("c1", "sales"))
    assert run.distributor.next_deadline() == 20
    run.at(30)
    assert run.timeline(since=1) == ["1001@20 not-ready missed", "1002@20 reserved", "offer@20 c1 1002"]


def test_gone_while_ringing_frees_the_agent():
    """The caller hangs up while the agent's phone rings: the call is gone, the agent ready again."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(4, Enqueue("c1", "sales"))
    run.at(6, Gone("c1"))
    assert run.timeline(since=6) == ["1001@6 ready"]
    assert run.distributor.calls() == ()
    assert run.distributor.next_deadline() is None


def test_answered_call_leaves_the_call_set():
    """Once answered, the agent holds the call id and the distributor no longer lists the call."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"), Answered("c1", "1001"))
    assert run.distributor.calls() == ()
    view = run.distributor.agent("1001")
    assert (view.state, view.call_id, view.call_queue) == (ON_CALL, "c1", "sales")


def test_offer_carries_what_the_binding_needs():
    """Offer: interface, queue, ring time, kind, callback id and time waited."""
    run = Run(setup([QueueRules("sales", ring_seconds=12)], [agent("1001", "sales")]))
    run.at(0, Enqueue("c1", "sales", kind="callback", callback_id="cb-7"))
    offer = run.login(9, "1001")[-1]
    assert offer == Offer("c1", "1001", "PJSIP/1001", "sales", 12, "callback", "cb-7", 9)


# -- timers -------------------------------------------------------------------

def test_next_deadline_is_the_earliest_pending_timer():
    """Wrap-up ends, relaxation, overflow and max wait all show in next_deadline; stale ones do not."""
    rules = QueueRules("sales", relax_after=50, overflow_after=70, overflow_to="other", max_wait=90)
    d = Distributor(setup([rules, QueueRules("other")], []), 0)
    assert d.next_deadline() is None
    d.handle(Enqueue("c1", "sales"), 0)
    assert d.next_deadline() == 50
    d.advance(50)
    assert d.next_deadline() == 70
    d.advance(70)
    assert d.next_deadline() == 90
    d.handle(Gone("c1"), 80)
    assert d.next_deadline() is None


def test_one_big_advance_fires_timers_in_order_at_their_own_time():
    """advance(late) replays timers in time order: an agent freed by wrap-up gets the call before its max wait."""
    rules = QueueRules("sales", wrap_up_seconds=10, max_wait=15)
    d = Distributor(setup([rules], [agent("1001", "sales")]), 0)
    d.handle(Login("1001", ready=True), 0)
    d.handle(Enqueue("busy", "sales"), 0)
    d.handle(Answered("busy", "1001"), 0)
    d.handle(Released("busy", "1001"), 1)                 # wrap-up until 11
    d.handle(Enqueue("c1", "sales"), 2)                   # max wait at 17
    effects = d.advance(100)
    assert [(type(e).__name__, getattr(e, "at", None)) for e in effects] == [
        ("AgentChanged", 11), ("AgentChanged", 11), ("Offer", None),      # ready, reserved, offer
        ("AgentChanged", 31), ("Fallback", None)]   # ring guard: missed, and past max wait it leaves
    assert effects[-1].reason == "max-wait"


# -- snapshot and restore -----------------------------------------------------

SCENARIO_SETUP = setup(
    [QueueRules("sales", strategy="round-robin", skills=(("fr", 3),), relax_after=20, overflow_after=40,
                overflow_to="support", max_wait=200, wrap_up_seconds=8),
     QueueRules("support", strategy="fewest-calls", wrap_up_seconds=3)],
    [agent("1001", "sales", skills={"fr": 5}), agent("1002", "sales", skills={"fr": 2}),
     agent("1003", "sales", ("support", 2), skills={"fr": 4}), agent("2001", "support")])

SCENARIO = [
    (0, Login("1001", ready=True)), (0, Login("1003", ready=True)), (1, Login("1002", ready=True)),
    (2, Enqueue("c1", "sales")), (2, Enqueue("c2", "sales")), (3, Enqueue("c3", "sales", priority=5)),
    (4, Answered("c1", "1001")), (5, Missed("c2", "1003", "noanswer")), (6, SetReady("1003")),
    (9, Enqueue("c4", "support")), (12, Released("c1", "1001")), (13, SetNotReady("1001", "lunch")),
    (25, Login("2001", ready=True)), (31, Enqueue("c5", "sales", preferred_agent="1002")),
    (33, Gone("c3")), (50, DeviceBusy("1002", True)), (55, SetReady("1001")), (70, Logout("1003")),
    (80, Enqueue("c6", "sales", kind="callback", callback_id="k")), (90, DeviceBusy("1002", False)),
    (300, Gone("c6")),
]


def replay(run: Run, steps) -> list[str]:
    for t, command in steps:
        try:
            run.at(t, command)
        except AcdError:
            pass
    run.until(400)
    return [line for line in run.timeline()]


def test_restore_from_a_snapshot_continues_identically():
    """Snapshot at any point, restore, continue: the same effects and final state as without a break."""
    whole = Run(SCENARIO_SETUP)
    expected = replay(whole, SCENARIO)
    for cut in range(1, len(SCENARIO)):
        first = Run(SCENARIO_SETUP)
        before = replay_until(first, SCENARIO[:cut], SCENARIO[cut][0])
        snapshot = first.distributor.snapshot(first.now)
        second = Run(SCENARIO_SETUP, first.now,
                     Distributor.restore(SCENARIO_SETUP, snapshot, first.now))
        assert second.distributor.snapshot(first.now) == snapshot
        after = replay(second, SCENARIO[cut:])
        assert before + after == expected, f"cut at step {cut}"
        assert second.distributor.snapshot(400) == whole.distributor.snapshot(400)


def replay_until(run: Run, steps, t: float) -> list[str]:
    for at, command in steps:
        try:
            run.at(at, command)
        except AcdError:
            pass
    run.until(t - 0.5)
    return run.timeline()


def test_restore_keeps_ringing_and_wrap_up_timers():
    """A restored distributor still ends wrap-up and still guards a ringing offer."""
    run = Run(TWO)
    run.login(0, "1001", "1002")
    run.at(0, Enqueue("c1", "sales"), Answered("c1", "1001"), Enqueue("c2", "sales"))
    run.at(5, Released("c1", "1001"))
    restored = Distributor.restore(TWO, run.distributor.snapshot(5), 5)
    assert restored.next_deadline() == 15
    assert [type(e).__name__ for e in restored.advance(20)] == ["AgentChanged", "AgentChanged",
                                                                "AgentChanged", "Offer"]
    assert restored.agent("1001").call_id == "c2"


def test_restore_under_a_changed_setup_then_config_changed_reconciles():
    """Restored under a setup without its queue, the call falls back on the following ConfigChanged."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(0, Enqueue("c1", "sales"), Enqueue("c2", "sales"))
    smaller = setup([QueueRules("other")], [agent("1001", "other")])
    restored = Distributor.restore(smaller, run.distributor.snapshot(1), 1)
    assert len(restored.calls()) == 2
    effects = restored.handle(ConfigChanged(smaller), 2)
    assert [type(e).__name__ for e in effects] == ["AgentChanged", "Fallback", "Fallback"]
    assert restored.agent("1001").state is READY and restored.calls() == ()


def test_restore_keeps_round_robin_turns():
    """The round-robin turn survives a restore, even when it names an agent since removed."""
    rules = QueueRules("sales", strategy="round-robin", wrap_up_seconds=0)
    run = Run(setup([rules], [agent(n, "sales") for n in ("1001", "1002", "1003")]))
    run.login(0, "1001", "1002", "1003")
    run.at(1, Enqueue("c1", "sales"), Answered("c1", "1001"), Released("c1", "1001"))
    smaller = setup([rules], [agent("1002", "sales"), agent("1003", "sales")])
    run.at(2, ConfigChanged(smaller))
    snapshot = run.distributor.snapshot(3)
    assert snapshot.round_robin == (("sales", "1001"),)
    restored = Distributor.restore(smaller, snapshot, 3)
    assert restored.snapshot(3) == snapshot
    assert restored.handle(Enqueue("c2", "sales"), 4) == run.distributor.handle(Enqueue("c2", "sales"), 4)


# -- configuration changes ----------------------------------------------------

def test_config_change_logs_out_removed_idle_agents_at_once():
    """An idle agent removed from the setup is logged out; it disappears from the agent list."""
    run = Run(TWO)
    run.login(0, "1001", "1002")
    run.at(5, ConfigChanged(setup([QueueRules("sales")], [agent("1001", "sales")])))
    assert run.timeline(since=5) == ["1002@5 logged-out"]
    assert [a.agent for a in run.distributor.agents()] == ["1001"]


def test_config_change_logs_out_a_removed_agent_after_its_call():
    """A removed agent on a call finishes it (and its wrap-up), then is logged out and forgotten."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(0, Enqueue("c1", "sales"), Answered("c1", "1001"))
    run.at(5, ConfigChanged(setup([QueueRules("sales", wrap_up_seconds=10)], [])))
    assert run.distributor.agent("1001").pending is LOGGED_OUT
    run.at(10, Released("c1", "1001"))
    run.at(30)
    assert run.timeline(since=5) == ["1001@10 wrap-up", "1001@20 logged-out"]
    assert run.distributor.agents() == ()


def test_config_change_drops_calls_of_a_deleted_queue():
    """Calls of a deleted queue fall back with no-agents; a ringing agent is freed."""
    rules = QueueRules("sales", on_max_wait="callback")
    run = Run(setup([rules, QueueRules("support")], [agent("1001", "sales", "support")]))
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"), Enqueue("c2", "sales"), Enqueue("t1", "support"))
    run.at(5, ConfigChanged(setup([QueueRules("support")], [agent("1001", "support")])))
    assert run.timeline(since=5) == ["1001@5 ready", "fallback@5 c1 no-agents callback",
                                     "fallback@5 c2 no-agents callback",
                                     "1001@5 reserved", "offer@5 t1 1001"]
    assert run.distributor.agent("1001").queues == ("support",)


def test_config_change_removes_an_agent_from_a_queue():
    """An agent taken out of a queue gets no more of its calls; a new agent can log in."""
    run = Run(TWO)
    run.login(0, "1001")
    new = setup([QueueRules("sales"), QueueRules("support")],
                [agent("1001", "support"), agent("1002", "sales"), agent("3001", "sales")])
    run.at(1, ConfigChanged(new), Enqueue("c1", "sales"))
    assert run.offers() == []
    run.login(2, "3001")
    assert run.offers() == ["offer@2 c1 3001"]


def test_refused_inputs_change_nothing():
    """Every refused input leaves the snapshot as it was."""
    run = Run(TWO)
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"))
    before = run.distributor.snapshot(2)
    for command in (Login("nobody"), SetReady("1002"), Answered("c1", "1002"), Released("c1", "1001"),
                    EndWrapUp("1001"), ExtendWrapUp("1001", 5), Enqueue("c1", "sales"),
                    Enqueue("c9", "nowhere"), Missed("c9", "1001", "busy"), Logout("1002")):
        try:
            run.distributor.handle(command, 2)
        except AcdError:
            pass
        else:
            raise AssertionError(f"{command} was accepted")
        assert run.distributor.snapshot(2) == before


# -- properties over random input sequences -----------------------------------

NAMES = ("1001", "1002", "1003", "2001")


def random_setup(strategy: str, no_agents: str) -> AcdSetup:
    return setup(
        [QueueRules("sales", strategy=strategy, skills=(("fr", 3),), relax_after=30, relaxed_proficiency=1,
                    overflow_after=45, overflow_to="support", max_wait=120, wrap_up_seconds=5,
                    no_agents=no_agents),
         QueueRules("support", strategy=strategy, skills=(("de", 1),), wrap_up_seconds=0, ring_seconds=10)],
        [agent("1001", "sales", skills={"fr": 5}), agent("1002", "sales", ("support", 1), skills={"fr": 2}),
         agent("1003", ("sales", 2), "support", skills={"fr": 3, "de": 2}),
         agent("2001", "support", skills={"de": 1})])


who = st.sampled_from(NAMES)
OPS = st.one_of(
    st.tuples(st.just("login"), who, st.booleans()),
    st.tuples(st.just("ready"), who), st.tuples(st.just("not-ready"), who),
    st.tuples(st.just("logout"), who), st.tuples(st.just("busy"), who, st.booleans()),
    st.tuples(st.just("enqueue"), st.sampled_from(["sales", "support"]),
              st.sampled_from([None, 0, 10]), st.sampled_from(["call", "callback"]),
              st.sampled_from((None,) + NAMES)),
    st.tuples(st.just("answer"), who), st.tuples(st.just("answer"), who),   # twice: more calls talk
    st.tuples(st.just("release"), who), st.tuples(st.just("miss"), who),
    st.tuples(st.just("gone"), st.integers(0, 15)), st.tuples(st.just("release"), who),
    st.tuples(st.just("end-wrap"), who), st.tuples(st.just("extend"), who),
    st.tuples(st.just("config"), st.sampled_from(["same", "no-2001", "no-support"])),
    st.tuples(st.just("wait"), st.integers(0, 60)),
)


def build(op: tuple, d: Distributor, calls: int, base: AcdSetup):
    """The input an op stands for, given the distributor's state (an agent's own call where it has one)."""
    kind = op[0]
    view = d.agent(op[1]) if kind in ("answer", "miss", "release") else None
    call_id = (view.call_id if view is not None else None) or "c0"
    if kind == "login":
        return Login(op[1], ready=op[2])
    if kind == "ready":
        return SetReady(op[1])
    if kind == "not-ready":
        return SetNotReady(op[1], "break")
    if kind == "logout":
        return Logout(op[1])
    if kind == "busy":
        return DeviceBusy(op[1], op[2])
    if kind == "enqueue":
        return Enqueue(f"c{calls}", op[1], priority=op[2], kind=op[3], preferred_agent=op[4])
    if kind == "answer":
        return Answered(call_id, op[1])
    if kind == "miss":
        return Missed(call_id, op[1], "noanswer")
    if kind == "gone":
        return Gone(f"c{op[1]}")
    if kind == "release":
        return Released(call_id, op[1])
    if kind == "end-wrap":
        return EndWrapUp(op[1])
    if kind == "extend":
        return ExtendWrapUp(op[1], 10)
    if kind == "config":
        queues = [q for q in base.queues if op[1] != "no-support" or q.name != "support"]
        names = {q.name for q in queues}
        agents = [replace(p, queues=tuple(m for m in p.queues if m[0] in names)) for p in base.agents
                  if op[1] != "no-2001" or p.agent != "2001"]
        return ConfigChanged(AcdSetup(tuple(queues), tuple(agents)))
    return None


def check_invariants(d: Distributor) -> None:
    """One call per ringing agent and one agent per call; no waiting call with an eligible agent."""
    agents = {a.agent: a for a in d.agents()}
    calls = d.calls()
    ringing = [c for c in calls if c.agent is not None]
    assert len({c.agent for c in ringing}) == len(ringing), "an agent rings for two calls"
    for call in ringing:
        assert agents[call.agent].state is RESERVED and agents[call.agent].call_id == call.call_id
    reserved = [a for a in agents.values() if a.state is RESERVED]
    assert sorted(a.call_id for a in reserved) == sorted(c.call_id for c in ringing)
    held = [a.call_id for a in agents.values() if a.call_id is not None]
    assert len(held) == len(set(held)), "a call held by two agents"
    profiles = {p.agent: dict(p.skills) for p in d.setup.agents}
    rules = {q.name: q for q in d.setup.queues}
    for call in calls:
        if call.agent is not None:
            continue
        for a in agents.values():
            if a.state is not READY or a.device_busy or a.call_id or a.agent in call.tried:
                continue
            for queue in call.queues:
                need = call.skills if queue == call.queue else rules[queue].skills
                assert not (queue in a.queues and qualifies(profiles.get(a.agent, {}), need)), (
                    f"{call.call_id} waits while {a.agent} is free for it")
    assert [c.call_id for c in calls] == sorted({c.call_id for c in calls}, key=lambda i: int(i[1:]))
    for queue in rules:
        expected = sorted((c for c in calls if c.agent is None and queue in c.queues),
                          key=lambda c: (-c.priority, c.enqueued_at, int(c.call_id[1:])))
        assert d.waiting(queue) == tuple(expected), f"waiting({queue}) out of step with the calls"


def drive(d: Distributor, ops: list, base: AcdSetup, start: float = 0.0, calls: int = 0,
          twin: Distributor | None = None):
    """Feed ``ops`` (to ``twin`` too); yield (effects, time, the index of the next call id)."""
    now = start
    for op in ops:
        if op[0] == "wait":
            now += op[1]
            effects = d.advance(now)
            if twin is not None:
                assert twin.advance(now) == effects
            yield effects, now, calls
            continue
        command = build(op, d, calls, base)
        now += 1
        outcome = run_one(d, command, now)
        if twin is not None:
            assert run_one(twin, command, now) == outcome
        if isinstance(command, Enqueue) and not isinstance(outcome, str):
            calls += 1
        yield (outcome if isinstance(outcome, list) else []), now, calls


def run_one(d: Distributor, command, now: float):
    """The effects of one input, or the refusal message after checking nothing changed."""
    before = d.snapshot(now)
    try:
        return d.handle(command, now)
    except AcdError as exc:
        assert d.snapshot(now) == before, f"refused {command} changed the state"
        return str(exc)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STRATEGIES), st.sampled_from(["wait", "overflow", "fallback"]),
       st.lists(OPS, min_size=10, max_size=80))
def test_random_inputs_never_double_book_and_leave_no_call_behind(strategy, no_agents, ops):
    """Whatever happens: no call rings two agents, no agent has two calls, and each call is
    offered, falls back, or waits with no eligible agent."""
    base = random_setup(strategy, no_agents)
    d = Distributor(base, 0)
    states = {a.agent: a.state for a in d.agents()}
    fate: dict[str, str] = {}
    enqueued = 0
    for effects, now, enqueued in drive(d, ops, base):
        for effect in effects:
            if isinstance(effect, AgentChanged):
                assert states.get(effect.agent, LOGGED_OUT) is effect.previous, effect
                states[effect.agent] = effect.state
            elif isinstance(effect, Offer):
                fate.setdefault(effect.call_id, "offered")
            elif isinstance(effect, Fallback):
                fate[effect.call_id] = "fallback"
        check_invariants(d)
        assert {a.agent: a.state for a in d.agents()} == {
            name: state for name, state in states.items() if d.agent(name) is not None}
    waiting = {c.call_id for c in d.calls()}
    gone = {f"c{op[1]}" for op in ops if op[0] == "gone"}
    for i in range(enqueued):
        call_id = f"c{i}"
        assert call_id in fate or call_id in waiting or call_id in gone, f"{call_id} vanished"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STRATEGIES), st.sampled_from(["wait", "overflow", "fallback"]),
       st.lists(OPS, min_size=10, max_size=80), st.data())
def test_random_restore_behaves_like_the_original(strategy, no_agents, ops, data):
    """Restored from a snapshot at any point, a distributor answers every later input identically."""
    base = random_setup(strategy, no_agents)
    cut = data.draw(st.integers(0, len(ops)))
    d = Distributor(base, 0)
    now, calls = 0.0, 0
    for _, now, calls in drive(d, ops[:cut], base):
        pass
    twin = Distributor.restore(d.setup, d.snapshot(now), now)
    assert twin.snapshot(now) == d.snapshot(now)
    for _, now, _ in drive(d, ops[cut:], base, now, calls, twin=twin):
        assert twin.snapshot(now) == d.snapshot(now)


def test_an_agent_ready_again_after_missing_a_call_may_be_offered_it_again():
    """6001 misses the only call, then sets ready: with nobody else, the call rings 6001 again."""
    from acd.distributor import Distributor
    from acd.effects import Offer
    from acd.inputs import Enqueue, Login, Missed, SetReady
    from acd.model import AcdSetup, AgentProfile, QueueRules

    d = Distributor(AcdSetup((QueueRules("support"),), (AgentProfile("6001", "PJSIP/6001", (), (("support", 0),)),)),
                    0.0)
    d.handle(Login("6001", ready=True), 0.0)
    assert [e.agent for e in d.handle(Enqueue("c1", "support"), 1.0) if isinstance(e, Offer)] == ["6001"]
    assert not [e for e in d.handle(Missed("c1", "6001", "noanswer"), 16.0) if isinstance(e, Offer)]
    assert [e.agent for e in d.handle(SetReady("6001"), 30.0) if isinstance(e, Offer)] == ["6001"]
