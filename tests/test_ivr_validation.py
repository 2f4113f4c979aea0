"""The flow validator: every error kind with its file, line, column and plain reason."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ivr_flows.flowset import load_flowset
from ivr_flows.loader import LoadEnv, load_flow_text
from ivr_flows.routes import load_routes_text

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "ivr_flows" / "flows"

PROMPTS = """\
core: [beep, vm-goodbye, pbx-invalid, dollars, cents]
custom: [custom/welcome, custom/menu]
"""
ROUTES = """\
timezone: Europe/Berlin
calendars:
  office: {hours: {mon-fri: ["09:00-17:00"]}}
transfers: {allow: ["_6XXX"]}
routes:
  "4000": {flow: main}
"""
# A valid flow; the tests below break one thing at a time.  Line numbers:
GOOD = """\
start: welcome
nodes:
  welcome:
    type: play
    prompt: custom/welcome
    next: menu
  menu:
    type: menu
    prompt: custom/menu
    choices:
      1: check
      2: bye
    invalid_prompt: pbx-invalid
  check:
    type: condition
    branches:
      - if: customer.tier == "vip" and open("office")
        next: vip
    else: bye
  vip:
    type: queue
    queue: vip
  bye:
    type: play
    prompt: vm-goodbye
    next: end
  end:
    type: hangup
"""


def flows_dir(tmp_path: Path, flow: str, name: str = "main") -> Path:
    (tmp_path / "prompts.yaml").write_text(PROMPTS)
    (tmp_path / "routes.yaml").write_text(ROUTES)
    (tmp_path / f"{name}.yaml").write_text(flow)
    return tmp_path


def errors_of(tmp_path: Path, flow: str) -> list[tuple[int, int, str]]:
    flow_set, errors = load_flowset(flows_dir(tmp_path, flow))
    assert flow_set is None and errors
    assert {e.file for e in errors} == {str(tmp_path / "main.yaml")}
    return [(e.line, e.column, e.message) for e in errors]


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_the_good_flow_is_valid(tmp_path):
    """The base of these tests loads without an error."""
    flow_set, errors = load_flowset(flows_dir(tmp_path, GOOD))
    assert errors == []
    assert list(flow_set.flows["main"].nodes) == ["welcome", "menu", "check", "vip", "bye", "end"]


def test_unknown_node_type(tmp_path):
    """An unknown type is named, with a suggestion and the known types."""
    [(line, column, message)] = errors_of(tmp_path, edit("type: hangup", "type: hangpu"))
    assert (line, column) == (28, 11)
    assert message.startswith("unknown node type 'hangpu' (did you mean 'hangup'?); known types: play, menu")


def test_dangling_next(tmp_path):
    """A next naming no node points at the next: line (and what it cut off is unreachable)."""
    assert errors_of(tmp_path, edit("next: end", "next: ned")) == [
        (26, 11, "dangling next: no node 'ned' in this flow (did you mean 'end'?)"),
        (27, 3, "unreachable node 'end': no path leads here from the start node 'welcome'"),
    ]


def test_dangling_menu_choice(tmp_path):
    """A menu choice naming no node is reported at the choice."""
    assert errors_of(tmp_path, edit("2: bye", "2: by")) == [
        (12, 10, "dangling choice 2: no node 'by' in this flow (did you mean 'bye'?)")]


def test_unreachable_node(tmp_path):
    """A node no path leads to is reported at its name."""
    flow = GOOD + "  orphan:\n    type: hangup\n"
    assert errors_of(tmp_path, flow) == [
        (29, 3, "unreachable node 'orphan': no path leads here from the start node 'welcome'")]


def test_loop_with_no_exit(tmp_path):
    """Nodes that go round for ever without a way out are one error, at the loop's first node."""
    flow = edit("      2: bye\n", "      2: bye\n      3: spin\n") + textwrap.indent(textwrap.dedent("""\
        spin:
          type: play
          prompt: beep
          next: again
        again:
          type: condition
          branches: [{if: customer.found, next: spin}]
          else: again
        """), "  ")
    assert errors_of(tmp_path, flow) == [
        (30, 3, "loop with no exit: spin -> again -> spin never reaches a queue, transfer, voicemail, hangup, "
                "return or fallback")]


def test_missing_prompt_file(tmp_path):
    """A prompt not in prompts.yaml is missing, with a suggestion."""
    [(line, column, message)] = errors_of(tmp_path, edit("prompt: custom/welcome", "prompt: custom/welcom"))
    assert (line, column) == (5, 13)
    assert message.startswith("missing prompt file 'custom/welcom': not in ")
    assert message.endswith("prompts.yaml (did you mean 'custom/welcome'?)")


@pytest.mark.parametrize("key, column, reason", [
    ("12", 7, "bad digit key '12': a menu choice is one key, 0-9 or *"),
    ('"#"', 7, "bad digit key '#': # ends input in Asterisk's GET DATA; use 0-9 or *"),
    ("a", 7, "bad digit key 'a': a menu choice is one key, 0-9 or *"),
])
def test_bad_digit_key(tmp_path, key, column, reason):
    """Menu keys are single keys 0-9 or *; # cannot be one."""
    assert errors_of(tmp_path, edit("      2: bye", f"      {key}: bye")) == [(12, column, reason)]


def test_expression_syntax(tmp_path):
    """A syntax error points at the column inside the expression."""
    flow = edit('customer.tier == "vip" and open("office")', 'customer.tier == "vip" and (open("office")')
    assert errors_of(tmp_path, flow) == [(17, 55, "expression syntax: expected ')', found end of expression")]


def test_unknown_variable(tmp_path):
    """A variable neither built in, declared nor assigned is unknown, at its column."""
    assert errors_of(tmp_path, edit("customer.tier ==", "customer.teir ==")) == [
        (17, 13, "unknown variable 'customer.teir' (did you mean 'customer.tier'?)")]


def test_unknown_calendar_in_open(tmp_path):
    """open() names a calendar of routes.yaml."""
    [(line, column, message)] = errors_of(tmp_path, edit('open("office")', 'open("ofice")'))
    assert (line, column) == (17, 40)
    assert message.startswith("unknown calendar 'ofice' in open() (did you mean 'office'?)")


def test_unknown_field_and_missing_field(tmp_path):
    """Schema errors: a misspelt field and a missing one, in plain words."""
    flow = edit("    prompt: vm-goodbye\n    next: end", "    prompt: vm-goodbye\n    nxt: end")
    assert errors_of(tmp_path, flow) == [
        (24, 5, "missing field 'next'"),
        (26, 5, "unknown field 'nxt' (did you mean 'next'?)"),
    ]


def test_transfer_target_must_be_allow_listed(tmp_path):
    """A transfer outside routes.yaml's transfers.allow is refused."""
    flow = edit("    type: queue\n    queue: vip", '    type: transfer\n    to: "5555"')
    [(line, column, message)] = errors_of(tmp_path, flow)
    assert (line, column) == (22, 9)
    assert message.startswith("transfer target '5555' is not allow-listed in ") and "(transfers.allow: _6XXX)" in message


def test_read_only_variable_cannot_be_assigned(tmp_path):
    """ani, dnis and customer.* are facts of the call, not variables to set."""
    flow = edit("  end:\n    type: hangup", "  end:\n    type: collect\n    prompt: beep\n    into: ani\n    next: end")
    assert (30, 11, "variable 'ani' is read-only") in errors_of(tmp_path, flow)


def test_every_error_of_a_file_is_reported_at_once(tmp_path):
    """The validator does not stop at the first problem."""
    flow = edit("else: bye", "else: bey").replace("custom/welcome", "custom/nope").replace("customer.tier", "tier")
    messages = [m for _, _, m in errors_of(tmp_path, flow)]
    assert len(messages) == 3
    assert any(m.startswith("dangling else") for m in messages)
    assert any(m.startswith("missing prompt file") for m in messages)
    assert any(m.startswith("unknown variable 'tier'") for m in messages)


def test_yaml_syntax_error_and_duplicate_key():
    """Broken YAML and a key given twice are errors with their line."""
    _, errors = load_flow_text("start: a\nnodes: [\n", "f.yaml", "f")
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [(3, "YAML syntax")]
    _, errors = load_flow_text(GOOD.replace("    next: menu\n", "    next: menu\n    next: bye\n"), "f.yaml", "f",
                               LoadEnv())
    assert [(e.line, e.column, e.message) for e in errors] == [(7, 5, "duplicate key 'next'")]


def test_routes_naming_an_unknown_flow(tmp_path):
    """routes.yaml may only name flows that exist."""
    flows_dir(tmp_path, GOOD)
    (tmp_path / "routes.yaml").write_text(ROUTES.replace("{flow: main}", "{flow: mian}"))
    _, errors = load_flowset(tmp_path)
    assert [(Path(e.file).name, e.line, e.message.split(":")[0]) for e in errors] == [
        ("routes.yaml", 6, "unknown flow 'mian'")]


def test_routes_errors_have_lines():
    """Bad time zones, ranges and holidays in routes.yaml are reported where they are."""
    text = textwrap.dedent("""\
        timezone: Europe/Berln
        holidays:
          public: ["2026-02-30", {from: "2026-05-02", to: "2026-05-01"}]
        calendars:
          office:
            hours: {mon-fri: ["17:00-09:00"], fri: ["09:00-12:00"], sun-mon: ["10:00-11:00"]}
            holidays: [public, school]
        routes:
          "4000": {flow: main, calendar: ofice, closed: night}
        """)
    _, errors = load_routes_text(text, "routes.yaml")
    got = [(e.line, e.message) for e in errors]
    assert (1, "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)") in got
    assert (3, "'2026-02-30' is not a date of the calendar") in got
    assert (3, "holiday span 2026-05-02..2026-05-01 must run forward and be shorter than a year") in got
    assert (6, "'17:00-09:00' ends before it starts (split ranges that cross midnight)") in got
    assert (6, "'fri': this weekday has hours twice") in got
    assert (6, "'sun-mon' is not a weekday or a range like mon-fri") in got
    assert (7, "unknown holiday list 'school'") in got
    assert (9, "unknown calendar 'ofice' (did you mean 'office'?)") in got


def test_published_schemas_are_valid_json_schemas():
    """schema.json and routes.schema.json are Draft 2020-12 schemas editors can use."""
    for name in ("schema.json", "routes.schema.json"):
        Draft202012Validator.check_schema(json.loads((ROOT / "ivr_flows" / name).read_text()))


def test_example_flows_are_valid_and_reference_the_published_schema():
    """The shipped flows validate and point editors at the schema."""
    flow_set, errors = load_flowset(FLOWS)
    assert errors == []
    assert set(flow_set.flows) == {"hotline", "vip", "after_hours", "acd_callback_offer"}
    for name in flow_set.flows:
        assert (FLOWS / f"{name}.yaml").read_text().startswith("# yaml-language-server: $schema=../schema.json")


def test_verify_node_errors_are_reported_where_they_are(tmp_path):
    """A verify node's prompts, lengths, targets and fields are checked like any other node's, at file:line:col."""
    flow = edit("  vip:\n    type: queue\n    queue: vip", textwrap.indent(textwrap.dedent("""\
        vip:
          type: verify
          prompt: custom/pin
          min_length: 6
          max_length: 5
          locked_prompt: custom/locked
          next: ned
          locked: bey
          fallback: bye
        ok:
          type: queue
          queue: vip"""), "  "))
    manifest = tmp_path / "prompts.yaml"
    assert errors_of(tmp_path, flow) == [
        (22, 13, f"missing prompt file 'custom/pin': not in {manifest} (did you mean 'custom/menu'?)"),
        (23, 17, "min_length 6 is more than max_length 5"),
        (25, 20, f"missing prompt file 'custom/locked': not in {manifest} (did you mean 'custom/menu'?)"),
        (26, 11, "dangling next: no node 'ned' in this flow (did you mean 'end'?)"),
        (27, 13, "dangling locked: no node 'bey' in this flow (did you mean 'bye'?)"),
        (29, 3, "unreachable node 'ok': no path leads here from the start node 'welcome'"),
    ]
    wrong = edit("  vip:\n    type: queue\n    queue: vip",
                 "  vip:\n    type: verify\n    prompt: beep\n    lock: bye\n    max_length: 13\n    next: bye")
    assert errors_of(tmp_path, wrong) == [
        (23, 5, "unknown field 'lock' (did you mean 'locked'?)"),
        (24, 17, "max_length: 13 is greater than the maximum of 12"),
    ]


def test_route_and_caller_variables_can_be_read_but_not_set(tmp_path):
    """route.trusted_callerid and caller.verified are facts of the call: flows read them and cannot set them."""
    flow = edit('      - if: customer.tier == "vip" and open("office")',
                '      - if: route.trusted_callerid and not caller.verified')
    assert load_flowset(flows_dir(tmp_path, flow))[1] == []
    flow = edit("  end:\n    type: hangup", "  end:\n    type: set\n    vars: {caller.verified: true}\n    next: end")
    assert (29, 12, "variable 'caller.verified' is read-only") in errors_of(tmp_path, flow)


def test_routes_say_whether_their_caller_id_is_trusted():
    """trusted_callerid is a boolean, false unless a route says so."""
    routes, errors = load_routes_text(ROUTES.replace("{flow: main}", "{flow: main, trusted_callerid: true}")
                                      + "default: {flow: main}\n", "routes.yaml")
    assert errors == []
    assert routes.routes["4000"].trusted_callerid is True and routes.default.trusted_callerid is False
    _, errors = load_routes_text(ROUTES.replace("{flow: main}", '{flow: main, trusted_callerid: "yes"}'),
                                 "routes.yaml")
    assert [(e.line, e.column, e.message) for e in errors] == [
        (6, 42, "trusted_callerid: 'yes' is not of type 'boolean'")]
