"""The hotline on a real Asterisk 22: SIPp callers and agent phones, the real daemon, the shipped config.

Every test here runs the shipped ``asterisk_conf/`` in a real Asterisk
(``tests/real_asterisk.py``), the daemon as ``callcenter run`` in its own
process, callers as SIPp UACs pressing real DTMF (SIP INFO), agents as SIPp
UASes.  Each checks what the caller heard or where the call went on the
Asterisk side, and the contact record the daemon stored, field by field.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.real_asterisk import Daemon, until
from tests.util import always_open_routes

pytestmark = pytest.mark.real_asterisk

ALWAYS_OPEN = always_open_routes('"4050": {flow: lab, calendar: always, closed: after_hours}')

# A flow of the test's own for what the shipped ones do not reach: SAY DIGITS and SAY NUMBER, and a
# menu and a collect whose prompts have no sound file on the Asterisk box.
LAB_FLOW = """
description: Test flow for the real-Asterisk suite.
start: missing_menu
language: en
variables:
  code: ""
nodes:
  missing_menu:
    type: menu
    prompt: custom/cc-test-missing-menu
    choices:
      1: missing_collect
      2: to_unregistered
      9: to_agent
    timeout: 5
    max_tries: 2
    fallback: to_agent
  missing_collect:
    type: collect
    prompt: custom/cc-test-missing-collect
    into: code
    min_length: 3
    max_length: 3
    timeout: 5
    max_tries: 2
    next: read_back
    fallback: to_agent
  read_back:
    type: play
    say:
      - digits: code
      - number: "42"
    next: to_agent
  to_unregistered:
    type: transfer
    to: "6003"
  to_agent:
    type: queue
    queue: support
"""


# Listed in the manifest (so the flow validates) but never installed on the Asterisk box.
MISSING_PROMPTS = ["custom/cc-test-missing-menu", "custom/cc-test-missing-collect"]


@pytest.fixture(scope="module")
def daemon(pbx, tmp_path_factory):
    """``callcenter run`` against the session's Asterisk, with the shipped flows open around the clock."""
    import ivr_flows

    workdir = tmp_path_factory.mktemp("daemon")
    flows = workdir / "flows"
    shutil.copytree(Path(ivr_flows.__file__).parent / "flows", flows, ignore=shutil.ignore_patterns(".history"))
    (flows / "routes.yaml").write_text(ALWAYS_OPEN, encoding="utf-8")
    (flows / "lab.yaml").write_text(LAB_FLOW, encoding="utf-8")
    manifest = yaml.safe_load((flows / "prompts.yaml").read_text(encoding="utf-8"))
    manifest["core"] += MISSING_PROMPTS
    (flows / "prompts.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    proc = Daemon(workdir, pbx.asterisk, flows)
    proc.start()
    yield proc
    assert proc.stop() in (0, None, -9), proc.log_tail()


@pytest.fixture
def running(daemon):
    """The daemon, started again if an earlier test stopped or killed it."""
    if not daemon.running():
        daemon.start()
    return daemon


def record_of(daemon, linkedid, what="the contact record", timeout=15.0, ready=lambda r: r.ended_at is not None):
    """The call's stored contact record, once it is complete (polled: the daemon writes through its journal)."""
    return until(lambda: (lambda r: r if r is not None and ready(r) else None)(daemon.contact(linkedid)),
                 timeout, what)


def seed_customer(daemon, name, phones=(), account_no=None, balance="0", arrears="0", secret="1234"):
    """A customer in the daemon's CRM (with a self-service PIN), written with the CRM's own code."""
    from sqlalchemy import create_engine

    from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer

    engine = create_engine(daemon.crm_url)
    try:
        customer = thd_create_customer(engine, NewCustomer(name, language="en", phones=tuple(phones), secret=secret),
                                       "CN")
        if account_no:
            thd_add_account(engine, customer, NewAccount(account_no, balance=Decimal(balance),
                                                         arrears=Decimal(arrears)))
        return customer
    finally:
        engine.dispose()


def digits_of(record):
    """The keys pressed, node by node (the end marker's detail is not a key)."""
    return [step.digits for step in record.ivr_path or () if step.digits and not step.node.startswith("end:")]


def nodes_of(record):
    """The flow nodes the caller went through (``flow:node``), without the lookups and the end marker."""
    nodes = [step.node for step in record.ivr_path or () if ":" in step.node and not step.node.startswith("end:")]
    return [node for i, node in enumerate(nodes) if i == 0 or nodes[i - 1] != node]  # a menu is entered, then keyed


def in_order(seen, expected):
    """``expected`` appears in ``seen`` in this order (other entries may come between)."""
    it = iter(seen)
    return all(any(item == want for item in it) for want in expected)


def assert_answered(lab, record, caller, queue="support", agent="6001"):
    """The fields every answered call has, checked one by one (the hang-up cause against Asterisk's own)."""
    assert record.linkedid == caller.linkedid
    assert record.direction == "inbound"
    assert record.ani == caller.ani and record.dnis == caller.dnis
    assert record.queue == queue
    assert record.started_at <= record.enqueued_at <= record.answered_at <= record.ended_at
    assert record.wait_seconds is not None and record.wait_seconds >= 0
    assert record.talk_seconds is not None and record.talk_seconds > 0
    assert record.agent == agent              # the agent's login, the same on every path
    assert record.abandoned is False
    hangup = lab.hangup_of(caller)
    assert record.hangup_cause == f"{hangup['Cause']} {hangup['Cause-txt']}"


def to_main_menu(lab, caller, language="1"):
    """Through the welcome and the language menu (1 English, 2 中文) to the main menu."""
    lab.wait_collecting(caller)
    lab.press(caller, language)
    return lab.wait_collecting(caller)


def connected(lab, caller, timeout=30):
    return lab.observer.wait_event(lambda e: e.get("Event") == "AgentConnect" and e.get("Linkedid") == caller.linkedid,
                                   timeout, f"an agent to answer {caller.ani}")


def only_6001_answers(lab):
    """6001's phone answers; 6002 is paused in support, so the call is 6001's."""
    lab.phone("6001", "answer")
    lab.pause("6002")


def talk_and_hang_up(lab, daemon, caller):
    """An agent answers, the caller hangs up; returns the stored contact record."""
    connected(lab, caller)
    caller.hangup()
    caller.wait_gone()
    return record_of(daemon, caller.linkedid)


# -- the IVR, node by node, with real keys ------------------------------------------------------------------

def test_a_caller_hears_the_menu_presses_1_then_0_and_reaches_a_sip_agent(lab, running):
    """4000: welcome and language menu play from the rendered prompts; 1 (English), 0 (agent); 6001 answers."""
    only_6001_answers(lab)
    caller = lab.call("+8613800138000", "4000", "Li Lei")
    assert lab.wait_collecting(caller) == 'GET DATA "custom/cc-language-menu" 4000 1'
    lab.press(caller, "1")
    assert lab.wait_collecting(caller) == 'GET DATA "custom/cc-main-menu" 5000 1'
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, running, caller)
    log = lab.asterisk.log()
    for prompt in ("custom/cc-welcome", "custom/cc-language-menu", "custom/cc-main-menu"):
        assert f"Playing '{prompt}." in log, prompt  # Asterisk found the installed file
    assert_answered(lab, record, caller)
    assert record.caller_name == "Li Lei" and record.ani_e164 == "+8613800138000"
    assert record.customer_id is None
    assert digits_of(record) == ["1", "0"]
    assert record.ivr_path[0].node == "hotline/lookup ani not found"
    assert nodes_of(record)[:5] == ["hotline:welcome", "hotline:choose_language", "hotline:english",
                                    "hotline:main_menu", "hotline:agent"], record.ivr_path
    assert "hotline:main_menu" in nodes_of(record)
    assert record.self_service == "queue"
    assert record.hangup_cause is not None


def said_on(lab, caller):
    return [e.get("Command") for e in lab.agi_commands(caller.channel) if e.get("Command", "").startswith("SAY")]


def test_a_known_caller_keys_the_pin_then_hears_balance_and_arrears_read_from_the_crm(lab, running):
    """Billing for a caller the CRM knows by number, on an untrusted route: nothing is said before the PIN
    (a wrong one first, then the right one); then SAY NUMBER of the amounts, and 0 for an agent."""
    customer = seed_customer(running, "Wang Fang", phones=("+8613911112222",), account_no="88000001",
                             balance="1234.56", arrears="78.90")
    only_6001_answers(lab)
    caller = lab.call("+8613911112222", "4000", "Wang Fang")
    to_main_menu(lab, caller)
    lab.press(caller, "1")
    assert lab.wait_collecting(caller) == 'GET DATA "custom/cc-enter-pin" 5000 4'
    lab.press(caller, "9999")
    assert lab.wait_collecting(caller) == 'GET DATA "custom/cc-enter-pin" 5000 4'
    assert said_on(lab, caller) == []                     # a wrong PIN hears no account data
    lab.press(caller, "1234")
    lab.wait_collecting(caller)  # the billing-done menu, after the amounts
    assert said_on(lab, caller) == ['SAY NUMBER "1234" ""', 'SAY NUMBER "56" ""', 'SAY NUMBER "78" ""',
                                    'SAY NUMBER "90" ""']
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, running, caller)
    assert_answered(lab, record, caller)
    assert record.customer_id == customer
    assert digits_of(record) == ["1", "1", "****", "****", "0"]    # PINs never reach the contact log
    assert in_order(nodes_of(record), ["hotline:verify_caller", "hotline:say_balance", "hotline:say_arrears",
                                       "hotline:billing_done"]), record.ivr_path


def test_an_unknown_caller_keys_an_account_number_which_is_looked_up(lab, running):
    """Unknown number: collect (8 digits, Luhn) and lookup by account, then the balance is said."""
    customer = seed_customer(running, "Zhao Min", account_no="20240008", balance="50.00")
    lab.pause("6001")
    lab.pause("6002")
    caller = lab.call("+8613700001111", "4000")
    to_main_menu(lab, caller)
    lab.press(caller, "1")
    command = lab.wait_collecting(caller)
    assert "custom/cc-enter-account" in command or command.startswith("WAIT FOR DIGIT")
    lab.press(caller, "20240008")
    assert "custom/cc-enter-pin" in lab.wait_collecting(caller)
    lab.press(caller, "1234")
    lab.wait_collecting(caller)  # billing-done menu
    assert said_on(lab, caller) == ['SAY NUMBER "50" ""']
    caller.hangup()
    caller.wait_gone()
    record = record_of(running, caller.linkedid)
    assert record.customer_id == customer
    assert digits_of(record) == ["1", "1", "20240008", "****"]
    billing = [n for n in nodes_of(record) if n in ("hotline:ask_account", "hotline:account_lookup",
                                                    "hotline:say_balance")]
    assert list(dict.fromkeys(billing)) == ["hotline:ask_account", "hotline:account_lookup", "hotline:say_balance"]
    assert record.self_service == "abandoned" and record.answered_at is None and record.queue is None


def test_missing_prompts_in_a_menu_and_a_collect_still_take_the_callers_keys(lab, running):
    """GET DATA of a missing file answers 200 result=-1 on a live channel: the IVR listens with WAIT FOR DIGIT,
    logs each missing prompt once, and reads the code back with SAY DIGITS and SAY NUMBER."""
    only_6001_answers(lab)
    caller = lab.call("+8613600002222", "4050")
    assert lab.wait_collecting(caller).startswith("WAIT FOR DIGIT")
    getdata = [e for e in lab.agi_commands(caller.channel) if e["Command"].startswith("GET DATA")]
    assert getdata and "custom/cc-test-missing-menu" in getdata[0]["Command"]
    missing = until(lambda: [line for line in running.find("custom/cc-test-missing-menu")
                             if line.get("call_id") == caller.linkedid], 5, "the daemon to log the missing prompt")
    assert "200 result=-1" in missing[0]["msg"] and "WAIT FOR DIGIT" in missing[0]["msg"]
    # let the menu time out once: it asks again, but the missing prompt is not logged again
    lab.wait_collecting(caller, timeout=15, since=lab.commands_seen(caller))
    lab.press(caller, "1")
    assert lab.wait_collecting(caller).startswith("WAIT FOR DIGIT")
    lab.press(caller, "456")
    connected(lab, caller)
    said = [e["Command"] for e in lab.agi_commands(caller.channel) if e["Command"].startswith("SAY")]
    assert said == ['SAY DIGITS "456" ""', 'SAY NUMBER "42" ""']
    caller.hangup()
    caller.wait_gone()
    for prompt in ("custom/cc-test-missing-menu", "custom/cc-test-missing-collect"):
        lines = [line for line in running.find(prompt) if line.get("call_id") == caller.linkedid
                 and line.get("level") == "warning"]
        assert len(lines) == 1, lines
    record = record_of(running, caller.linkedid)
    assert_answered(lab, record, caller)
    assert digits_of(record) == ["1", "456"]
    assert in_order(nodes_of(record), ["lab:missing_menu", "lab:missing_menu/timeout", "lab:missing_collect",
                                       "lab:read_back", "lab:to_agent"]), record.ivr_path


def test_a_chinese_caller_name_from_the_sip_from_header_and_the_mandarin_prompts(lab, running):
    """From: "张伟": the name reaches the contact record intact; 2 picks Mandarin, whose prompts Asterisk plays."""
    only_6001_answers(lab)
    caller = lab.call("+8613812345678", "4000", "张伟")
    assert caller.channel_event["CallerIDName"] == "张伟"
    to_main_menu(lab, caller, language="2")
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, running, caller)
    assert "Playing 'custom/cc-main-menu.slin' (language 'zh')" in lab.asterisk.log()
    assert_answered(lab, record, caller)
    assert record.caller_name == "张伟"
    assert digits_of(record) == ["2", "0"]


def test_a_sip_caller_name_that_is_not_utf8_is_stored_as_asterisk_passes_it_on(lab, running):
    """From: "Zo\xeb M\xfcller" (ISO-8859-1 bytes): chan_pjsip replaces the invalid bytes with U+FFFD before
    anything else sees them; the record is written with that text, not refused."""
    only_6001_answers(lab)
    caller = lab.call("+8613812340000", "4000", os.fsdecode(b"Zo\xeb M\xfcller"))
    assert caller.channel_event["CallerIDName"] == "Zo\ufffd M\ufffdller"
    to_main_menu(lab, caller)
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, running, caller)
    assert_answered(lab, record, caller)
    assert record.caller_name == "Zo\ufffd M\ufffdller"


def test_a_caller_name_that_is_not_utf8_on_ami_is_stored_as_latin1_text(lab, running):
    """A Local channel originated with Latin-1 bytes in its caller ID name (AMI passes them through as they
    are): the daemon reads the name as Latin-1, says so, and stores the record."""
    mark = lab.observer.mark()
    reply = lab.observer.action("Originate", Channel="Local/4000@from-pstn", Application="Wait", Data="30",
                                CallerID=os.fsdecode(b'"Zo\xeb L\xe4tin1" <+8613812349999>'), Async="true")
    assert reply[0].get("Response") == "Success", reply[0]
    caller = lab.observer.wait_event(lambda e: e.get("Event") == "Newchannel" and e.get("Exten") == "4000"
                                     and e.get("Channel", "").endswith(";2"), 10, "the originated caller", since=mark)
    ivr = lab.observer.wait_event(lambda e: e.get("Event") == "AGIExecStart"
                                  and e.get("Channel") == caller["Channel"], 15, "the IVR", since=mark)
    assert ivr["CallerIDName"].encode("utf-8", "surrogateescape") == b"Zo\xeb L\xe4tin1"   # as sent
    assert lab.observer.action("Hangup", Channel=caller["Channel"])[0].get("Response") == "Success"
    record = record_of(running, caller["Linkedid"])
    assert record.caller_name == "Zoë Lätin1" and record.ani == "+8613812349999"
    assert record.self_service == "abandoned"
    assert any("not valid UTF-8" in line["msg"] for line in running.find("Latin-1")
               if line.get("call_id") == caller["Linkedid"])


# -- hang-ups ---------------------------------------------------------------------------------------------

def hang_up_and_time_it(lab, daemon, caller):
    """The caller hangs up; returns the daemon's "caller hung up" log line and how long after the BYE it came."""
    mark = len(daemon.lines())
    sent = time.time()
    caller.hangup()
    caller.wait_gone(10)
    line = until(lambda: next((l for l in daemon.lines()[mark:] if "caller hung up" in str(l.get("msg"))), None),
                 5, "the daemon to see the hang-up")
    seen = datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()
    return line, seen - sent


def test_a_caller_hanging_up_during_get_data_is_seen_at_once(lab, running):
    """BYE while GET DATA plays the main menu: Asterisk answers -1 and sends HANGUP; the daemon ends the
    session within a second, and the record says where the caller left."""
    caller = lab.call("+8613500003333", "4000")
    assert to_main_menu(lab, caller).startswith('GET DATA "custom/cc-main-menu"')
    line, delay = hang_up_and_time_it(lab, running, caller)
    assert line.get("call_id") == caller.linkedid and "hotline:main_menu" in line["msg"]
    assert delay < 1.0, delay
    record = record_of(running, caller.linkedid)
    assert record.self_service == "abandoned"
    assert record.ivr_path[-1].node == "end:hotline:main_menu"
    assert digits_of(record) == ["1"]
    assert record.queue is None and record.answered_at is None and record.agent is None
    assert record.abandoned is False          # left in the IVR: self-service abandoned, not a queue abandon
    assert record.hangup_cause == f"{lab.hangup_of(caller)['Cause']} {lab.hangup_of(caller)['Cause-txt']}"


def test_a_caller_hanging_up_while_a_missing_prompt_menu_waits_for_a_key_is_seen_at_once(lab, running):
    """The same during WAIT FOR DIGIT (the menu's prompt is missing): a hang-up, not another missing prompt."""
    caller = lab.call("+8613500003334", "4050")
    assert lab.wait_collecting(caller).startswith("WAIT FOR DIGIT")
    line, delay = hang_up_and_time_it(lab, running, caller)
    assert line.get("call_id") == caller.linkedid and "lab:missing_menu" in line["msg"]
    assert delay < 1.0, delay
    record = record_of(running, caller.linkedid)
    assert record.self_service == "abandoned"
    assert record.ivr_path[-1].node == "end:lab:missing_menu"
    assert digits_of(record) == []


def test_a_caller_hanging_up_in_the_queue_is_an_abandoned_call(lab, running):
    """Every agent paused: the caller waits in support and gives up; abandoned, with the wait."""
    lab.pause("6001")
    lab.pause("6002")
    caller = lab.call("+8613400004444", "4000")
    to_main_menu(lab, caller)
    lab.press(caller, "0")
    lab.observer.wait_event(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Channel") == caller.channel,
                            15, "the caller to join the queue")
    time.sleep(1.5)  # a measurable wait in the queue
    caller.hangup()
    caller.wait_gone()
    assert lab.observer.find(lambda e: e.get("Event") == "QueueCallerAbandon" and e.get("Channel") == caller.channel)
    record = record_of(running, caller.linkedid)
    assert record.queue == "support" and record.abandoned is True
    assert record.answered_at is None and record.agent is None
    assert record.wait_seconds >= 1.0
    assert digits_of(record) == ["1", "0"]


def test_a_caller_hanging_up_while_the_agent_rings(lab, running):
    """6001 rings and is not picked up; the caller gives up: abandoned, offered, never answered."""
    phone = lab.phone("6001", "noanswer")
    lab.pause("6002")
    caller = lab.call("+8613300005555", "4000")
    to_main_menu(lab, caller)
    lab.press(caller, "0")
    lab.observer.wait_event(lambda e: e.get("Event") == "AgentCalled" and e.get("Linkedid") == caller.linkedid,
                            15, "6001 to ring")
    caller.hangup()
    caller.wait_gone()
    record = record_of(running, caller.linkedid)
    assert record.queue == "support" and record.abandoned is True
    assert record.offered_at is not None and record.answered_at is None
    assert record.agent is None
    assert phone.proc.poll() is None  # the phone got its CANCEL and is ready for the next call


def test_a_busy_agent_is_passed_over_for_one_who_answers(lab, running):
    """6001 answers 486 Busy Here, 6002 answers: the call is 6002's."""
    lab.phone("6001", "busy")
    lab.phone("6002", "answer")
    caller = lab.call("+8613200006666", "4000")
    to_main_menu(lab, caller)
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, running, caller)
    assert_answered(lab, record, caller, agent="6002")


def test_an_ivr_transfer_to_an_unregistered_phone_ends_in_the_fallback_queue(lab, running):
    """The lab flow transfers to 6003, which has no contact (CHANUNAVAIL): the caller reaches support."""
    only_6001_answers(lab)
    caller = lab.call("+8613100007777", "4050")
    lab.wait_collecting(caller)
    lab.press(caller, "2")
    connected(lab, caller)
    log = lab.asterisk.log()
    assert "Transfer DIALSTATUS=CHANUNAVAIL" in log
    caller.hangup()
    caller.wait_gone()
    record = record_of(running, caller.linkedid)
    assert_answered(lab, record, caller)
    assert digits_of(record) == ["2"]
    assert (record.ivr_path[-1].node, record.ivr_path[-1].digits) == ("end:lab:to_unregistered", "6003")
    assert record.self_service == "transfer"


# -- the daemon and Asterisk going away ----------------------------------------------------------------------

def test_with_the_daemon_down_the_call_reaches_an_agent_and_is_recorded_once_it_is_back(lab, daemon):
    """No FastAGI server: Asterisk's fallback queue rings 6001; the daemon, started mid-call, resyncs and records."""
    if daemon.running():
        daemon.stop()
    only_6001_answers(lab)
    caller = lab.call("+8613000008888", "4000")
    connected(lab, caller)
    assert "AGISTATUS=FAILURE" in lab.asterisk.log()
    daemon.start()
    caller.hangup()
    caller.wait_gone()
    record = record_of(daemon, caller.linkedid)
    assert record.ani == caller.ani and record.dnis == "4000"
    assert record.queue == "support" and record.ended_at is not None
    assert record.agent == "6001"             # the same agent id as on the live path
    assert record.ivr_path in (None, ())


def test_the_daemon_killed_in_the_ivr_sends_the_caller_to_the_fallback_queue(lab, daemon):
    """SIGKILL during the main menu: the AGI connection drops, the dialplan's fallback queue answers, and the
    restarted daemon records the call."""
    if not daemon.running():
        daemon.start()
    only_6001_answers(lab)
    caller = lab.call("+8612900009999", "4000")
    to_main_menu(lab, caller)
    daemon.kill()
    daemon.start()
    record = talk_and_hang_up(lab, daemon, caller)
    assert record.ani == caller.ani and record.queue == "support"
    assert record.agent == "6001"             # the same agent id as on the live path
    assert record.answered_at is not None


def test_the_daemon_reconnects_to_ami_after_an_asterisk_restart(lab, daemon):
    """core restart now: the daemon notices, logs in again, and the next call is handled and recorded."""
    if not daemon.running():
        daemon.start()
    mark = len(daemon.lines())
    lab.asterisk.restart()
    lab.observer.reconnect()
    until(lambda: daemon.find("AMI resync:", since=mark), 60, "the daemon to log in again and resync")
    assert daemon.find("AMI connection lost", since=mark) or daemon.find("shutting down", since=mark)
    only_6001_answers(lab)
    caller = lab.call("+8612800001010", "4000")
    to_main_menu(lab, caller)
    lab.press(caller, "0")
    record = talk_and_hang_up(lab, daemon, caller)
    assert_answered(lab, record, caller)
