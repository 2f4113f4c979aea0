#!/usr/bin/env python3
"""Benchmark the CRM store and print the figures (not a timed test).

    scripts/bench_crm.py --backend sqlite --customers 1000000 --contacts 10000000
    scripts/bench_crm.py --backend postgresql --customers 1000000 --contacts 10000000 [--url URL]

Seeds the database first unless it already holds the customers (a SQLite
file is kept in --data-dir; for PostgreSQL give --url, or a throw-away
server is started with tests/servers.py).  Then measures, single-threaded,
the blocking ``thd_*`` calls the daemon runs on its pool:

- ANI lookup: stored numbers presented the way trunks do (national,
  +86, 0086, spaced, country code without +); target p99 < 2 ms;
- unified customer view; target p99 < 5 ms;
- durable contact logging through the daemon's ContactWriter on the
  asyncio reactor: acknowledged (fsynced to the journal) and committed to
  the CRM; target >= 2,000 records/s sustained.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from crm_core.db import make_engine  # noqa: E402
from crm_core.lookup import thd_lookup_by_ani  # noqa: E402
from crm_core.migrate import thd_upgrade  # noqa: E402
from crm_core.models import customer_phones, customers  # noqa: E402
from crm_core.seed import SeedPlan, thd_seed  # noqa: E402
from crm_core.views import thd_customer_view  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def presented(e164: str, r: random.Random) -> str:
    """A stored number the way an Asterisk trunk might present it."""
    if not e164.startswith("+86"):
        return r.choice([e164, "00" + e164[1:], e164[1:]])
    nsn = e164[3:]
    national = nsn if nsn.startswith("1") and len(nsn) == 11 else "0" + nsn
    return r.choice([national, e164, "0086" + nsn, "86" + nsn, f"{national[:3]} {national[3:7]} {national[7:]}"])


def timed(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        began = time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - began) * 1000)
    return out


def report(label: str, millis: list[float], target: str) -> None:
    print(f"  {label:<22} n={len(millis):<6} p50={statistics.median(millis):7.3f} ms  "
          f"p99={percentile(millis, 0.99):7.3f} ms  max={max(millis):8.3f} ms   (target {target})")


def seed_if_needed(engine, customers_wanted: int, contacts_wanted: int, seed: int) -> None:
    thd_upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(customers)).scalar()
    if have >= customers_wanted:
        print(f"reusing the seeded database ({have} customers)")
        return
    missing = customers_wanted - have
    per = contacts_wanted / customers_wanted
    print(f"seeding {missing} customers, about {int(missing * per)} contacts ...", flush=True)
    done = [0]
    step = max(1, missing // 20)

    def progress(n: int) -> None:
        before, done[0] = done[0], done[0] + n
        if before // step != done[0] // step:
            print(f"  {done[0]}/{missing}", flush=True)

    result = thd_seed(engine, SeedPlan(missing, per, seed, 0, 10000), progress)
    print(f"seeded {result.customers} customers, {result.contacts} contacts, {result.tickets} tickets "
          f"in {result.seconds:.0f} s ({result.customers / result.seconds:.0f} customers/s)")


def sample_phones(engine, n: int, r: random.Random) -> list[str]:
    with engine.connect() as conn:
        top = conn.execute(select(func.max(customer_phones.c.id))).scalar()
        ids = [r.randint(1, top) for _ in range(n * 2)]
        rows = conn.execute(select(customer_phones.c.e164).where(customer_phones.c.id.in_(ids))).scalars().all()
    return [presented(e, r) for e in rows[:n]]


def bench_reads(engine, samples: int, region: str, r: random.Random) -> None:
    with engine.connect() as conn:
        top = conn.execute(select(func.max(customers.c.id))).scalar()
    warm = sample_phones(engine, min(500, samples), r)
    timed(lambda ani: thd_lookup_by_ani(engine, ani, region), [(a,) for a in warm])
    anis = sample_phones(engine, samples, r)
    misses = sum(1 for a in anis[:200] if not thd_lookup_by_ani(engine, a, region))
    report("ANI lookup", timed(lambda ani: thd_lookup_by_ani(engine, ani, region), [(a,) for a in anis]), "< 2 ms")
    print(f"    (presented as national / +86 / 0086 / 86 / spaced; {misses} of 200 checked found nobody)")
    ids = [(r.randint(1, top),) for _ in range(samples)]
    timed(lambda cid: thd_customer_view(engine, cid), ids[:200])
    views = [thd_customer_view(engine, cid) for (cid,) in ids[:50]]
    report("unified view", timed(lambda cid: thd_customer_view(engine, cid), ids), "< 5 ms")
    mean_calls = statistics.mean(len(v.recent_contacts) for v in views if v)
    print(f"    (profile, phones, emails, addresses, accounts+agreements, {mean_calls:.1f} recent contacts "
          f"on average, open tickets)")


def bench_logging(url: str, records: int, window: int, region: str) -> None:
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from datetime import datetime, timedelta, timezone

    from twisted.internet.defer import ensureDeferred

    from callcenter.config import CrmConfig
    from crm_core.records import ContactRecord, IvrStep
    from crm_core.service import CrmService

    journal_dir = tempfile.mkdtemp(prefix="cc-bench-journal-", dir=os.environ.get("BENCH_JOURNAL_DIR"))
    svc = CrmService(reactor, CrmConfig(url=url, journal=f"{journal_dir}/contacts.journal", default_region=region))
    run_id = int(time.time())
    t0 = datetime.now(timezone.utc)

    def write(n: int, step: int) -> ContactRecord:
        lid, start = f"bench{run_id}.{n}", t0 + timedelta(seconds=n)
        if step == 0:
            return ContactRecord(lid, start, direction="inbound", ani=f"13{n % 10**9:09d}", dnis="95588",
                                 ivr_path=(IvrStep("welcome"), IvrStep("main_menu", "2")), queue="billing",
                                 priority=1, skills=(("billing", 2),), enqueued_at=start)
        if step == 1:
            return ContactRecord(lid, start, answered_at=start + timedelta(seconds=20), agent="1001",
                                 wait_seconds=20.0, ring_seconds=3.0)
        return ContactRecord(lid, start, ended_at=start + timedelta(seconds=200), talk_seconds=180.0,
                             abandoned=False, hangup_cause="normal_clearing", disposition="resolved",
                             notes="已解释账单明细")

    result = {}

    async def run() -> None:
        await svc.startService()
        pending = []
        began = time.perf_counter()
        for i in range(records):
            pending.append(svc.writer.log(write(i // 3, i % 3)))
            if len(pending) >= window:
                await pending.pop(0)
        for d in pending:
            await d
        acked = time.perf_counter()
        held = svc.writer.held
        await svc.writer.wait_flushed()
        flushed = time.perf_counter()
        result.update(acked=records / (acked - began), flushed=records / (flushed - began), held=held,
                      seconds=flushed - began)
        await svc.stopService()

    d = ensureDeferred(run())
    d.addErrback(lambda f: print(f.getTraceback(), file=sys.stderr))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    print(f"  durable logging        {records} records ({records // 3} calls x 3 writes) in {result['seconds']:.1f} s")
    print(f"    acknowledged (fsynced to the journal): {result['acked']:8.0f} records/s")
    print(f"    committed to the CRM database:          {result['flushed']:8.0f} records/s   (target >= 2000)")
    print(f"    (journal backlog when the last write was acknowledged: {result['held']} records)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=10_000_000)
    parser.add_argument("--url", help="use this database (seeded if it has fewer customers)")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "callcenter-bench"),
                        help="where the SQLite file is kept")
    parser.add_argument("--samples", type=int, default=5000, help="lookups and views to time")
    parser.add_argument("--records", type=int, default=60000, help="contact writes for the logging benchmark")
    parser.add_argument("--window", type=int, default=1000, help="writes in flight at once")
    parser.add_argument("--region", default="CN")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    server = None
    url = args.url
    if url is None and args.backend == "sqlite":
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(args.data_dir) / f'crm-{args.customers}-{args.contacts}.db'}"
    elif url is None:
        from tests.servers import start_postgres

        server = start_postgres()
        url = server.url
        print(f"started a throw-away PostgreSQL at {url}")
    try:
        engine = make_engine(url)
        seed_if_needed(engine, args.customers, args.contacts, args.seed)
        with engine.connect() as conn:
            n_customers = conn.execute(select(func.count()).select_from(customers)).scalar()
            n_contacts = conn.execute(text("SELECT count(*) FROM contacts")).scalar()
            version = conn.execute(text("SELECT sqlite_version()" if args.backend == "sqlite"
                                        else "SHOW server_version")).scalar()
        print(f"\n{args.backend} {version}: {n_customers} customers, {n_contacts} contacts "
              f"({os.cpu_count()} CPUs)")
        bench_reads(engine, args.samples, args.region, random.Random(args.seed))
        engine.dispose()
        bench_logging(url, args.records, args.window, args.region)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
