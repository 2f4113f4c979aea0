"""ACD inputs and snapshots as JSON: what one daemon writes, another reads back unchanged; anything
malformed is refused with a ValueError that names the field."""

from __future__ import annotations

import json
import typing

import pytest

from acd import inputs as inp
from acd.model import AcdSetup, AgentProfile, AgentState, AgentView, CallView, QueueRules, Snapshot
from callcenter.routing import codec

SETUP = AcdSetup(
    queues=(QueueRules("support", strategy="round-robin", skills=(("english", 2),), ring_seconds=12.5,
                       relax_after=30.0, overflow_after=60.0, overflow_to="sales", max_wait=300.0,
                       on_max_wait="callback", no_agents="overflow", sticky_days=7),
            QueueRules("sales", engine="asterisk")),
    agents=(AgentProfile("1001", "PJSIP/1001", (("english", 3), ("mandarin", 5)), (("support", 0), ("sales", 2))),
            AgentProfile("1002")),
)

#: One of each input, with every optional field set away from its default where it has one.
SAMPLES: list[inp.Input] = [
    inp.Login("1001", "PJSIP/1001", ("support", "sales"), ready=True),
    inp.Login("1002"),
    inp.Logout("1001"),
    inp.SetReady("1001"),
    inp.SetNotReady("1001", "午饭"),
    inp.ExtendWrapUp("1001", 12.5),
    inp.EndWrapUp("1001"),
    inp.DeviceBusy("1001", True),
    inp.Enqueue("1700000000.1", "support", (("english", 2), ("mandarin", 1)), 10, "callback",
                preferred_agent="1001", callback_id="cb-7"),
    inp.Enqueue("1700000000.2", "support"),
    inp.Answered("1700000000.1", "1001"),
    inp.Missed("1700000000.1", "1001", "busy"),
    inp.Gone("1700000000.1"),
    inp.Released("1700000000.1", "1001"),
    inp.ConfigChanged(SETUP),
]


def test_every_input_type_has_a_sample():
    """The round trip below covers the whole vocabulary of ``acd.inputs.Input``."""
    assert {type(s) for s in SAMPLES} == set(typing.get_args(inp.Input))


@pytest.mark.parametrize("command", SAMPLES, ids=lambda c: type(c).__name__)
def test_an_input_comes_back_equal(command):
    """encode_input then decode_input gives an equal input of the same type."""
    text = codec.encode_input(command)
    assert json.loads(text)["type"] == type(command).__name__
    again = codec.decode_input(text)
    assert again == command and type(again) is type(command)
    assert codec.decode_input(text.encode("utf-8")) == command


def snapshot() -> Snapshot:
    return Snapshot(
        at=1_700_000_100.25,
        agents=(AgentView("1001", AgentState.ON_CALL, None, 1_700_000_050.0, "PJSIP/1001", ("support",),
                          call_id="1700000000.1", device_busy=True, calls_handled=3, pending=AgentState.NOT_READY,
                          pending_reason="lunch", idle_since=1_700_000_000.0, call_queue="support"),
                AgentView("1002", AgentState.WRAP_UP, None, 1_700_000_090.0, None, ("support", "sales"),
                          wrap_up_until=1_700_000_110.0),
                AgentView("1003", AgentState.NOT_READY, "培训", 1_700_000_000.0, "PJSIP/1003", ())),
        calls=(CallView("1700000000.1", "support", "call", 0, (("english", 2),), 1_700_000_040.0,
                        queues=("support",), agent="1001", offered_at=1_700_000_045.0),
               CallView("1700000000.7", "sales", "callback", -1, (), 1_700_000_060.0, queues=("sales", "support"),
                        preferred_agent="1002", tried=("1001", "1003"), callback_id="cb-9", relaxed=True)),
        round_robin=(("support", "1001"), ("sales", "1002")),
    )


def test_a_snapshot_comes_back_equal():
    """Agents (with pending states), calls (ringing and waiting) and round-robin positions survive JSON."""
    saved = snapshot()
    assert codec.decode_snapshot(codec.encode_snapshot(saved)) == saved
    # the service saves ``codec.plain`` inside its own JSON and restores with ``from_plain``
    assert codec.from_plain(Snapshot, json.loads(json.dumps(codec.plain(saved)))) == saved


def test_an_empty_snapshot_comes_back_equal():
    """A snapshot of an ACD with nobody logged in and no call."""
    assert codec.decode_snapshot(codec.encode_snapshot(Snapshot(at=0.0))) == Snapshot(at=0.0)


def command(type_name: str, /, **data) -> str:
    return json.dumps({"type": type_name, "data": data})


def refused(text: str | bytes, decode=codec.decode_input) -> str:
    with pytest.raises(ValueError) as info:
        decode(text)
    return str(info.value)


@pytest.mark.parametrize(("text", "named"), [
    (command("Login", agent=1001), "Login.agent"),
    (command("Login", agent="1001", interface=["PJSIP/1001"]), "Login.interface"),
    (command("Login", agent="1001", queues="support"), "Login.queues"),
    (command("Login", agent="1001", queues=["support", 7]), "Login.queues"),
    (command("Login", agent="1001", ready="yes"), "Login.ready"),
    (command("SetNotReady", agent="1001", reason=None), "SetNotReady.reason"),
    (command("ExtendWrapUp", agent="1001", seconds="30"), "ExtendWrapUp.seconds"),
    (command("ExtendWrapUp", agent="1001", seconds=True), "ExtendWrapUp.seconds"),
    (command("DeviceBusy", agent="1001", busy=1), "DeviceBusy.busy"),
    (command("Enqueue", call_id="c", queue="support", priority=True), "Enqueue.priority"),
    (command("Enqueue", call_id="c", queue="support", priority=1.5), "Enqueue.priority"),
    (command("Enqueue", call_id="c", queue="support", skills=[["english", "2"]]), "Enqueue.skills"),
    (command("Enqueue", call_id="c", queue="support", skills=[["english", 2, 3]]), "Enqueue.skills"),
    (command("Enqueue", call_id="c", queue="support", kind="fax"), "Enqueue.kind"),
    (command("Missed", call_id="c", agent="1001", reason="asleep"), "Missed.reason"),
    (command("Gone", call_id=None), "Gone.call_id"),
    (command("ConfigChanged", setup={"queues": {}}), "ConfigChanged.setup.queues"),
    (command("ConfigChanged", setup={"queues": [{"name": "q", "strategy": "random"}]}),
     "ConfigChanged.setup.queues.strategy"),
    (command("ConfigChanged", setup={"agents": [{"agent": "1001", "skills": [["english", "high"]]}]}),
     "ConfigChanged.setup.agents.skills"),
])
def test_a_field_of_the_wrong_type_is_refused_by_name(text, named):
    """A field (nested ones with their path) of the wrong type or value is named in the ValueError."""
    assert named in refused(text)


def test_an_unknown_field_is_refused_by_name():
    """A field the input does not have (another version's daemon) is refused, not dropped."""
    message = refused(command("Login", agent="1001", colour="blue"))
    assert "Login" in message and "colour" in message


def test_an_unknown_field_deep_inside_is_refused_with_its_path():
    """Inside a nested record too, with the path to it."""
    message = refused(command("ConfigChanged", setup={"queues": [{"name": "q", "tempo": 3}]}))
    assert "ConfigChanged.setup.queues" in message and "tempo" in message


def test_a_missing_field_is_refused_by_name():
    """A required field left out is named."""
    assert "agent" in refused(command("Login"))
    assert "reason" in refused(command("Missed", call_id="c", agent="1001"))


@pytest.mark.parametrize("text", [
    json.dumps({"type": "Login"}),
    json.dumps({"type": "Login", "data": ["1001"]}),
    json.dumps({"type": "Login", "data": None}),
])
def test_input_data_that_is_not_an_object_is_refused(text):
    """``data`` missing, a list or null: refused, naming the input type."""
    assert "Login" in refused(text)


@pytest.mark.parametrize(("text", "named"), [
    (json.dumps({"type": "Reboot", "data": {}}), "Reboot"),
    (json.dumps({"type": "Distributor", "data": {}}), "Distributor"),   # a name of acd, but not an input
    (json.dumps({"type": "AgentView", "data": {}}), "AgentView"),
    (json.dumps({"data": {"agent": "1001"}}), "None"),
    (json.dumps(["Login", {"agent": "1001"}]), "Login"),
    ("null", "None"),
])
def test_an_unknown_input_type_is_refused(text, named):
    """Only the dataclasses of ``acd.inputs`` are decoded; any other type name, or none, is refused."""
    message = refused(text)
    assert "unknown ACD input" in message and named in message


@pytest.mark.parametrize("text", ["", "{", "Login 1001", b"\xff\xfe", '{"type": "Login", "data": {"agent": "1001"}'])
def test_an_input_that_is_not_json_is_refused(text):
    """Text that is not JSON (or bytes that are not UTF-8) is a ValueError saying so."""
    assert "not JSON" in refused(text)


@pytest.mark.parametrize(("change", "named"), [
    (lambda s: s.update(at="yesterday"), "Snapshot.at"),
    (lambda s: s["agents"][0].update(state="asleep"), "Snapshot.agents.state"),
    (lambda s: s["agents"][0].update(pending="asleep"), "Snapshot.agents.pending"),
    (lambda s: s["agents"][1].update(calls_handled="3"), "Snapshot.agents.calls_handled"),
    (lambda s: s["agents"][2].update(queues="support"), "Snapshot.agents.queues"),
    (lambda s: s["calls"][0].update(kind="fax"), "Snapshot.calls.kind"),
    (lambda s: s["calls"][1].update(tried=[1001]), "Snapshot.calls.tried"),
    (lambda s: s["calls"][1].update(relaxed="no"), "Snapshot.calls.relaxed"),
    (lambda s: s.update(round_robin=[["support"]]), "Snapshot.round_robin"),
    (lambda s: s.update(agents={}), "Snapshot.agents"),
])
def test_a_snapshot_with_a_wrong_field_is_refused_by_name(change, named):
    """One wrong field anywhere in a snapshot refuses it, naming the field by its path."""
    data = codec.plain(snapshot())
    change(data)
    assert named in refused(json.dumps(data), codec.decode_snapshot)


def test_a_snapshot_with_an_unknown_field_is_refused_by_name():
    """Unknown fields in a call or at the top are named."""
    data = codec.plain(snapshot())
    data["calls"][0]["colour"] = "red"
    message = refused(json.dumps(data), codec.decode_snapshot)
    assert "Snapshot.calls" in message and "colour" in message
    data = codec.plain(snapshot())
    data["version"] = 2
    assert "version" in refused(json.dumps(data), codec.decode_snapshot)


def test_a_snapshot_missing_a_field_is_refused_by_name():
    """An agent without its state is refused, naming the state."""
    data = codec.plain(snapshot())
    del data["agents"][0]["state"]
    assert "state" in refused(json.dumps(data), codec.decode_snapshot)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"snapshot"'])
def test_a_snapshot_that_is_not_json_or_not_an_object_is_refused(text):
    """Not JSON, or JSON that is not an object: a ValueError (never a TypeError or KeyError)."""
    refused(text, codec.decode_snapshot)


# -- effects and the leader's broadcasts ----------------------------------------------------------------------------

from acd import effects as fx  # noqa: E402
from acd.stats import Bucket  # noqa: E402

#: One of each effect, optional fields set away from their defaults where they have one.
EFFECTS: list[fx.Effect] = [
    fx.Offer("1700000000.1", "1001", "PJSIP/1001", "support", 15.0, wait_seconds=3.5),
    fx.Offer("cb:7", "1002", "PJSIP/1002", "sales", 20.0, "callback", "cb-7", 61.0),
    fx.AgentChanged("1001", AgentState.RESERVED, None, AgentState.READY, None, 42.5, 1_700_000_100.0,
                    "1700000000.1"),
    fx.AgentChanged("1003", AgentState.NOT_READY, "午饭", AgentState.WRAP_UP, None, 7.0, 1_700_000_101.0),
    fx.Fallback("1700000000.2", "support", "max-wait", "voicemail", 300.0),
    fx.Overflowed("1700000000.3", "support", "sales", 60.0),
    fx.Relaxed("1700000000.4", "support", 30.0),
]
QUEUE_ROWS = [{"queue": "support", "waiting": 2, "longest_wait": 12.5, "answered": 7, "service_level": 0.8571,
               "agents_by_state": {"ready": 1, "on-call": 2}},
              {"queue": "sales", "waiting": 0, "longest_wait": 0.0, "answered": 0, "service_level": None,
               "agents_by_state": {}}]
AGENT_ROWS = [{"agent": "1001", "state": "on-call", "reason": None, "seconds": 31.2, "queues": ["support"]},
              {"agent": "王芳", "state": "logged-out", "reason": None, "seconds": None, "queues": []}]
CHART = {"support": (Bucket(28_333_000, 2, 5, 4, 1), Bucket(28_333_001, 3, 1, 1, 0)), "sales": ()}


def test_every_effect_type_has_a_sample():
    assert {type(e) for e in EFFECTS} == set(typing.get_args(fx.Effect))


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'kind', '')}")
def test_an_effect_comes_back_equal(effect):
    """encode_effect then decode_effect gives an equal effect of the same type (agent states as enums)."""
    text = codec.encode_effect(effect)
    assert json.loads(text)["type"] == type(effect).__name__
    again = codec.decode_effect(text)
    assert again == effect and type(again) is type(effect)


def test_a_batch_of_effects_comes_back_equal_and_in_order():
    text = codec.encode_effects_broadcast(EFFECTS)
    assert codec.decode_broadcast(text) == codec.EffectsBroadcast(tuple(EFFECTS))
    assert codec.decode_broadcast(codec.encode_effects_broadcast([])) == codec.EffectsBroadcast(())


def test_figures_come_back_equal():
    """Queue rows and agent rows as they were (every field, non-ASCII too), the chart's buckets per queue."""
    for full in (True, False):
        text = codec.encode_figures_broadcast(QUEUE_ROWS, AGENT_ROWS, CHART, full)
        got = codec.decode_broadcast(text)
        assert got == codec.FiguresBroadcast(tuple(QUEUE_ROWS), tuple(AGENT_ROWS), CHART, full)


def effects_text(*items) -> str:
    return json.dumps({"effects": list(items)})


@pytest.mark.parametrize(("text", "named"), [
    (effects_text({"type": "Offer", "data": {"call_id": "c", "agent": "1001", "interface": "PJSIP/1001",
                                            "queue": "q", "ring_seconds": "15"}}), "effects[0].Offer.ring_seconds"),
    (effects_text({"type": "Offer", "data": {"call_id": "c", "agent": "1001", "interface": "PJSIP/1001",
                                            "queue": "q", "ring_seconds": 15, "kind": "fax"}}),
     "effects[0].Offer.kind"),
    (effects_text(json.loads(codec.encode_effect(EFFECTS[0])),
                  {"type": "AgentChanged", "data": {**json.loads(codec.encode_effect(EFFECTS[2]))["data"],
                                                    "state": "asleep"}}), "effects[1].AgentChanged.state"),
    (effects_text({"type": "AgentChanged", "data": {"agent": "1001"}}), "effects[0].AgentChanged"),
    (effects_text({"type": "Login", "data": {"agent": "1001"}}), "effects[0]: unknown ACD effect 'Login'"),
    (effects_text({"type": "Offer", "data": {}, "extra": 1}), "extra"),
    (effects_text("Offer"), "unknown ACD effect"),
    (json.dumps({"effects": {"type": "Offer"}}), "effects: expected a list"),
    (json.dumps({"effect": []}), "unknown ACD broadcast"),
    (json.dumps({"effects": [], "figures": {}}), "unknown ACD broadcast"),
    (json.dumps([1, 2]), "unknown ACD broadcast"),
    ("null", "unknown ACD broadcast"),
    ("{", "not JSON"),
    (b"\xff", "not JSON"),
])
def test_a_malformed_effects_broadcast_is_refused_by_name(text, named):
    assert named in refused(text, codec.decode_broadcast)


def figures_text(change) -> str:
    data = json.loads(codec.encode_figures_broadcast(QUEUE_ROWS, AGENT_ROWS, CHART, True))
    change(data["figures"])
    return json.dumps(data)


@pytest.mark.parametrize(("change", "named"), [
    (lambda f: f.pop("agents"), "figures: missing fields ['agents']"),
    (lambda f: f.update(colour="red"), "figures: unknown fields ['colour']"),
    (lambda f: f.update(queues={}), "figures.queues: expected a list"),
    (lambda f: f["queues"].append("sales"), "figures.queues[2]: expected an object"),
    (lambda f: f["queues"][1].pop("queue"), "figures.queues[1]: missing field 'queue'"),
    (lambda f: f["queues"][0].update(waiting="2"), "figures.queues[0].waiting"),
    (lambda f: f["queues"][0].update(longest_wait=None), "figures.queues[0].longest_wait"),
    (lambda f: f["agents"][1].update(agent=7), "figures.agents[1].agent"),
    (lambda f: f["agents"][0].update(seconds="31"), "figures.agents[0].seconds"),
    (lambda f: f["agents"][0].pop("state"), "figures.agents[0]: missing field 'state'"),
    (lambda f: f.update(chart=[]), "figures.chart: expected an object"),
    (lambda f: f["chart"].update(full="yes"), "figures.chart.full"),
    (lambda f: f["chart"].update(queues=[]), "figures.chart.queues: expected an object"),
    (lambda f: f["chart"]["queues"].update(support={}), "figures.chart.queues.support: expected a list"),
    (lambda f: f["chart"]["queues"]["support"].append([1, 2]), "figures.chart.queues.support[2]"),
    (lambda f: f["chart"]["queues"]["support"][0].__setitem__(2, -1), "figures.chart.queues.support[0].answered"),
    (lambda f: f["chart"]["queues"]["support"][1].__setitem__(0, 1.5), "figures.chart.queues.support[1].minute"),
    (lambda f: f["chart"]["queues"]["support"][1].__setitem__(1, True), "figures.chart.queues.support[1].waiting_max"),
])
def test_malformed_figures_are_refused_by_name(change, named):
    """The fields a daemon reads (row keys, the times it ages, the chart's counts) are checked, with their path."""
    assert named in refused(figures_text(change), codec.decode_broadcast)
