"""The ``callcenter`` command: one tool, a subcommand per job."""

from __future__ import annotations

import sys
from typing import Any
from pathlib import Path

import click

from callcenter.config import Config, ConfigError, load_config
from callcenter.routing.cli import register as register_runtime_commands
from crm_core import cli as crm_cli
from ivr_flows.cli import build_flows_group
from ivr_flows.prompts_cli import prompts


def _open_crm(url: str):  # `flows test --customer-db URL`: read-only lookups in a real CRM
    from callcenter.crm_ports import OfflineCrmCustomers

    return OfflineCrmCustomers(url)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="callcenter")
def cli() -> None:
    """callcenter: a CTI contact-center server for Asterisk.

    It answers hotline calls over FastAGI, runs the IVR flows, routes callers
    to agents, pops the customer on the agent desktop and logs every contact
    in the CRM store.
    """


def _load_or_exit(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} error(s) in {path}", err=True)
        sys.exit(2)


@cli.command("check-config")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check_config(files: tuple[str, ...]) -> None:
    """Validate config FILES; print every error as FILE: KEY: REASON.

    Exit status 0 when every file is valid, 2 when any has an error.
    """
    failed = False
    for path in files:
        try:
            load_config(path)
        except ConfigError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(str(problem))
        else:
            click.echo(f"{path}: ok")
    sys.exit(2 if failed else 0)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file (see callcenter.example.toml).")
def run(config_path: str) -> None:
    """Run the server until SIGTERM or Ctrl-C."""
    config = _load_or_exit(config_path)
    sys.exit(_serve(config))


@cli.command()
@click.option("--duration", type=float, default=None, metavar="SECONDS",
              help="Stop by itself after this many seconds (default: run until Ctrl-C).")
@click.option("--data-dir", type=click.Path(file_okay=False), default="demo-data", show_default=True,
              help="Where the demo keeps its SQLite CRM, contact journal and editable flows.")
@click.option("--desktop-port", type=int, default=8080, show_default=True)
@click.option("--api-port", type=int, default=8081, show_default=True,
              help="The REST API for integrations (0: off).")
@click.option("--agi-port", type=int, default=4573, show_default=True)
@click.option("--call-every", type=float, default=6.0, show_default=True, metavar="SECONDS",
              help="A simulated caller dials in this often (0: no calls).")
def demo(duration: float | None, data_dir: str, desktop_port: int, api_port: int, agi_port: int,
         call_every: float) -> None:
    """Run the whole server on embedded defaults (SQLite, in-process state)
    against a simulated Asterisk with agents and callers."""
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from callcenter.demo import demo_config
    from callcenter.demo_lab import DEMO_PASSWORD, DEMO_SUPERVISOR, DemoLab, seed_customers
    from callcenter.logging import setup_logging

    setup_logging("info", "text")
    lab = DemoLab(reactor, agi_port, interval=call_every or 6.0)
    ami_port = lab.start()
    config = demo_config(Path(data_dir), desktop_port=desktop_port, agi_port=agi_port, ami_port=ami_port,
                         api_port=api_port)
    seed_customers(config.crm.url, config.crm.default_region)
    if call_every > 0:
        reactor.callWhenRunning(lambda: reactor.callLater(2.0, lab.start_calling))
    reactor.addSystemEventTrigger("after", "shutdown", lab.stop)
    api = f", REST API on http://127.0.0.1:{api_port}/api/v1/" if api_port > 0 else ""
    click.echo(f"callcenter demo: data in {Path(data_dir).resolve()}, agent desktop on "
               f"http://127.0.0.1:{desktop_port}/ (agents 6001-6003), wallboard on "
               f"http://127.0.0.1:{desktop_port}/wallboard.html ({DEMO_SUPERVISOR}), password "
               f"{DEMO_PASSWORD!r}{api} ; Ctrl-C stops it", err=True)
    sys.exit(_serve(config, run_for=duration, on_started=lab.log_agents_in))


def _serve(config: Config, run_for: float | None = None, on_started: Any = None) -> int:
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from callcenter.app import build_root
    from callcenter.logging import setup_logging
    from callcenter.runtime import run_until_stopped

    setup_logging(config.log.level, config.log.format)
    root = build_root(config, reactor)
    return run_until_stopped(root, reactor, run_for=run_for, on_sighup=root.ivr_flows.reload,
                             on_started=(lambda: on_started(root)) if on_started else None)


cli.add_command(build_flows_group(_open_crm))
cli.add_command(prompts)
cli.add_command(crm_cli.db)
cli.add_command(crm_cli.contacts)
register_runtime_commands(crm_cli.agents, crm_cli.queues)  # agents list/login/logout/state, queues status
cli.add_command(crm_cli.agents)
cli.add_command(crm_cli.queues)
cli.add_command(crm_cli.callbacks)


def main() -> None:
    cli(prog_name="callcenter")


if __name__ == "__main__":
    main()
