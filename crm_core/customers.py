"""Creating and changing customers, their phones, emails, addresses and accounts.

Every value is checked first (``crm_core.validate``): stored exactly, or
refused with ``InvalidInput`` before anything is written.  Phone numbers
are stored as given plus E.164 and a lookup key (``crm_core.phones``); a
number that is not valid keeps its raw text with ``valid=False``.

Phone self-service verification: a customer may have a secret (a PIN, or
the last digits of their ID number: 4 to 12 digits), stored only as a
salted scrypt hash.  ``thd_verify_secret`` answers verified, wrong, locked
or no-secret, never the secret; wrong tries are counted here, in the
customer's row, so the limit holds across calls, daemon restarts and
several daemons sharing the CRM.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from crm_core import validate as v
from crm_core.db import read_conn, write_tx
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import (
    ACCOUNT_STATUSES,
    AGREEMENT_STATUSES,
    CUSTOMER_KINDS,
    TIERS,
    accounts,
    agents,
    agreements,
    customer_addresses,
    customer_emails,
    customer_name_keys,
    customer_phones,
    customers,
)
from crm_core.passwords import hash_password, verify_password
from crm_core.phones import PhoneNumber, kind_of, parse_number

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WORDS = re.compile(r"[\s,.;:/\\()·・]+")
MAX_NOTES = 10000


@dataclass(frozen=True)
class NewAddress:
    line1: str
    country: str = "CN"
    kind: str = "home"
    region: str | None = None
    city: str | None = None
    line2: str | None = None
    postcode: str | None = None


@dataclass(frozen=True)
class NewCustomer:
    name: str
    kind: str = "person"
    tier: str = "normal"
    language: str = "zh-CN"
    phones: tuple[str, ...] = ()  # the first is the primary number
    emails: tuple[str, ...] = ()
    addresses: tuple[NewAddress, ...] = ()
    notes: str | None = None
    blacklisted: bool = False
    rfm: tuple[int, int, int] | None = None  # recency, frequency, monetary: 1-5 each
    satisfaction: float | None = None
    preferred_agent: str | None = None  # agent login
    secret: str | None = None  # phone self-service PIN, 4-12 digits (stored hashed)


@dataclass(frozen=True)
class NewAgreement:
    agreement_no: str
    service_plan: str
    starts_on: date
    ends_on: date | None = None
    monthly_fee: Decimal = Decimal("0")
    status: str = "active"


@dataclass(frozen=True)
class NewAccount:
    account_no: str
    currency: str = "CNY"
    balance: Decimal = Decimal("0")
    arrears: Decimal = Decimal("0")
    arrears_since: date | None = None
    status: str = "active"
    agreements: tuple[NewAgreement, ...] = ()


def rfm_value(recency: int, frequency: int, monetary: int) -> int:
    """Value score 0-100 from RFM scores 1-5; monetary weighs double."""
    return round(100 * ((recency - 1) + (frequency - 1) + 2 * (monetary - 1)) / 16)


def fold(text: str) -> str:
    """The search form of a name or query: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def name_keys(name: str) -> set[str]:
    """Keys a name is found by: the whole name, and each word of a multi-word name."""
    whole = fold(name)
    keys = {whole[:200]} if whole else set()
    words = [w for w in _WORDS.split(whole) if w]
    if len(words) > 1:
        keys.update(w[:200] for w in words)
    return keys


def cents_of(field: str, amount: Decimal | int | str) -> int:
    """Integer cents of an amount with at most two decimals (never rounded)."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput(field, f"expected an amount, got {amount!r}") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or abs(value) >= Decimal(10) ** 15:
        raise InvalidInput(field, f"expected an amount with at most two decimals, got {amount!r}")
    return int(value * 100)


def check_phone(field: str, raw: str, region: str) -> PhoneNumber:
    v.text(field, raw, 64, required=True)
    number = parse_number(raw, region)
    if number.withheld or number.key is None:
        raise InvalidInput(field, f"{raw!r} is not a phone number")
    return number


def check_email(field: str, address: str) -> str:
    v.text(field, address, 254, required=True)
    if not _EMAIL.match(address):
        raise InvalidInput(field, f"{address!r} is not an email address")
    return address


def _check_customer(new: NewCustomer, region: str) -> list[PhoneNumber]:
    v.text("name", new.name, 200, required=True)
    v.choice("kind", new.kind, CUSTOMER_KINDS)
    v.choice("tier", new.tier, TIERS)
    v.text("language", new.language, 16, required=True)
    if not _LANGUAGE.match(new.language):
        raise InvalidInput("language", f"expected a language tag such as zh-CN or en, got {new.language!r}")
    v.text("notes", new.notes, MAX_NOTES, controls="lines")
    v.text("preferred_agent", new.preferred_agent, 64)
    if not isinstance(new.blacklisted, bool):
        raise InvalidInput("blacklisted", "expected true or false")
    if new.rfm is not None:
        if not (isinstance(new.rfm, tuple) and len(new.rfm) == 3):
            raise InvalidInput("rfm", "expected (recency, frequency, monetary)")
        for label, score in zip(("recency", "frequency", "monetary"), new.rfm, strict=True):
            v.integer(f"rfm {label}", score, 1, 5, required=True)
    if new.satisfaction is not None and not (isinstance(new.satisfaction, (int, float))
                                              and 1 <= new.satisfaction <= 5):
        raise InvalidInput("satisfaction", f"expected 1 to 5, got {new.satisfaction!r}")
    for i, email in enumerate(new.emails):
        check_email(f"emails[{i}]", email)
    for i, address in enumerate(new.addresses):
        _check_address(f"addresses[{i}]", address)
    if new.secret is not None:
        check_secret(new.secret)
    return [check_phone(f"phones[{i}]", raw, region) for i, raw in enumerate(new.phones)]


def _check_address(field: str, a: NewAddress) -> None:
    v.text(f"{field}.line1", a.line1, 200, required=True)
    v.text(f"{field}.line2", a.line2, 200)
    v.text(f"{field}.region", a.region, 64)
    v.text(f"{field}.city", a.city, 64)
    v.text(f"{field}.postcode", a.postcode, 16)
    v.text(f"{field}.kind", a.kind, 16, required=True)
    if not (isinstance(a.country, str) and re.fullmatch(r"[A-Z]{2}", a.country)):
        raise InvalidInput(f"{field}.country", f"expected a two-letter ISO 3166 code, got {a.country!r}")


def agent_id(conn: Connection, login: str | None, field: str = "preferred_agent") -> int | None:
    if login is None:
        return None
    found = conn.execute(select(agents.c.id).where(agents.c.login == login)).scalar()
    if found is None:
        raise InvalidInput(field, f"no agent with login {login!r}")
    return found


def phone_row(customer_id: int, number: PhoneNumber, region: str, primary: bool) -> dict[str, Any]:
    return {"customer_id": customer_id, "raw": number.raw, "e164": number.e164, "lookup_key": number.key,
            "kind": kind_of(number, region), "valid": number.valid, "is_primary": primary}


def thd_create_customer(engine: Engine, new: NewCustomer, region: str) -> int:
    """Create a customer with phones, emails and addresses; return its id."""
    numbers = _check_customer(new, region)
    rfm = new.rfm or (None, None, None)
    with write_tx(engine) as conn:
        values = {"name": new.name, "kind": new.kind, "tier": new.tier, "language": new.language,
                  "notes": new.notes, "blacklisted": new.blacklisted, "rfm_recency": rfm[0],
                  "rfm_frequency": rfm[1], "rfm_monetary": rfm[2],
                  "value_score": rfm_value(*new.rfm) if new.rfm else None,
                  "satisfaction": None if new.satisfaction is None else float(new.satisfaction),
                  "preferred_agent_id": agent_id(conn, new.preferred_agent),
                  "verify_hash": hash_password(new.secret) if new.secret is not None else None}
        customer_id = conn.execute(insert(customers).values(values)).inserted_primary_key[0]
        _write_name_keys(conn, customer_id, new.name)
        if numbers:
            conn.execute(insert(customer_phones),
                         [phone_row(customer_id, n, region, i == 0) for i, n in enumerate(numbers)])
        if new.emails:
            conn.execute(insert(customer_emails), [
                {"customer_id": customer_id, "address": e, "address_key": fold(e), "is_primary": i == 0}
                for i, e in enumerate(new.emails)])
        if new.addresses:
            conn.execute(insert(customer_addresses), [
                {"customer_id": customer_id, "kind": a.kind, "country": a.country, "region": a.region,
                 "city": a.city, "line1": a.line1, "line2": a.line2, "postcode": a.postcode}
                for a in new.addresses])
    return customer_id


def _write_name_keys(conn: Connection, customer_id: int, name: str) -> None:
    conn.execute(delete(customer_name_keys).where(customer_name_keys.c.customer_id == customer_id))
    keys = name_keys(name)
    if keys:
        conn.execute(insert(customer_name_keys), [{"key": k, "customer_id": customer_id} for k in sorted(keys)])


def _require_customer(conn: Connection, customer_id: int) -> None:
    if conn.execute(select(customers.c.id).where(customers.c.id == customer_id)).scalar() is None:
        raise NotFound(f"no customer {customer_id}")


def thd_add_phone(engine: Engine, customer_id: int, raw: str, region: str, *, primary: bool = False) -> PhoneNumber:
    """Add a phone number to a customer; return how it was understood."""
    number = check_phone("phone", raw, region)
    with write_tx(engine) as conn:
        _require_customer(conn, customer_id)
        if primary:
            conn.execute(update(customer_phones).where(customer_phones.c.customer_id == customer_id)
                         .values(is_primary=False))
        conn.execute(insert(customer_phones).values(phone_row(customer_id, number, region, primary)))
    return number


def _check_change(name: str, value: Any) -> None:
    if name == "name":
        v.text("name", value, 200, required=True)
    elif name == "tier":
        v.choice("tier", value, TIERS)
    elif name == "notes":
        v.text("notes", value, MAX_NOTES, controls="lines")
    elif name == "language":
        v.text("language", value, 16, required=True)
        if not _LANGUAGE.match(value):
            raise InvalidInput("language", f"expected a language tag such as zh-CN or en, got {value!r}")
    elif name == "blacklisted":
        if not isinstance(value, bool):
            raise InvalidInput("blacklisted", "expected true or false")
    elif name == "satisfaction":
        if value is not None and not (isinstance(value, (int, float)) and 1 <= value <= 5):
            raise InvalidInput("satisfaction", f"expected 1 to 5, got {value!r}")
    else:
        raise InvalidInput(name, "not a field that can be changed")


def thd_update_customer(engine: Engine, customer_id: int, **changes: Any) -> None:
    """Change profile fields: name, tier, notes, language, blacklisted,
    satisfaction, rfm (a triple) and preferred_agent (a login or None)."""
    values: dict[str, Any] = {}
    rfm = changes.pop("rfm", None)
    login = changes.pop("preferred_agent", ...)
    for name, value in changes.items():
        _check_change(name, value)
        values[name] = value
    if rfm is not None:
        _check_customer(NewCustomer("-", rfm=rfm), "CN")
        values.update(rfm_recency=rfm[0], rfm_frequency=rfm[1], rfm_monetary=rfm[2], value_score=rfm_value(*rfm))
    if login is not ...:
        v.text("preferred_agent", login, 64)
    with write_tx(engine) as conn:
        _require_customer(conn, customer_id)
        if login is not ...:
            values["preferred_agent_id"] = agent_id(conn, login)
        if values:
            conn.execute(update(customers).where(customers.c.id == customer_id).values(values))
        if "name" in values:
            _write_name_keys(conn, customer_id, values["name"])


def thd_add_account(engine: Engine, customer_id: int, new: NewAccount) -> int:
    """Open an account (with its agreements) for a customer; return its id."""
    v.text("account_no", new.account_no, 32, required=True)
    v.choice("status", new.status, ACCOUNT_STATUSES)
    if not (isinstance(new.currency, str) and re.fullmatch(r"[A-Z]{3}", new.currency)):
        raise InvalidInput("currency", f"expected an ISO 4217 code such as CNY, got {new.currency!r}")
    balance, arrears = cents_of("balance", new.balance), cents_of("arrears", new.arrears)
    if arrears < 0:
        raise InvalidInput("arrears", "must not be negative")
    for i, a in enumerate(new.agreements):
        v.text(f"agreements[{i}].agreement_no", a.agreement_no, 32, required=True)
        v.text(f"agreements[{i}].service_plan", a.service_plan, 100, required=True)
        v.choice(f"agreements[{i}].status", a.status, AGREEMENT_STATUSES)
        cents_of(f"agreements[{i}].monthly_fee", a.monthly_fee)
        if a.ends_on is not None and a.ends_on < a.starts_on:
            raise InvalidInput(f"agreements[{i}].ends_on", "is before starts_on")
    with write_tx(engine) as conn:
        _require_customer(conn, customer_id)
        account_id = conn.execute(insert(accounts).values(
            customer_id=customer_id, account_no=new.account_no, currency=new.currency, balance_cents=balance,
            arrears_cents=arrears, arrears_since=new.arrears_since if arrears else None,
            status=new.status)).inserted_primary_key[0]
        if new.agreements:
            conn.execute(insert(agreements), [
                {"account_id": account_id, "agreement_no": a.agreement_no, "service_plan": a.service_plan,
                 "monthly_fee_cents": cents_of("monthly_fee", a.monthly_fee), "starts_on": a.starts_on,
                 "ends_on": a.ends_on, "status": a.status} for a in new.agreements])
    return account_id


# -- phone self-service verification ------------------------------------------------------------

#: Answers of ``thd_verify_secret`` (the IVR's ``verify`` node reads them as they are).
VERIFIED, WRONG, LOCKED, NO_SECRET = "verified", "wrong", "locked", "no-secret"
#: Wrong tries, each less than ``FAILURE_WINDOW`` after the one before, that lock self-service ...
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=24)
#: ... for this long after the last of them.
LOCKOUT = timedelta(hours=24)
_SECRET = re.compile(r"[0-9]{4,12}")


def check_secret(secret: Any, field: str = "secret") -> str:
    if not (isinstance(secret, str) and _SECRET.fullmatch(secret)):
        raise InvalidInput(field, "expected 4 to 12 digits (a PIN, or the last digits of the ID number)")
    return secret


@dataclass(frozen=True)
class VerifyStatus:
    """Whether a customer can verify in self-service, without the secret."""

    has_secret: bool
    failures: int
    locked_until: datetime | None


def thd_set_verify_secret(engine: Engine, customer_id: int, secret: str | None) -> None:
    """Set (or with None remove) the customer's self-service secret; clears wrong tries and any lock."""
    verify_hash = hash_password(check_secret(secret)) if secret is not None else None
    with write_tx(engine) as conn:
        _require_customer(conn, customer_id)
        conn.execute(update(customers).where(customers.c.id == customer_id).values(
            verify_hash=verify_hash, verify_failures=0, verify_failed_at=None, verify_locked_until=None))


def thd_unlock_verify(engine: Engine, customer_id: int) -> None:
    """Forget the customer's wrong tries and lift a self-service lock (an agent checked who they are)."""
    with write_tx(engine) as conn:
        _require_customer(conn, customer_id)
        conn.execute(update(customers).where(customers.c.id == customer_id).values(
            verify_failures=0, verify_failed_at=None, verify_locked_until=None))


def thd_verify_status(engine: Engine, customer_id: int) -> VerifyStatus:
    with read_conn(engine) as conn:
        row = conn.execute(select(customers.c.verify_hash, customers.c.verify_failures,
                                  customers.c.verify_locked_until).where(customers.c.id == customer_id)).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return VerifyStatus(bool(row.verify_hash), row.verify_failures, row.verify_locked_until)


def _state(conn: Connection, customer_id: int, *, lock: bool = False) -> Any:
    query = select(customers.c.verify_hash, customers.c.verify_failures, customers.c.verify_failed_at,
                   customers.c.verify_locked_until).where(customers.c.id == customer_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row


def _locked(row: Any, now: datetime) -> bool:
    return row.verify_locked_until is not None and now < row.verify_locked_until


def thd_verify_secret(engine: Engine, customer_id: int, secret: str, *, now: datetime | None = None,
                      count: bool = True) -> str:
    """Check a secret the caller keyed: ``VERIFIED``, ``WRONG``, ``LOCKED`` or ``NO_SECRET``.

    A wrong try counts for ``FAILURE_WINDOW`` after the previous one;
    the ``MAX_FAILURES``-th locks self-service for ``LOCKOUT`` (that try
    already answers ``LOCKED``).  While locked nothing is checked.  A right
    secret clears the count.  The (slow) hash is checked outside the write
    transaction; the count is then read again under the row lock, so tries
    racing on several threads or daemons never get more answers than the
    limit allows: a try that finds the customer locked by now answers
    ``LOCKED`` whatever it keyed.  ``count=False`` (a dry run) writes nothing.
    """
    now = v.moment("now", now) or datetime.now(timezone.utc)
    with read_conn(engine) as conn:
        row = _state(conn, customer_id)
    if _locked(row, now):
        return LOCKED
    if not row.verify_hash:
        return NO_SECRET
    usable = isinstance(secret, str) and _SECRET.fullmatch(secret) is not None
    checked_hash = row.verify_hash
    right = usable and verify_password(secret, checked_hash)
    if not count:
        return VERIFIED if right else WRONG
    with write_tx(engine) as conn:
        row = _state(conn, customer_id, lock=True)
        if _locked(row, now):
            return LOCKED
        if not row.verify_hash:
            return NO_SECRET
        if row.verify_hash != checked_hash:  # the secret was changed meanwhile
            right = usable and verify_password(secret, row.verify_hash)
        where = customers.c.id == customer_id
        if right:
            if row.verify_failures or row.verify_failed_at or row.verify_locked_until:
                conn.execute(update(customers).where(where).values(
                    verify_failures=0, verify_failed_at=None, verify_locked_until=None))
            return VERIFIED
        recent = row.verify_failed_at is not None and now - row.verify_failed_at < FAILURE_WINDOW
        failures = (row.verify_failures if recent else 0) + 1
        locked_until = now + LOCKOUT if failures >= MAX_FAILURES else None
        conn.execute(update(customers).where(where).values(
            verify_failures=min(failures, MAX_FAILURES), verify_failed_at=now, verify_locked_until=locked_until))
        return LOCKED if locked_until is not None else WRONG
