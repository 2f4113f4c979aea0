"""Operators' commands that talk to the running daemon over its control socket.

``callcenter agents list|login|logout|state`` and ``callcenter queues status``;
the configuration commands of the same groups (``agents set``, ``queues set``,
...) edit the CRM store directly and live in ``crm_core/cli.py``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from callcenter.config import ConfigError, load_config
from callcenter.routing.control import ask


def _socket_path(config_path: str | None, path: str | None) -> str:
    if path:
        return path
    if not config_path:
        click.echo("give the daemon's --config (its [acd] control_socket) or --socket PATH", err=True)
        sys.exit(2)
    try:
        found = load_config(config_path).acd.control_socket
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    if not found:
        click.echo(f"{config_path}: [acd] control_socket is not set; the daemon has no control socket", err=True)
        sys.exit(2)
    return found


def request(path: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One request to the daemon's control socket; exits 1 when the daemon cannot be reached."""
    try:
        (answer,) = ask(path, payload, timeout=timeout)
    except OSError as exc:
        click.echo(f"cannot reach the daemon at {path}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    except ValueError:
        answer = None
    if answer is None:
        click.echo(f"the daemon at {path} gave an unreadable answer", err=True)
        sys.exit(1)
    return answer


def _checked(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer.get("ok"):
        click.echo(f"refused: {answer.get('error', 'no reason given')}", err=True)
        sys.exit(2)
    return answer


def _options(fn: Any) -> Any:
    fn = click.option("--socket", "socket_path", help="the daemon's control socket (default: from --config)")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                      help="the daemon's config file (for [acd] control_socket)")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="print the daemon's JSON answer")(fn)
    return fn


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        click.echo("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def register(agents: click.Group, queues: click.Group) -> None:
    """Add the runtime commands to the ``agents`` and ``queues`` groups."""

    @agents.command("list")
    @_options
    def agents_list(config_path: str | None, socket_path: str | None, as_json: bool) -> None:
        """Every agent with state, reason, time in state, device and queues."""
        answer = _checked(request(_socket_path(config_path, socket_path), {"op": "agents.list"}))
        if as_json:
            click.echo(json.dumps(answer["agents"], indent=2, ensure_ascii=False))
            return
        rows = [[a["agent"], a["state"], a["reason"] or "", "" if a["seconds"] is None else f"{a['seconds']:.0f}s",
                 a["interface"] or "", ",".join(a["queues"]), a["call_id"] or "", str(a["calls_handled"])]
                for a in answer["agents"]]
        _table(rows, ["AGENT", "STATE", "REASON", "IN STATE", "INTERFACE", "QUEUES", "CALL", "HANDLED"])

    @agents.command("login")
    @click.argument("agent")
    @click.option("--interface", help="the agent's phone, e.g. PJSIP/6001 (default: configured)")
    @click.option("--queues", help="comma-separated queues (default: the agent's configured queues)")
    @click.option("--ready", is_flag=True, help="ready at once (default: not ready, reason login)")
    @_options
    def agents_login(agent: str, interface: str | None, queues: str | None, ready: bool, config_path: str | None,
                     socket_path: str | None, as_json: bool) -> None:
        """Log AGENT in with a device and queues."""
        payload: dict[str, Any] = {"op": "agents.login", "agent": agent, "interface": interface, "ready": ready}
        if queues is not None:
            payload["queues"] = [q.strip() for q in queues.split(",") if q.strip()]
        _report(_checked(request(_socket_path(config_path, socket_path), payload)), as_json)

    @agents.command("logout")
    @click.argument("agent")
    @_options
    def agents_logout(agent: str, config_path: str | None, socket_path: str | None, as_json: bool) -> None:
        """Log AGENT out (after the current call, if on one)."""
        _report(_checked(request(_socket_path(config_path, socket_path), {"op": "agents.logout", "agent": agent})),
                as_json)

    @agents.command("state")
    @click.argument("agent")
    @click.argument("state", type=click.Choice(["ready", "not-ready"]))
    @click.option("--reason", help="not-ready reason code (break, lunch, training, ...)")
    @_options
    def agents_state(agent: str, state: str, reason: str | None, config_path: str | None, socket_path: str | None,
                     as_json: bool) -> None:
        """Set AGENT ready or not ready (with a reason)."""
        payload = {"op": "agents.state", "agent": agent, "state": state, "reason": reason}
        _report(_checked(request(_socket_path(config_path, socket_path), payload)), as_json)

    @agents.command("wrap-up")
    @click.argument("agent")
    @click.option("--extend", type=click.IntRange(1, 3600), help="more seconds of wrap-up")
    @_options
    def agents_wrap_up(agent: str, extend: int | None, config_path: str | None, socket_path: str | None,
                       as_json: bool) -> None:
        """End AGENT's wrap-up now (ready, or the state asked for during the call), or --extend it."""
        payload: dict[str, Any] = {"op": "agents.wrap-up", "agent": agent}
        if extend is not None:
            payload["extend"] = extend
        _report(_checked(request(_socket_path(config_path, socket_path), payload)), as_json)

    @queues.command("status")
    @_options
    def queues_status(config_path: str | None, socket_path: str | None, as_json: bool) -> None:
        """Live figures of every queue: waiting, longest wait, service level, ASA, AHT, abandons, agents."""
        answer = _checked(request(_socket_path(config_path, socket_path), {"op": "queues.status"}))
        if as_json:
            click.echo(json.dumps(answer["queues"], indent=2, ensure_ascii=False))
            return
        rows = []
        for q in answer["queues"]:
            sl = q.get("service_level")
            rows.append([q["queue"], str(q["waiting"]), f"{q['longest_wait']:.0f}s",
                         "-" if sl is None else f"{100 * sl:.1f}%", _secs(q.get("asa")), _secs(q.get("aht")),
                         "-" if q.get("abandon_rate") is None else f"{100 * q['abandon_rate']:.1f}%",
                         " ".join(f"{k}={v}" for k, v in sorted(q.get("agents_by_state", {}).items()))])
        _table(rows, ["QUEUE", "WAITING", "LONGEST", "SL", "ASA", "AHT", "ABANDON", "AGENTS"])


def _secs(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _report(answer: dict[str, Any], as_json: bool) -> None:
    agent = answer.get("agent")
    if as_json:
        click.echo(json.dumps(agent, indent=2, ensure_ascii=False))
    elif agent:
        reason = f" ({agent['reason']})" if agent.get("reason") else ""
        pending = f", then {agent['pending']}" if agent.get("pending") else ""
        click.echo(f"{agent['agent']}: {agent['state']}{reason}{pending}")
    else:
        click.echo("ok")
