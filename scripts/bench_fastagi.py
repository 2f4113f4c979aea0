"""FastAGI server throughput: ours against panoramisk's, driven by one client (prints figures; not a test).

    .venv/bin/python scripts/bench_fastagi.py [--seconds 10] [--concurrency 50] [--rounds 3] [--warmup 2]

Starts two servers, each in its own process, on 127.0.0.1:

* ``ours``: the daemon's FastAGI server (FastAGIServerFactory and the session
  code) on Twisted's asyncio reactor, logging like the daemon (text lines at
  ``--log-level``, written to /dev/null);
* ``panoramisk``: ``panoramisk.fast_agi.Application`` on asyncio streams,
  logging the same way.

Both run the same script of 10 AGI commands per call: ANSWER, 8 of GET
VARIABLE / SET VARIABLE / STREAM FILE, HANGUP.  This process is the one
client for both: it plays Asterisk with ``--concurrency`` connections at a
time (asyncio protocols), sends the agi_ environment, answers every command
as Asterisk would (``200 result=...``; ``HANGUP`` after the hang-up's reply)
and closes when the server ends the session.  A session counts once its 10
commands were answered in order and the server closed.

Each round measures each server for ``--seconds`` after ``--warmup`` seconds,
in alternating order, and prints sessions/s, the server's CPU time per
session (from /proc) and the client's CPU load; the summary gives the mean
of each and the ratio ours/panoramisk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRIPT = "bench"
#: What the client expects, in order, and what it answers.
EXPECTED = [
    b"ANSWER",
    b"GET VARIABLE CALLERID(num)",
    b'SET VARIABLE CC_BENCH "1"',
    b'STREAM FILE custom/cc-welcome ""',
    b"GET VARIABLE CALLERID(num)",
    b'SET VARIABLE CC_BENCH "2"',
    b'STREAM FILE custom/cc-welcome ""',
    b"GET VARIABLE CALLERID(num)",
    b'SET VARIABLE CC_BENCH "3"',
    b"HANGUP",
]
REPLIES = {
    b"ANSWER": b"200 result=0\n",
    b"GET": b"200 result=1 (5551001)\n",
    b"SET": b"200 result=1\n",
    b"STREAM": b"200 result=0 endpos=1600\n",
    # res_agi: the hang-up's reply, then HANGUP once the channel is gone.
    b"HANGUP": b"200 result=1\nHANGUP\n",
}
UNKNOWN = b"510 Invalid or unknown command\n"


def env_block(n: int, port: int) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {SCRIPT}",
        f"agi_request: agi://127.0.0.1:{port}/{SCRIPT}",
        f"agi_channel: PJSIP/trunk-{n:08x}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: 1795535416.{n}",
        "agi_version: 22.10.1",
        "agi_callerid: 5551001",
        "agi_calleridname: Jane Doe",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 4000",
        "agi_rdnis: unknown",
        "agi_context: from-pstn",
        "agi_extension: 4000",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {140000000000000 + n}",
    ]
    return ("\n".join(lines) + "\n\n").encode()


# ---------------------------------------------------------------------------
# The servers (each runs in its own process)


def serve_ours(port: int, log_level: str) -> None:
    from callcenter.aio import install_asyncio_reactor

    reactor = install_asyncio_reactor()
    from twisted.internet.endpoints import TCP4ServerEndpoint

    from callcenter.asterisk.fastagi_server import FastAGIServerFactory
    from callcenter.logging import setup_logging

    setup_logging(log_level, "text", stream=open(os.devnull, "w"))

    async def bench(session) -> None:
        await session.answer()
        for n in (1, 2, 3):
            await session.get_variable("CALLERID(num)")
            await session.set_variable("CC_BENCH", n)
            if n < 3:
                await session.stream_file("custom/cc-welcome")
        await session.hangup()

    factory = FastAGIServerFactory({SCRIPT: bench}, reactor)

    def listening(port_obj) -> None:
        print(f"PORT {port_obj.getHost().port}", flush=True)

    TCP4ServerEndpoint(reactor, port, interface="127.0.0.1").listen(factory).addCallback(listening)
    reactor.run()


def serve_panoramisk(port: int, log_level: str) -> None:
    import logging

    from panoramisk.fast_agi import Application

    logging.basicConfig(level=log_level.upper(), stream=open(os.devnull, "w"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = Application(loop=loop)

    async def bench(request) -> None:
        await request.send_command("ANSWER")
        for n in (1, 2, 3):
            await request.send_command("GET VARIABLE CALLERID(num)")
            await request.send_command(f'SET VARIABLE CC_BENCH "{n}"')
            if n < 3:
                await request.send_command('STREAM FILE custom/cc-welcome ""')
        await request.send_command("HANGUP")

    app.add_route(SCRIPT, bench)
    server = loop.run_until_complete(asyncio.start_server(app.handler, "127.0.0.1", port))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop.run_forever()


# ---------------------------------------------------------------------------
# The client: one process playing Asterisk


class FakeAsterisk(asyncio.Protocol):
    def __init__(self, env: bytes, done: asyncio.Future) -> None:
        self.env = env
        self.done = done
        self.buffer = b""
        self.commands = 0
        self.ok = True
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
            if self.commands >= len(EXPECTED) or line != EXPECTED[self.commands]:
                self.ok = False
            self.commands += 1
            out.append(REPLIES.get(line.split(b" ", 1)[0], UNKNOWN))
        if out:
            self.transport.write(b"".join(out))

    def eof_received(self) -> bool:
        # The server ended the session: Asterisk closes its side too.
        self.transport.close()
        return False

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(self.ok and exc is None and self.commands == len(EXPECTED))


async def load(port: int, concurrency: int, warmup: float, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    start = loop.time()
    window = (start + warmup, start + warmup + seconds)
    finished: list[float] = []
    errors = 0
    counter = 0

    async def caller() -> None:
        nonlocal errors, counter
        while loop.time() < window[1]:
            counter += 1
            done = loop.create_future()
            try:
                await loop.create_connection(lambda: FakeAsterisk(env_block(counter, port), done),
                                             "127.0.0.1", port)
                ok = await asyncio.wait_for(done, 30)
            except (OSError, asyncio.TimeoutError):
                ok = False
            if ok:
                finished.append(loop.time())
            else:
                errors += 1

    cpu_at: dict[str, float] = {}

    async def sample_cpu() -> None:
        await asyncio.sleep(max(window[0] - loop.time(), 0))
        cpu_at["start"] = time.process_time()
        await asyncio.sleep(max(window[1] - loop.time(), 0))
        cpu_at["end"] = time.process_time()

    sampler = asyncio.ensure_future(sample_cpu())
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    await sampler
    in_window = sum(1 for t in finished if window[0] <= t < window[1])
    return {"sessions": in_window, "errors": errors,
            "client_cpu": (cpu_at["end"] - cpu_at["start"]) / seconds}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind: str, log_level: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--log-level", log_level],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"the {kind} server did not start")
    return proc, int(line.split()[1])


def measure(kind: str, proc: subprocess.Popen, port: int, args: argparse.Namespace) -> dict:
    async def run() -> dict:
        loop = asyncio.get_running_loop()
        cpu: dict[str, float | None] = {}

        async def server_cpu() -> None:
            await asyncio.sleep(args.warmup)
            cpu["start"] = cpu_seconds(proc.pid)
            await asyncio.sleep(args.seconds)
            cpu["end"] = cpu_seconds(proc.pid)

        probe = loop.create_task(server_cpu())
        result = await load(port, args.concurrency, args.warmup, args.seconds)
        await probe
        if cpu["start"] is not None and cpu["end"] is not None and result["sessions"]:
            result["cpu_ms"] = (cpu["end"] - cpu["start"]) * 1000 / result["sessions"]
            result["server_cpu"] = (cpu["end"] - cpu["start"]) / args.seconds
        return result

    result = asyncio.run(run())
    result["rate"] = result["sessions"] / args.seconds
    cpu_text = (f"{result['cpu_ms']:.3f} ms CPU/session, server {result['server_cpu']:.0%} CPU"
                if "cpu_ms" in result else "CPU n/a")
    print(f"  {kind:<10} {result['rate']:8.1f} sessions/s  ({result['sessions']} sessions, "
          f"{result['errors']} errors; {cpu_text}; client {result['client_cpu']:.0%} CPU)", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per server and round")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measurement")
    ap.add_argument("--concurrency", type=int, default=50, help="simultaneous FastAGI sessions")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-level", default="info", help="the servers' log level (lines go to /dev/null)")
    ap.add_argument("--serve", choices=["ours", "panoramisk"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "ours":
        return serve_ours(args.port, args.log_level)
    if args.serve == "panoramisk":
        return serve_panoramisk(args.port, args.log_level)

    servers = {kind: start_server(kind, args.log_level) for kind in ("ours", "panoramisk")}
    results: dict[str, list[dict]] = {kind: [] for kind in servers}
    print(f"FastAGI: {len(EXPECTED)}-command sessions, {args.concurrency} concurrent, "
          f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, {args.rounds} rounds", flush=True)
    try:
        for index in range(args.rounds):
            order = ["ours", "panoramisk"] if index % 2 == 0 else ["panoramisk", "ours"]
            print(f"round {index + 1}:", flush=True)
            for kind in order:
                proc, port = servers[kind]
                results[kind].append(measure(kind, proc, port, args))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    rates = {kind: statistics.mean(r["rate"] for r in rs) for kind, rs in results.items()}
    cpu = {kind: [r["cpu_ms"] for r in rs if "cpu_ms" in r] for kind, rs in results.items()}
    for kind in results:
        per = f", {statistics.mean(cpu[kind]):.3f} ms CPU/session" if cpu[kind] else ""
        print(f"{kind:<10} {rates[kind]:8.1f} sessions/s (mean of {args.rounds}){per}")
    ratio = rates["ours"] / rates["panoramisk"] if rates["panoramisk"] else float("nan")
    print(f"ours/panoramisk: {ratio:.2f}x")


if __name__ == "__main__":
    main()
