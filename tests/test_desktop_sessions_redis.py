"""Desktop sessions shared by two daemons through a real Redis: a login on one daemon is good on the other,
a logout on either ends it on both (the other closes its websockets within the recheck period), an expired
session is refused everywhere, Redis down refuses new logins (503) but not cached sessions, and garbled data
under a session's key is refused cleanly.

Each "daemon" is a desktop server and a REST API sharing one ``RedisSessions``, on the real reactor's
clock (so expiry and rechecks run in real time); each test has a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
import urllib.request
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads
from websockets.asyncio.client import connect

from agent_desktop.auth import SessionStore
from agent_desktop.rest import RestService
from agent_desktop.server import DesktopService
from agent_desktop.sessions_redis import RedisSessions, key_of
from callcenter.aio import as_deferred, as_future
from callcenter.app import build_root
from callcenter.config import DesktopConfig, build_config
from tests import servers
from tests.servers import free_port
from tests.servers import forget_keys
from tests.test_desktop_auth import close_of
from tests.test_desktop_server import basic, fake_check_password, open_desktop, post, url

pytestmark = pytest.mark.redis

#: Seconds between two rechecks of the cached sessions against Redis (the default is 15).
RECHECK = 0.3


class FakeAcd:
    """What the REST API's /api/v1/agents reads."""

    def agent_rows(self):
        return [{"agent": "1001", "state": "ready"}, {"agent": "1002", "state": "not-ready"}]

    def queue_rows(self):
        return []


class Daemon:
    """One daemon's desktop server and REST API, its sessions shared through Redis."""

    def __init__(self, redis_url: str, prefix: str, session_minutes: float) -> None:
        config = DesktopConfig(bind="127.0.0.1", port=free_port(), session_minutes=session_minutes,
                               session_recheck_seconds=RECHECK, api_enabled=True, api_bind="127.0.0.1",
                               api_port=0)
        acd = FakeAcd()
        shared = RedisSessions(redis_url, SessionStore(reactor, session_minutes * 60), prefix=prefix)
        self.desktop = DesktopService(config, reactor, fake_check_password, acd=lambda: acd, shared=shared)
        self.rest = RestService(config, reactor, self.desktop.sessions, self.desktop.scope_of, lambda: None,
                                lambda: acd, shared=shared)

    async def start(self) -> None:
        await self.desktop.startService()
        await self.rest.startService()

    async def stop(self) -> None:
        await self.rest.stopService()
        await self.desktop.stopService()

    def login(self, username: str, password: str | None = None):
        """A Deferred: ``(status, headers, body)`` of ``POST /api/login``."""
        password = f"pw-{username}" if password is None else password
        return threads.deferToThread(post, url(self.desktop, "/api/login"), basic(username, password))

    async def token(self, username: str) -> str:
        status, _, body = await self.login(username)
        assert status == 200, body
        return body["token"]

    def logout(self, token: str):
        """A Deferred: ``(status, headers, body)`` of ``POST /api/logout`` with the token."""
        return threads.deferToThread(post, url(self.desktop, "/api/logout"), {"Authorization": f"Bearer {token}"})

    def rest_get(self, path: str, token: str):
        """A Deferred: ``(status, body)`` of a REST GET with the token."""
        host, port = self.rest.address
        return threads.deferToThread(_get, f"http://{host}:{port}{path}", token)


def _get(address: str, token: str):
    request = urllib.request.Request(address, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def first_frame_refusal(daemon: Daemon, token: str):
    """An asyncio coroutine: the close code and reason of a websocket whose first frame is ``auth``."""
    ws = await connect(url(daemon.desktop, "/ws", "ws"))
    await ws.send(json.dumps({"type": "auth", "token": token}))
    return await close_of(ws)


async def closed_within(ws, seconds: float):
    """An asyncio coroutine: ``(code, reason, seconds until closed)``; fails if still open after ``seconds``."""
    started = time.monotonic()
    code, reason = await asyncio.wait_for(close_of(ws), seconds)
    return code, reason, time.monotonic() - started


class Center:
    """Daemons started by a test on one Redis, stopped and their keys removed after it."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.prefix = f"test-sessions-{uuid.uuid4().hex}:"
        self.daemons: list[Daemon] = []

    async def start(self, count: int = 2, session_minutes: float = 5) -> list[Daemon]:
        made = [Daemon(self.redis_url, self.prefix, session_minutes) for _ in range(count)]
        for daemon in made:
            await daemon.start()
            self.daemons.append(daemon)
        return made

    def key(self, token: str) -> str:
        return key_of(self.prefix, token)

    def redis(self):
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(self.redis_url)


@pytest.fixture
def center(redis_url):
    made = Center(redis_url)
    yield made
    for daemon in reversed(made.daemons):
        pytest_twisted.blockon(defer.ensureDeferred(daemon.stop()))
    pytest_twisted.blockon(as_deferred(forget_keys(made.redis_url, made.prefix)))


# -- a login anywhere, a logout anywhere -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_login_on_one_daemon_authenticates_a_websocket_and_a_rest_call_on_the_other(center):
    """1001 logs in on A.  B, which never saw the token, takes it in an ``auth`` frame, as the cookie and as
    a REST Bearer token.  Redis holds the session under the token's hash, with the session's lifetime."""
    a, b = await center.start()
    status, _, login = await a.login("1001")
    assert status == 200
    token = login["token"]

    async def scenario():
        ws = await open_desktop(b.desktop, token)
        await ws.close()
        async with connect(url(b.desktop, "/ws", "ws"), additional_headers={"Cookie": f"cc_session={token}"}) as ws:
            return json.loads(await ws.recv())

    welcome = await as_deferred(scenario())
    assert (welcome["type"], welcome["agent"], welcome["role"], welcome["expires_at"]) == (
        "welcome", "1001", "agent", login["expires_at"])
    assert await b.rest_get("/api/v1/agents", token) == (200, {"agents": [{"agent": "1001", "state": "ready"}]})

    async def stored_in_redis():
        client = center.redis()
        try:
            keys = [k.decode() async for k in client.scan_iter(f"{center.prefix}*")]
            return keys, json.loads(await client.get(center.key(token))), await client.pttl(center.key(token))
        finally:
            await client.aclose()

    keys, stored, ttl = await as_deferred(stored_in_redis())
    assert keys == [center.key(token)] and token not in keys[0]
    assert stored == {"agent": "1001", "role": "agent", "groups": [], "expires_at": login["expires_at"]}
    assert 5 * 60_000 - 5_000 < ttl <= 5 * 60_000


@pytest_twisted.ensureDeferred
async def test_a_logout_on_one_daemon_closes_the_others_websocket_within_the_recheck_period(center):
    """1001 is connected to both daemons and has used B's REST API.  The logout on A closes A's websocket
    at once and B's within the recheck period (4401 "logged out"); B's REST API then answers 401 and B
    refuses the token on a new websocket."""
    a, b = await center.start()
    token = await a.token("1001")
    assert (await b.rest_get("/api/v1/agents", token))[0] == 200

    async def scenario():
        on_a, on_b = await open_desktop(a.desktop, token), await open_desktop(b.desktop, token)
        status, _, body = await as_future(a.logout(token))
        assert (status, body) == (200, {"ok": True, "ended": True})
        closed_a = await closed_within(on_a, 1.0)
        closed_b = await closed_within(on_b, RECHECK + 1.0)
        return closed_a, closed_b, await first_frame_refusal(b, token)

    closed_a, closed_b, again = await as_deferred(scenario())
    assert closed_a[:2] == closed_b[:2] == (4401, "logged out")
    assert closed_b[2] <= RECHECK + 0.5, closed_b
    assert again == (4401, "authentication failed")
    status, body = await b.rest_get("/api/v1/agents", token)
    assert status == 401 and "unknown or expired" in body["error"]


@pytest_twisted.ensureDeferred
async def test_a_logout_on_a_daemon_that_never_saw_the_session_ends_it_everywhere(center):
    """A token opened on A and logged out on B (which had not seen it): B says it ended, A's websocket is
    closed within the recheck period, and A refuses the token."""
    a, b = await center.start()
    token = await a.token("1002")

    async def scenario():
        on_a = await open_desktop(a.desktop, token)
        status, _, body = await as_future(b.logout(token))
        assert (status, body) == (200, {"ok": True, "ended": True})
        return await closed_within(on_a, RECHECK + 1.0), await first_frame_refusal(a, token)

    closed, again = await as_deferred(scenario())
    assert closed[:2] == (4401, "logged out") and again == (4401, "authentication failed")
    assert (await a.rest_get("/api/v1/agents", token))[0] == 401
    status, _, body = await b.logout(token)
    assert (status, body) == (200, {"ok": True, "ended": False})


@pytest_twisted.ensureDeferred
async def test_an_expired_session_is_refused_on_both_daemons(center):
    """Sessions of 2 s: B's websocket of a token from A is closed at its expiry (4440); afterwards that
    token (cached on both) and another one only A saw are refused on A and on B, websocket and REST."""
    a, b = await center.start(session_minutes=2 / 60)
    token, unseen = await a.token("1001"), await a.token("1002")
    assert (await b.rest_get("/api/v1/agents", token))[0] == 200

    async def scenario():
        ws = await open_desktop(b.desktop, token)
        return await closed_within(ws, 3.0)

    code, reason, _ = await as_deferred(scenario())
    assert (code, reason) == (4440, "session expired")
    await as_deferred(asyncio.sleep(0.1))
    for daemon in (a, b):
        for each in (token, unseen):
            assert await as_deferred(first_frame_refusal(daemon, each)) == (4401, "authentication failed")
            assert (await daemon.rest_get("/api/v1/agents", each))[0] == 401


# -- what Redis holds ------------------------------------------------------------------------------------


GOOD = {"agent": "1001", "role": "agent", "groups": [], "expires_at": 4_000_000_000}


@pytest.mark.parametrize("value", [
    b"\xff\xfe\x00garbage",
    b"not json at all",
    b"[\"1001\", \"agent\"]",
    json.dumps({**GOOD, "role": "root"}).encode(),
    json.dumps({k: v for k, v in GOOD.items() if k != "agent"}).encode(),
    json.dumps({**GOOD, "expires_at": "tomorrow"}).encode(),
    json.dumps({**GOOD, "expires_at": 1_000_000_000}).encode(),  # long expired, whatever the key's TTL
    "a hash",
], ids=["not-utf8", "not-json", "a-list", "bad-role", "no-agent", "bad-expiry", "expired", "a-hash"])
@pytest_twisted.ensureDeferred
async def test_garbled_data_under_a_sessions_key_is_refused_cleanly(center, value, caplog):
    """Whatever is stored under a token's key that is not a live session is refused with 4401 and 401, is
    logged (never with the token), and the daemon carries on serving good sessions."""
    (b,) = await center.start(count=1)
    token = "forged-" + uuid.uuid4().hex

    async def store():
        client = center.redis()
        try:
            if value == "a hash":
                await client.hset(center.key(token), mapping={"agent": "1001"})
            else:
                await client.set(center.key(token), value)
        finally:
            await client.aclose()

    await as_deferred(store())
    with caplog.at_level(logging.WARNING, logger="agent_desktop.sessions_redis"):
        assert await as_deferred(first_frame_refusal(b, token)) == (4401, "authentication failed")
        status, body = await b.rest_get("/api/v1/agents", token)
    assert status == 401 and "unknown or expired" in body["error"]
    if value != json.dumps({**GOOD, "expires_at": 1_000_000_000}).encode():
        assert any(center.key(token)[:-52] in r.getMessage() for r in caplog.records), caplog.text
    assert token not in caplog.text
    good = await b.token("1001")
    assert (await b.rest_get("/api/v1/agents", good))[0] == 200
    assert (await b.logout(token))[0] == 200


# -- Redis down ----------------------------------------------------------------------------------------------


class OwnRedis:
    """A Redis of this test's own, stopped and started again on the same port and data (append-only file)."""

    def __init__(self, workdir) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found; run the test command scripts/test.sh, which installs it")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers._wait_port(self.port, self.proc, "redis-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest_twisted.ensureDeferred
async def test_with_redis_down_logins_answer_503_and_cached_sessions_keep_working(own_redis, caplog):
    """Redis stops.  A new login answers 503 with the reason; a token both daemons cached still opens
    websockets and REST calls on both; a token B never saw is not refused as unknown but as unavailable
    (1013, 503), and B cannot log it out (503).  A logout on A ends the cached session on A at once; when
    Redis is back, A deletes its key and B closes its websocket (4401) at its next recheck.  Redis
    unreachable is logged once per outage and daemon."""
    center = Center(own_redis.url)
    a, b = await center.start()
    try:
        token, unseen = await a.token("1001"), await a.token("1002")
        assert (await b.rest_get("/api/v1/agents", token))[0] == 200
        own_redis.stop()
        with caplog.at_level(logging.INFO, logger="agent_desktop.sessions_redis"):
            status, _, body = await a.login("boss")
            assert (status, body) == (503, {"error": "logins are not available: the shared sessions (Redis) do "
                                                     "not answer; try again"})
            for daemon in (a, b):
                assert (await daemon.rest_get("/api/v1/agents", token))[0] == 200
            status, body = await b.rest_get("/api/v1/agents", unseen)
            assert status == 503 and "Redis" in body["error"]
            assert await as_deferred(first_frame_refusal(b, unseen)) == (1013, "sessions not available; try again "
                                                                               "later")
            status, headers, body = await b.logout(unseen)
            assert (status, body) == (503, {"error": "the logout did not reach the shared sessions (Redis); try "
                                                     "again"})
            assert "Set-Cookie" not in headers

            async def scenario():
                on_a, on_b = await open_desktop(a.desktop, token), await open_desktop(b.desktop, token)
                await asyncio.sleep(RECHECK * 3)  # rechecks fail: nothing is dropped
                status, _, body = await as_future(a.logout(token))
                assert (status, body) == (200, {"ok": True, "ended": True})
                assert (await closed_within(on_a, 1.0))[:2] == (4401, "logged out")
                assert await first_frame_refusal(a, token) == (4401, "authentication failed")
                await asyncio.sleep(RECHECK * 3)
                await on_b.send(json.dumps({"type": "ping", "id": 1}))
                assert json.loads(await on_b.recv())["type"] == "pong"    # B cannot know yet
                await asyncio.to_thread(own_redis.start)
                return await closed_within(on_b, RECHECK * 2 + 3.0)

            closed = await as_deferred(scenario())
            assert closed[:2] == (4401, "logged out")
            assert (await b.rest_get("/api/v1/agents", token))[0] == 401
            assert (await b.rest_get("/api/v1/agents", unseen))[0] == 200
            assert (await a.login("boss"))[0] == 200
        unreachable = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(unreachable) == 2, caplog.text  # once on each daemon
        assert any("answers again" in r.getMessage() for r in caplog.records)
        assert token not in caplog.text
    finally:
        for daemon in (b, a):
            await daemon.stop()


# -- wiring ----------------------------------------------------------------------------------------------------


def test_the_daemon_shares_sessions_through_redis_only_when_redis_is_configured(tmp_path):
    """With ``redis.url`` the desktop and the REST API use one ``RedisSessions`` (the desktop's cache is its
    ``local``), rechecked every ``desktop.session_recheck_seconds``; without it, sessions stay in memory."""
    base = {"asterisk": {"ami_secret": "x"}, "crm": {"url": f"sqlite:///{tmp_path / 'crm.db'}"},
            "desktop": {"api_enabled": True, "session_recheck_seconds": 4}}
    shared = build_root(build_config({**base, "redis": {"url": "redis://127.0.0.1:1/0"}}, environ={}), reactor)
    assert isinstance(shared.desktop.shared, RedisSessions)
    assert shared.desktop.sessions is shared.desktop.shared.local
    assert shared.rest.api._shared is shared.desktop.shared and shared.rest.api._sessions is shared.desktop.sessions
    single = build_root(build_config(base, environ={}), reactor)
    assert single.desktop.shared is None and single.rest.api._shared is None
    assert isinstance(single.desktop.sessions, SessionStore)
