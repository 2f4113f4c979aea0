"""Desktop logins against a real SQLite CRM, sessions (in memory, and shared through a real Redis), and websocket
authentication."""

from __future__ import annotations

import json
import uuid

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_desktop.auth import FailureLimiter, SessionStore, TokenBucket, basic_credentials, cookie_token
from agent_desktop.sessions_redis import RedisSessions
from callcenter.aio import as_deferred, as_future
from callcenter.config import CrmConfig
from crm_core.acd_config import NewAgent, thd_save_agent
from crm_core.service import CrmService
from tests.crm_servers import crm_templates  # noqa: F401 (fixture)
from tests.servers import forget_keys
from tests.test_desktop_server import basic, login, make_desktop, open_desktop, post, url


@pytest.fixture
def crm(tmp_path, crm_templates):  # noqa: F811
    svc = CrmService(reactor, CrmConfig(url=crm_templates.sqlite(tmp_path / "crm.db"),
                                        journal=str(tmp_path / "contacts.journal")))
    pytest_twisted.blockon(svc.startService())
    for agent in (NewAgent("1001", "Ann", password="ann-secret"),
                  NewAgent("boss", "Bea", password="bea-secret", role="supervisor")):
        pytest_twisted.blockon(threads.deferToThread(thd_save_agent, svc.engine, agent))
    yield svc
    pytest_twisted.blockon(svc.stopService())


@pytest.fixture
def clock():
    c = task.Clock()
    c.advance(1_700_000_000)
    return c


@pytest.fixture(params=["in-memory", "redis"])
def desktop(request, crm, clock):
    """The desktop server with its sessions in memory, and with them shared through a real Redis: the
    same behaviour either way."""
    shared = None
    if request.param == "redis":
        prefix = f"test-auth-{uuid.uuid4().hex}:"
        shared = RedisSessions(request.getfixturevalue("redis_url"), SessionStore(clock, 60), prefix=prefix)
    svc = make_desktop(clock, check_password=lambda u, p: crm.store.check_password(u, p), session_minutes=1,
                       shared=shared)
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())
    if shared is not None:
        pytest_twisted.blockon(as_deferred(forget_keys(request.getfixturevalue("redis_url"), prefix)))


async def close_of(ws):
    """The close code and reason the server sent, reading whatever comes before."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv()
    return info.value.rcvd.code, info.value.rcvd.reason


# -- pure parts ------------------------------------------------------------------------------------


def test_a_session_is_refused_once_expired():
    clock = task.Clock()
    store = SessionStore(clock, 60)
    session = store.open("1001", "agent")
    assert len(session.token) >= 43 and store.get(session.token) == session
    clock.advance(59.9)
    assert store.get(session.token) == session
    clock.advance(0.1)
    assert store.get(session.token) is None and len(store) == 0


def test_failed_logins_block_a_key_for_the_rest_of_the_window():
    clock = task.Clock()
    limiter = FailureLimiter(clock, 5, 60)
    for _ in range(5):
        assert limiter.retry_after("user:x", "addr:a") == 0
        limiter.failed("user:x", "addr:a")
        clock.advance(1)
    assert limiter.retry_after("user:x") == pytest.approx(55) and limiter.retry_after("addr:a") > 0
    assert limiter.retry_after("user:y") == 0
    clock.advance(56)
    assert limiter.retry_after("user:x") == 0


def test_token_bucket_allows_a_burst_then_the_rate():
    clock = task.Clock()
    bucket = TokenBucket(clock, rate=20, burst=40)
    assert [bucket.take() for _ in range(41)] == [True] * 40 + [False]
    clock.advance(0.1)
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_credentials_and_cookies_are_parsed_strictly():
    assert basic_credentials(basic("1001", "a:b é")["Authorization"]) == ("1001", "a:b é")
    assert basic_credentials("Basic !!!") is None and basic_credentials("Bearer x") is None
    assert cookie_token("theme=dark; cc_session=abc-_1") == "abc-_1"
    assert cookie_token("theme=dark") is None


# -- login and logout over HTTP ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_login_returns_a_token_role_and_an_httponly_cookie(desktop, clock):
    status, headers, body = await login(desktop, "boss", "bea-secret")
    assert status == 200
    assert body == {"token": body["token"], "expires_at": clock.seconds() + 60, "role": "supervisor",
                    "agent": "boss"}
    assert headers["Set-Cookie"] == (f"cc_session={body['token']}; HttpOnly; SameSite=Strict; Path=/; "
                                     "Max-Age=60")


@pytest_twisted.ensureDeferred
async def test_wrong_password_and_unknown_user_get_the_same_401(desktop):
    wrong = await login(desktop, "1001", "nope")
    unknown = await login(desktop, "nobody", "nope")
    assert wrong[0] == unknown[0] == 401
    assert wrong[2] == unknown[2] == {"error": "wrong username or password"}
    assert "Set-Cookie" not in wrong[1] and "WWW-Authenticate" not in wrong[1]


@pytest_twisted.ensureDeferred
async def test_five_failures_a_minute_block_the_username_even_with_the_right_password(desktop, clock):
    for _ in range(5):
        assert (await login(desktop, "1001", "guess"))[0] == 401
    status, headers, body = await login(desktop, "1001", "ann-secret")
    assert status == 429 and int(headers["Retry-After"]) == 61
    assert body == {"error": "too many failed logins; try again later"}
    clock.advance(61)
    assert (await login(desktop, "1001", "ann-secret"))[0] == 200


@pytest_twisted.ensureDeferred
async def test_five_failures_a_minute_from_one_address_block_every_username(desktop):
    for n in range(5):
        assert (await login(desktop, f"guess{n}", "guess"))[0] == 401
    assert (await login(desktop, "boss", "bea-secret"))[0] == 429


@pytest_twisted.ensureDeferred
async def test_a_login_without_basic_credentials_is_a_400(desktop):
    status, _, body = await threads.deferToThread(post, url(desktop, "/api/login"))
    assert status == 400 and "HTTP Basic" in body["error"]


@pytest_twisted.ensureDeferred
async def test_logout_ends_the_session_and_closes_its_desktops(desktop):
    token = (await login(desktop, "1001", "ann-secret"))[2]["token"]

    async def scenario():
        ws = await open_desktop(desktop, token)
        status, headers, body = await as_future(threads.deferToThread(
            post, url(desktop, "/api/logout"), {"Authorization": f"Bearer {token}"}))
        assert (status, body) == (200, {"ok": True, "ended": True})
        assert "Max-Age=0" in headers["Set-Cookie"]
        assert await close_of(ws) == (4401, "logged out")
        again = await connect(url(desktop, "/ws", "ws"))
        await again.send(json.dumps({"type": "auth", "token": token}))
        return await close_of(again)

    assert await as_deferred(scenario()) == (4401, "authentication failed")


# -- websocket authentication ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_first_frame_authenticates_and_gets_a_welcome(desktop, clock):
    token = (await login(desktop, "1001", "ann-secret"))[2]["token"]

    async def scenario():
        async with connect(url(desktop, "/ws", "ws")) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            return json.loads(await ws.recv())

    assert await as_deferred(scenario()) == {"type": "welcome", "v": 1, "agent": "1001", "role": "agent",
                                             "expires_at": clock.seconds() + 60}


@pytest_twisted.ensureDeferred
async def test_the_session_cookie_authenticates_the_upgrade(desktop):
    token = (await login(desktop, "boss", "bea-secret"))[2]["token"]

    async def scenario():
        async with connect(url(desktop, "/ws", "ws"), additional_headers={"Cookie": f"cc_session={token}"}) as ws:
            return json.loads(await ws.recv())

    welcome = await as_deferred(scenario())
    assert (welcome["type"], welcome["agent"], welcome["role"]) == ("welcome", "boss", "supervisor")


@pytest_twisted.ensureDeferred
async def test_a_token_in_the_url_is_refused(desktop):
    token = (await login(desktop, "1001", "ann-secret"))[2]["token"]
    with pytest.raises(InvalidStatus) as info:
        await as_deferred(connect(url(desktop, f"/ws?token={token}", "ws")))
    assert info.value.response.status_code == 400


@pytest.mark.parametrize("first, reason", [
    (json.dumps({"type": "ping"}), "authenticate first: send an auth frame with your token"),
    ("{nope", "authenticate first: not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (json.dumps({"type": "auth", "token": "forged"}), "authentication failed"),
    (json.dumps({"type": "auth"}), "authentication failed"),
])
@pytest_twisted.ensureDeferred
async def test_anything_but_a_good_auth_frame_first_closes_with_4401(desktop, first, reason):
    async def scenario():
        ws = await connect(url(desktop, "/ws", "ws"))
        await ws.send(first)
        return await close_of(ws)

    assert await as_deferred(scenario()) == (4401, reason)


@pytest_twisted.ensureDeferred
async def test_an_expiring_session_closes_its_desktop_with_4440(desktop, clock):
    token = (await login(desktop, "1001", "ann-secret"))[2]["token"]

    async def scenario():
        ws = await open_desktop(desktop, token)
        clock.advance(59)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"
        clock.advance(1)
        return await close_of(ws)

    assert await as_deferred(scenario()) == (4440, "session expired")
    assert desktop.sessions.get(token) is None


@pytest_twisted.ensureDeferred
async def test_the_api_refuses_a_foreign_origin(desktop):
    status, _, _ = await threads.deferToThread(
        post, url(desktop, "/api/login"), {**basic("1001", "ann-secret"), "Origin": "https://evil.example"})
    assert status == 403
