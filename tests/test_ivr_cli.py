"""``callcenter flows``: validate, test, graph, history, rollback (click's CliRunner on the group)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr_flows.cli import build_flows_group, flows
from ivr_flows.graph import render, to_dot
from ivr_flows.loader import load_flow
from ivr_flows.memory import InMemoryCustomers
from ivr_flows.registry import FlowRegistry

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns(".history"))
    return target


def run(*args: str, group=flows):
    return CliRunner().invoke(group, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", [[], ["validate"], ["test"], ["graph"], ["history"], ["rollback"]])
def test_every_command_has_help(command):
    """--help works for the group and each command."""
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage: " in result.output


def test_validate_the_shipped_flows_and_their_test_cases():
    """Every flow valid, every kept test case passes: exit 0."""
    result = run("--flows-dir", str(SHIPPED), "validate")
    assert result.exit_code == 0, result.output
    assert result.output == "ok: 4 flow(s) valid, 34 test case(s) passed\n"


def test_validate_reports_every_error_with_file_line_and_column(flows_dir):
    """Errors as FILE:LINE:COLUMN: REASON, a count on stderr, exit 1."""
    hotline = flows_dir / "hotline.yaml"
    hotline.write_text(hotline.read_text().replace("prompt: custom/cc-welcome", "prompt: custom/cc-welcom")
                       .replace("validate: luhn(account)", "validate: luhn(acount)"))
    result = CliRunner().invoke(flows, ["--flows-dir", str(flows_dir), "validate"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{hotline}:17:13: missing prompt file 'custom/cc-welcom': not in {flows_dir / 'prompts.yaml'} "
        "(did you mean 'custom/cc-welcome'?)",
        f"{hotline}:73:20: unknown variable 'acount' (did you mean 'account'?)",
    ]
    assert result.stderr == "2 error(s)\n"


def test_validate_a_candidate_file_before_publishing_it(flows_dir, tmp_path):
    """A flow file outside the directory is checked in place of its namesake, with its test cases."""
    draft = tmp_path / "vip.yaml"
    draft.write_text((flows_dir / "vip.yaml").read_text().replace("queue: vip", "queue: support"))
    result = run("--flows-dir", str(flows_dir), "validate", str(draft))
    assert result.exit_code == 1
    assert "vip.tests.yaml" in result.output and "handoff was {'queue': 'support'" in result.output
    assert "ok:" not in result.output


def test_failing_test_case_is_reported_at_its_line(flows_dir):
    """A test case whose expectation no longer holds names the case and the line of the expectation."""
    tests = flows_dir / "after_hours.tests.yaml"
    tests.write_text(tests.read_text().replace("      callbacks: 0", "      callbacks: 1"))
    result = run("--flows-dir", str(flows_dir), "validate", str(flows_dir / "after_hours.yaml"))
    assert result.exit_code == 1
    assert f"{tests}:35:18: test 'a silent caller hears goodbye and nothing is recorded' failed: " \
           "callbacks was 0, expected 1" in result.output


def test_flows_test_prints_the_path_and_the_hand_off(tmp_path):
    """A scripted caller against a routed number, with a customer file and queue figures."""
    customers = tmp_path / "customers.yaml"
    customers.write_text('customers:\n  - {id: C1, ani: "5551001", tier: gold, balance: "9.99", arrears: "0"}\n')
    result = run("--flows-dir", str(SHIPPED), "test", "4000", "--ani", "5551001", "--digits", "2,2",
                 "--at", "2026-03-02T10:00", "--customer-db", f"file:{customers}", "--waiting", "support=3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flow hotline  DNIS 4000  caller 5551001  at 2026-03-02T10:00:00+08:00"
    assert lines[1] == "route 4000 -> hotline (open)"
    assert "      caller: '2'" in lines
    assert lines[-2] == ("path: (ani found) > welcome > choose_language [2] > chinese > main_menu [2] > support "
                         "> busy_check > to_agent")
    assert lines[-1] == "outcome: queue -> hand-off to queue support (skills technical, priority 50, language zh)"


def test_flows_test_checks_the_pin_and_can_play_a_trusted_route(tmp_path):
    """Billing: the PIN the script keys is checked by the customer file and printed masked; with
    --trusted-callerid the balance is said without it, with a wrong PIN it is never said."""
    customers = tmp_path / "customers.yaml"
    customers.write_text('- {id: C1, ani: "5551001", balance: "9.99", arrears: "0", secret: "2580"}\n')
    args = ("--flows-dir", str(SHIPPED), "test", "4000", "--ani", "5551001", "--at", "2026-03-02T10:00",
            "--customer-db", str(customers))
    verified = run(*args, "--digits", "1,1,2580,")
    assert verified.exit_code == 0, verified.output
    assert "      caller: '****'" in verified.output and "2580" not in verified.output
    assert "      verify the secret of customer C1 (4 keys)" in verified.output
    assert "currency 9.99" in verified.output and "verify_caller [****]" in verified.output
    wrong = run(*args, "--digits", "1,1,1111,2222,3333")
    assert "currency" not in wrong.output and "not_verified > billing_agent > to_agent" in wrong.output
    trusted = run(*args, "--digits", "1,1,", "--trusted-callerid")
    assert "currency 9.99" in trusted.output and "verify_caller" not in trusted.output


def test_flows_test_after_hours_and_a_hang_up():
    """--at in the evening routes to after_hours; a script that runs out hangs up."""
    result = run("--flows-dir", str(SHIPPED), "test", "4000", "--ani", "5551001", "--at", "2026-03-02T21:00+08:00")
    assert result.exit_code == 0
    assert "route 4000 -> after_hours (closed)" in result.output
    assert result.output.splitlines()[-1] == "outcome: abandoned (the caller hung up at after_hours:offer)"


def test_flows_test_bad_input():
    """Unknown flows and bad options are usage errors, not tracebacks."""
    assert run("--flows-dir", str(SHIPPED), "test", "nope").exit_code == 1
    assert run("--flows-dir", str(SHIPPED), "test", "hotline", "--at", "yesterday").exit_code == 2
    assert run("--flows-dir", str(SHIPPED), "test", "hotline", "--waiting", "support").exit_code == 2
    assert run("--flows-dir", str(SHIPPED), "test", "hotline", "--customer-db", "sqlite:///x.db").exit_code == 2


def test_an_injected_crm_opener_serves_database_urls():
    """The main CLI can hand the group an opener for crm_core URLs."""
    opened = []

    def opener(url: str):
        opened.append(url)
        return InMemoryCustomers([{"id": "C9", "ani": "5559", "tier": "vip", "language": "en"}])

    result = run("--flows-dir", str(SHIPPED), "test", "vip", "--ani", "5559", "--customer-db",
                 "sqlite:///crm.db", group=build_flows_group(opener))
    assert opened == ["sqlite:///crm.db"]
    assert result.output.splitlines()[-1].startswith("outcome: queue -> hand-off to queue vip")


def test_graph_without_graphviz_writes_dot_and_says_so(tmp_path, monkeypatch):
    """No dot binary: the DOT text is written next to the requested file."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run("--flows-dir", str(SHIPPED), "graph", "hotline", "-o", str(tmp_path / "hotline.svg"))
    assert result.exit_code == 0
    assert "graphviz 'dot' is not installed: wrote DOT text to" in result.output
    dot = (tmp_path / "hotline.dot").read_text()
    assert dot.startswith('digraph "hotline" {')
    assert '"main_menu" -> "billing" [label="1"];' in dot
    assert '"main_menu" -> "__fallback" [label="max tries", style=dashed];' in dot
    assert '"busy_check" -> "offer_callback" [label="waiting(\\"support\\") >= 10"];' in dot
    assert '"verify_caller" -> "say_balance" [label="next"];' in dot
    assert '"verify_caller" -> "billing_agent" [label="locked"];' in dot


def test_graph_through_the_dot_program(tmp_path):
    """With graphviz, dot renders the requested format from the DOT text on its stdin."""
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n# $1=-Tsvg $2=-o $3=file\ncat > "$3.in"; echo "<svg $1/>" > "$3"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    flow, _ = load_flow(SHIPPED / "vip.yaml")
    written, message = render(flow, tmp_path / "vip.svg", dot_program=str(fake))
    assert message == f"wrote {tmp_path / 'vip.svg'}"
    assert written.read_text() == "<svg -Tsvg/>\n"
    assert (tmp_path / "vip.svg.in").read_text() == to_dot(flow)


def test_graph_of_an_invalid_flow_fails(flows_dir, tmp_path):
    """A flow that does not load cannot be drawn; its errors are printed."""
    (flows_dir / "vip.yaml").write_text("start: x\nnodes: {}\n")
    result = run("--flows-dir", str(flows_dir), "graph", "vip", "-o", str(tmp_path / "v.dot"))
    assert result.exit_code == 1 and "nodes: {} should be non-empty" in result.output


def test_history_and_rollback(flows_dir):
    """Versions stored by the daemon are listed; rollback puts the previous one back."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    original = (flows_dir / "vip.yaml").read_text()
    (flows_dir / "vip.yaml").write_text(original.replace("prompt: custom/cc-vip-welcome", "prompt: beep"))
    registry.reload()
    result = run("--flows-dir", str(flows_dir), "history", "vip")
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["v1", "v2"] and lines[1].endswith("(the file now)")
    result = run("--flows-dir", str(flows_dir), "rollback", "vip")
    assert result.exit_code == 0
    assert result.output == "flow 'vip' rolled back to version 1 (stored as version 3)\n"
    assert (flows_dir / "vip.yaml").read_text() == original
    lines = run("--flows-dir", str(flows_dir), "history", "vip").output.splitlines()
    assert lines[2].endswith("(same as v1, the file now)")
    result = run("--flows-dir", str(flows_dir), "rollback", "vip", "2")
    assert result.exit_code == 0 and "beep" in (flows_dir / "vip.yaml").read_text()


def test_history_notes_unstored_edits_and_rollback_refusals(flows_dir):
    """An edit not loaded yet is flagged; rolling back what has no history is refused."""
    FlowRegistry(flows_dir).reload()
    with open(flows_dir / "after_hours.yaml", "a") as out:
        out.write("# tweak\n")
    result = run("--flows-dir", str(flows_dir), "history", "after_hours")
    assert result.output.splitlines()[-1].endswith("has changes not stored yet (not loaded by the daemon)")
    assert run("--flows-dir", str(flows_dir), "history", "../etc").exit_code == 2
    result = CliRunner().invoke(flows, ["--flows-dir", str(flows_dir), "rollback", "nothere"])
    assert result.exit_code == 1 and result.stderr == "flow 'nothere' has no stored versions\n"


def test_flows_dir_from_the_environment(monkeypatch):
    """CALLCENTER_FLOWS_DIR sets the directory."""
    monkeypatch.setenv("CALLCENTER_FLOWS_DIR", str(SHIPPED))
    monkeypatch.chdir(os.path.dirname(SHIPPED.parent.parent))
    assert run("validate", "--no-tests").output == "ok: 4 flow(s) valid\n"


def test_a_tests_file_may_be_a_bare_list_of_cases(flows_dir):
    """Without customers, the test cases can be a plain YAML list; failures keep their lines."""
    (flows_dir / "vip.tests.yaml").write_text(
        "- name: unknown caller gets the hotline\n"
        "  ani: \"5559999\"\n"
        "  expect:\n"
        "    path: [vip_check, hotline, \"hotline:welcome\", \"hotline:choose_language\"]\n"
        "- name: wrong expectation\n"
        "  expect:\n"
        "    outcome: queue\n")
    result = run("--flows-dir", str(flows_dir), "validate", str(flows_dir / "vip.yaml"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{flows_dir / 'vip.tests.yaml'}:7:14: test 'wrong expectation' failed: outcome was 'abandoned', "
        "expected 'queue'; the caller's way: (no caller number) > vip_check > hotline > hotline:welcome > "
        "hotline:choose_language"]
