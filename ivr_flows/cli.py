"""``callcenter flows ...``: validate, test, graph, history, rollback.

The click group is built by :func:`build_flows_group` so the main CLI can
hand it a CRM opener for ``--customer-db`` URLs other than YAML files (the
crm_core adapter); ``flows`` is the group with the YAML opener only.

Exit status: 0 success, 1 invalid flows / failed test cases / refused
rollback, 2 bad usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from ivr_flows.cases import parse_time, run_test_file
from ivr_flows.flowset import PROMPTS_FILE, ROUTES_FILE, TESTS_SUFFIX, FlowSet, is_flow_file, load_flowset
from ivr_flows.graph import render
from ivr_flows.history import FlowHistory, HistoryError, digest
from ivr_flows.loader import load_flow
from ivr_flows.memory import InMemoryCustomers
from ivr_flows.ports import CustomerPort
from ivr_flows.registry import HISTORY_DIR, rollback
from ivr_flows.sounds import SoundsDir, missing_sounds
from ivr_flows.testing import ScriptError, format_result, run_call

#: ./ivr_flows/flows when run from a checkout (the config's default), else the shipped flows.
DEFAULT_FLOWS_DIR = ("ivr_flows/flows" if Path("ivr_flows/flows").is_dir()
                     else str(Path(__file__).resolve().parent / "flows"))

CustomerOpener = Callable[[str], CustomerPort]


def open_yaml_customers(url: str) -> CustomerPort:
    """``customers.yaml``, ``file:customers.yaml`` or ``file:///abs/customers.yaml``."""
    path = url.removeprefix("file://") if url.startswith("file://") else url.removeprefix("file:")
    if "://" in path:
        raise click.BadParameter(f"{url!r}: this command reads YAML customer files only (file:PATH or PATH)",
                                 param_hint="--customer-db")
    try:
        return InMemoryCustomers.from_yaml(path)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--customer-db") from None


@dataclass
class _Options:
    flows_dir: Path
    routes: Path | None
    open_customer_db: CustomerOpener

    @property
    def routes_path(self) -> Path:
        return self.routes or self.flows_dir / ROUTES_FILE

    def load(self) -> FlowSet:
        flow_set, errors = load_flowset(self.flows_dir, self.routes)
        if flow_set is None:
            for error in errors:
                click.echo(str(error))
            raise click.exceptions.Exit(_failed(f"{len(errors)} error(s): fix the flows first "
                                                f"(callcenter flows validate)"))
        return flow_set


def _failed(message: str) -> int:
    click.echo(message, err=True)
    return 1


def build_flows_group(open_customer_db: CustomerOpener | None = None) -> click.Group:
    """The ``flows`` command group; ``open_customer_db(url)`` opens ``--customer-db`` URLs."""

    def opener(url: str) -> CustomerPort:
        if open_customer_db is not None and "://" in url and not url.startswith("file://"):
            return open_customer_db(url)
        return open_yaml_customers(url)

    @click.group("flows", context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--flows-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_FLOWS_DIR,
                  envvar="CALLCENTER_FLOWS_DIR", show_default=True, help="Directory of the flow files.")
    @click.option("--routes", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Routes file (default: FLOWS_DIR/routes.yaml).")
    @click.pass_context
    def flows(ctx: click.Context, flows_dir: Path, routes: Path | None) -> None:
        """IVR flows: check, try out, draw and version the files admins edit."""
        ctx.obj = _Options(flows_dir, routes, opener)

    @flows.command()
    @click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--no-tests", is_flag=True, help="Do not run the NAME.tests.yaml test cases.")
    @click.option("--sounds-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                  help="Also check every prompt a flow plays has a file in this Asterisk sounds directory "
                       "(e.g. /var/lib/asterisk/sounds), in every language the flows offer.")
    @click.pass_obj
    def validate(opts: _Options, files: tuple[Path, ...], no_tests: bool, sounds_dir: Path | None) -> None:
        """Check flow FILES (default: every file of the flows directory).

        A flow file given here is checked in place of the flow of the same
        name, together with the other flows, routes.yaml and prompts.yaml; its
        test cases (NAME.tests.yaml) run too.  With --sounds-dir, a prompt
        without a file there (SOUNDS_DIR/LANGUAGE/NAME.wav, .gsm, ...) is an
        error at the line that plays it.  Every error is printed as
        FILE:LINE:COLUMN: REASON.  Exit 0 when all is well, 1 otherwise.
        """
        routes, prompts, overrides, tests = opts.routes, None, {}, []
        errors = []
        for path in files:
            if path.name.endswith(TESTS_SUFFIX):
                tests.append(path)
            elif path.name == ROUTES_FILE:
                routes = path
            elif path.name == PROMPTS_FILE:
                prompts = path
            else:
                try:
                    overrides[path.stem] = (str(path), path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError) as exc:
                    click.echo(f"{path}:1:1: cannot read the file: {exc}")
                    raise click.exceptions.Exit(1)
                sibling = [d / f"{path.stem}{TESTS_SUFFIX}" for d in (path.parent, opts.flows_dir)]
                tests += [t for t in sibling if t.exists()][:1]
        if not files:
            tests = sorted(opts.flows_dir.glob(f"*{TESTS_SUFFIX}"))
        flow_set, errors = load_flowset(opts.flows_dir, routes, prompts_path=prompts, overrides=overrides)
        passed = 0
        if flow_set is not None and not no_tests:
            for path in tests:
                count, problems = run_test_file(path, flow_set)
                passed += count
                errors += problems
        if flow_set is not None and sounds_dir is not None:
            errors += missing_sounds(flow_set, SoundsDir(sounds_dir))
        for error in sorted(errors):
            click.echo(str(error))
        if errors:
            raise click.exceptions.Exit(_failed(f"{len(errors)} error(s)"))
        assert flow_set is not None
        click.echo(f"ok: {len(flow_set.flows)} flow(s) valid"
                   + ("" if no_tests else f", {passed} test case(s) passed")
                   + ("" if sounds_dir is None else f", every prompt file in {sounds_dir}"))

    @flows.command("test")
    @click.argument("flow")
    @click.option("--ani", default="", help="The caller's number (empty: withheld).")
    @click.option("--digits", default="", metavar="A,B,...",
                  help="The caller's answers, one per prompt: 1,2,10000008 ('' = silence, e.g. 1,,2).")
    @click.option("--at", "at_text", default=None, metavar="ISO-TIME",
                  help="Time of the call (default: now); without a zone, in routes.yaml's time zone.")
    @click.option("--customer-db", default=None, metavar="URL", help="Customers for CRM lookups (a YAML file).")
    @click.option("--dnis", default=None, help="Dialed number the flow sees (default: its route's).")
    @click.option("--waiting", multiple=True, metavar="QUEUE=N", help="Calls waiting in a queue (repeatable).")
    @click.option("--trusted-callerid/--untrusted-callerid", "trusted", default=None,
                  help="Whether the trunk vouches for the caller's number (default: the route's trusted_callerid).")
    @click.pass_obj
    def test_flow(opts: _Options, flow: str, ani: str, digits: str, at_text: str | None,
                  customer_db: str | None, dnis: str | None, waiting: tuple[str, ...], trusted: bool | None) -> None:
        """Play FLOW (a flow name, or a dialed number to route) against a scripted caller.

        Prints every step, the path taken and the hand-off.  The caller hangs
        up when the script runs out of answers.
        """
        flow_set = opts.load()
        zone = flow_set.routes.timezone
        try:
            at = parse_time(at_text, zone) if at_text else datetime.now(ZoneInfo(zone))
        except ValueError:
            raise click.BadParameter(f"{at_text!r} is not an ISO time", param_hint="--at") from None
        counts = {}
        for item in waiting:
            queue, _, number = item.partition("=")
            if not number.isdigit():
                raise click.BadParameter(f"{item!r} is not QUEUE=N", param_hint="--waiting")
            counts[queue] = int(number)
        customers = opts.open_customer_db(customer_db) if customer_db else InMemoryCustomers()
        answers = digits.split(",") if digits else []
        try:
            result = run_call(flow_set, flow, ani=ani, digits=answers, at=at, customers=customers,
                              waiting=counts, dnis=dnis, trusted_callerid=trusted)
        except ScriptError as exc:
            raise click.exceptions.Exit(_failed(str(exc)))
        click.echo(format_result(result))

    @flows.command()
    @click.argument("flow")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="flow.svg, flow.png, flow.pdf (needs graphviz) or flow.dot.")
    @click.pass_obj
    def graph(opts: _Options, flow: str, output: Path) -> None:
        """Draw FLOW as a diagram (DOT text when graphviz is not installed)."""
        path = opts.flows_dir / f"{flow}.yaml"
        if "/" in flow or "\\" in flow or not is_flow_file(path) or not path.is_file():
            raise click.BadParameter(f"no flow {flow!r} in {opts.flows_dir}", param_hint="FLOW")
        flow_obj, errors = load_flow(path)
        if flow_obj is None:
            for error in errors:
                click.echo(str(error))
            raise click.exceptions.Exit(_failed(f"cannot draw {flow!r}: {len(errors)} error(s)"))
        _, message = render(flow_obj, output)
        click.echo(message)

    @flows.command()
    @click.argument("name")
    @click.pass_obj
    def history(opts: _Options, name: str) -> None:
        """List the stored versions of flow NAME."""
        store = FlowHistory(opts.flows_dir / HISTORY_DIR)
        try:
            versions = store.versions(name)
        except HistoryError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from None
        path = opts.flows_dir / f"{name}.yaml"
        current = digest(path.read_text(encoding="utf-8")) if path.exists() else None
        if not versions:
            click.echo(f"flow {name!r} has no stored versions yet (they are stored when the daemon loads it)")
            return
        now_at = max((v.number for v in versions if v.digest == current), default=None)
        first_seen: dict[str, int] = {}
        for version in versions:
            notes = []
            if version.digest in first_seen:
                notes.append(f"same as v{first_seen[version.digest]}")
            first_seen.setdefault(version.digest, version.number)
            if version.number == now_at:
                notes.append("the file now")
            click.echo(f"v{version.number:<4} {version.saved_at:%Y-%m-%d %H:%M:%S} UTC  {version.digest[:12]}"
                       + (f"  ({', '.join(notes)})" if notes else ""))
        if current is None:
            click.echo(f"{path} does not exist")
        elif current not in first_seen:
            click.echo(f"{path} has changes not stored yet (not loaded by the daemon)")

    @flows.command("rollback")
    @click.argument("name")
    @click.argument("version", type=int, required=False)
    @click.pass_obj
    def rollback_flow(opts: _Options, name: str, version: int | None) -> None:
        """Put VERSION of flow NAME back (default: the version before the current one).

        The version is checked with the other files first.  A running daemon
        picks the file up by itself (or at once on SIGHUP).
        """
        result = rollback(opts.flows_dir, opts.routes_path, FlowHistory(opts.flows_dir / HISTORY_DIR), name,
                          version)
        for error in result.errors:
            click.echo(str(error))
        if not result.ok:
            raise click.exceptions.Exit(_failed(result.message))
        click.echo(result.message)

    return flows


flows = build_flows_group()
