"""Realistic seed data in bulk: ``callcenter db seed --customers N``.

Mixed Chinese and English customers (张伟, 王芳, John Smith, companies),
+86 mobiles and landlines with some +1/+44 numbers, accounts with balances
and arrears, agreements, tickets with their history, and a contact history
per customer; agents, queues and disposition codes too, with the demo's
ACD configuration (``thd_seed_acd``: the hotline's queues with their
routing, agents 6001 and 6002).  Every seeded queue and agent, and so the
generated supervisors, is in group ``hotline`` (``seed_data.DEMO_GROUP``):
a supervisor sees the queues and agents of their groups.  Deterministic:
the same ``seed`` and ``anchor`` give the same data.

Fast enough for millions of rows: values are generated as plain tuples in
batches and loaded with ``executemany`` on SQLite (``synchronous=OFF`` for
the load) or ``COPY`` on PostgreSQL.  Into an empty database the secondary
indexes are dropped for the load and built once at the end.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from crm_core import models as m
from crm_core import seed_data as d
from crm_core.acd_config import NewAgent, hours_from_json, thd_save_agent, thd_save_disposition, thd_save_queue
from crm_core.customers import check_secret, fold, name_keys, rfm_value
from crm_core.passwords import hash_password
from crm_core.records import DispositionCode, QueueConfig

#: Tables whose secondary indexes are dropped while an empty database is loaded.
BULK_TABLES = ("customer_name_keys", "customer_phones", "customer_emails", "customer_addresses", "accounts",
               "agreements", "contacts", "tickets", "ticket_events", "ticket_contacts")
DAY = 86400


@dataclass(frozen=True)
class SeedPlan:
    customers: int
    contacts_per_customer: float = 5.0
    seed: int = 1
    anchor: int = 0  # epoch seconds the data is "as of"; 0: today at 00:00 UTC
    batch: int = 5000
    agents: int = 200
    agent_password: str = "changeme"
    #: Phone self-service PIN of every customer added (one hash, computed once); None: no secret.
    customer_secret: str | None = None


@dataclass(frozen=True)
class SeedReport:
    customers: int
    contacts: int
    tickets: int
    seconds: float


class _Clock:
    """Fast UTC timestamp text (this runs tens of millions of times)."""

    def __init__(self, suffix: str):
        self._days: dict[int, str] = {}
        self._suffix = suffix
        self._hms = [f"{h:02d}:{mi:02d}:{s:02d}" for h in range(24) for mi in range(60) for s in range(60)]

    def __call__(self, t: int) -> str:
        day = t // DAY
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * DAY))
        return text + self._hms[t % DAY] + self._suffix

    def date(self, t: int) -> str:
        return self(t)[:10]


_HOLDS = (0.0, 0.0, 0.0, 15.0, 40.0)


def _pick(rnd: Callable[[], float], items: Sequence[Any]) -> Any:
    return items[int(rnd() * len(items))]


class _Generator:
    """Rows for a range of customers, as tuples in the column order of ``COLUMNS``."""

    def __init__(self, plan: SeedPlan, anchor: int, clock: _Clock, agents: Sequence[str], bases: dict[str, int]):
        self.plan = plan
        self.anchor = anchor
        self.ts = clock
        self.agents = agents
        self.next = dict(bases)
        self.surnames = [s for s, _, w in d.SURNAMES for _ in range(w)]
        self.pinyin = {s: p for s, p, _ in d.SURNAMES} | dict(d.GIVEN)
        self.ivr_paths = [json.dumps(p, ensure_ascii=False) for p in _ivr_paths()]
        self.skill_docs = [json.dumps(dict(skills)) if skills else None for _, _, skills, _ in d.QUEUES]

    def rows(self, first: int, count: int) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
        r = random.Random(f"{self.plan.seed}:{first}")
        for cid in range(first, first + count):
            self._customer(r, cid, out)
        # Callers who are nobody's customer (yet): about one call in twenty.
        for _ in range(int(count * self.plan.contacts_per_customer / 20)):
            self._contacts(r, None, [self._phone(r, False)], None, self.anchor - 365 * DAY, out, once=True)
        return out

    def _name(self, r: random.Random) -> tuple[str, str, str, str]:
        """(name, kind, language, email handle)."""
        roll = r.random()
        if roll < 0.78:
            surname = r.choice(self.surnames)
            given = "".join(r.choice(d.GIVEN)[0] for _ in range(1 if r.random() < 0.35 else 2))
            handle = self.pinyin[surname] + "." + "".join(self.pinyin[c] for c in given)
            return surname + given, "person", "zh-HK" if r.random() < 0.03 else "zh-CN", handle
        if roll < 0.94:
            first, last = r.choice(d.FIRST_NAMES), r.choice(d.LAST_NAMES)
            handle = fold(f"{first}.{last}").replace("'", "").replace(" ", "")
            return f"{first} {last}", "person", "en", handle
        if roll < 0.985:
            name = r.choice(d.CN_COMPANY_PREFIX) + r.choice(d.CN_COMPANY_CORE) + r.choice(d.CN_COMPANY_KIND)
            return name, "company", "zh-CN", "service"
        name = f"{r.choice(d.EN_COMPANY_CORE)} {r.choice(d.EN_COMPANY_KIND)}"
        return name, "company", "en", "accounts"

    def _phone(self, r: random.Random, english: bool) -> tuple[str, str, str, str]:
        """(raw as a person would type it, E.164, lookup key, kind)."""
        roll = r.random()
        if english and roll < 0.6:
            if r.random() < 0.5:
                area, line = r.choice(d.US_AREAS), f"{r.randint(200, 999)}{r.randint(0, 9999):04d}"
                return f"+1 {area}-{line[:3]}-{line[3:]}", f"+1{area}{line}", area + line, "other"
            line = f"7{r.choice('458')}{r.randint(0, 99999999):08d}"
            return f"+44 {line[:4]} {line[4:]}", f"+44{line}", line, "mobile"
        if roll < 0.82:
            nsn = r.choice(d.CN_MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}"
            raw = f"{nsn[:3]} {nsn[3:7]} {nsn[7:]}" if r.random() < 0.5 else nsn
            return raw, f"+86{nsn}", nsn, "mobile"
        _, _, _, area = r.choice(d.CN_CITIES)
        number = f"{r.randint(2, 7)}{r.randint(0, 9999999):07d}"
        return f"0{area}-{number}", f"+86{area}{number}", area + number, "landline"

    def _customer(self, r: random.Random, cid: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        ts, anchor = self.ts, self.anchor
        name, kind, language, handle = self._name(r)
        english = language == "en"
        tier_roll = r.random()
        tier = ("vip" if tier_roll < 0.03 else "key_account" if tier_roll < 0.08 or kind == "company"
                else "low" if tier_roll > 0.88 else "normal")
        rfm = (r.randint(1, 5), r.randint(1, 5), r.randint(1, 5))
        created = anchor - r.randint(30, 5 * 365) * DAY - r.randint(0, DAY - 1)
        preferred = r.choice(self.agents) if self.agents and (tier == "vip" or r.random() < 0.05) else None
        out["customers"].append((
            cid, name, kind, tier, rfm[0], rfm[1], rfm[2], rfm_value(*rfm),
            None if r.random() < 0.3 else round(r.uniform(2.5, 5.0), 1), language, preferred,
            r.choice(d.NOTES) if r.random() < 0.05 else None, r.random() < 0.005, ts(created), ts(created)))
        for key in name_keys(name):
            out["customer_name_keys"].append((key, cid))
        phones = [self._phone(r, english) for _ in range(1 if r.random() < 0.7 else r.randint(2, 3))]
        for i, (raw, e164, key, pkind) in enumerate(phones):
            out["customer_phones"].append((cid, raw, e164, key, pkind, True, i == 0))
        if r.random() < 0.4:
            domain = r.choice(d.EMAIL_DOMAINS_EN if english else d.EMAIL_DOMAINS_CN)
            email = f"{handle}{r.randint(1, 9999)}@{domain}"
            out["customer_emails"].append((cid, email, fold(email), True))
        if r.random() < 0.6:
            out["customer_addresses"].append((cid, *self._address(r, english)))
        self._accounts(r, cid, created, out)
        calls = self._contacts(r, cid, phones, name, created, out)
        if r.random() < 0.15:
            self._tickets(r, cid, created, calls, out)

    def _address(self, r: random.Random, english: bool) -> tuple[Any, ...]:
        if english:
            country, region, city = r.choice(d.EN_CITIES)
            return ("home", country, region, city, f"{r.randint(1, 400)} {r.choice(d.EN_STREETS)}", None,
                    f"{r.randint(10000, 99999)}")
        province, city, districts, _ = r.choice(d.CN_CITIES)
        line1 = f"{r.choice(districts)}{r.choice(d.CN_STREETS)}{r.randint(1, 999)}号"
        return ("home", "CN", province, city, line1, f"{r.randint(1, 30)}栋{r.randint(101, 3205)}室",
                f"{r.randint(100000, 699999)}")

    def _accounts(self, r: random.Random, cid: int, created: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        ts = self.ts
        for _ in range(1 if r.random() < 0.9 else 2):
            aid = self._id("accounts")
            arrears = r.randint(50, 3000) * 100 if r.random() < 0.12 else 0
            since = ts.date(self.anchor - r.randint(1, 180) * DAY) if arrears else None
            status = "suspended" if arrears and r.random() < 0.2 else "active"
            out["accounts"].append((aid, cid, f"AC{aid:010d}", "CNY", r.randint(-500, 5000) * 100, arrears, since,
                                    status, ts(created), ts(created)))
            for _ in range(1 if r.random() < 0.6 else 2):
                gid = self._id("agreements")
                plan, fee = r.choice(d.PLANS)
                start = created + r.randint(0, 365) * DAY
                end = start + 730 * DAY
                out["agreements"].append((gid, aid, f"AG{gid:010d}", plan, fee, ts.date(start), ts.date(end),
                                          "expired" if end < self.anchor else "active", ts(created), ts(created)))

    def _contacts(self, r: random.Random, cid: int | None, phones: list[tuple[str, str, str, str]],
                  name: str | None, created: int, out: dict[str, list[tuple[Any, ...]]],
                  once: bool = False) -> list[tuple[str, int]]:
        # The hot loop of a large seed: plain r.random() arithmetic instead of randint/choice.
        ts, rnd, pick = self.ts, r.random, _pick
        count = 1 if once else int(2 * self.plan.contacts_per_customer * rnd() + 0.5)
        calls = []
        rows = out["contacts"]
        span = max(1, self.anchor - created)
        for _ in range(count):
            start = created + int(span * rnd())
            self.next["linkedid"] += 1
            linkedid = f"{start}.{self.next['linkedid']}"
            _, e164, key, kind = pick(rnd, phones)
            ani = ("0" + key if kind == "landline" else key) if e164[:3] == "+86" else e164
            q = int(rnd() * len(d.QUEUES))
            enq = start + 5 + int(55 * rnd())
            roll = rnd()
            caller = name if rnd() < 0.3 else None
            path = pick(rnd, self.ivr_paths)
            direction = "inbound" if rnd() < 0.9 else "outbound"
            line = pick(rnd, d.SERVICE_LINES)
            if roll < 0.12:  # served by the IVR alone
                end = enq + int(120 * rnd())
                rows.append((linkedid, start * 1_000_000, ts(start), direction, ani, e164, line, caller, cid,
                             path, "completed", None, None, None, None, None, None, ts(end), 0.0, None, None,
                             None, None, None, None, False, "normal_clearing", None, None, ts(end), ts(end)))
            elif roll < 0.20:  # gave up waiting in the queue
                wait = 5 + int(295 * rnd())
                end = enq + wait
                rows.append((linkedid, start * 1_000_000, ts(start), direction, ani, e164, line, caller, cid,
                             path, "abandoned", d.QUEUES[q][0], int(6 * rnd()), self.skill_docs[q], ts(enq),
                             None, None, ts(end), float(wait), None, None, None, None, None, None, True,
                             pick(rnd, d.HANGUP_CAUSES), None, None, ts(end), ts(end)))
            else:
                wait, ring, talk = int(180 * rnd()), 2 + int(13 * rnd()), 20 + int(880 * rnd())
                offered = enq + wait
                answered = offered + ring
                end = answered + talk
                rows.append((linkedid, start * 1_000_000, ts(start), direction, ani, e164, line, caller, cid,
                             path, "to_agent", d.QUEUES[q][0], int(6 * rnd()), self.skill_docs[q], ts(enq),
                             ts(offered), ts(answered), ts(end), float(wait), float(ring), float(talk),
                             pick(rnd, _HOLDS), float(5 + int(55 * rnd())), pick(rnd, self.agents), None, False,
                             "normal_clearing", pick(rnd, d.DISPOSITIONS)[0],
                             pick(rnd, d.NOTES) if rnd() < 0.2 else None, ts(end), ts(end)))
            calls.append((linkedid, start))
        return calls

    def _tickets(self, r: random.Random, cid: int, created: int, calls: list[tuple[str, int]],
                 out: dict[str, list[tuple[Any, ...]]]) -> None:
        ts = self.ts
        for _ in range(r.randint(1, 3)):
            tid = self._id("tickets")
            kind = r.choice(m.TICKET_KINDS)
            opened = created + int(max(1, self.anchor - created) * r.random())
            roll = r.random()
            status = ("open" if roll < 0.1 else "in_progress" if roll < 0.2 else "resolved" if roll < 0.4
                      else "reopened" if roll < 0.45 else "closed")
            owner = r.choice(self.agents) if self.agents else None
            changes = {"open": [], "in_progress": ["in_progress"], "resolved": ["in_progress", "resolved"],
                       "closed": ["resolved", "closed"], "reopened": ["resolved", "reopened"]}[status]
            updated = opened + len(changes) * r.randint(600, 3 * DAY)
            out["tickets"].append((tid, cid, kind, r.choice(d.TICKET_SUBJECTS[kind]), None, status,
                                   r.choice(m.TICKET_PRIORITIES), owner, ts(opened + 3 * DAY), owner or "system",
                                   1 + len(changes), ts(opened), ts(updated)))
            out["ticket_events"].append((tid, ts(opened), owner or "system", "created", None, kind))
            previous = "open"
            for i, new in enumerate(changes):
                out["ticket_events"].append((tid, ts(opened + (i + 1) * 3600), owner or "system", "status",
                                             previous, new))
                previous = new
            if calls:
                out["ticket_contacts"].append((tid, r.choice(calls)[0]))

    def _id(self, kind: str) -> int:
        self.next[kind] += 1
        return self.next[kind]


def _ivr_paths() -> list[list[dict[str, Any]]]:
    return [
        [{"node": "welcome", "digits": None}, {"node": "language", "digits": "1"},
         {"node": "main_menu", "digits": "2"}],
        [{"node": "welcome", "digits": None}, {"node": "main_menu", "digits": "1"},
         {"node": "balance", "digits": None}],
        [{"node": "welcome", "digits": None}, {"node": "main_menu", "digits": "3"},
         {"node": "account_id", "digits": "88231907#"}, {"node": "fault_menu", "digits": "1"}],
        [{"node": "welcome", "digits": None}, {"node": "language", "digits": "2"},
         {"node": "main_menu", "digits": "0"}],
        [{"node": "vip_welcome", "digits": None}],
    ]


#: Column order of the generated tuples, per table (ids the database assigns are left out).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "name", "kind", "tier", "rfm_recency", "rfm_frequency", "rfm_monetary", "value_score",
                  "satisfaction", "language", "preferred_agent_id", "notes", "blacklisted", "created_at",
                  "updated_at"),
    "customer_name_keys": ("key", "customer_id"),
    "customer_phones": ("customer_id", "raw", "e164", "lookup_key", "kind", "valid", "is_primary"),
    "customer_emails": ("customer_id", "address", "address_key", "is_primary"),
    "customer_addresses": ("customer_id", "kind", "country", "region", "city", "line1", "line2", "postcode"),
    "accounts": ("id", "customer_id", "account_no", "currency", "balance_cents", "arrears_cents", "arrears_since",
                 "status", "created_at", "updated_at"),
    "agreements": ("id", "account_id", "agreement_no", "service_plan", "monthly_fee_cents", "starts_on", "ends_on",
                   "status", "created_at", "updated_at"),
    "contacts": ("linkedid", "revision", "started_at", "direction", "ani", "ani_e164", "dnis", "caller_name",
                 "customer_id", "ivr_path", "self_service", "queue", "priority", "skills", "enqueued_at",
                 "offered_at", "answered_at", "ended_at", "wait_seconds", "ring_seconds", "talk_seconds",
                 "hold_seconds", "wrapup_seconds", "agent", "transfers", "abandoned", "hangup_cause",
                 "disposition", "notes", "created_at", "updated_at"),
    "tickets": ("id", "customer_id", "kind", "subject", "description", "status", "priority", "owner", "due_at",
                "created_by", "version", "created_at", "updated_at"),
    "ticket_events": ("ticket_id", "at", "actor", "action", "old_value", "new_value"),
    "ticket_contacts": ("ticket_id", "linkedid"),
}


class _SqliteLoader:
    def __init__(self, engine: Engine):
        self.raw = engine.raw_connection()
        self.db = self.raw.driver_connection
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA foreign_keys=OFF")
        self.db.execute("PRAGMA cache_size=-262144")
        self.db.execute("BEGIN")

    def load(self, table: str, rows: list[tuple[Any, ...]], preferred_agents: dict[str, int]) -> None:
        cols = COLUMNS[table]
        if table == "customers":
            rows = [(*row[:10], preferred_agents.get(row[10]), *row[11:]) for row in rows]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.db.executemany(sql, rows)

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.raw.close()


class _PostgresLoader:
    def __init__(self, engine: Engine):
        self.raw = engine.raw_connection()
        self.db = self.raw.driver_connection
        self.db.autocommit = False
        self.cur = self.db.cursor()

    def load(self, table: str, rows: list[tuple[Any, ...]], preferred_agents: dict[str, int]) -> None:
        cols = COLUMNS[table]
        with self.cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            if table == "customers":
                for row in rows:
                    copy.write_row((*row[:10], preferred_agents.get(row[10]), *row[11:]))
            else:
                for row in rows:
                    copy.write_row(row)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        for table in ("customers", "accounts", "agreements", "tickets", "contacts", "customer_phones",
                      "customer_emails", "customer_addresses", "ticket_events"):
            self.cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
        self.db.commit()
        self.raw.close()


def _bulk_indexes() -> list[Any]:
    return [index for name in BULK_TABLES for index in m.metadata.tables[name].indexes]


def _max_ids(conn: Connection) -> dict[str, int]:
    found = {name: conn.execute(select(func.coalesce(func.max(m.metadata.tables[name].c.id), 0))).scalar()
             for name in ("customers", "accounts", "agreements", "tickets")}
    found["linkedid"] = conn.execute(select(func.count()).select_from(m.contacts)).scalar()
    return found


def thd_seed_acd(engine: Engine, agent_password: str | None = None) -> list[str]:
    """The demo's ACD configuration (``seed_data.ACD_QUEUES``, ``ACD_AGENTS`` and the disposition codes):
    what is missing is added (agents with ``agent_password``, if given), what exists is left as it is (it
    may have been edited since); return the names of the queues and agents added."""
    with engine.connect() as conn:
        have_queues = set(conn.execute(select(m.queues.c.name)).scalars())
        have_agents = set(conn.execute(select(m.agents.c.login)).scalars())
        have_codes = set(conn.execute(select(m.disposition_codes.c.code)).scalars())
    added = []
    for spec in d.ACD_QUEUES:  # in order: a queue overflows to one listed before it
        if spec["name"] not in have_queues:
            fields = dict(spec, hours=hours_from_json(spec.get("hours")))
            thd_save_queue(engine, QueueConfig(**{"required_skills": (), "priority": 0,
                                                  "service_level_seconds": 20, "groups": (d.DEMO_GROUP,),
                                                  **fields}))
            added.append(str(spec["name"]))
    for code, label, category, needs_ticket in d.DISPOSITIONS:
        if code not in have_codes:
            thd_save_disposition(engine, DispositionCode(code, label, category, needs_ticket, True))
    for login, name, interface, skills, member in d.ACD_AGENTS:
        if login not in have_agents:
            thd_save_agent(engine, NewAgent(login, name, agent_password, interface, "agent", True, skills, member,
                                            (d.DEMO_GROUP,)))
            added.append(login)
    return added


def _configuration(engine: Engine, plan: SeedPlan, r: random.Random) -> list[str]:
    """Queues, disposition codes and agents (created once), and the demo's ACD configuration; return the
    logins of the agents that take the generated calls (not the demo's)."""
    thd_seed_acd(engine, plan.agent_password)
    demo = {login for login, *_ in d.ACD_AGENTS}
    with engine.connect() as conn:
        existing = [login for login in conn.execute(select(m.agents.c.login).order_by(m.agents.c.login)).scalars()
                    if login not in demo]
        have_queues = set(conn.execute(select(m.queues.c.name)).scalars())
    if existing:
        return existing
    for name, label, skills, priority in d.QUEUES:
        if name not in have_queues:  # the demo's are configured already
            thd_save_queue(engine, QueueConfig(name, label, skills, priority, 20, groups=(d.DEMO_GROUP,)))
    password = hash_password(plan.agent_password)
    logins = []
    for i in range(plan.agents):
        login = str(1001 + i)
        surname, _, _ = r.choice(d.SURNAMES)
        display = surname + r.choice(d.GIVEN)[0] if i % 5 else f"{r.choice(d.FIRST_NAMES)} {r.choice(d.LAST_NAMES)}"
        skills = tuple((s, r.randint(1, 5)) for s in sorted(r.sample(d.SKILLS, r.randint(1, 4))))
        queues = tuple((q[0], r.randint(0, 3)) for q in r.sample(d.QUEUES, r.randint(1, 3)))
        thd_save_agent(engine, NewAgent(login, display, None, f"PJSIP/{login}", "supervisor" if i % 25 == 0
                                        else "agent", True, skills, queues, (d.DEMO_GROUP,)))
        logins.append(login)
    with engine.begin() as conn:
        conn.execute(update(m.agents).where(m.agents.c.login.in_(logins)).values(password_hash=password))
    return logins


def thd_seed(engine: Engine, plan: SeedPlan, progress: Callable[[int], None] = lambda n: None) -> SeedReport:
    """Add ``plan.customers`` customers with everything around them; report what was made."""
    began = time.monotonic()
    secret_hash = hash_password(check_secret(plan.customer_secret, "customer_secret")) \
        if plan.customer_secret is not None else None
    anchor = plan.anchor or int(datetime.now(timezone.utc).timestamp()) // DAY * DAY
    r = random.Random(plan.seed)
    agents = _configuration(engine, plan, r)
    with engine.connect() as conn:
        bases = _max_ids(conn)
        agent_ids = dict(conn.execute(select(m.agents.c.login, m.agents.c.id)).all())
    sqlite = engine.dialect.name == "sqlite"
    empty = bases["customers"] == 0
    indexes = _bulk_indexes() if empty else []
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    gen = _Generator(plan, anchor, _Clock(".000000" if sqlite else "+00"), agents, bases)
    loader = _SqliteLoader(engine) if sqlite else _PostgresLoader(engine)
    counts = {"contacts": 0, "tickets": 0}
    try:
        done = 0
        while done < plan.customers:
            size = min(plan.batch, plan.customers - done)
            rows = gen.rows(bases["customers"] + done + 1, size)
            for table in COLUMNS:
                if rows[table]:
                    loader.load(table, rows[table], agent_ids)
            loader.commit()
            counts["contacts"] += len(rows["contacts"])
            counts["tickets"] += len(rows["tickets"])
            done += size
            progress(size)
    finally:
        loader.close()
    with engine.begin() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            index.create(conn)
        if secret_hash is not None:
            first, last = bases["customers"] + 1, bases["customers"] + plan.customers
            conn.execute(update(m.customers).where(m.customers.c.id.between(first, last))
                         .values(verify_hash=secret_hash))
        conn.exec_driver_sql("ANALYZE")
    return SeedReport(plan.customers, counts["contacts"], counts["tickets"], time.monotonic() - began)


def contacts_per_customer(customers: int, contacts: int | None, default: float = 5.0) -> float:
    """The mean number of contacts per customer for a wanted total (None: the default)."""
    if contacts is None:
        return default
    return contacts / customers if customers else 0.0
