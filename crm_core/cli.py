"""``callcenter db ...`` and ``callcenter contacts ...``: the CRM store's commands.

Each takes ``--config FILE`` (only its ``[crm]`` section is read) and/or
``--url URL`` (which wins); with neither, the defaults and the
``CALLCENTER_CRM_URL`` environment variable apply.  Exit status: 0 done,
1 the database failed (the reason is printed), 2 bad usage or config.
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click
from sqlalchemy.exc import SQLAlchemyError

from callcenter.config import ConfigError, CrmConfig, build_config
from crm_core.db import backend_of, make_engine
from crm_core.journal import Journal, JournalError

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
