"""Screen-pop latency: from the ACD's routing decision to the pop frame read by the agent's desktop.

Runs the real daemon (``build_root``: CRM on SQLite, ACD, desktop server) against the Asterisk
simulator on loopback, with AGENTS agents whose desktops are real websocket clients.  Callers (known
customers, so each pop carries a CRM view) arrive every INTERVAL seconds; each agent talks briefly.
For every pop the script takes the time of the ``Offer`` effect (the routing decision, heard through
``AcdService.subscribe``) and the time its desktop read the frame, on the same clock.  It prints
p50/p99/max in milliseconds; the target is p99 < 50 ms.

    .venv/bin/python scripts/bench_pop.py [--calls 300] [--agents 20] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.aio import as_deferred, install_asyncio_reactor  # noqa: E402

reactor = install_asyncio_reactor()

from twisted.internet.defer import ensureDeferred  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from acd import effects as fx  # noqa: E402
from acd import inputs as inp  # noqa: E402
from callcenter.app import build_root  # noqa: E402
from callcenter.config import build_config  # noqa: E402
from callcenter.sim.scenarios import Simulator  # noqa: E402
from tests.servers import free_port  # noqa: E402
from tests.util import always_open_routes, copy_flows, write_acd_flows  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(calls: int, agents: int, interval: float) -> None:
    from crm_core.acd_config import NewAgent, thd_save_agent, thd_save_queue
    from crm_core.customers import NewCustomer, thd_create_customer
    from crm_core.records import QueueConfig

    work = Path(tempfile.mkdtemp(prefix="bench-pop-"))
    agi_port = free_port()
    sim = Simulator(reactor, agi_port=agi_port, ivr_dnis=("4000", "4001", "4060"), record=False)
    sim.start()
    flows = copy_flows(work)
    Path(flows, "routes.yaml").write_text(always_open_routes('"4060": {flow: acd, calendar: always, closed: after_hours}'))
    write_acd_flows(flows, acd="support")
    cfg = build_config({
        "asterisk": {"ami_port": sim.port, "ami_secret": "cti-secret", "agi_port": agi_port},
        "crm": {"url": f"sqlite:///{work / 'crm.db'}", "journal": str(work / "journal.db")},
        "desktop": {"port": free_port()}, "ivr": {"flows_dir": flows, "routes": str(Path(flows, "routes.yaml"))},
        "log": {"level": "warning"},
    }, environ={})
    root = build_root(cfg, reactor)
    await root.startService()
    logins = [f"{6001 + i}" for i in range(agents)]

    def configure(engine):
        thd_save_queue(engine, QueueConfig("support", "Support", (), 0, 20, ring_seconds=10, wrap_up_seconds=0))
        for login in logins:
            thd_save_agent(engine, NewAgent(login, f"Agent {login}", interface=f"Local/{login}@sim-agents/n",
                                            queues=(("support", 0),)))
        for n in range(calls):
            thd_create_customer(engine, NewCustomer(f"Customer {n}", phones=(f"555{n:04d}",)), "CN")

    await root.crm.pool.run(configure, root.crm.engine)
    while {a.agent for a in root.acd.distributor.setup.agents} < set(logins):
        await deferLater(reactor, 0.1)
    decided: dict[str, float] = {}
    read: dict[str, float] = {}
    root.acd.subscribe(lambda e: decided.setdefault(e.call_id, time.perf_counter())
                       if isinstance(e, fx.Offer) else None)

    async def desktop(login: str) -> None:
        session = root.desktop.sessions.open(login, "agent")
        host, port = root.desktop.address
        async with connect(f"ws://{host}:{port}/ws", max_queue=None) as ws:
            await ws.send(json.dumps({"type": "auth", "v": 1, "token": session.token}))
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "pop":
                    read.setdefault(frame["call_id"], time.perf_counter())

    tasks = [asyncio.ensure_future(desktop(login)) for login in logins]
    for login in logins:
        sim.agent(login, ring=0.2, talk=0.5)
        await as_deferred(root.acd.command(inp.Login(login, ready=True)))
    started = time.perf_counter()
    for n in range(calls):
        sim.call(f"555{n:04d}", f"Customer {n}", dnis="4060", hold=20)
        await deferLater(reactor, interval)
    deadline = time.perf_counter() + 60
    while len(read) < calls and time.perf_counter() < deadline:
        await deferLater(reactor, 0.2)
    elapsed = time.perf_counter() - started
    pairs = [(read[c] - decided[c]) * 1000 for c in read if c in decided]
    for task in tasks:
        task.cancel()
    await root.stopService()
    sim.stop()
    print(f"screen-pop latency: {len(pairs)} pops of {calls} calls, {agents} agents with desktops, "
          f"a call every {interval * 1000:.0f} ms, {elapsed:.1f} s")
    if pairs:
        print(f"  routing decision -> pop frame read by the desktop: p50 {percentile(pairs, 0.5):.1f} ms, "
              f"p99 {percentile(pairs, 0.99):.1f} ms, max {max(pairs):.1f} ms (target p99 < 50 ms)")
    queued = [x * 1000 for x in root.desktop.feed.latencies]
    if queued:
        print(f"  routing decision -> pop frame queued to the desktop: p50 {percentile(queued, 0.5):.1f} ms, "
              f"p99 {percentile(queued, 0.99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    done = ensureDeferred(run(args.calls, args.agents, args.interval))
    done.addErrback(lambda f: (f.printTraceback(), None)[1])
    done.addBoth(lambda _: reactor.stop())
    reactor.run()


if __name__ == "__main__":
    main()
