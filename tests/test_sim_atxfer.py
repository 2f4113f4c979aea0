"""AMI Atxfer on the simulator: the attended transfer Asterisk 22 performs (callcenter/sim/atxfer.py).

First the lab's recordings replayed (more/ami_atxfer*.txt: a transfer on a Local agent leg, Dial without
``t``, no feature code), then the daemon's way on the shipped contract: ``Setvar __CC_CONSULT_TO`` and
``Atxfer Exten=0 Context=cc-consult`` on the agent leg of a ``cc-connect`` call, the agent hanging up
to complete it, with the call tracker fed from the simulator's stream; then the other outcomes
(the consulted agent does not answer, an extension that does not exist, the caller hanging up).
Everything runs on a ``task.Clock``.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from twisted.internet import task

from acd import events as ev
from callcenter.asterisk import channel_vars as cv
from callcenter.asterisk.ami_codec import AMIDecoder
from callcenter.sim import SHIPPED_FEATUREMAP, Simulator
from callcenter.sim.dialplan import CONTRACT_CONSULT
from callcenter.sim.testing import ami_connection
from tests.test_call_tracker import Harness
from tests.test_sim_acd_contract import _shipped_contexts
from tests.test_sim_vs_transcripts import Run, assert_same, raw, sequence_sends

ROOT = Path(__file__).resolve().parent.parent
EPOCH = 1795535416.0


@pytest.fixture(autouse=True)
def _collect_abandoned_channel_threads():
    """Channels left in their dialplan run ``finally`` blocks when collected: collect them here."""
    yield
    gc.collect()


# --- the recordings ------------------------------------------------------------------------

ATXFER = {
    # recording, the lab's featuremap, cross-thread interleavings that differ from the recording
    "ami_atxfer": ("*2", [
        "Newstate(Up) @Local/6001@sim-agents-#1;1",        # the agent's two halves answer
        "Newstate(Up) @Local/6002@transfer-#2;1",          # the consultation's ;1 thread reads the answer
        "DialEnd(ANSWER) @Local/6002@transfer-#2;1",       # ... and the transfer's thread reports it
        "VarSet(BRIDGEPEER) @Local/6002@transfer-#2;1",
        "VarSet(BRIDGEPEER) @Local/6001@sim-agents-#1;1",
        "Hangup @Local/4100@cc-inbound-#0;2",               # the caller's halves hang up
    ]),
    "ami_atxfer_no_t_option": ("*2", []),
    "ami_atxfer_nofeature": ("", ["BridgeDestroy @bridge#0", "Newstate(Up) @Local/6001@sim-agents-#1;2"]),
}


@pytest.mark.parametrize("name", sorted(ATXFER))
def test_atxfer_replayed_matches_the_recording(name):
    """The lab's driver replayed: the transfer 6001 -> transfer/6002 completed by 6001 hanging up, the
    digits passed through a Dial without t, the refusals without a feature code; same events per channel."""
    code, moved = ATXFER[name]
    recording = raw(f"more/{name}.txt")
    run = Run(recording)
    if code:
        run.sim.featuremap["atxfer"] = code
    sends = sequence_sends(f"more/{name}.sequence.txt")
    stream = run.replay_sends(sends, until=sends[-1][0] + 0.5)
    assert_same(stream, recording, moved)


def test_atxfer_replayed_keeps_the_recorded_timing():
    """The code's digits 160 ms apart, Hold 100 ms after them, the extension's from 161 ms, 60 ms apart,
    the consultation at once after its last digit; AttendedTransfer when 6001's talk time is over."""
    run = Run(raw("more/ami_atxfer.txt"))
    run.sim.featuremap["atxfer"] = "*2"
    sends = sequence_sends("more/ami_atxfer.sequence.txt")
    run.replay_sends(sends, until=sends[-1][0])
    atxfer = next(at for at, data in sends if b"Action: Atxfer" in data)
    times = [(m.name, m.get("Digit") or "", round(t - atxfer, 3)) for t, m in run.sim.events
             if m.name in ("DTMFEnd", "Hold", "AttendedTransfer")
             or (m.name == "Newchannel" and "@transfer-" in (m.get("Channel") or "") and t > atxfer)]
    assert times == [("DTMFEnd", "*", 0.0), ("DTMFEnd", "2", 0.16), ("Hold", "", 0.26), ("DTMFEnd", "6", 0.321),
                     ("DTMFEnd", "0", 0.381), ("DTMFEnd", "0", 0.441), ("DTMFEnd", "2", 0.501),
                     ("Newchannel", "", 0.501), ("Newchannel", "", 0.501), ("AttendedTransfer", "", 8.499)]
    # recorded: 8.502 (6001 hung up 10 s after its answer, the Wait's own timing)


# --- the daemon's attended transfer on the shipped contract ---------------------------------

class Lab:
    """The shipped dialplan and features.conf on a Clock; one AMI connection; the tracker fed from the stream."""

    def __init__(self, featuremap=SHIPPED_FEATUREMAP, **globals_: str) -> None:
        self.clock = task.Clock()
        self.sim = Simulator(None, clock=self.clock, epoch=EPOCH, featuremap=featuremap, dialplan_globals=globals_)
        self.sim.start()
        self.ami, self.out = ami_connection(self.sim)
        self.action("Login", Username="cti", Secret="cti-secret", Events="off")
        self.tracker = Harness()
        self.sim.engine.listeners.append(self._feed)

    def _feed(self, message) -> None:
        """Each event as the daemon's AMI client reads it (encoded, decoded), at the clock's time."""
        self.tracker.play((self.clock.seconds(), m) for m in AMIDecoder().feed(message.encode()))

    def action(self, name: str, **headers: str) -> list:
        lines = [f"Action: {name}", "ActionID: t"] + [f"{k}: {v}" for k, v in headers.items()]
        self.out.clear()
        self.ami.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        return AMIDecoder().feed(self.out.value().split(b"\r\n", 1)[1] if self.out.value().startswith(b"Asterisk")
                                 else self.out.value())

    def connected_call(self, agent: str = "6001", iface: str = "Local/{}@sim-agents/n"):
        """A caller of the ACD (DNIS 4100) the daemon connected to ``agent`` through cc-connect."""
        call = self.sim.call("5552506", "Atxfer Caller", dnis="4100", hold=600)
        self.sim.advance(1)
        self.action("Setvar", Channel=call.line.name, Variable=cv.CC_AGENT_IFACE, Value=iface.format(agent))
        self.action("Redirect", Channel=call.line.name, Context=cv.CONTEXT_CONNECT, Exten="s", Priority="1")
        self.sim.advance(2)
        return call, self.agent_leg(agent)

    def agent_leg(self, agent: str):
        """The channel Dial() rang for ``agent``: a Local ``;1``, or the phone's PJSIP channel."""
        return next(c for c in self.sim.engine.channels.values()
                    if (c.name.startswith(f"Local/{agent}@sim-agents-") and c.half == 1)
                    or c.name.startswith(f"PJSIP/{agent}-"))

    def attended_transfer(self, leg, target: str = "6002", exten: str = cv.CONSULT_EXTEN) -> list:
        """What CallActions.transfer(kind="attended") sends."""
        assert self.action("Setvar", Channel=leg.name, Variable=f"__{cv.CC_CONSULT_TO}", Value=target)[0].get(
            "Response") == "Success"
        return self.action("Atxfer", Channel=leg.name, Exten=exten, Context=cv.CONTEXT_CONSULT)

    def consulting(self):
        """6001 (connected to a caller) consults 6002, who answered; both phones would talk 300 s."""
        self.sim.agent("6001", ring=1, talk=300)
        self.sim.agent("6002", ring=1, talk=300)
        call, leg = self.connected_call()
        self.attended_transfer(leg)
        self.sim.advance(3)
        return call, leg

    def events(self, name: str, since: float = 0.0) -> list:
        return [m for t, m in self.sim.events if m.name == name and t >= since]

    def timeline(self) -> list[str]:
        return self.tracker.timeline(times=False)


def test_the_daemons_attended_transfer_moves_the_call_to_the_consulted_agent():
    """Setvar __CC_CONSULT_TO=6002 + Atxfer Exten=0 into cc-consult on 6001's leg: held while 6001 consults
    6002 (who answers), 6001 hangs up (AMI Hangup, as the daemon does): the tracker fed from the stream says
    held -> resumed -> transferred (attended, to 6002), as it does with the real recording."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=1, talk=20)
    call, leg = lab.connected_call()
    reply = lab.attended_transfer(leg)
    assert [(m.get("Response"), m.get("Message")) for m in reply] == [("Success", "Atxfer successfully queued")]
    lab.sim.advance(3)
    consult = next(m for m in lab.events("DialEnd") if (m.get("DestChannel") or "").startswith("Local/6002@"))
    assert consult.get("DialStatus") == "ANSWER" and consult.get("Channel").startswith("Local/0@cc-consult-")
    assert consult.get("Linkedid") == call.linkedid
    assert lab.timeline()[-2:] == ["held", "consulting"]
    mark = lab.clock.seconds()
    lab.action("Hangup", Channel=leg.name, Cause="16")
    lab.sim.advance(1)
    (done,) = lab.events("AttendedTransfer", mark)
    assert (done.get("Result"), done.get("DestType"), done.get("TransfereeChannel")) == ("Success", "Bridge",
                                                                                        call.line.name)
    assert done.get("OrigTransfererChannel") == done.get("SecondTransfererChannel") == leg.name
    assert done.get("TransferTargetChannel").startswith("Local/0@cc-consult-")   # a Local transferer
    after = [m.name for t, m in lab.sim.events if t >= mark and m.name in (
        "BridgeMerge", "MusicOnHoldStop", "AttendedTransfer", "Hangup", "Unhold")]
    assert after[:4] == ["BridgeMerge", "MusicOnHoldStop", "AttendedTransfer", "Hangup"]
    assert "Unhold" not in after
    assert lab.timeline()[-4:] == ["held", "consulting", "resumed", "transfer attended 6002"]
    lab.sim.advance(25)          # 6002 talks 20 s with the caller, then hangs up
    assert lab.timeline() == ["arrived", "queued moh", "offered 6001", "connected 6001", "held", "consulting",
                              "resumed", "transfer attended 6002", "wrap-up agent", "ended 16"]
    record = lab.tracker.of(ev.CallEnded)[0].record
    assert record.agent_interface == "Local/6002@sim-agents/n"
    assert [(t.kind, t.from_agent_id, t.to_agent_id) for t in record.transfers] == [("attended", "6001", "6002")]
    assert lab.sim.engine.channels == {} and lab.sim.errors == []


def test_the_agent_hanging_up_the_phone_completes_it_too():
    """As in the recording: 6001's own phone hangs up during the consultation."""
    lab = Lab()
    call, leg = lab.consulting()
    lab.sim.agent_hangup("6001")
    lab.sim.advance(1)
    assert lab.timeline()[-4:] == ["held", "consulting", "resumed", "transfer attended 6002"]
    bridge = call.line.bridge
    assert {c.name.rsplit("-", 1)[0] for c in bridge.channels} == {"Local/4100@cc-inbound", "Local/0@cc-consult"}
    call.hangup()
    lab.sim.advance(1)
    assert lab.timeline()[-2:] == ["wrap-up customer", "ended 16"]
    assert lab.sim.engine.channels == {} and lab.sim.errors == []


def test_a_four_digit_extension_reaches_the_transfer_on_a_local_leg():
    """A Local agent leg gets every digit: Exten 6002 in cc-consult (_6XXX) is dialled as such."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=1, talk=300)
    call, leg = lab.connected_call()
    lab.action("Atxfer", Channel=leg.name, Exten="6002", Context=cv.CONTEXT_CONSULT)
    lab.sim.advance(3)
    assert [m.get("Digit") for m in lab.events("DTMFEnd")] == list("*26002")
    assert any(m.get("Channel", "").startswith("Local/6002@cc-consult-") for m in lab.events("Newchannel"))
    lab.action("Hangup", Channel=leg.name)
    lab.sim.advance(1)
    assert lab.timeline()[-1] == "transfer attended 6002"


def test_a_consulted_agent_who_does_not_answer_gives_the_caller_back_to_the_agent():
    """6003 never answers: after cc-consult's ring time the consultation hangs up, 6001 goes back to the
    caller's bridge (the music stops, then Unhold, as Asterisk's rebridge does), no AttendedTransfer; the
    call stays 6001's."""
    lab = Lab(CTI_AGENT_RING_SECS="10")
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6003", mode="noanswer")
    call, leg = lab.connected_call()
    mark = lab.clock.seconds()
    lab.attended_transfer(leg, target="6003")
    lab.sim.advance(5)
    assert leg.bridge is not call.line.bridge and not lab.events("Unhold")
    lab.sim.advance(7)
    names = [m.name for t, m in lab.sim.events if t >= mark and m.name in ("Hold", "Unhold", "MusicOnHoldStart",
                                                                           "MusicOnHoldStop", "AttendedTransfer")]
    assert names == ["Hold", "MusicOnHoldStart", "MusicOnHoldStop", "Unhold"]
    assert [m.get("DialStatus") for m in lab.events("DialEnd", mark)] == ["NOANSWER"]
    assert leg.bridge is call.line.bridge and not leg.hungup
    assert lab.timeline()[-4:] == ["held", "consulting", "transfer-cancelled", "resumed"]
    assert not [c for c in lab.sim.engine.channels if "cc-consult" in c or "6003" in c]
    lab.action("Hangup", Channel=leg.name)
    lab.sim.advance(1)
    assert lab.timeline()[-2:] == ["wrap-up agent", "ended 16"] and lab.sim.errors == []


def test_no_answer_within_atxfernoanswertimeout_gives_up_the_consultation():
    """The consultation rings longer than features.conf's atxfernoanswertimeout (15 s): given up then."""
    lab = Lab(CTI_AGENT_RING_SECS="60")
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6003", mode="noanswer")
    call, leg = lab.connected_call()
    lab.attended_transfer(leg, target="6003")
    lab.sim.advance(20)
    started = next(t for t, m in lab.sim.events if m.name == "Newchannel" and "@cc-consult-" in m.get("Channel"))
    (unhold,) = [t for t, m in lab.sim.events if m.name == "Unhold"]
    assert unhold - started == pytest.approx(15.0, abs=0.1)
    cancel = [m for m in lab.events("DialEnd") if m.get("DialStatus") == "CANCEL"]
    assert [m.get("DestChannel").rsplit("-", 1)[0] for m in cancel] == ["Local/6003@sim-agents"]
    assert leg.bridge is call.line.bridge and lab.sim.errors == []


def test_an_extension_that_does_not_exist_transfers_nothing():
    """Exten 9 is no extension of cc-consult: three attempts, then Unhold and the music stops."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    call, leg = lab.connected_call()
    mark = lab.clock.seconds()
    lab.action("Atxfer", Channel=leg.name, Exten="9", Context=cv.CONTEXT_CONSULT)
    lab.sim.advance(4)
    assert [m.name for m in lab.events("Hold", mark)] == ["Hold"] and not lab.events("Unhold", mark)
    lab.sim.advance(10)
    assert [m.name for m in lab.events("Unhold", mark)] == ["Unhold"]
    assert not lab.events("AttendedTransfer") and not [m for m in lab.events("Newchannel", mark)]
    assert lab.timeline()[-2:] == ["held", "resumed"] and leg.bridge is call.line.bridge


def test_the_caller_hanging_up_while_the_target_rings_fails_the_transfer():
    """AttendedTransfer Result Fail (no Transferee), the consultation torn down: 6001's leg and the
    consultation hang up."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    lab.sim.agent("6002", ring=5, talk=300)
    call, leg = lab.connected_call()
    lab.attended_transfer(leg)
    lab.sim.advance(2)
    call.hangup()
    lab.sim.advance(1)
    (failed,) = lab.events("AttendedTransfer")
    assert (failed.get("Result"), failed.get("DestType"), failed.get("TransfereeChannel")) == ("Fail", "Fail", None)
    assert lab.sim.engine.channels == {} and lab.sim.errors == []


def test_the_caller_hanging_up_during_the_consultation_leaves_the_two_agents_talking():
    """No event for it (bridge_basic.c): the consultation goes on until one of them hangs up."""
    lab = Lab()
    call, leg = lab.consulting()
    call.hangup()
    lab.sim.advance(1)
    assert not lab.events("AttendedTransfer") and not leg.hungup and leg.bridge is not None
    lab.action("Hangup", Channel=leg.name)
    lab.sim.advance(1)
    assert lab.sim.engine.channels == {} and lab.sim.errors == []


def test_a_consultation_target_cc_consult_refuses_is_no_transfer():
    """CC_CONSULT_TO must be an agent extension (6XXX): cc-consult hangs up at once, the agent is back."""
    lab = Lab()
    lab.sim.agent("6001", ring=1, talk=300)
    call, leg = lab.connected_call()
    lab.attended_transfer(leg, target="7002")
    lab.sim.advance(2)
    assert [m.name for m in lab.events("Unhold")] == ["Unhold"] and not lab.events("DialBegin", 3.0)
    assert leg.bridge is call.line.bridge and lab.sim.errors == []


def test_without_a_feature_code_atxfer_is_refused():
    lab = Lab(featuremap={})
    lab.sim.agent("6001", ring=1, talk=300)
    call, leg = lab.connected_call()
    (reply,) = lab.attended_transfer(leg)
    assert reply.get("Message") == "No attended transfer feature code found"


# --- the simulator's configuration is the shipped one ------------------------------------------

def test_the_simulated_cc_consult_is_the_shipped_one():
    """asterisk_conf/extensions.conf [cc-consult], the phones being Local/<exten>@sim-agents."""
    shipped = {exten: [(app, data.replace("@agents/", "@sim-agents/"), label) for app, data, label in steps]
               for exten, steps in _shipped_contexts()["cc-consult"].items()}
    simulated = {exten: [(s.app, s.data, s.label) for s in steps] for exten, steps in CONTRACT_CONSULT["cc-consult"]}
    assert simulated == shipped


def test_the_shipped_featuremap_is_features_conf():
    text = (ROOT / "asterisk_conf" / "features.conf").read_text()
    block = text[text.index("[featuremap]"):text.index("[applicationmap]")]
    found = dict(re.findall(r"^(\w+)\s*=>\s*(\S+)", block, re.MULTILINE))
    assert found == SHIPPED_FEATUREMAP
    general = text[text.index("[general]"):text.index("[featuremap]")]
    from callcenter.sim.atxfer import ATXFER_ABORT, NO_ANSWER_TIMEOUT
    assert float(re.search(r"^atxfernoanswertimeout\s*=\s*(\d+)", general, re.MULTILINE).group(1)) == NO_ANSWER_TIMEOUT
    assert re.search(r"^atxferabort\s*=\s*(\S+)", general, re.MULTILINE).group(1) == ATXFER_ABORT
