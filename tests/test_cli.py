"""The callcenter command: help, exit codes, and the run/SIGTERM path as a real process."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

import ivr_flows

from callcenter.cli import cli
from tests.servers import free_port
from tests.util import copy_flows

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("args", [[], ["run"], ["demo"], ["check-config"]])
def test_every_subcommand_has_help(args):
    """--help works for the tool and for each subcommand, exit 0."""
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_python_dash_m_runs_the_cli():
    """python -m callcenter is the same tool."""
    out = subprocess.run([sys.executable, "-m", "callcenter", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for sub in ("run", "demo", "check-config"):
        assert sub in out.stdout


def test_check_config_ok_exits_0():
    """A valid file prints ok and exits 0."""
    result = CliRunner().invoke(cli, ["check-config", str(ROOT / "callcenter.example.toml")])
    assert result.exit_code == 0
    assert result.output.strip().endswith("callcenter.example.toml: ok")


def test_check_config_prints_every_error_and_exits_2(tmp_path):
    """Every problem of every file is printed; exit 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[asterisk]\nami_port = "x"\n[log]\nformat = "xml"\n')
    result = CliRunner().invoke(cli, ["check-config", str(bad), str(ROOT / "callcenter.example.toml")],
                                env={"CALLCENTER_AMI_SECRET": None})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert f"{bad}: asterisk.ami_port: expected an integer, got string 'x'" in lines
    assert f"{bad}: log.format: expected one of text, json, got string 'xml'" in lines
    assert lines[-1].endswith("callcenter.example.toml: ok")


def test_usage_errors_exit_2():
    """Missing arguments or unknown options are usage errors (exit 2)."""
    assert CliRunner().invoke(cli, ["check-config"]).exit_code == 2
    assert CliRunner().invoke(cli, ["run"]).exit_code == 2
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2


def test_run_with_bad_config_exits_2_listing_errors(tmp_path):
    """run refuses a bad config before starting anything."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[asterisk]\nami_port = 99999\n")
    result = CliRunner().invoke(cli, ["run", "--config", str(bad)], env={"CALLCENTER_AMI_SECRET": None})
    assert result.exit_code == 2
    assert "asterisk.ami_port: expected an integer from 1 to 65535, got 99999" in result.output
    assert "1 error(s)" not in result.output or "2 error(s)" in result.output


def config_file(tmp_path, agi_port=None):
    path = tmp_path / "cc.toml"
    path.write_text(
        f'[asterisk]\nami_secret = "s"\nami_port = {free_port()}\nagi_port = {agi_port or free_port()}\n'
        f'[crm]\nurl = "sqlite:///cc.db"\n[desktop]\nport = {free_port()}\n'
        f'[ivr]\nflows_dir = "{copy_flows(tmp_path)}"\nroutes = "flows/routes.yaml"\n')
    return path


def start_daemon(path, cwd=ROOT):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CALLCENTER_AMI_SECRET", None)
    return subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)


def read_until(proc, needle, timeout):
    seen = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.02)
    raise AssertionError(f"{needle!r} not seen; output:\n{''.join(seen)}")


def test_run_serves_retries_ami_and_stops_on_sigterm_within_5s(tmp_path):
    """callcenter run: listens, logs AMI retries with backoff, exits 0 within 5 s of SIGTERM."""
    proc = start_daemon(config_file(tmp_path))
    try:
        out = read_until(proc, "callcenter running", 30)
        out += read_until(proc, "retrying in", 10)
        assert "connecting to AMI at 127.0.0.1:" in out
        assert "fastagi listening on 127.0.0.1:" in out
        assert "desktop listening on http://127.0.0.1:" in out
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 5.0
        assert proc.returncode == 0
        assert "stopped cleanly" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_stops_too(tmp_path):
    """Ctrl-C (SIGINT) takes the same graceful path."""
    proc = start_daemon(config_file(tmp_path))
    try:
        read_until(proc, "callcenter running", 30)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "stopped cleanly" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_failed_start_exits_1_with_the_reason(tmp_path):
    """A port already in use makes run exit 1 naming the service and the cause."""
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        proc = start_daemon(config_file(tmp_path, agi_port=busy.getsockname()[1]))
        out, _ = proc.communicate(timeout=30)
    finally:
        busy.close()
    assert proc.returncode == 1
    assert "startup failed: fastagi failed to start:" in out


def _demo_login(port):
    creds = base64.b64encode(b"supervisor:demo").decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/login", method="POST",
                                     headers={"Authorization": f"Basic {creds}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())["token"]
    except OSError:
        return None


def _until(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_runs_on_embedded_defaults_and_stops(tmp_path):
    """callcenter demo: the daemon on SQLite against the simulated Asterisk, with callers, stops after --duration."""
    env = {**os.environ}
    env.pop("CALLCENTER_AMI_SECRET", None)
    api_port, desktop_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--duration", "10", "--call-every", "1",
                             "--data-dir", str(tmp_path / "demo"), "--desktop-port", str(desktop_port),
                             "--agi-port", str(free_port()), "--api-port", str(api_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        # the demo's supervisor signs in on the desktop port and reads the queues from the REST API
        token = _until(lambda: _demo_login(desktop_port), 30, "the demo's desktop login")
        request = urllib.request.Request(f"http://127.0.0.1:{api_port}/api/v1/queues",
                                         headers={"Authorization": f"Bearer {token}"})
        queues = json.loads(_until(lambda: urllib.request.urlopen(request, timeout=5).read(), 10, "the REST API"))
        assert {"support", "vip", "billing", "complaints"} <= {q["queue"] for q in queues["queues"]}, queues
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert out.returncode == 0, out.stderr
    assert "callcenter running" in out.stderr and "stopped cleanly" in out.stderr
    assert "AMI logged in as cti" in out.stderr and "demo call 1:" in out.stderr
    assert f"REST API on http://127.0.0.1:{api_port}/api/v1/" in out.stderr
    assert "Traceback" not in out.stderr
    listed = subprocess.run([sys.executable, "-m", "callcenter", "contacts", "list", "--json", "--url",
                             f"sqlite:///{tmp_path / 'demo' / 'callcenter.db'}"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.count("linkedid") >= 1, listed.stderr


def test_sighup_reloads_the_flows_and_refuses_a_bad_edit(tmp_path):
    """SIGHUP revalidates the flows: a broken edit is refused and logged, the old set keeps answering."""
    path = config_file(tmp_path)
    proc = start_daemon(path)
    try:
        read_until(proc, "callcenter running", 30)
        hotline = tmp_path / "flows" / "hotline.yaml"
        hotline.write_text(hotline.read_text() + "\n  broken_node: {type: teleport}\n")
        proc.send_signal(signal.SIGHUP)
        out = read_until(proc, "IVR flow edit refused", 10)
        out += read_until(proc, "teleport", 5)
        assert "hotline.yaml:" in out
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_flows_commands_are_part_of_the_tool():
    """callcenter flows validate checks the shipped flows (and their test cases)."""
    result = CliRunner().invoke(cli, ["flows", "validate"])
    assert result.exit_code == 0, result.output


def test_flows_test_reads_a_real_crm_without_writing(tmp_path):
    """flows test --customer-db URL looks the caller up in a CRM database, checks the PIN there and speaks
    the balance."""
    from decimal import Decimal

    from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
    from crm_core.db import make_engine
    from crm_core.migrate import thd_upgrade

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_engine(url)
    thd_upgrade(engine)
    cid = thd_create_customer(engine, NewCustomer("Jane Doe", language="en", phones=("+15551234567",),
                                                  secret="1234"), "CN")
    thd_add_account(engine, cid, NewAccount("10000008", balance=Decimal("120.50"), arrears=Decimal("15.00")))
    engine.dispose()
    result = CliRunner().invoke(cli, ["flows", "--flows-dir", copy_flows(tmp_path), "test", "hotline",
                                      "--ani", "+15551234567", "--digits", "1,1,1234", "--at", "2026-03-02T10:00:00+08:00",
                                      "--customer-db", url])
    assert result.exit_code == 0, result.output
    assert "currency 120.50" in result.output and "currency 15.00" in result.output


def test_run_with_a_config_outside_the_repository_and_no_ivr_section(tmp_path):
    """No [ivr]: the daemon starts on the flows installed with the package, from any directory."""
    path = tmp_path / "cc.toml"
    path.write_text(f'[asterisk]\nami_secret = "s"\nami_port = {free_port()}\nagi_port = {free_port()}\n'
                    f'[crm]\nurl = "sqlite:///cc.db"\n[desktop]\nport = {free_port()}\n')
    proc = start_daemon(path, cwd=tmp_path)
    try:
        out = read_until(proc, "callcenter running", 30)
        assert f"IVR flows loaded from {Path(ivr_flows.__file__).resolve().parent / 'flows'}" in out
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
