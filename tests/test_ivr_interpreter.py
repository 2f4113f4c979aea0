"""The IVR over FastAGI: the shipped flows driven by a fake Asterisk.

The fake answers every command the way Asterisk 22 does in
tests/fixtures/asterisk-22/agi_session.txt and res_agi.c (``200 result=0
endpos=...`` for STREAM FILE, ``200 result= (timeout)`` for a silent GET DATA,
``200 result=-1`` then ``HANGUP`` when the caller hangs up, 511 in dead-AGI
mode, ``200 result=-1`` for GET DATA and ``200 result=-1 endpos=0`` for
STREAM FILE of a missing prompt on a live channel, ``200 result=6`` for
CHANNEL STATUS, the key's code for WAIT FOR DIGIT), over a StringTransport
with a task.Clock, and once over real loopback TCP.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, error, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.asterisk.fastagi_session import FastAGIProtocol
from callcenter.ivr.agi import AgiChannel
from callcenter.ivr.handler import IvrHandler
from ivr_flows.flowset import load_flowset
from ivr_flows.memory import FixedQueueStats, InMemoryCustomers, MemoryContactRecords

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"
MONDAY_10_SHANGHAI = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc).timestamp()
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
CUSTOMERS = [
    {"id": "C1001", "ani": "5551001", "account": "10000008", "name": "Jane Doe", "tier": "standard",
     "balance": "120.50", "arrears": "15.00", "language": "en", "secret": "1234"},
    {"id": "C2001", "ani": "5552001", "name": "Li Wei", "tier": "vip", "language": "zh"},
]
HANGUP = object()


def env_block(ani: str = "5551001", dnis: str = "4000", uniqueid: str = "1795535416.1") -> bytes:
    lines = [
        "agi_network: yes", f"agi_network_script: ivr?dnis={dnis}",
        f"agi_request: agi://127.0.0.1:4573/ivr?dnis={dnis}", "agi_channel: Local/4000@from-pstn-00000000;2",
        "agi_language: en", "agi_type: Local", f"agi_uniqueid: {uniqueid}", "agi_version: 22.10.1",
        f"agi_callerid: {ani}", "agi_calleridname: Jane Doe", "agi_dnid: unknown", "agi_rdnis: unknown",
        "agi_context: from-pstn", "agi_extension: 4000", "agi_priority: 3", "agi_accountcode: ",
    ]
    return ("\n".join(lines) + "\n\n").encode("utf-8", "surrogateescape")


class AsteriskSide:
    """Asterisk's answers to the server's commands, with a scripted caller.

    ``caller`` lists what the caller does at each input: digits (``""`` =
    silence) or HANGUP, used by GET DATA, or key by key by WAIT FOR DIGIT when
    the prompt is ``missing`` (an input shorter than the most keys read ends
    with ``#``).  ``hangup_during`` = "STREAM FILE custom/x" hangs up during
    that prompt; ``barge_in`` = {prompt: key} presses a key during a STREAM
    FILE with escape digits.  After a hang-up Asterisk is in dead-AGI mode;
    ``sighup=False`` (AGISIGHUP=no) sends no HANGUP line.
    """

    def __init__(self, caller=(), *, missing=(), hangup_during: str = "", exec_result: str = "0",
                 barge_in=None, sighup: bool = True) -> None:
        self.caller = list(caller)
        self.missing = set(missing)
        self.hangup_during = hangup_during
        self.exec_result = exec_result
        self.barge_in = dict(barge_in or {})
        self.sighup = sighup
        self.dead = False
        self.keys: list[str] = []
        self.commands: list[str] = []
        self.variables: dict[str, str] = {}

    def reply(self, line: str) -> bytes:
        self.commands.append(line)
        words = line.split(" ")
        verb = " ".join(words[:2])
        if verb in ("SET VARIABLE",):
            self.variables[words[2]] = line.split(" ", 3)[3].strip('"')
            return b"200 result=1\n"
        if verb == "GET VARIABLE":
            return b"200 result=1 (1795535416.0)\n" if words[2] == "CHANNEL(linkedid)" else b"200 result=0\n"
        if self.dead:
            return (b"200 result=0\n" if words[0] == "EXEC" else (DEAD + "\n").encode())
        if verb == "STREAM FILE":
            name = words[2].strip('"')
            if name in self.missing:
                return b"200 result=-1 endpos=0\n"
            if self.hangup_during == f"STREAM FILE {name}":
                return self.hang_up(b"200 result=-1 endpos=1200\n")
            if name in self.barge_in and words[3] != '""':
                return f"200 result={ord(self.barge_in.pop(name))} endpos=2400\n".encode()
            return b"200 result=0 endpos=8000\n"
        if verb == "GET DATA":
            if words[2].strip('"') in self.missing:
                return b"200 result=-1\n"
            action = self.caller.pop(0) if self.caller else HANGUP
            if action is HANGUP:
                return self.hang_up(b"200 result=-1\n")
            return f"200 result={action} (timeout)\n".encode() if action == "" else f"200 result={action}\n".encode()
        if verb == "CHANNEL STATUS":
            return b"200 result=6\n"
        if line.startswith("WAIT FOR DIGIT "):
            if not self.keys:
                action = self.caller.pop(0) if self.caller else HANGUP
                if action is HANGUP:
                    return self.hang_up(b"200 result=-1\n")
                if action == "":
                    return b"200 result=0\n"
                self.keys = list(action)
            return f"200 result={ord(self.keys.pop(0))}\n".encode()
        if words[0] == "SAY":
            return b"200 result=0\n"
        if words[0] == "EXEC":
            return f"200 result={self.exec_result}\n".encode()
        if words[0] == "HANGUP":
            return self.hang_up(b"200 result=1\n")
        return b"510 Invalid or unknown command\n"

    def hang_up(self, reply: bytes) -> bytes:
        self.dead = True
        return reply + b"HANGUP\n" if self.sighup else reply

    def said(self) -> list[str]:
        return [c for c in self.commands
                if c.startswith(("STREAM FILE", "SAY", "GET DATA", "EXEC", "WAIT FOR DIGIT", "CHANNEL STATUS"))]


class HalfCloseTransport(StringTransport):
    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Call:
    """One FastAGI session of the ``ivr`` script on a StringTransport and a Clock."""

    def __init__(self, asterisk: AsteriskSide, *, flows=None, customers=None, queue_stats=None, records=None,
                 chunk: int = 0, at: float = MONDAY_10_SHANGHAI) -> None:
        self.asterisk = asterisk
        self.clock = task.Clock()
        self.clock.advance(at)
        flow_set = flows or load_flowset(SHIPPED)[0]
        self.customers = customers if customers is not None else InMemoryCustomers(CUSTOMERS)
        self.records = records or MemoryContactRecords()
        self.handler = IvrHandler(lambda: flow_set, self.customers, self.records,
                                  queue_stats or FixedQueueStats({"support": 2}), self.clock)
        self.factory = FastAGIServerFactory({"ivr": self.handler.handle}, self.clock)
        self.factory.doStart()
        self.proto = self.factory.buildProtocol(None)
        self.transport = HalfCloseTransport()
        self.proto.makeConnection(self.transport)
        self.chunk = chunk
        self.ended = False

    def feed(self, data: bytes) -> None:
        size = self.chunk or len(data)
        for i in range(0, len(data), size):
            self.proto.dataReceived(data[i:i + size])

    def start(self, **env) -> "Call":
        self.feed(env_block(**env))
        self.pump()
        return self

    def pump(self) -> None:
        """Answer every command written so far; at the server's half-close, end like Asterisk."""
        while True:
            data = self.transport.value()
            self.transport.clear()
            for line in data.decode("utf-8", "surrogateescape").splitlines():
                self.feed(self.asterisk.reply(line))
            if not data:
                break
        if self.transport.write_closed and not self.ended:
            self.ended = True
            self.feed(b"HANGUP\n")
            self.proto.connectionLost(Failure(error.ConnectionDone()))

    @property
    def record(self):
        [record] = self.records.records
        return record

    @property
    def variables(self) -> dict[str, str]:
        return self.asterisk.variables


def test_vip_caller_goes_straight_to_the_vip_queue_with_top_priority():
    """The exact AGI conversation of a known VIP on 4001, ending with the dialplan contract."""
    call = Call(AsteriskSide()).start(ani="5552001", dnis="4001")
    assert call.asterisk.commands == [
        "GET VARIABLE CHANNEL(linkedid)",
        'SET VARIABLE CHANNEL(language) "zh"',
        'STREAM FILE "custom/cc-vip-welcome" ""',
        'SET VARIABLE CC_QUEUE "vip"',
        'SET VARIABLE CC_SKILLS "vip"',
        'SET VARIABLE CC_PRIORITY "100"',
        'SET VARIABLE CC_LANGUAGE "zh"',
        'SET VARIABLE CC_CALL_ID "1795535416.0"',
        'SET VARIABLE CC_RESULT "queue"',
    ]
    assert call.transport.write_closed and call.factory.active_sessions == 0
    assert call.clock.getDelayedCalls() == []
    record = call.record
    assert (record.call_id, record.ani, record.dnis, record.outcome) == ("1795535416.0", "5552001", "4001", "queue")
    assert record.handoff.queue == "vip" and record.handoff.priority == 100
    assert [e.node for e in record.path if e.event == "enter"] == [
        "vip_check", "own_language", "set_language", "greeting", "vip_queue"]


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_billing_self_service_speaks_balance_and_arrears(chunk):
    """Known caller, English, billing, the PIN (GET DATA of 4 keys, checked by the CRM port): amounts said with
    SAY NUMBER and the unit prompts, then goodbye.  The record keeps only the PIN's length."""
    call = Call(AsteriskSide(["1", "1", "1234", ""]), chunk=chunk).start()
    assert call.asterisk.said() == [
        'STREAM FILE "custom/cc-welcome" ""',
        'GET DATA "custom/cc-language-menu" 4000 1',
        'GET DATA "custom/cc-main-menu" 5000 1',
        'GET DATA "custom/cc-enter-pin" 5000 4',
        'STREAM FILE "custom/cc-your-balance" ""',
        'SAY NUMBER "120" ""', 'STREAM FILE "custom/cc-currency-unit" ""',
        'SAY NUMBER "50" ""', 'STREAM FILE "custom/cc-currency-cents" ""',
        'STREAM FILE "custom/cc-your-arrears" ""',
        'SAY NUMBER "15" ""', 'STREAM FILE "custom/cc-currency-unit" ""',
        'GET DATA "custom/cc-billing-done-menu" 5000 1',
        'STREAM FILE "vm-goodbye" ""',
    ]
    assert call.asterisk.commands[-2:] == ['SET VARIABLE CC_RESULT "done"', "HANGUP"]
    assert call.record.outcome == "done"
    digits = [(e.node, e.event, e.value) for e in call.record.path if e.event in ("digits", "timeout", "verify")]
    assert digits == [("choose_language", "digits", "1"), ("main_menu", "digits", "1"),
                      ("verify_caller", "digits", "****"), ("verify_caller", "verify", "verified"),
                      ("billing_done", "timeout", "")]
    assert "1234" not in repr(call.record.path)


def test_unknown_caller_enters_an_account_and_reaches_billing():
    """collect over GET DATA with max digits; the entered account is looked up in the CRM, then its PIN asked."""
    call = Call(AsteriskSide(["1", "1", "10000008", "1234", "0"])).start(ani="5559999")
    assert 'GET DATA "custom/cc-enter-account" 5000 8' in call.asterisk.commands
    assert 'STREAM FILE "custom/cc-your-balance" ""' in call.asterisk.commands
    assert call.variables["CC_QUEUE"] == "billing" and call.variables["CC_RESULT"] == "queue"


def test_a_caller_hanging_up_mid_flow_is_recorded_where_they_left():
    """GET DATA gives -1 then HANGUP: no fallback, the record says abandoned at the main menu."""
    call = Call(AsteriskSide(["1", HANGUP])).start()
    assert "CC_RESULT" not in call.variables
    assert call.record.outcome == "abandoned" and call.record.left_at == "hotline:main_menu"
    assert call.factory.active_sessions == 0 and call.clock.getDelayedCalls() == []


def test_a_caller_hanging_up_during_a_prompt_ends_cleanly():
    """STREAM FILE result=-1 with an endpos is a hang-up, not a missing file."""
    call = Call(AsteriskSide(hangup_during="STREAM FILE custom/cc-welcome")).start()
    assert call.record.outcome == "abandoned" and call.record.left_at == "hotline:choose_language"
    assert "CC_RESULT" not in call.variables


def missing_prompt_warnings(caplog, prompt: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "callcenter.ivr.agi" and r.levelno == logging.WARNING
            and repr(prompt) in r.getMessage()]


def test_a_missing_prompt_in_a_play_node_is_skipped_and_the_flow_goes_on(caplog):
    """STREAM FILE -1 endpos=0, CHANNEL STATUS 6: the prompt is missing, not a hang-up;
    logged once at WARNING with the call id and the prompt, and the caller reaches the queue."""
    asterisk = AsteriskSide(["1", "0"], missing={"custom/cc-welcome"})
    with caplog.at_level(logging.INFO):
        call = Call(asterisk).start()
    assert asterisk.said()[:3] == ['STREAM FILE "custom/cc-welcome" ""', "CHANNEL STATUS",
                                   'GET DATA "custom/cc-language-menu" 4000 1']
    assert call.variables["CC_RESULT"] == "queue" and call.variables["CC_QUEUE"] == "support"
    assert call.record.outcome == "queue"
    [warning] = missing_prompt_warnings(caplog, "custom/cc-welcome")
    assert "1795535416.0" in warning.getMessage()


def test_a_menu_whose_prompt_is_missing_still_routes_by_the_keys_pressed():
    """GET DATA -1 on a live channel: the main menu reads its key with WAIT FOR DIGIT
    (the menu's 5 s timeout) and the caller pressing 1 then 0 reaches support."""
    asterisk = AsteriskSide(["1", "0"], missing={"custom/cc-main-menu"})
    call = Call(asterisk).start()
    assert asterisk.said() == [
        'STREAM FILE "custom/cc-welcome" ""',
        'GET DATA "custom/cc-language-menu" 4000 1',
        'GET DATA "custom/cc-main-menu" 5000 1', "CHANNEL STATUS",
        "WAIT FOR DIGIT 5000",
    ]
    assert call.variables["CC_RESULT"] == "queue" and call.variables["CC_QUEUE"] == "support"
    assert [(e.node, e.value) for e in call.record.path if e.event == "digits"] == [
        ("choose_language", "1"), ("main_menu", "0")]
    assert call.clock.getDelayedCalls() == []


def test_a_collect_whose_prompt_is_missing_reads_every_key_with_wait_for_digit():
    """An 8-digit account keyed on WAIT FOR DIGIT one key at a time, then routed to billing."""
    asterisk = AsteriskSide(["1", "1", "10000008", "1234", "0"], missing={"custom/cc-enter-account"})
    call = Call(asterisk).start(ani="5559999")
    assert asterisk.commands.count("WAIT FOR DIGIT 5000") == 8
    assert call.variables["CC_QUEUE"] == "billing" and call.variables["CC_RESULT"] == "queue"
    assert ("ask_account", "digits", "10000008") in [(e.node, e.event, e.value) for e in call.record.path]


def test_wait_for_keys_reads_like_get_data():
    """Keys until '#' (not kept) or a timeout; the flow's timeout for every key, or
    GET DATA's 6 s / 2 s when there is none."""
    clock = task.Clock()
    sessions = []
    proto = FastAGIProtocol(clock, sessions.append)
    transport = HalfCloseTransport()
    proto.makeConnection(transport)
    proto.dataReceived(env_block())
    channel = AgiChannel(sessions[0])
    got = []
    defer.ensureDeferred(channel.wait_for_keys(3000, 8)).addCallback(got.append)
    proto.dataReceived(b"200 result=49\n200 result=50\n200 result=35\n")
    defer.ensureDeferred(channel.wait_for_keys(0, 4)).addCallback(got.append)
    proto.dataReceived(b"200 result=51\n200 result=0\n")
    defer.ensureDeferred(channel.wait_for_keys(3000, 2)).addCallback(got.append)
    proto.dataReceived(b"200 result=42\n200 result=52\n")
    assert got == ["12", "3", "*4"]
    assert transport.value().decode().splitlines() == ["WAIT FOR DIGIT 3000"] * 3 + [
        "WAIT FOR DIGIT 6000", "WAIT FOR DIGIT 2000"] + ["WAIT FOR DIGIT 3000"] * 2


def test_a_missing_prompt_is_logged_once_per_call_even_when_the_menu_repeats(caplog):
    """Silence, a wrong key, then 0: the menu runs three times, its prompt is asked for
    once (then WAIT FOR DIGIT straight away) and the warning is written once."""
    asterisk = AsteriskSide(["1", "", "7", "0"], missing={"custom/cc-main-menu"})
    with caplog.at_level(logging.INFO):
        call = Call(asterisk).start()
    assert asterisk.commands.count('GET DATA "custom/cc-main-menu" 5000 1') == 1
    assert asterisk.commands.count("CHANNEL STATUS") == 1
    assert asterisk.commands.count("WAIT FOR DIGIT 5000") == 3
    assert [(e.event, e.value) for e in call.record.path if e.node == "main_menu" and e.event != "enter"] == [
        ("timeout", ""), ("invalid", "7"), ("digits", "0")]
    assert call.variables["CC_QUEUE"] == "support"
    [warning] = missing_prompt_warnings(caplog, "custom/cc-main-menu")
    assert "1795535416.0" in warning.getMessage() and warning.levelno == logging.WARNING


@pytest.mark.parametrize("sighup", [True, False])
def test_minus_one_then_hangup_or_511_is_a_hang_up_at_once(sighup):
    """GET DATA -1 then the inline HANGUP (or, with AGISIGHUP=no, CHANNEL STATUS
    answered 511): abandoned at once, no WAIT FOR DIGIT, no fallback, no timer waited on."""
    asterisk = AsteriskSide(["1", HANGUP], sighup=sighup)
    call = Call(asterisk).start()
    assert asterisk.said()[-2:] == ['GET DATA "custom/cc-main-menu" 5000 1', "CHANNEL STATUS"]
    assert not any(c.startswith("WAIT FOR DIGIT") for c in asterisk.commands)
    assert "CC_RESULT" not in call.variables
    assert call.record.outcome == "abandoned" and call.record.left_at == "hotline:main_menu"
    assert call.factory.active_sessions == 0 and call.clock.getDelayedCalls() == []


def test_a_caller_hanging_up_while_keys_are_read_with_wait_for_digit():
    """WAIT FOR DIGIT -1 then HANGUP (missing prompt, caller leaves): abandoned, no fallback."""
    asterisk = AsteriskSide(["1", HANGUP], missing={"custom/cc-main-menu"})
    call = Call(asterisk).start()
    assert asterisk.said()[-3:] == ["CHANNEL STATUS", "WAIT FOR DIGIT 5000", "CHANNEL STATUS"]
    assert call.record.outcome == "abandoned" and "CC_RESULT" not in call.variables


def multi_prompt_menu(tmp_path: Path):
    flow = ("start: m\nnodes:\n  m:\n    type: menu\n    prompt: [custom/cc-welcome, custom/cc-main-menu]\n"
            "    choices: {\"1\": q}\n  q: {type: queue, queue: support}\n")
    return load_flowset(flow_dir_with(tmp_path, flow))[0]


def test_a_menu_of_several_prompts_plays_them_one_file_each(tmp_path):
    """GET DATA opens one file (a&b would be one missing name): the first prompts go
    out as STREAM FILE with every key as escape digit, the last one with GET DATA."""
    asterisk = AsteriskSide(["1"])
    call = Call(asterisk, flows=multi_prompt_menu(tmp_path)).start(dnis="4090")
    assert asterisk.said() == ['STREAM FILE "custom/cc-welcome" "0123456789*#"',
                               'GET DATA "custom/cc-main-menu" 5000 1']
    assert call.variables["CC_QUEUE"] == "support"


def test_a_key_pressed_during_an_earlier_prompt_is_the_input(tmp_path):
    """The caller presses 1 during the first prompt: the menu takes it, like GET DATA would."""
    asterisk = AsteriskSide(barge_in={"custom/cc-welcome": "1"})
    call = Call(asterisk, flows=multi_prompt_menu(tmp_path)).start(dnis="4090")
    assert asterisk.said() == ['STREAM FILE "custom/cc-welcome" "0123456789*#"']
    assert call.variables["CC_QUEUE"] == "support"


def test_hostile_input_never_reaches_the_dialplan():
    """Garbage keys are invalid input; a caller id with quotes is treated as withheld; CC_* stay clean."""
    asterisk = AsteriskSide(["1", '9";EXEC System', "A", "0"])
    call = Call(asterisk).start(ani='555"1001\\')
    assert call.record.ani == ""
    assert [e.value for e in call.record.path if e.event == "invalid"] == ["?", "?"]
    assert call.variables == {"CC_QUEUE": "support", "CC_SKILLS": "", "CC_PRIORITY": "0", "CC_LANGUAGE": "en",
                              "CC_CALL_ID": "1795535416.0", "CC_RESULT": "queue"}
    assert not any("System" in c for c in asterisk.commands)


def test_support_asks_live_queue_figures_and_records_a_callback():
    """waiting("support") is asked through the queue-stats port; the callback goes to the CRM."""
    call = Call(AsteriskSide(["1", "2", "1"]), queue_stats=FixedQueueStats({"support": 15})).start()
    assert call.customers.callbacks == [{"id": "CB1", "call_id": "1795535416.0", "customer_id": "C1001",
                                         "number": "5551001", "flow": "hotline", "queue": "support",
                                         "key": "1795535416.0:hotline:support_callback"}]
    assert call.variables["CC_RESULT"] == "done"


def test_a_complaint_opens_a_ticket_draft():
    """The ticket port gets the call id, the customer and the category."""
    call = Call(AsteriskSide(["1", "3"])).start()
    assert call.customers.tickets[0]["category"] == "complaint"
    assert call.customers.tickets[0]["customer_id"] == "C1001"
    assert call.customers.tickets[0]["key"] == "1795535416.0:hotline:complaint"
    assert call.variables["CC_QUEUE"] == "complaints"


class SlowCrm(InMemoryCustomers):
    """Answers lookups through Deferreds, like the thread-pool adapter will."""

    def __init__(self, clock, delay: float | None) -> None:
        super().__init__(CUSTOMERS)
        self.clock, self.delay = clock, delay

    def lookup_by_ani(self, ani):
        if self.delay is None:
            return defer.Deferred()  # never answers
        return task.deferLater(self.clock, self.delay, super().lookup_by_ani, ani)


def test_crm_answers_that_come_later_are_awaited():
    """A Deferred from the port is awaited; the flow goes on when it fires."""
    call = Call(AsteriskSide(["1", "0"]))
    call.handler._customers = SlowCrm(call.clock, 0.5)
    call.start(ani="5552001", dnis="4001")
    assert "CC_RESULT" not in call.variables
    call.clock.advance(0.5)
    call.pump()
    assert call.variables["CC_QUEUE"] == "vip"


def test_a_crm_that_never_answers_times_out_and_the_caller_goes_on():
    """After the port timeout the lookup counts as not found: a VIP gets the hotline, not silence."""
    call = Call(AsteriskSide(["1", "0"]))
    call.handler._customers = SlowCrm(call.clock, None)
    call.start(ani="5552001", dnis="4001")
    call.clock.advance(3.0)
    call.pump()
    assert call.variables["CC_QUEUE"] == "support"
    assert call.record.path[0].value == "ani not found"


class BrokenRecords:
    def ivr_finished(self, *args):
        raise RuntimeError("journal disk full")


def test_a_failing_contact_record_sink_does_not_break_the_call():
    """The sink's error is logged; the caller still reaches the queue."""
    call = Call(AsteriskSide(), records=BrokenRecords()).start(ani="5552001", dnis="4001")
    assert call.variables["CC_RESULT"] == "queue"


def flow_dir_with(tmp_path: Path, flow: str, routes_edit=("", "")) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns(".history", "*.tests.yaml"))
    (target / "extra.yaml").write_text(flow)
    routes = (target / "routes.yaml").read_text().replace(*routes_edit)
    routes = routes.replace('  "4001":', '  "4090": {flow: extra}\n  "4001":')
    (target / "routes.yaml").write_text(routes)
    return target


def test_transfer_sets_the_allow_listed_target(tmp_path):
    """A transfer node ends with CC_TRANSFER_TO and CC_RESULT=transfer."""
    flows = load_flowset(flow_dir_with(tmp_path, 'start: t\nnodes:\n  t: {type: transfer, to: "6002"}\n'))[0]
    call = Call(AsteriskSide(), flows=flows).start(dnis="4090")
    assert call.asterisk.commands[-3:] == ['SET VARIABLE CC_TRANSFER_TO "6002"',
                                           'SET VARIABLE CC_CALL_ID "1795535416.0"',
                                           'SET VARIABLE CC_RESULT "transfer"']
    assert call.record.outcome == "transfer" and call.record.detail == "6002"


@pytest.mark.parametrize("exec_result, outcome, result", [("0", "voicemail", "done"), ("-2", "fallback", "fallback")])
def test_voicemail_runs_the_application_or_falls_back(tmp_path, exec_result, outcome, result):
    """EXEC VoiceMail with the quoted mailbox; without the application the caller gets the fallback queue."""
    flows = load_flowset(flow_dir_with(tmp_path, 'start: v\nnodes:\n  v: {type: voicemail, mailbox: "1000@default"}\n'))[0]
    call = Call(AsteriskSide(exec_result=exec_result), flows=flows).start(dnis="4090")
    assert 'EXEC VoiceMail "1000@default,u"' in call.asterisk.commands
    assert call.variables["CC_RESULT"] == result and call.record.outcome == outcome


def test_a_number_without_route_goes_to_the_fallback_queue(tmp_path):
    """No route and no default: CC_RESULT=fallback, recorded as such."""
    flows = load_flowset(flow_dir_with(tmp_path, "start: h\nnodes:\n  h: {type: hangup}\n",
                                       ("default: {flow: hotline, calendar: hotline, closed: after_hours}", "")))[0]
    call = Call(AsteriskSide(), flows=flows).start(dnis="4999")
    assert call.asterisk.commands == ["GET VARIABLE CHANNEL(linkedid)", 'SET VARIABLE CC_RESULT "fallback"']
    assert call.record.outcome == "fallback" and "4999" in call.record.detail


def test_a_route_that_vouches_for_caller_id_skips_the_pin(tmp_path):
    """routes.yaml trusted_callerid: true on 4000: the handler gives the flow route.trusted_callerid, and the
    hotline says the balance of the customer found by the number without asking for the PIN."""
    flows = load_flowset(flow_dir_with(tmp_path, "start: h\nnodes:\n  h: {type: hangup}\n", (
        '"4000": {flow: hotline, calendar: hotline, closed: after_hours,',
        '"4000": {flow: hotline, calendar: hotline, closed: after_hours, trusted_callerid: true,')))[0]
    asterisk = AsteriskSide(["1", "1", ""])
    call = Call(asterisk, flows=flows).start()
    assert not any("cc-enter-pin" in c for c in asterisk.commands)
    assert 'STREAM FILE "custom/cc-your-balance" ""' in asterisk.commands and call.record.outcome == "done"
    untrusted = Call(AsteriskSide(["1", "1", ""]), flows=flows).start(dnis="4001")  # the VIP line sends to hotline
    assert 'GET DATA "custom/cc-enter-pin" 5000 4' in untrusted.asterisk.commands


class VerifyingCrm(InMemoryCustomers):
    """Answers the PIN check through a Deferred: later, never, or with an error."""

    def __init__(self, clock, behaviour: str) -> None:
        super().__init__(CUSTOMERS)
        self.clock, self.behaviour = clock, behaviour
        self.asked: list[dict] = []

    def verify_secret(self, **kwargs):
        self.asked.append(kwargs)
        if self.behaviour == "never":
            return defer.Deferred()
        if self.behaviour == "error":
            return defer.fail(RuntimeError("database is locked"))
        return task.deferLater(self.clock, 0.5, super().verify_secret, **kwargs)


def test_the_pin_goes_to_the_crm_port_with_the_call_and_customer_and_is_never_logged(caplog):
    crm_clock_call = Call(AsteriskSide(["1", "1", "1234", ""]))
    crm = VerifyingCrm(crm_clock_call.clock, "later")
    crm_clock_call.handler._customers = crm
    with caplog.at_level(logging.DEBUG):
        crm_clock_call.start()
        crm_clock_call.clock.advance(0.5)
        crm_clock_call.pump()
    assert crm.asked == [{"call_id": "1795535416.0", "customer_id": "C1001", "secret": "1234"}]
    assert crm_clock_call.record.outcome == "done"
    assert "1234" not in caplog.text


@pytest.mark.parametrize("behaviour", ["never", "error"])
def test_a_crm_that_cannot_check_the_pin_sends_the_caller_to_an_agent_without_account_data(behaviour, caplog):
    """The port times out (3 s) or fails: not verified, the caller hears so and reaches a billing agent."""
    call = Call(AsteriskSide(["1", "1", "1234"]))
    call.handler._customers = VerifyingCrm(call.clock, behaviour)
    with caplog.at_level(logging.DEBUG):
        call.start()
        call.clock.advance(3.0)
        call.pump()
    assert call.variables["CC_QUEUE"] == "billing"
    assert not any("cc-your-balance" in c for c in call.asterisk.commands)
    assert 'STREAM FILE "custom/cc-not-verified" ""' in call.asterisk.commands
    assert ("verify_caller", "verify", "CRM unavailable") in [(e.node, e.event, e.value) for e in call.record.path]
    assert "caller verification failed" in caplog.text and "1234" not in caplog.text


def test_after_hours_the_hotline_answers_with_the_closed_flow():
    """At 22:00 Shanghai time the route picks after_hours."""
    asterisk = AsteriskSide(["1"])
    call = Call(asterisk, at=MONDAY_10_SHANGHAI + 12 * 3600).start()
    assert asterisk.said()[0] == 'STREAM FILE "custom/cc-closed" ""'
    assert call.customers.callbacks[0]["flow"] == "after_hours"


def test_no_flows_loaded_sends_the_caller_to_the_fallback_path():
    """A handler that cannot get a flow set raises; the FastAGI server sets CC_RESULT=fallback."""
    call = Call(AsteriskSide())

    def no_flows():
        raise RuntimeError("no valid flows loaded")

    call.handler._flows = no_flows
    call.start()
    assert call.asterisk.commands == ['SET VARIABLE CC_RESULT "fallback"']


@implementer(IHalfCloseableProtocol)
class AsteriskOverTcp(Protocol):
    """Asterisk's end of a real TCP FastAGI connection."""

    def __init__(self, asterisk: AsteriskSide) -> None:
        self.asterisk = asterisk
        self.buffer = b""
        self.done = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(env_block(ani="5552001", dnis="4001"))

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.transport.write(self.asterisk.reply(line.decode()))

    def readConnectionLost(self) -> None:
        self.transport.write(b"HANGUP\n")
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason=None) -> None:
        self.done.callback(None)


@pytest_twisted.ensureDeferred
async def test_the_ivr_over_a_real_loopback_tcp_connection(tmp_path):
    """The same VIP call through a listening FastAGI server and a TCP client (the VIP
    line without business hours here: the reactor's clock is the real one)."""
    records = MemoryContactRecords()
    flow_set = load_flowset(flow_dir_with(tmp_path, "start: h\nnodes:\n  h: {type: hangup}\n", (
        '"4001": {flow: vip, calendar: hotline, closed: after_hours, description: VIP line}', '"4001": {flow: vip}')))[0]
    handler = IvrHandler(lambda: flow_set, InMemoryCustomers(CUSTOMERS), records, FixedQueueStats(), reactor)
    factory = FastAGIServerFactory({"ivr": handler.handle}, reactor)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    try:
        asterisk = AsteriskSide()
        client = AsteriskOverTcp(asterisk)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), client)
        await client.done
    finally:
        await factory.shutdown()
        await port.stopListening()
    assert asterisk.commands[-1] == 'SET VARIABLE CC_RESULT "queue"'
    assert asterisk.variables["CC_PRIORITY"] == "100"
    assert records.records[0].outcome == "queue"
