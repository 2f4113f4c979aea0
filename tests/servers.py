"""Real Redis and PostgreSQL servers for the test run.

Each is started on a free loopback port in a temporary directory and stopped
at the end of the session.  The binaries come from Debian's packages, which
the test command (scripts/test.sh) installs.  PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerUnavailable(f"{what} did not listen on port {port} within {timeout:.0f} s")


@dataclass
class RedisServer:
    url: str
    proc: subprocess.Popen
    workdir: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def forget_keys(redis_url, prefix):
    """Remove the keys under ``prefix`` (an asyncio coroutine)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not found; run the test command scripts/test.sh, which installs it")
    workdir = tempfile.mkdtemp(prefix="cc-redis-")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "redis-server")
    return RedisServer(f"redis://127.0.0.1:{port}/0", proc, workdir)


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerUnavailable("PostgreSQL's initdb not found; run the test command scripts/test.sh, which installs it")


@dataclass
class PostgresServer:
    url: str
    datadir: str
    bindir: Path
    as_user: list[str]

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", self.datadir, "-m", "immediate",
                        "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)


def start_postgres() -> PostgresServer:
    bindir = _pg_bindir()
    root = tempfile.mkdtemp(prefix="cc-pg-")
    datadir = os.path.join(root, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as") from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", datadir, "-U", "cc", "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    opts = f"-p {port} -h 127.0.0.1 -k {root} -F -c max_connections=200"
    result = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", datadir, "-o", opts, "-l",
                             os.path.join(root, "server.log"), "-w", "-t", "60", "start"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode != 0:
        log = Path(root, "server.log")
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr.decode(errors="replace")
        raise ServerUnavailable(f"PostgreSQL did not start: {detail}")
    subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cc",
                    "callcenter"], check=True)
    return PostgresServer(f"postgresql://cc@127.0.0.1:{port}/callcenter", datadir, bindir, as_user)
