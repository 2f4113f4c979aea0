"""The pure IVR engine: every node type, as plain function calls with ``now``."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ivr_flows import commands as cmd
from ivr_flows.calendars import Calendar
from ivr_flows.engine import MAX_QUIET_STEPS, EngineError, resume, start
from ivr_flows.loader import LoadEnv, load_flow_text
from ivr_flows.model import Flow, GotoNode, Position
from ivr_flows.state import CallContext

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)  # a Monday
OFFICE = Calendar("office", ZoneInfo("Europe/Berlin"), "Europe/Berlin", {0: ((9 * 60, 17 * 60),)})


def flow(body: str, name: str = "f", **top: str) -> Flow:
    head = "".join(f"{k}: {v}\n" for k, v in top.items())
    text = f"start: a\n{head}nodes:\n" + textwrap.indent(
        textwrap.dedent(body), "  ")
    loaded, errors = load_flow_text(text, f"{name}.yaml", name, LoadEnv())
    assert errors == [], errors
    return loaded


def context(*flows: Flow, ani: str = "", allow: tuple[str, ...] = ("_6XXX",)) -> CallContext:
    return CallContext("call-1", ani, "4000", {f.name: f for f in flows}, {"office": OFFICE}, allow)


def begin(f: Flow, *others: Flow, ani: str = "", customer=None, now=NOW):
    """Start a call; answer the ANI lookup with ``customer`` when there is an ANI."""
    state, out = start(f, context(f, *others, ani=ani), now)
    if ani:
        assert out == [cmd.Lookup("ani", ani)]
        state, out = resume(state, customer, now)
    return state, out


def test_ani_lookup_runs_before_the_first_node():
    """With an ANI the first command is the CRM lookup; the path notes its result."""
    f = flow("a: {type: hangup}")
    state, out = start(f, context(f, ani="5551001"), NOW)
    assert out == [cmd.Lookup("ani", "5551001")] and state.waiting == "ani-lookup"
    state, out = resume(state, {"id": "C1", "tier": "vip", "balance": "12.5"}, NOW)
    assert out == [cmd.Hangup(), cmd.Finished("done")]
    assert state.variables["customer.tier"] == "vip"
    assert state.variables["customer.balance"] == Decimal("12.5")
    assert [str(e) for e in state.path] == ["f [lookup ani found]", "f:a"]


def test_withheld_number_skips_the_lookup():
    """No ANI: no lookup, customer.found is false."""
    f = flow("a: {type: hangup}")
    state, out = start(f, context(f, ani=""), NOW)
    assert out == [cmd.Hangup(), cmd.Finished("done")]
    assert state.variables["customer.found"] is False


def test_play_says_prompts_digits_numbers_and_amounts():
    """A play node gives Play, SayDigits, SayNumber and SayCurrency in order."""
    f = flow("""\
        a:
          type: play
          say:
            - prompt: custom/balance
            - digits: account
            - number: customer.balance * 2
            - currency: customer.balance
          next: b
        b: {type: hangup}
        """, variables='{account: "0042"}', currency="{unit_prompt: yuan, cents_prompt: fen}")
    _, out = begin(f, ani="1", customer={"balance": "7.5"})
    assert out[:4] == [cmd.Play("custom/balance"), cmd.SayDigits("0042"), cmd.SayNumber(15),
                       cmd.SayCurrency("7.50", "yuan", "fen")]


def test_play_of_a_negative_amount_falls_back():
    """An amount that cannot be said ends the flow with the fallback outcome and the reason."""
    f = flow("a: {type: play, say: [{currency: customer.balance}], next: b}\nb: {type: hangup}")
    state, out = begin(f, ani="1", customer={"balance": "-3"})
    assert out == [cmd.Finished("fallback", "f:a: cannot say 'customer.balance' as an amount")]
    assert state.path[-1].event == "error"


MENU = """\
    a:
      type: menu
      prompt: custom/menu
      choices: {1: one, "*": star}
      timeout: 3
      max_tries: 3
      invalid_prompt: pbx-invalid
      timeout_prompt: please-try-again
      fallback: gave_up
    one: {type: hangup}
    star: {type: hangup}
    gave_up: {type: queue, queue: support}
    """


def test_menu_branches_on_a_key():
    """The key pressed picks the node; the digit is in the path."""
    f = flow(MENU)
    state, out = begin(f)
    assert out == [cmd.GetDigits(("custom/menu",), 3000, 1)]
    state, out = resume(state, "*", NOW)
    assert out == [cmd.Hangup(), cmd.Finished("done")]
    assert state.compact_path() == "(no caller number) > a [*] > star"


def test_menu_retries_then_falls_back():
    """Timeout and invalid input replay their prompts; max tries goes to the fallback node."""
    f = flow(MENU)
    state, _ = begin(f)
    state, out = resume(state, "", NOW)
    assert out == [cmd.Play("please-try-again"), cmd.GetDigits(("custom/menu",), 3000, 1)]
    state, out = resume(state, "7", NOW)
    assert out == [cmd.Play("pbx-invalid"), cmd.GetDigits(("custom/menu",), 3000, 1)]
    state, out = resume(state, "9", NOW)
    assert out == [cmd.HandOff("support", (), 0, "en"), cmd.Finished("queue")]
    assert state.compact_path() == "(no caller number) > a [timeout] [invalid 7] [invalid 9] [max-tries 3] > gave_up"


def test_menu_without_fallback_sends_the_caller_to_the_fallback_queue():
    """No fallback node: after max tries the outcome is fallback (the dialplan's queue)."""
    f = flow("a: {type: menu, prompt: m, choices: {1: b}, max_tries: 1}\nb: {type: hangup}")
    state, _ = begin(f)
    state, out = resume(state, "", NOW)
    assert out == [cmd.Finished("fallback", "f:a: no valid input in 1 tries")]


def test_hostile_caller_input_is_invalid_and_bounded():
    """Keys outside 0-9*# never match and are recorded as '?', at most 64 of them."""
    f = flow(MENU)
    state, _ = begin(f)
    state, _ = resume(state, "1;EXEC System", NOW)
    assert state.path[-1].event == "invalid" and state.path[-1].value.startswith("1??")
    state, _ = resume(state, "1" * 500, NOW)
    assert len(state.path[-1].value) == 64


COLLECT = """\
    a:
      type: collect
      prompt: custom/account
      into: account
      min_length: 4
      max_length: 8
      validate: luhn(account)
      mask: {mask}
      max_tries: 2
      next: done
    done: {{type: hangup}}
    """


def test_collect_accepts_valid_digits_into_a_variable():
    """Length, allowed keys and the validate expression all pass: the variable is set."""
    f = flow(COLLECT.format(mask="false"))
    state, out = begin(f)
    assert out == [cmd.GetDigits(("custom/account",), 5000, 8)]
    state, out = resume(state, "10000008", NOW)
    assert state.variables["account"] == "10000008"
    assert state.compact_path() == "(no caller number) > a [10000008] > done"


@pytest.mark.parametrize("digits", ["123", "123456789", "1000*008", "12345678"])
def test_collect_refuses_wrong_length_keys_or_check_digit(digits):
    """Too short, too long, a * without allow_star, or a failed validation are invalid."""
    f = flow(COLLECT.format(mask="false"))
    state, _ = begin(f)
    state, out = resume(state, digits, NOW)
    assert out == [cmd.GetDigits(("custom/account",), 5000, 8)]
    assert state.path[-1].event == "invalid"
    assert "account" not in state.variables


def test_collect_masks_secret_input_and_falls_back_to_the_dialplan():
    """mask: the path records only the length; two failures without a fallback node end in fallback."""
    f = flow(COLLECT.format(mask="true"))
    state, _ = begin(f)
    state, _ = resume(state, "12345678", NOW)
    state, out = resume(state, "1234", NOW)
    assert out[-1].outcome == "fallback"
    assert [e.value for e in state.path if e.event == "invalid"] == ["********", "****"]


LOOKUP = """\
    a:
      type: lookup
      by: account
      key: account
      set: {plan: plan_name}
      found: yes_node
      not_found: no_node
    yes_node: {type: hangup}
    no_node: {type: hangup}
    """


def test_lookup_by_account_sets_customer_and_extra_variables():
    """The entered account is looked up; customer.* and the set: variables are filled."""
    f = flow(LOOKUP, variables='{account: "10000008", plan: ""}')
    state, out = begin(f)
    assert out == [cmd.Lookup("account", "10000008")]
    state, out = resume(state, {"id": "C9", "tier": "gold", "plan_name": "Family", "arrears": 3}, NOW)
    assert state.variables["customer.id"] == "C9" and state.variables["plan"] == "Family"
    assert state.variables["customer.arrears"] == Decimal(3)
    assert state.visited()[-1] == "yes_node"


def test_lookup_not_found_and_unusable_key():
    """None means not found; a key that is not a number is never sent to the CRM."""
    f = flow(LOOKUP, variables='{account: "10000008", plan: ""}')
    state, _ = begin(f)
    state, _ = resume(state, None, NOW)
    assert state.visited()[-1] == "no_node"
    f = flow(LOOKUP, variables='{account: "12;DROP", plan: ""}')
    state, out = begin(f)
    assert out == [cmd.Hangup(), cmd.Finished("done")]
    assert state.compact_path().endswith("a (no usable key) > no_node")


def test_condition_takes_the_first_true_branch():
    """Branches are tried in order; else when none is true."""
    f = flow("""\
        a:
          type: condition
          branches:
            - {if: customer.tier == "vip", next: vip}
            - {if: customer.balance > 0, next: debt}
          else: other
        vip: {type: hangup}
        debt: {type: hangup}
        other: {type: hangup}
        """)
    for customer, node in [({"tier": "vip", "balance": 5}, "vip"), ({"tier": "x", "balance": 5}, "debt"),
                           ({"tier": "x", "balance": 0}, "other")]:
        state, _ = begin(f, ani="1", customer=customer)
        assert state.visited()[-1] == node


def test_condition_on_waiting_calls_asks_for_queue_figures():
    """waiting("q") makes the engine ask for queue figures, then decide."""
    f = flow("""\
        a:
          type: condition
          branches: [{if: 'waiting("support") >= 10 and waiting("vip") == 0', next: busy}]
          else: calm
        busy: {type: hangup}
        calm: {type: hangup}
        """)
    state, out = begin(f)
    assert out == [cmd.QueueStats(("support", "vip"))]
    done, _ = resume(state, {"support": 12, "vip": 0}, NOW)
    assert done.visited()[-1] == "busy"
    done, _ = resume(state, {"support": 2, "vip": 0}, NOW)
    assert done.visited()[-1] == "calm"


def test_condition_on_business_hours_uses_now():
    """open("office") reads the calendar at the engine's now."""
    f = flow("a: {type: condition, branches: [{if: 'open(\"office\")', next: o}], else: c}\n"
             "o: {type: hangup}\nc: {type: hangup}")
    assert begin(f, now=datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))[0].visited()[-1] == "o"
    assert begin(f, now=datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc))[0].visited()[-1] == "c"


def test_set_and_queue_hand_off_with_the_tier_priority():
    """set chooses queue, skills, priority and language; the tier raises the priority."""
    f = flow("""\
        a:
          type: set
          queue: billing
          skills: [billing, zh]
          priority: 5
          language: zh
          vars: {note: '"owes " + customer.tier'}
          next: q
        q: {type: queue}
        """, tier_priority="{vip: 100}", variables='{note: ""}')
    state, out = begin(f, ani="1", customer={"tier": "vip"})
    assert out == [cmd.SetLanguage("zh"), cmd.HandOff("billing", ("billing", "zh"), 100, "zh"), cmd.Finished("queue")]
    assert state.variables["note"] == "owes vip" and state.handoff.priority == 100


def test_queue_node_values_win_and_a_missing_queue_falls_back():
    """The queue node's own queue/priority override the variables; no queue at all is a fallback."""
    f = flow("a: {type: queue, queue: vip, skills: [vip], priority: 7}")
    assert begin(f)[1] == [cmd.HandOff("vip", ("vip",), 7, "en"), cmd.Finished("queue")]
    f = flow("a: {type: queue}")
    assert begin(f)[1] == [cmd.Finished("fallback", "no queue chosen before the queue node")]


def test_set_refuses_a_language_the_dialplan_would_not_accept():
    """Hand-off variables set by expressions must fit the dialplan's character sets."""
    f = flow("a: {type: set, vars: {language: customer.name}, next: b}\nb: {type: hangup}")
    _, out = begin(f, ani="1", customer={"name": "en,1"})
    assert out[-1].outcome == "fallback" and "not a language code" in out[-1].reason


def test_transfer_only_to_allow_listed_numbers():
    """An allowed target transfers; the engine re-checks the allow-list of the call's routes."""
    f = flow('a: {type: transfer, to: "6002"}')
    state, out = start(f, context(f), NOW)
    assert out == [cmd.Transfer("6002"), cmd.Finished("transfer")] and state.transfer == "6002"
    state, out = start(f, context(f, allow=("_7XXX",)), NOW)
    assert out == [cmd.Finished("fallback", "transfer to '6002' is not allow-listed")]


def test_voicemail_and_hangup_end_the_flow():
    """voicemail leaves the caller in a box; hangup ends self-service as done."""
    f = flow('a: {type: voicemail, mailbox: "1000@default"}')
    assert begin(f)[1] == [cmd.Voicemail("1000@default"), cmd.Finished("voicemail")]
    f = flow("a: {type: hangup}")
    assert begin(f)[1] == [cmd.Hangup(), cmd.Finished("done")]


def test_callback_records_a_request_or_takes_the_failed_branch():
    """A usable number is sent to the CRM; no id back, or a bad number, goes to failed."""
    f = flow("""\
        a: {type: callback, number: ani, queue: support, next: ok, failed: ko}
        ok: {type: hangup}
        ko: {type: hangup}
        """)
    state, out = begin(f, ani="5551001", customer={"id": "C1"})
    assert out == [cmd.RecordCallback("5551001", "C1", "f", "support", "call-1:f:a")]
    done, _ = resume(state, "CB7", NOW)
    assert done.variables["callback.id"] == "CB7" and done.visited()[-1] == "ok"
    assert resume(state, None, NOW)[0].visited()[-1] == "ko"
    state, _ = begin(f, ani="12", customer=None)
    assert state.visited()[-1] == "ko" and state.path[-2].value == "no usable callback number"


def test_ticket_opens_a_draft_and_keeps_its_id():
    """A ticket node asks the CRM for a draft; ticket.id holds the answer."""
    f = flow("a: {type: ticket, category: complaint, summary: From the IVR, next: b}\nb: {type: hangup}")
    state, out = begin(f, ani="5551001", customer={"id": "C1"})
    assert out == [cmd.OpenTicketDraft("complaint", "From the IVR", "C1", "5551001", "call-1:f:a")]
    state, _ = resume(state, "T42", NOW)
    assert state.variables["ticket.id"] == "T42"


def test_a_write_retried_by_the_flow_carries_the_same_key():
    """A callback that failed (the CRM timed out) and is tried again from a menu asks with the key of the
    first try (call:flow:node), so the CRM answers the first request's id instead of storing a second;
    another node of the same call writes under its own key."""
    f = flow("""\
        a: {type: callback, number: ani, queue: support, next: ok, failed: again}
        again: {type: menu, prompt: beep, choices: {"1": a, "2": t}}
        t: {type: ticket, category: complaint, next: ok}
        ok: {type: hangup}
        """)
    state, first = begin(f, ani="5551001", customer={"id": "C1"})
    state, out = resume(state, None, NOW)  # the port timed out
    assert out == [cmd.GetDigits(("beep",), 5000, 1)]
    state, retry = resume(state, "1", NOW)
    assert first[-1].key == retry[-1].key == "call-1:f:a"
    state, out = resume(state, None, NOW)
    _, ticket = resume(state, "2", NOW)
    assert ticket[-1].key == "call-1:f:t"


def test_goto_node_goto_flow_subflow_and_return():
    """goto jumps; subflow runs another flow and its return comes back to next."""
    main = flow("""\
        a: {type: goto, node: b}
        b: {type: subflow, flow: sub, next: c}
        c: {type: goto, flow: other}
        """, name="main")
    sub = flow("a: {type: play, prompt: beep, next: r}\nr: {type: return}", name="sub")
    other = flow("a: {type: return}", name="other")
    state, out = begin(main, sub, other)
    assert out == [cmd.Play("beep"), cmd.Finished("done")]
    assert state.visited() == ["a", "b", "sub:a", "sub:r", "c", "other:a"]


def test_a_missing_subflow_falls_back():
    """A flow that is not in the call's flow set ends in the fallback outcome."""
    main = flow("a: {type: subflow, flow: gone, next: b}\nb: {type: hangup}", name="main")
    assert begin(main)[1] == [cmd.Finished("fallback", "no flow 'gone'")]


def test_a_loop_without_input_is_cut_off():
    """A hand-made looping flow (the validator refuses these) ends in fallback, not a hang."""
    pos = Position("x.yaml", 1, 1)
    looping = Flow("loop", "x.yaml", "a", {"a": GotoNode(id="a", pos=pos, node="b"),
                                           "b": GotoNode(id="b", pos=pos, node="a")})
    state, out = start(looping, context(looping), NOW)
    assert out[-1] == cmd.Finished("fallback", f"more than {MAX_QUIET_STEPS} nodes without caller input (a loop?)")


def test_states_are_immutable_and_resume_is_deterministic():
    """Resuming the same state twice gives equal results; the old state is untouched."""
    f = flow(MENU)
    state, _ = begin(f)
    first = resume(state, "1", NOW)
    second = resume(state, "1", NOW)
    assert first == second
    assert state.path == begin(f)[0].path and not state.finished


def test_resume_after_the_end_is_an_error():
    """A finished call refuses more input."""
    f = flow("a: {type: hangup}")
    state, _ = begin(f)
    with pytest.raises(EngineError, match="finished"):
        resume(state, "1", NOW)


VERIFY = """\
    a:
      type: verify
      prompt: custom/pin
      invalid_prompt: custom/wrong
      timeout_prompt: beep
      locked_prompt: custom/locked
      next: ok
      fallback: agent
      locked: locked_out
    ok: {type: hangup}
    agent: {type: queue, queue: support}
    locked_out: {type: queue, queue: billing}
    """


def at_verify(ani: str = "5551001", customer=None, text: str = VERIFY):
    f = flow(text)
    state, out = begin(f, ani=ani, customer={"id": "C1"} if customer is None else customer)
    return state, out


def node_events(state, node: str = "a") -> list[tuple[str, str]]:
    return [(e.event, e.value) for e in state.path if e.node == node]


def test_verify_asks_for_the_secret_and_lets_the_crm_check_it():
    """The keyed digits go to the CRM with the customer's id (the IVR never holds the secret); the path keeps only
    their length; verified goes to next and sets caller.verified."""
    state, out = at_verify()
    assert out == [cmd.GetDigits(("custom/pin",), 5000, 4)] and state.variables["caller.verified"] is False
    state, out = resume(state, "1234", NOW)
    assert out == [cmd.VerifySecret("C1", "1234")] and "1234" not in repr(out)
    assert "1234" not in repr(state.variables) and "1234" not in repr(state.path)
    done, out = resume(state, cmd.VERIFIED, NOW)
    assert out == [cmd.Hangup(), cmd.Finished("done")]
    assert done.variables["caller.verified"] is True
    assert node_events(done) == [("enter", "verify"), ("digits", "****"), ("verify", "verified")]


def test_a_wrong_secret_is_asked_again_then_the_tries_run_out_to_the_fallback():
    """wrong: the invalid prompt and the question again; after max_tries (3) the fallback node, not verified."""
    state, _ = at_verify()
    for _ in range(2):
        state, out = resume(state, "0000", NOW)
        state, out = resume(state, cmd.WRONG, NOW)
        assert out == [cmd.Play("custom/wrong"), cmd.GetDigits(("custom/pin",), 5000, 4)]
    state, _ = resume(state, "0000", NOW)
    state, out = resume(state, cmd.WRONG, NOW)
    assert out[-2:] == [cmd.HandOff("support", (), 0, "en"), cmd.Finished("queue")]
    assert state.variables["caller.verified"] is False
    assert node_events(state)[-2:] == [("verify", "wrong"), ("max-tries", "3")]


def test_timeouts_and_keys_that_cannot_be_the_secret_are_retried_without_asking_the_crm():
    """Silence plays the timeout prompt; too few keys or a * are invalid (masked) and never reach the CRM."""
    state, _ = at_verify()
    state, out = resume(state, "", NOW)
    assert out == [cmd.Play("beep"), cmd.GetDigits(("custom/pin",), 5000, 4)]
    state, out = resume(state, "12", NOW)
    assert out == [cmd.Play("custom/wrong"), cmd.GetDigits(("custom/pin",), 5000, 4)]
    state, out = resume(state, "12*4", NOW)
    assert state.handoff.queue == "support" and not any(isinstance(c, cmd.VerifySecret) for c in out)
    assert node_events(state)[1:] == [("timeout", ""), ("invalid", "**"), ("invalid", "****"), ("max-tries", "3")]


def test_a_locked_out_customer_hears_why_and_goes_to_the_locked_node():
    state, _ = at_verify()
    state, _ = resume(state, "1234", NOW)
    state, out = resume(state, cmd.LOCKED, NOW)
    assert out[0] == cmd.Play("custom/locked") and state.handoff.queue == "billing"
    assert node_events(state)[-1] == ("verify", "locked")


@pytest.mark.parametrize(("answer", "event"), [(cmd.NO_SECRET, "no secret"), (None, "CRM unavailable"),
                                                ("garbage", "CRM unavailable")])
def test_no_secret_on_file_or_no_answer_from_the_crm_goes_to_the_fallback(answer, event):
    state, _ = at_verify()
    state, _ = resume(state, "1234", NOW)
    state, out = resume(state, answer, NOW)
    assert state.handoff.queue == "support" and node_events(state)[-1] == ("verify", event)


def test_without_an_identified_customer_there_is_nothing_to_verify():
    """An unknown or withheld caller is not asked: straight to the fallback."""
    state, out = at_verify(customer=None, ani="")
    assert state.handoff.queue == "support" and node_events(state)[-1] == ("verify", "no customer")
    f = flow(VERIFY)
    state, out = begin(f, ani="5559999", customer=None)
    assert state.handoff.queue == "support" and not any(isinstance(c, cmd.GetDigits) for c in out)


def test_without_fallback_and_locked_nodes_the_dialplan_fallback_takes_the_caller():
    text = VERIFY.replace("      fallback: agent\n      locked: locked_out\n", "")
    text = text.replace("    agent: {type: queue, queue: support}\n    locked_out: {type: queue, queue: billing}\n", "")
    state, _ = at_verify(text=text)
    state, _ = resume(state, "1234", NOW)
    state, out = resume(state, cmd.LOCKED, NOW)
    assert out[-1] == cmd.Finished("fallback", "f:a: the customer is locked out of self-service")


def test_a_caller_verified_once_passes_again_until_another_customer_is_looked_up():
    """A second verify node for the same customer does not ask again; after a lookup finds someone else it does."""
    f = flow("""\
        a: {type: verify, prompt: beep, next: b, fallback: x}
        b: {type: verify, prompt: beep, next: c, fallback: x}
        c: {type: lookup, by: account, key: '"10000008"', found: d, not_found: x}
        d: {type: verify, prompt: beep, next: x, fallback: x}
        x: {type: hangup}
        """)
    state, _ = begin(f, ani="5551001", customer={"id": "C1"})
    state, _ = resume(state, "1234", NOW)
    state, out = resume(state, cmd.VERIFIED, NOW)
    assert out == [cmd.Lookup("account", "10000008")] and node_events(state, "b")[-1] == ("verify", "already verified")
    state, out = resume(state, {"id": "C2"}, NOW)
    assert out == [cmd.GetDigits(("beep",), 5000, 4)] and state.variables["caller.verified"] is False


def test_the_route_says_whether_the_caller_id_is_trusted():
    """route.trusted_callerid is the route's flag (false unless the context says so), for flows to branch on."""
    f = flow("""\
        a:
          type: condition
          branches: [{if: customer.found and route.trusted_callerid, next: t}]
          else: u
        t: {type: hangup}
        u: {type: hangup}
        """)
    trusted = CallContext("call-1", "5551001", "4000", {"f": f}, {}, (), trusted_callerid=True)
    state, _ = start(f, trusted, NOW)
    state, _ = resume(state, {"id": "C1"}, NOW)
    assert state.visited() == ["a", "t"] and state.variables["route.trusted_callerid"] is True
    state, _ = begin(f, ani="5551001", customer={"id": "C1"})
    assert state.visited() == ["a", "u"] and state.variables["route.trusted_callerid"] is False
