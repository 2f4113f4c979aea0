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
