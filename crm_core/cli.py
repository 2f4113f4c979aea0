"""``callcenter db|contacts|agents|queues|callbacks ...``: the CRM store's commands.

``agents``, ``queues`` and ``callbacks`` edit the ACD's configuration and
show it; other modules add their run-time subcommands to the same groups.

Each takes ``--config FILE`` (only its ``[crm]`` section is read) and/or
``--url URL`` (which wins); with neither, the defaults and the
``CALLCENTER_CRM_URL`` environment variable apply.  Exit status: 0 done,
1 the database failed (the reason is printed), 2 bad usage or config.
"""

from __future__ import annotations

import json
import sys
import tomllib
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from callcenter.config import ConfigError, CrmConfig, build_config
from crm_core.acd_config import UNSET
from crm_core.db import backend_of, make_engine
from crm_core.journal import Journal, JournalError
from crm_core.models import CALLBACK_STATUSES, ENGINES, FALLBACK_ACTIONS, NO_AGENTS_RULES, ROLES, STRATEGIES

_PLACEHOLDER_SECRET = "not used by the CRM commands"


def crm_config(config_path: str | None, url: str | None) -> CrmConfig:
    """The ``[crm]`` settings from a config file (or the defaults), ``--url`` winning."""
    doc: dict[str, Any] = {}
    base = None
    source = "<defaults>"
    if config_path:
        source, base = config_path, Path(config_path).resolve().parent
        try:
            doc = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise click.UsageError(f"{config_path}: cannot read: {exc}") from None
    try:
        crm = dict(doc.get("crm") or {})
        if url:
            crm["url"] = url
        cfg = build_config({"crm": crm, "asterisk": {"ami_secret": _PLACEHOLDER_SECRET}}, source=source, base=base)
    except ConfigError as exc:
        raise click.UsageError("\n".join(str(p) for p in exc.problems)) from None
    return cfg.crm


def _connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--url", help="SQLAlchemy URL of the CRM database (wins over the config).")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
                      help="callcenter TOML config; its [crm] section is used.")(fn)
    return fn


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group("db")
def db() -> None:
    """The CRM database: schema migrations and seed data."""


@db.command("upgrade")
@_connection_options
@click.option("--revision", default="head", show_default=True, help="Migrate to this revision.")
def upgrade(config_path: str | None, url: str | None, revision: str) -> None:
    """Create or migrate the CRM schema (Alembic) to the latest revision."""
    from crm_core.migrate import thd_upgrade

    cfg = crm_config(config_path, url)
    engine = make_engine(cfg.url)
    try:
        reached = thd_upgrade(engine, revision)
    except SQLAlchemyError as exc:
        _fail(f"cannot migrate {backend_of(cfg.url)} database: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    click.echo(f"CRM schema at revision {reached} ({backend_of(cfg.url)})")


@db.command("seed")
@_connection_options
@click.option("--customers", type=click.IntRange(1), required=True, help="How many customers to add.")
@click.option("--contacts", type=click.IntRange(0), default=None,
              help="Total contacts (calls) to add; default about 5 per customer.")
@click.option("--seed", "seed_value", type=int, default=1, show_default=True, help="Random seed: same seed, same data.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Date the data is current as of (default today), for reproducible data.")
@click.option("--batch", type=click.IntRange(100), default=5000, show_default=True, help="Customers per batch.")
@click.option("--customer-secret", "customer_secret", metavar="DIGITS", default=None,
              help="Give every added customer this phone self-service PIN (4-12 digits; demo and test data).")
def seed(config_path: str | None, url: str | None, customers: int, contacts: int | None, seed_value: int,
         as_of: datetime | None, batch: int, customer_secret: str | None) -> None:
    """Add realistic customers (Chinese and English), phones, accounts,
    agreements, tickets and contact history; migrates the schema first."""
    from crm_core.customers import check_secret
    from crm_core.errors import InvalidInput
    from crm_core.migrate import thd_upgrade
    from crm_core.seed import SeedPlan, contacts_per_customer, thd_seed

    cfg = crm_config(config_path, url)
    if customer_secret is not None:
        try:
            check_secret(customer_secret, "--customer-secret")
        except InvalidInput as exc:
            raise click.BadParameter(exc.reason, param_hint="--customer-secret") from None
    anchor = int(datetime.combine(as_of.date(), datetime.min.time(), timezone.utc).timestamp()) if as_of else 0
    plan = SeedPlan(customers, contacts_per_customer(customers, contacts), seed_value, anchor, batch,
                    customer_secret=customer_secret)
    engine = make_engine(cfg.url)
    try:
        thd_upgrade(engine)
        with click.progressbar(length=customers, label="customers", file=sys.stderr,
                               show_pos=True, show_eta=True) as bar:
            report = thd_seed(engine, plan, bar.update)
    except SQLAlchemyError as exc:
        _fail(f"seeding failed: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    click.echo(f"added {report.customers} customers, {report.contacts} contacts and {report.tickets} tickets "
               f"in {report.seconds:.1f} s")


@db.command("set-secret")
@_connection_options
@click.argument("customer_id", type=int)
@click.option("--secret", default=None,
              help="The PIN, or the last digits of the customer's ID number (asked for, hidden, when not given).")
@click.option("--clear", is_flag=True, help="Remove the secret instead: the IVR can no longer verify the customer.")
def set_secret(config_path: str | None, url: str | None, customer_id: int, secret: str | None, clear: bool) -> None:
    """Set the secret a customer keys to use phone self-service (stored as a salted hash);
    clears wrong tries and any lock."""
    from crm_core.customers import thd_set_verify_secret
    from crm_core.errors import InvalidInput, NotFound

    cfg = crm_config(config_path, url)
    if not clear and secret is None:
        secret = click.prompt("Self-service PIN (4-12 digits)", hide_input=True, confirmation_prompt=True)
    engine = make_engine(cfg.url)
    try:
        thd_set_verify_secret(engine, customer_id, None if clear else secret)
    except InvalidInput as exc:
        raise click.BadParameter(exc.reason, param_hint="--secret") from None
    except NotFound as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot set the secret: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    click.echo(f"customer {customer_id}: self-service secret {'removed' if clear else 'set'}")


@db.command("unlock")
@_connection_options
@click.argument("customer_id", type=int)
def unlock(config_path: str | None, url: str | None, customer_id: int) -> None:
    """Lift a customer's self-service lock (too many wrong secrets) and forget the wrong tries."""
    from crm_core.customers import thd_unlock_verify
    from crm_core.errors import NotFound

    cfg = crm_config(config_path, url)
    engine = make_engine(cfg.url)
    try:
        thd_unlock_verify(engine, customer_id)
    except NotFound as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot unlock: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    click.echo(f"customer {customer_id}: self-service unlocked")


@click.group("contacts")
def contacts() -> None:
    """The contact log: one record per call."""


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO 8601 date or time, got {value!r}", param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


@contacts.command("list")
@_connection_options
@click.option("--since", help="Only calls started at or after this ISO 8601 time (UTC unless it says).")
@click.option("--ani", help="Only calls from this number (any format; exact text if not a valid number).")
@click.option("--customer", "customer_id", type=int, help="Only calls of this customer id.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many calls.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_contacts(config_path: str | None, url: str | None, since: str | None, ani: str | None,
                  customer_id: int | None, limit: int | None, as_json: bool) -> None:
    """List calls, oldest first."""
    from crm_core.contact_codec import contact_to_json
    from crm_core.contacts import iter_contacts

    cfg = crm_config(config_path, url)
    moment = _parse_since(since)
    engine = make_engine(cfg.url)
    try:
        for record in iter_contacts(engine, region=cfg.default_region, since=moment, ani=ani,
                                    customer_id=customer_id, limit=limit):
            if as_json:
                click.echo(json.dumps(contact_to_json(record), ensure_ascii=False, separators=(",", ":")))
            else:
                click.echo("\t".join("" if x is None else str(x) for x in (
                    record.started_at.isoformat(), record.linkedid, record.direction, record.ani, record.queue,
                    record.agent, record.wait_seconds, record.talk_seconds, record.disposition)))
    except SQLAlchemyError as exc:
        _fail(f"cannot read contacts: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


@contacts.command("journal")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="callcenter TOML config; its crm.journal is used.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False), help="The journal file (wins).")
@click.option("--requeue", is_flag=True, help="Put rejected records back in line for the CRM.")
def journal(config_path: str | None, journal_path: str | None, requeue: bool) -> None:
    """Show what the local journal holds: records waiting for the CRM, and rejected ones."""
    path = journal_path or crm_config(config_path, None).journal
    if not Path(path).exists():
        _fail(f"no journal at {path}")
    j = Journal(path)
    try:
        j.open()
        if requeue:
            click.echo(f"requeued {j.requeue_rejected()} rejected records")
        counts = j.counts()
        click.echo(f"{path}: {counts['pending']} waiting for the CRM, {counts['rejected']} rejected")
        for entry in j.rejected():
            click.echo(f"rejected #{entry.seq} {entry.linkedid} (written {entry.written_at}): {entry.error}")
    except JournalError as exc:
        _fail(str(exc))
    finally:
        j.close()


# -- the ACD's configuration: agents, queues, callbacks -----------------------------------------------------------


@contextmanager
def _crm(config_path: str | None, url: str | None, doing: str) -> Iterator[Engine]:
    """An engine on the CRM for one command; database failures and missing rows exit 1 with the reason."""
    from crm_core.errors import NotFound

    cfg = crm_config(config_path, url)
    engine = make_engine(cfg.url)
    try:
        yield engine
    except NotFound as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot {doing}: {str(exc).splitlines()[0]}{_schema_hint(engine)}")
    finally:
        engine.dispose()


def _schema_hint(engine: Engine) -> str:
    from crm_core.migrate import head_revision, thd_current_revision

    try:
        current = thd_current_revision(engine)
    except SQLAlchemyError:
        return ""
    if current == head_revision():
        return ""
    return f" (the schema is at revision {current or 'none'}, not {head_revision()}: run `callcenter db upgrade`)"


def _bad_value(exc: Any, options: dict[str, str]) -> click.BadParameter:
    """``InvalidInput`` as a usage error naming the option it came from (exit status 2)."""
    field, _, detail = exc.field.partition(" ")
    reason = f"{detail}: {exc.reason}" if detail else exc.reason
    return click.BadParameter(reason, param_hint=options.get(field, field))


def _pairs(text: str | None, option: str, *, what: str, default: int | None = None) -> Any:
    """``a:3,b:5`` as ((a, 3), (b, 5)); ``default`` is the number of an item without one; '' is empty."""
    if text is None:
        return UNSET
    found = []
    for item in (part.strip() for part in text.split(",")):
        if not item and text.strip():
            raise click.BadParameter(f"empty item in {text!r}", param_hint=option)
        if not item:
            continue
        name, sep, number = (x.strip() for x in item.partition(":"))
        if not sep and default is not None:
            number = str(default)
        try:
            found.append((name, int(number)))
        except ValueError:
            raise click.BadParameter(f"expected {what}, got {item!r}", param_hint=option) from None
    return tuple(found)


def _names(text: str | None, option: str) -> Any:
    """``a,b`` as ("a", "b"); '' is none; an empty item among others is an error."""
    if text is None:
        return UNSET
    if not text.strip():
        return ()
    names = tuple(part.strip() for part in text.split(","))
    if "" in names:
        raise click.BadParameter(f"empty item in {text!r}", param_hint=option)
    return names


def _maybe_seconds(text: str | None, option: str) -> Any:
    """An option that may be switched off: seconds, or ``none``/``off``/'' for never."""
    if text is None:
        return UNSET
    if text.strip().lower() in ("", "none", "off", "never"):
        return None
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"expected whole seconds or 'none', got {text!r}", param_hint=option) from None


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Columns padded by display width (CJK characters take two)."""
    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

    cells = [headers] + [tuple("-" if x is None or x == "" else str(x) for x in row) for row in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths)).rstrip())


def _pairs_text(pairs: tuple[tuple[str, int], ...], *, omit: int | None = None) -> str:
    return ",".join(name if number == omit else f"{name}:{number}" for name, number in pairs)


def _hours_text(hours: Any) -> str:
    """``mon-fri 08:00-18:00; sat 09:00-12:00 (Asia/Shanghai)``; '' when always open."""
    from crm_core.acd_config import DAYS

    if hours is None:
        return ""
    groups: list[tuple[list[str], Any]] = []
    for day, spans in hours.days:
        last = groups[-1] if groups else None
        if last and last[1] == spans and DAYS.index(last[0][-1]) + 1 == DAYS.index(day):
            last[0].append(day)
        else:
            groups.append(([day], spans))
    text = "; ".join(f"{days[0] if len(days) == 1 else days[0] + '-' + days[-1]} "
                     f"{','.join(f'{a}-{b}' for a, b in spans)}" for days, spans in groups)
    return f"{text or 'closed'} ({hours.tz})"


def _json_line(doc: dict[str, Any]) -> None:
    click.echo(json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str))


class _UsageLine(click.ClickException):
    """A usage error shown as one line, ``error: Invalid value for '--ring': ...`` (exit status 2)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class _ConfigCommand(click.Command):
    """A configuration command: bad values (click's or the store's) are one line on stderr, exit status 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message()) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message()) from None


@click.group("agents")
def agents() -> None:
    """Agents: their phone, skills, queues, role and groups."""


AGENT_OPTIONS = {"login": "LOGIN", "display_name": "--name", "interface": "--interface", "skills": "--skills",
                 "queues": "--queues", "role": "--role", "password": "--password-stdin", "active": "--active",
                 "groups": "--groups"}


@agents.command("set", cls=_ConfigCommand)
@_connection_options
@click.argument("login")
@click.option("--name", "display_name", help="Display name (default on create: the login).")
@click.option("--interface", help="The agent's phone, e.g. PJSIP/6001 ('' removes it).")
@click.option("--skills", help="SKILL:LEVEL,... with levels 1-5, e.g. billing:3,english:5 (replaces them; '' none).")
@click.option("--queues", "queue_list", metavar="QUEUE[:PENALTY],...",
              help="Queues the agent answers, lower penalty asked first (replaces them; '' none).")
@click.option("--role", type=click.Choice(ROLES), help="agent, supervisor or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the desktop password from the first line of stdin.")
@click.option("--active/--inactive", default=None, help="An inactive agent cannot log in.")
@click.option("--groups", "group_list", metavar="GROUP,...",
              help="The agent's groups: a supervisor sees the queues and agents of theirs (replaces them; '' none).")
def set_agent(config_path: str | None, url: str | None, login: str, display_name: str | None,
              interface: str | None, skills: str | None, queue_list: str | None, role: str | None,
              password_stdin: bool, active: bool | None, group_list: str | None) -> None:
    """Create agent LOGIN or change it: options left out keep their current value."""
    from crm_core.acd_config import thd_change_agent
    from crm_core.errors import InvalidInput

    changes: dict[str, Any] = {k: x for k, x in (("display_name", display_name), ("role", role),
                                                  ("active", active)) if x is not None}
    if interface is not None:
        changes["interface"] = interface or None
    for field, value in (("skills", _pairs(skills, "--skills", what="SKILL:LEVEL")),
                         ("queues", _pairs(queue_list, "--queues", what="QUEUE[:PENALTY]", default=0)),
                         ("groups", _names(group_list, "--groups"))):
        if value is not UNSET:
            changes[field] = value
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.BadParameter("no password on the first line of stdin", param_hint="--password-stdin")
        changes["password"] = password
    with _crm(config_path, url, "save the agent") as engine:
        try:
            agent, created = thd_change_agent(engine, login, **changes)
        except InvalidInput as exc:
            raise _bad_value(exc, AGENT_OPTIONS) from None
    click.echo(f"agent {login} {'created' if created else 'updated'}")
    _agents_table((agent,))


def _agents_table(found: Any) -> None:
    _table(("LOGIN", "NAME", "INTERFACE", "ROLE", "ACTIVE", "SKILLS", "QUEUES", "GROUPS"),
           [(a.login, a.display_name, a.interface, a.role, "yes" if a.active else "no", _pairs_text(a.skills),
             _pairs_text(a.queues, omit=0), ",".join(a.groups)) for a in found])


@agents.command("show", cls=_ConfigCommand)
@_connection_options
@click.argument("login", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per agent and line.")
def show_agents(config_path: str | None, url: str | None, login: str | None, as_json: bool) -> None:
    """Show the configuration of agent LOGIN, or of every agent."""
    from crm_core.acd_config import thd_acd_config, thd_agent
    from crm_core.errors import NotFound

    with _crm(config_path, url, "read agents") as engine:
        if login is None:
            found = thd_acd_config(engine).agents
        else:
            agent = thd_agent(engine, login)
            if agent is None:
                raise NotFound(f"no agent {login}")
            found = (agent,)
    if as_json:
        for a in found:
            _json_line({"login": a.login, "display_name": a.display_name, "interface": a.interface, "role": a.role,
                        "active": a.active, "skills": dict(a.skills), "queues": dict(a.queues),
                        "groups": list(a.groups)})
    else:
        _agents_table(found)


@agents.command("remove", cls=_ConfigCommand)
@_connection_options
@click.argument("login")
def remove_agent(config_path: str | None, url: str | None, login: str) -> None:
    """Remove agent LOGIN with their skills and queues (the contact log keeps the login)."""
    from crm_core.acd_config import thd_remove_agent

    with _crm(config_path, url, "remove the agent") as engine:
        thd_remove_agent(engine, login)
    click.echo(f"agent {login} removed")


@click.group("queues")
def queues() -> None:
    """Queues: who may answer them and how calls are routed."""


QUEUE_OPTIONS = {"name": "NAME", "display_name": "--display-name", "required_skills": "--skills",
                 "priority": "--priority", "service_level_seconds": "--service-level", "strategy": "--strategy",
                 "engine": "--engine", "ring_seconds": "--ring", "wrap_up_seconds": "--wrap-up",
                 "relax_after": "--relax-after", "relaxed_proficiency": "--relaxed-proficiency",
                 "overflow_after": "--overflow-after", "overflow_to": "--overflow-to", "max_wait": "--max-wait",
                 "on_max_wait": "--on-max-wait", "no_agents": "--no-agents",
                 "callback_priority": "--callback-priority", "callback_retries": "--callback-retries",
                 "callback_spacing": "--callback-spacing", "sticky_days": "--sticky-days", "hours": "--hours",
                 "groups": "--groups"}


def _hours_option(text: str | None) -> Any:
    """--hours: JSON, @FILE holding JSON, or none (always open)."""
    from crm_core.acd_config import hours_from_json
    from crm_core.errors import InvalidInput

    if text is None:
        return UNSET
    if text.strip().lower() in ("", "none", "always"):
        return None
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {text[1:]}: {exc}", param_hint="--hours") from None
    try:
        doc = json.loads(source)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                                 param_hint="--hours") from None
    try:
        return hours_from_json(doc)
    except InvalidInput as exc:
        raise click.BadParameter(exc.reason, param_hint="--hours") from None


@queues.command("set", cls=_ConfigCommand)
@_connection_options
@click.argument("name")
@click.option("--display-name", help="Display name (default on create: the queue name).")
@click.option("--strategy", type=click.Choice(STRATEGIES), help="How a free agent is picked.")
@click.option("--skills", help="Required SKILL:LEVEL,... (minimum proficiency 1-5; replaces them; '' none).")
@click.option("--engine", type=click.Choice(ENGINES), help="Who rings the agents: the daemon or Asterisk.")
@click.option("--priority", type=int, help="Queue priority (a larger number is served first).")
@click.option("--ring", "ring_seconds", type=int, help="Seconds an offered call rings an agent.")
@click.option("--wrap-up", "wrap_up_seconds", type=int, help="Seconds of wrap-up after a call.")
@click.option("--service-level", "service_level_seconds", type=int, help="Service-level target in seconds.")
@click.option("--relax-after", help="After this many seconds of waiting, lower the minimum proficiency ('none').")
@click.option("--relaxed-proficiency", type=int, help="The lowered minimum proficiency (1-5).")
@click.option("--overflow-after", help="After this many seconds, members of --overflow-to may answer ('none').")
@click.option("--overflow-to", help="The queue to overflow to ('' none).")
@click.option("--max-wait", help="Seconds a caller waits at most ('none': no limit).")
@click.option("--on-max-wait", type=click.Choice(FALLBACK_ACTIONS), help="What a caller gets at --max-wait.")
@click.option("--no-agents", type=click.Choice(NO_AGENTS_RULES),
              help="On arrival with nobody logged in with the skills: wait, overflow or fallback.")
@click.option("--callback-priority", type=int, help="Priority of this queue's callbacks.")
@click.option("--callback-retries", type=int, help="Dial attempts of a callback, in all.")
@click.option("--callback-spacing", type=int, help="Seconds between callback attempts.")
@click.option("--sticky-days", type=int, help="Offer a caller to their last agent within so many days (0: no).")
@click.option("--hours", "hours_text", metavar="JSON|@FILE|none",
              help='Opening hours, e.g. {"tz":"Asia/Shanghai","days":{"mon":[["08:00","18:00"]]}}; none: always.')
@click.option("--groups", "group_list", metavar="GROUP,...",
              help="The queue's groups: their supervisors see it on the wallboard (replaces them; '' none).")
def set_queue(config_path: str | None, url: str | None, name: str, hours_text: str | None, skills: str | None,
              relax_after: str | None, overflow_after: str | None, max_wait: str | None,
              overflow_to: str | None, group_list: str | None, **options: Any) -> None:
    """Create queue NAME or change it: options left out keep their current value."""
    from crm_core.acd_config import thd_change_queue
    from crm_core.errors import InvalidInput

    changes = {k: x for k, x in options.items() if x is not None}
    extra = {"hours": _hours_option(hours_text),
             "required_skills": _pairs(skills, "--skills", what="SKILL:LEVEL"),
             "relax_after": _maybe_seconds(relax_after, "--relax-after"),
             "overflow_after": _maybe_seconds(overflow_after, "--overflow-after"),
             "max_wait": _maybe_seconds(max_wait, "--max-wait"),
             "overflow_to": UNSET if overflow_to is None else (overflow_to or None),
             "groups": _names(group_list, "--groups")}
    changes.update({k: x for k, x in extra.items() if x is not UNSET})
    with _crm(config_path, url, "save the queue") as engine:
        try:
            queue, created = thd_change_queue(engine, name, **changes)
        except InvalidInput as exc:
            raise _bad_value(exc, QUEUE_OPTIONS) from None
    click.echo(f"queue {name} {'created' if created else 'updated'}")
    _queue_details(queue)


def _queue_doc(q: Any) -> dict[str, Any]:
    from crm_core.acd_config import hours_to_json

    doc = {f: getattr(q, f) for f in q.__dataclass_fields__}
    doc.update(required_skills=dict(q.required_skills), hours=hours_to_json(q.hours), groups=list(q.groups))
    return doc


def _queue_details(q: Any) -> None:
    never = "never"
    rows = [("name", q.name), ("display name", q.display_name), ("strategy", q.strategy), ("engine", q.engine),
            ("skills", _pairs_text(q.required_skills) or "-"), ("priority", q.priority),
            ("ring", f"{q.ring_seconds} s"), ("wrap-up", f"{q.wrap_up_seconds} s"),
            ("service level", f"{q.service_level_seconds} s"),
            ("relax after", never if q.relax_after is None else f"{q.relax_after} s, to proficiency "
                                                                  f"{q.relaxed_proficiency}"),
            ("overflow", never if q.overflow_after is None else f"after {q.overflow_after} s to {q.overflow_to}"),
            ("overflow to", q.overflow_to or "-"),
            ("max wait", "none" if q.max_wait is None else f"{q.max_wait} s, then {q.on_max_wait}"),
            ("on max wait", q.on_max_wait), ("no agents", q.no_agents),
            ("callbacks", f"priority {q.callback_priority}, {q.callback_retries} attempts "
                          f"{q.callback_spacing} s apart"),
            ("sticky", "no" if not q.sticky_days else f"{q.sticky_days} days"),
            ("hours", _hours_text(q.hours) or "always open"), ("groups", ",".join(q.groups) or "-")]
    for label, value in rows:
        click.echo(f"{label + ':':15} {value}")


@queues.command("show", cls=_ConfigCommand)
@_connection_options
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per queue and line.")
def show_queues(config_path: str | None, url: str | None, name: str | None, as_json: bool) -> None:
    """Show queue NAME in full, or every queue as a table."""
    from crm_core.acd_config import thd_acd_config, thd_queue
    from crm_core.errors import NotFound

    with _crm(config_path, url, "read queues") as engine:
        if name is None:
            found = thd_acd_config(engine).queues
        else:
            queue = thd_queue(engine, name)
            if queue is None:
                raise NotFound(f"no queue {name}")
            found = (queue,)
    if as_json:
        for q in found:
            _json_line(_queue_doc(q))
    elif name is not None:
        _queue_details(found[0])
    else:
        _table(("NAME", "DISPLAY", "STRATEGY", "ENGINE", "SKILLS", "PRIO", "RING", "WRAP", "SL", "OVERFLOW",
                "MAX-WAIT", "NO-AGENTS", "GROUPS", "HOURS"),
               [(q.name, q.display_name, q.strategy, q.engine, _pairs_text(q.required_skills), q.priority,
                 q.ring_seconds, q.wrap_up_seconds, q.service_level_seconds,
                 f"{q.overflow_to}@{q.overflow_after}" if q.overflow_after is not None else q.overflow_to,
                 f"{q.max_wait}:{q.on_max_wait}" if q.max_wait is not None else None, q.no_agents,
                 ",".join(q.groups), _hours_text(q.hours)) for q in found])


@queues.command("remove", cls=_ConfigCommand)
@_connection_options
@click.argument("name")
def remove_queue(config_path: str | None, url: str | None, name: str) -> None:
    """Remove queue NAME and its memberships (refused while another queue overflows to it)."""
    from crm_core.acd_config import thd_remove_queue
    from crm_core.errors import InvalidInput

    with _crm(config_path, url, "remove the queue") as engine:
        try:
            members = thd_remove_queue(engine, name)
        except InvalidInput as exc:
            _fail(f"queue {name} kept: {exc.reason}")
    click.echo(f"queue {name} removed ({members} agent{'' if members == 1 else 's'} were members)")


@click.group("callbacks")
def callbacks() -> None:
    """Callbacks the call center owes its callers."""


@callbacks.command("list", cls=_ConfigCommand)
@_connection_options
@click.option("--status", type=click.Choice(CALLBACK_STATUSES), help="Only callbacks in this status.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per callback and line.")
def list_callbacks(config_path: str | None, url: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List callbacks, the next due first."""
    from dataclasses import asdict

    from crm_core.callbacks import thd_callbacks

    with _crm(config_path, url, "read callbacks") as engine:
        found = thd_callbacks(engine, status, limit)
    if as_json:
        for c in found:
            _json_line(asdict(c))
        return
    _table(("ID", "STATUS", "NUMBER", "QUEUE", "TRIES", "NEXT ATTEMPT (UTC)", "CLAIMED BY", "LAST", "CUSTOMER",
            "TICKET"),
           [(c.id, c.status, c.number, c.queue, f"{c.attempts}/{c.max_attempts}",
             c.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S"), c.claimed_by, c.last_outcome, c.customer_id,
             c.ticket_id) for c in found])


@callbacks.command("cancel", cls=_ConfigCommand)
@_connection_options
@click.argument("callback_id", type=int)
def cancel_callback(config_path: str | None, url: str | None, callback_id: int) -> None:
    """Cancel callback CALLBACK_ID (pending or being dialled)."""
    from crm_core.callbacks import thd_cancel_callback
    from crm_core.errors import InvalidInput

    with _crm(config_path, url, "cancel the callback") as engine:
        try:
            thd_cancel_callback(engine, callback_id)
        except InvalidInput as exc:
            _fail(exc.reason)
    click.echo(f"callback {callback_id} cancelled")
