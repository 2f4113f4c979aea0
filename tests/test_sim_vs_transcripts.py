"""The simulator against the transcripts of a real Asterisk 22.10.1 (tests/fixtures/asterisk-22/).

Each test replays what the lab's driver did (the actions it sent, at the times
it sent them; the FastAGI server's script) on a simulator driven by a
``task.Clock``, then compares the bytes the simulator wrote with the recorded
ones using callcenter.sim.compare (same events and responses, same order per
channel, same header names; see that module for the normaliser).  Where the
interleaving of Asterisk's threads differs from the simulator's, the events
concerned are listed explicitly per scenario (``displaced``).

Every replay runs the lab's ACD contexts and [globals] (``acd="lab"``: one
MusicOnHold(default,30) in [cc-wait], Dial(...,15) in [cc-connect], three
global VarSets at boot), the dialplan the recordings were made with; the
shipped heartbeat contract is pinned by tests/test_sim_acd_contract.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.internet import task

from callcenter.asterisk.ami_codec import AMIDecoder
from callcenter.sim import Simulator
from callcenter.sim.compare import compare, displaced, global_sequence
from callcenter.sim.testing import ScriptedFastAGIFactory, ami_connection

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "asterisk-22"
BANNER = b"Asterisk Call Manager/"


# --- reading the fixtures -----------------------------------------------------

def decode(data: bytes) -> list[list[tuple[str, str]]]:
    return [list(message.headers) for message in AMIDecoder(max_message_bytes=10**7).feed(data)]


def connections(data: bytes) -> list[bytes]:
    """Split concatenated raw streams where a banner starts a connection."""
    starts = [0] + [m.start() + 4 for m in re.finditer(rb"\r\n\r\n" + re.escape(BANNER), data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sequence_sends(name: str) -> list[tuple[float, bytes]]:
    """SEND lines of a .sequence.txt: (seconds since connect, the action's bytes)."""
    found = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*\+(\d+\.\d+) SEND\s+(.*)$", line)
        if match:
            text = match.group(2).replace(" | ", "\r\n") + "\r\n\r\n"
            found.append((float(match.group(1)), text.encode("utf-8")))
    return found


def visible_blocks(name: str) -> list[tuple[float, str, str | None, bytes]]:
    """Blocks of a visible transcript: (time, direction, [label], bytes with \\r \\n restored)."""
    blocks: list[list] = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*\+(\d+\.\d+)s (C->A|A->C|----) (?:\[(\w+)\] )?(.*)$", line)
        if match:
            blocks.append([float(match.group(1)), match.group(2), match.group(3), match.group(4).strip()])
        elif blocks and line.startswith(" ") and line.strip():
            blocks[-1][3] += line.strip()
    return [(t, way, label, text.replace("\\r", "\r").replace("\\n", "\n").encode("utf-8"))
            for t, way, label, text in blocks if way != "----"]


def first_call_numbers(stream: bytes) -> tuple[int, int, float]:
    """Local counter, Uniqueid sequence and epoch of the first channel in a recording."""
    for headers in decode(stream):
        values = dict(headers)
        if values.get("Event") == "Newchannel":
            local = int(re.search(r"-([0-9a-f]{8});", values["Channel"]).group(1), 16)
            epoch, sequence = values["Uniqueid"].split(".")
            return local, int(sequence), float(epoch)
    return 0, 0, 1795535416.0


def agi_sessions(name: str) -> list[list[tuple[str, str]]]:
    """agi_session.txt style: per session, the (direction, line) pairs."""
    sessions: list[list[tuple[str, str]]] = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("SESSION") or line.startswith("EXTRA SESSION") or line.startswith("AGI session for"):
            sessions.append([])
            continue
        match = re.match(r"\s*\+\d+\.\d+s (S->A|A->S) (.*)$", line)
        if match and sessions:
            text = match.group(2)
            if text != "<EOF>":
                sessions[-1].append((match.group(1), text[:-2] if text.endswith("\\n") else text))
    return sessions


def server_script(session: list[tuple[str, str]]) -> list[str]:
    return [text for way, text in session if way == "S->A"]


# --- running the simulator ----------------------------------------------------

class Run:
    """A simulator on a Clock, numbered like a recording, fed a timeline of actions (the lab's dialplan)."""

    def __init__(self, recording: bytes, scripts=(), inbound: str = "contract", t0: float = 0.3,
                 epoch: float | None = None) -> None:
        local, sequence, first_epoch = first_call_numbers(recording)
        epoch = first_epoch - t0 if epoch is None else epoch
        self.clock = task.Clock()
        self.agi = ScriptedFastAGIFactory([list(s) for s in scripts] or [[]], self.clock)
        self.sim = Simulator(None, clock=self.clock, epoch=epoch, agi_server=self.agi, inbound=inbound, acd="lab")
        self.sim.engine.naming.continue_from(local, sequence)
        self.sim.start()

    def play(self, timeline: list[tuple[float, object]], until: float) -> None:
        for at, step in sorted(timeline, key=lambda item: item[0]):
            self.sim.advance(max(0.0, at - self.clock.seconds()))
            step()
        self.sim.advance(max(0.0, until - self.clock.seconds()))
        assert self.sim.errors == []

    def replay_sends(self, sends: list[tuple[float, bytes]], until: float, hooks=()):
        protocol, transport = ami_connection(self.sim)
        timeline = [(at, (lambda data=data: protocol.dataReceived(data))) for at, data in sends]
        self.play(timeline + list(hooks), until)
        return transport.value()


def assert_same(simulated: bytes, recorded: bytes, moved: list[str] | None = None) -> None:
    sim, real = decode(simulated), decode(recorded)
    result = compare(sim, real)
    assert result.ok, str(result)
    assert displaced(sim, real) == sorted(moved or []), "cross-thread order changed"


# --- the IVR calls of README.txt -------------------------------------------------

FULL_CALL_AGI = ["EXEC Playback beep", "GET DATA beep 3000 1", "SET VARIABLE CC_QUEUE support"]


def test_full_call_replayed_over_ami_matches_ami_full_call():
    """QueueAdd + Originate over AMI, FastAGI IVR, queue, agent answers, talks 4 s, hangs up."""
    recording = raw("ami_full_call.txt")
    run = Run(recording, [FULL_CALL_AGI], t0=0.001)
    sends = [(t, data) for t, way, _, data in visible_blocks("ami_full_call.session.txt") if way == "C->A"]
    stream = run.replay_sends(sends, until=sends[-1][0] + 0.5)
    # Asterisk destroyed the bridge in another thread, after the caller's Hangup
    assert_same(stream, recording, moved=["BridgeDestroy @bridge#0"])
    session_1 = agi_sessions("agi_session.txt")[0]
    assert _agi_replies(run) == _mask([text for way, text in session_1 if way == "A->S"])


def test_full_call_placed_with_the_scenario_api_matches_ami_full_call():
    """sim.call() places the same call the lab's Originate did."""
    recording = raw("ami_full_call.txt")
    run = Run(recording, [FULL_CALL_AGI], t0=0.001)
    observer, transport = ami_connection(run.sim)
    observer.dataReceived(b"Action: Login\r\nActionID: full-1\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n")
    run.sim.agent("6001")
    timeline = [
        (0.0, lambda: observer.dataReceived(b"Action: QueueAdd\r\nActionID: full-2\r\nQueue: support\r\n"
                                            b"Interface: Local/6001@sim-agents/n\r\nMemberName: Agent 6001\r\n\r\n")),
        (0.001, lambda: run.sim.call("5551001", "Jane Doe", "4000", digits="1",
                                     variables=[("__TALK_SECS", "4")], action_id="full-3")),
        (9.216, lambda: observer.dataReceived(b"Action: Logoff\r\nActionID: full-4\r\n\r\n")),
    ]
    run.play(timeline, until=10)
    real = [m for m in decode(recording) if dict(m).get("Message") != "Originate successfully queued"]
    result = compare(decode(transport.value()), real)
    assert result.ok, str(result)


def _originate(action_id: str, ani: str, name: str, variables: list[str]) -> bytes:
    lines = ["Action: Originate", f"ActionID: {action_id}", "Channel: Local/4000@from-pstn",
             f'CallerID: "{name}" <{ani}>', "Context: sim-caller", "Exten: s", "Priority: 1", "Timeout: 30000"]
    lines += [f"Variable: {variable}" for variable in variables] + ["Async: true"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _agi_hangup_run(fixture: str, session: int, ids: tuple[str, str, str], ani: str, name: str,
                    variables: list[str], moved: list[str]) -> Run:
    """An IVR call of agi_session.txt whose caller hangs up (sessions 3, 4 and 5)."""
    recording = raw(fixture)
    script: list[str | float] = list(server_script(agi_sessions("agi_session.txt")[session]))
    pause = {2: (2, 1.5), 3: (1, 4.0)}.get(session)  # the recording server's pauses (its NOTE lines)
    if pause:
        script.insert(*pause)
    run = Run(recording, [script])
    login, originate, logoff = ids
    sends = [(0.0, f"Action: Login\r\nActionID: {login}\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n".encode()),
             (0.3, _originate(originate, ani, name, variables)),
             (9.0, f"Action: Logoff\r\nActionID: {logoff}\r\n\r\n".encode())]
    stream = run.replay_sends(sends, until=9.5)
    assert_same(stream, recording, moved)
    return run


def test_caller_hangs_up_during_get_data_matches_ami_hangup_mid_agi():
    """GET DATA answers -1, HANGUP follows, the dead channel answers 511 or 200, AGISTATUS=HANGUP."""
    run = _agi_hangup_run("ami_hangup_mid_agi.txt", 2, ("hup3-11", "hup3-12", "hup3-13"), "5551003", "Hangs Up",
                          ["PRE_WAIT=2", "HOLD_SECS=1"], moved=[])
    expected = [text for way, text in agi_sessions("agi_session.txt")[2] if way == "A->S"]
    assert _agi_replies(run) == _mask(expected)


def test_caller_hangs_up_while_no_command_runs_matches_ami_hangup_idle_agi():
    """HANGUP arrives unsolicited while the server is busy elsewhere."""
    run = _agi_hangup_run("ami_hangup_idle_agi.txt", 3, ("hup5-14", "hup5-15", "hup5-16"), "5551005", "Idle Hangup",
                          ["PRE_WAIT=1", "HOLD_SECS=1"], moved=["Newstate(Up) @Local/4000@from-pstn-#0;1"])
    expected = [text for way, text in agi_sessions("agi_session.txt")[3] if way == "A->S"]
    assert _agi_replies(run) == _mask(expected)


def test_agiexitonhangup_matches_ami_hangup_agiexitonhangup():
    """With AGIEXITONHANGUP=yes: -1, then HANGUP twice and the session ends at once."""
    run = _agi_hangup_run("ami_hangup_agiexitonhangup.txt", 4, ("hup6-17", "hup6-18", "hup6-19"), "5551006",
                          "Exit On Hangup",
                          ["PRE_WAIT=2", "HOLD_SECS=1", "AGIEXITONHANGUP=yes"], moved=[])
    expected = [text for way, text in agi_sessions("agi_session.txt")[4] if way == "A->S"]
    assert _agi_replies(run) == _mask(expected)


def _agi_replies(run: Run) -> list[str]:
    lines = [line.decode("utf-8", "surrogateescape") for line in run.agi.connections[0].lines]
    return _mask(lines)


def _mask(lines: list[str]) -> list[str]:
    """Values that differ between runs: thread ids, and Uniqueid/channel numbers (aligned elsewhere)."""
    return [re.sub(r"^(agi_threadid|agi_uniqueid): .*", r"\1: *", line) for line in lines]


def test_agi_replies_of_session_2_match_agi_session_txt():
    """~22 commands on a live channel: every reply byte for byte (510, 520 usage, timeouts, endpos...)."""
    recording = raw("ami_agi_edge_call.txt")
    session = agi_sessions("agi_session.txt")[1]
    run = Run(recording, [server_script(session)], inbound="lab")
    run.sim.sounds.missing = frozenset({"no-such-file"})  # the lab had 'beep' and no such file
    sends = [(0.0, b"Action: Login\r\nActionID: edge-8\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n"),
             (0.3, _originate("edge-9", "5551002", "Edge Case", ["HOLD_SECS=60"])),
             (8.0, b"Action: Logoff\r\nActionID: edge-10\r\n\r\n")]
    stream = run.replay_sends(sends, until=8.5)
    assert _agi_replies(run) == _mask([text for way, text in session if way == "A->S"])
    assert_same(stream, recording)


# --- the daemon-driven ACD, click-to-dial, transfer (more/README.txt) -------------

ACD = {
    # scenario: cross-thread interleavings that differ from the recording, and why
    "ami_acd_a_answer": ["BridgeDestroy @bridge#0"],  # bridge thread vs the caller's hangup
    "ami_acd_b_noanswer": ["SoftHangupRequest(16) @Local/7001@sim-agents-#1;2"],  # leg thread vs caller
    "ami_acd_c_busy_unavail_answer": ["BridgeLeave @Local/4100@cc-inbound-#0;2",
                                      "Hangup @Local/8001@sim-agents-#1;2",
                                      "SoftHangupRequest(16) @Local/8001@sim-agents-#1;2"],
    "ami_acd_d_caller_hangup_ringing": [],
    "ami_acd_e_caller_hangup_moh": ["Newstate(Up) @Local/4100@cc-inbound-#0;2"],  # the two halves answer
    "ami_acd_f_fallback_queue": ["Hangup @Local/6002@sim-agents-#1;1"],  # AgentComplete vs leg Hangup
    "ami_acd_g_reroute_while_ringing": ["Hangup @Local/7001@sim-agents-#1;2",
                                        "Newstate(Up) @Local/6001@sim-agents-#2;1",
                                        "SoftHangupRequest(16) @Local/7001@sim-agents-#1;2"],
    "ami_blind_transfer": ["BridgeDestroy @bridge#0", "DialBegin @Local/4100@cc-inbound-#0;2",
                           "Newexten(Wait) @Local/6002@sim-agents-#2;2"],  # "pair events by channel"
    "ami_click2dial": ["BridgeLeave @Local/6002@sim-agents-#0;1",
                       "Newexten(Wait) @Local/5552001@sim-customer-#1;2"],
    "ami_click2dial_fail": ["Hangup @Local/7002@sim-agents-#0;1", "Newstate(Busy) @Local/8002@sim-agents-#2;2",
                            "SoftHangupRequest(16) @Local/8002@sim-agents-#1;2"],
}


@pytest.mark.parametrize("name", sorted(ACD))
def test_daemon_driven_scenario_matches_recording(name):
    """Originate, Setvar+Redirect into Dial, busy/no answer/caller hangup, fallback queue, transfers."""
    recording = raw(f"more/{name}.txt")
    run = Run(recording)
    sends = sequence_sends(f"more/{name}.sequence.txt")
    stream = run.replay_sends(sends, until=sends[-1][0] + 0.5)
    assert_same(stream, recording, moved=ACD[name])


def test_no_answer_keeps_the_caller_waiting_in_moh_for_a_new_attempt():
    """The ACD b timeline: NOANSWER after 15 s, back in [cc-wait], the caller hangs up at 24 s."""
    recording = raw("more/ami_acd_b_noanswer.txt")
    run = Run(recording)
    sends = sequence_sends("more/ami_acd_b_noanswer.sequence.txt")
    run.replay_sends(sends, until=sends[-1][0])
    times = {(m.name, m.get("DialStatus")): t for t, m in run.sim.events if m.is_event}
    assert times[("DialEnd", "NOANSWER")] == pytest.approx(17.805, abs=0.002)  # Redirect at 2.804 + 15 s
    assert [m.name for _, m in run.sim.events if m.name == "MusicOnHoldStart"] == ["MusicOnHoldStart"] * 2


# --- restarts -------------------------------------------------------------------------

def test_core_restart_now_matches_the_three_restart_core_connections():
    """Calls hung up (Cause 4, then 0), Shutdown Restart: True, close; a login during boot; reload."""
    before = raw("more/ami_restart_core.before.txt")
    run = Run(before, t0=0.301)
    blocks = visible_blocks("more/ami_restart_core.session.txt")
    conns: dict[str, tuple] = {"before": ami_connection(run.sim)}

    def connect(label: str):
        return lambda: conns.__setitem__(label, ami_connection(run.sim))

    def send(label: str, data: bytes):
        return lambda: conns[label][0].dataReceived(data)

    timeline = [(2.803, lambda: run.sim.shutdown(restart=True)), (4.335, connect("after")), (12.44, connect("relogin"))]
    timeline += [(t, send(label, data)) for t, way, label, data in blocks if way == "C->A"]
    run.play(timeline, until=13.5)
    for label, name, moved in [("before", "before", []), ("after", "after", []), ("relogin", "relogin", [])]:
        assert_same(conns[label][1].value(), raw(f"more/ami_restart_core.{name}.txt"), moved)
    relogin = {k: v for k, v in decode(conns["relogin"][1].value())[1]}
    assert (relogin["Event"], relogin["Uptime"], relogin["LastReload"]) == ("FullyBooted", "8", "5")


def test_core_stop_then_start_matches_restart_stopstart():
    """Idle 'core stop now': Shutdown Restart: False at once; start.sh; boot-time FullyBooted order."""
    run = Run(raw("more/ami_restart_stopstart.after.txt"))
    blocks = visible_blocks("more/ami_restart_stopstart.session.txt")
    conns: dict[str, tuple] = {"before": ami_connection(run.sim)}
    timeline = [(0.301, lambda: run.sim.shutdown(restart=False)), (2.089, run.sim.start),
                (2.444, lambda: conns.__setitem__("after", ami_connection(run.sim)))]
    timeline += [(t, (lambda label=label, data=data: conns[label][0].dataReceived(data)))
                 for t, way, label, data in blocks if way == "C->A"]
    run.play(timeline, until=6.5)
    assert_same(conns["before"][1].value(), raw("more/ami_restart_stopstart.before.txt"))
    assert_same(conns["after"][1].value(), raw("more/ami_restart_stopstart.after.txt"))


# --- actions and responses (ami_actions.txt) ------------------------------------------

def test_every_action_response_of_ami_actions_matches():
    """Pre-login, bad secret, Events off, Ping, Command, unknown action, list actions, Redirect, Originate failures."""
    recording = raw("ami_actions.raw_recv.txt")
    extra = agi_sessions("agi_session.txt")[5]
    # wall clock as the recording's first Ping said (1795535456.828 when the second connection
    # opened at 1.5 s on our clock): QueueEntry Wait and friends count whole seconds
    run = Run(raw("ami_actions.event_stream_during.txt"), [server_script(extra)], inbound="lab",
              epoch=1795535456.828 - 1.5)
    # the same Asterisk had run the earlier calls: it already knew 6001's pause device state
    run.sim.engine.devstates["Queue:support_pause_Local/6001@sim-agents/n"] = "NOT_INUSE"
    blocks = visible_blocks("ami_actions.txt")
    starts = [i for i, (_, way, _, data) in enumerate(blocks) if way == "A->C" and data.startswith(BANNER)]
    sections = [blocks[a:b] for a, b in zip(starts, starts[1:] + [len(blocks)])]
    observer, events = ami_connection(run.sim)
    bad, bad_out = ami_connection(run.sim)
    run.play([(t, (lambda d=data: bad.dataReceived(d))) for t, way, _, data in sections[0] if way == "C->A"],
             until=1.5)
    observer.dataReceived(b"Action: Login\r\nActionID: drv-22\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n")
    good, good_out = ami_connection(run.sim)
    t0 = run.clock.seconds()
    # CoreShowChannels (act-54) and Hangup (act-55) came 1.503 s after the Redirect, while
    # agent 6002's Answer() (1 s ring + 0.502 s) was still running thanks to a few ms of
    # thread overhead the simulator does not have: they are replayed 5 ms earlier, so they
    # land at the same point of the agent's dialplan.
    sends = [(t, data) for t, way, _, data in sections[1] if way == "C->A"]
    early = next(i for i, (_, data) in enumerate(sends) if b"ActionID: act-54" in data)
    timeline = [(t0 + t - (0.005 if i >= early else 0), (lambda d=data: good.dataReceived(d)))
                for i, (t, data) in enumerate(sends)]
    run.play(timeline, until=t0 + 24)
    observer.dataReceived(b"Action: Logoff\r\nActionID: drv-63\r\n\r\n")
    expected = connections(recording)
    assert_same(bad_out.value(), expected[0])
    assert_same(good_out.value(), expected[1])
    assert_same(events.value(), raw("ami_actions.event_stream_during.txt"), moved=[
        # the hung-up member legs' own threads ended them a little earlier or later
        "Hangup @Local/6002@sim-agents-#3;2", "Hangup @Local/7001@sim-agents-#2;2",
        "SoftHangupRequest(16) @Local/6002@sim-agents-#3;2", "SoftHangupRequest(16) @Local/7001@sim-agents-#2;2",
        # the transfer's Dial vs its new agent leg's thread
        "DialBegin @Local/4000@from-pstn-#0;2", "Newexten(Wait) @Local/6002@sim-agents-#3;2",
        "Newstate(Up) @Local/6002@sim-agents-#3;1",
    ])
    assert _agi_replies(run) == _mask([text for way, text in extra if way == "A->S"])
    values = {(m[0][1], dict(m).get("ActionID")): dict(m) for m in decode(good_out.value())}
    assert values[("QueueEntry", "act-42")]["Wait"] == "17"
    assert values[("QueueMember", "act-51")]["Status"] == "2"
    assert values[("StatusComplete", "act-45")]["Items"] == "4"


# --- caller names (more/README.txt "Caller names, UTF-8") -------------------------------

def test_utf8_and_escaped_caller_names_match_ami_utf8_callerid():
    """C-escaped CallerIDName on AMI, raw in OriginateResponse, AppData, VarSet and the AGI env."""
    recording = raw("more/ami_utf8_callerid.txt")
    sessions = agi_sessions("more/agi_utf8_callerid.txt")
    run = Run(recording, [server_script(s) for s in sessions], inbound="lab")
    # the run continued an earlier one: Asterisk already knew the member's pause device state
    run.sim.engine.devstates["Queue:support_pause_Local/6001@sim-agents/n"] = "NOT_INUSE"
    sends = sequence_sends("more/ami_utf8_callerid.sequence.txt")
    latin1 = "Zo\ufffd L\ufffdtin1".encode()
    sends = [(t, data.replace(latin1, b"Zo\xeb L\xe4tin1")) for t, data in sends]
    stream = run.replay_sends(sends, until=sends[-1][0] + 0.5)
    sim, real = decode(stream), decode(recording)
    result = compare(sim, real)
    assert result.ok, str(result)

    def names(messages):  # every distinct name as written, escaped or not
        return {(k.replace("Dest", "").replace("LocalOne", "").replace("LocalTwo", ""), v)
                for m in messages for k, v in m if k.endswith(("CallerIDName", "ConnectedLineName"))}

    assert names(sim) == names(real)
    asterisk_sent = (FIXTURES / "more/agi_utf8_callerid.from_asterisk.raw").read_bytes()
    replies = b"".join(b"\n".join(c.lines) + b"\n" for c in run.agi.connections)
    assert _mask_bytes(replies) == _mask_bytes(asterisk_sent)


def _mask_bytes(data: bytes) -> bytes:
    return re.sub(rb"(agi_threadid|agi_uniqueid): [^\n]*", rb"\1: *", data)


def test_normaliser_tells_different_calls_apart():
    """A sanity check of the comparison itself: two different recorded calls do not match."""
    a, g = decode(raw("more/ami_acd_a_answer.txt")), decode(raw("more/ami_acd_g_reroute_while_ringing.txt"))
    assert not compare(a, g).ok
    assert compare(a, a).ok and displaced(a, a) == []
    assert global_sequence(a)[0].startswith("Response(Success: Authentication accepted)")
