"""The desktop server: pages over HTTP, versioned JSON frames over /ws, bad input answered.

The helpers here (a desktop with a stand-in password check, login over HTTP,
authenticated websockets) are shared by tests/test_desktop_auth.py and
tests/test_desktop_limits.py.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, task, threads
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent_desktop.server import DesktopService
from callcenter.aio import as_deferred
from callcenter.config import DesktopConfig
from crm_core.records import AgentConfig
from tests.servers import free_port

PASSWORDS = {"1001": ("agent", "pw-1001"), "1002": ("agent", "pw-1002"), "boss": ("supervisor", "pw-boss")}


def fake_check_password(login, password):
    """The CRM store's check_password, for tests that are not about the CRM."""
    role, good = PASSWORDS.get(login, (None, None))
    found = AgentConfig(login, login, None, role, True) if good is not None and password == good else None
    return defer.succeed(found)


def make_desktop(clock=None, check_password=fake_check_password, acd=lambda: None, shared=None, **settings: Any):
    config = DesktopConfig(bind="127.0.0.1", port=free_port(), allowed_origins=("https://desk.example.com",),
                           **settings)
    return DesktopService(config, clock or task.Clock(), check_password, acd=acd, shared=shared)


@pytest.fixture
def desktop():
    svc = make_desktop()
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())


def url(svc, path, scheme="http"):
    host, port = svc.address
    return f"{scheme}://{host}:{port}{path}"


def post(address, headers=None):
    """``(status, headers, body)`` of a POST without a body; a JSON body is decoded."""
    req = urllib.request.Request(address, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            status, got, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, got, body = err.code, err.headers, err.read()
    return status, got, json.loads(body) if got.get_content_type() == "application/json" else body


def basic(username, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


async def login(svc, username, password=None):
    """Log in over HTTP; the ``/api/login`` answer (status, headers, body)."""
    password = PASSWORDS[username][1] if password is None else password
    return await threads.deferToThread(post, url(svc, "/api/login"), basic(username, password))


async def token_of(svc, username):
    status, _, body = await login(svc, username)
    assert status == 200, body
    return body["token"]


async def open_desktop(svc, token, **kwargs):
    """An asyncio coroutine: a websocket authenticated by its first frame, after its welcome."""
    ws = await connect(url(svc, "/ws", "ws"), **kwargs)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws


async def exchange(svc, token, *frames, origin=None):
    async def run():
        ws = await open_desktop(svc, token, origin=origin)
        async with ws:
            replies = []
            for f in frames:
                await ws.send(f)
                replies.append(json.loads(await ws.recv()))
            return replies
    return await as_deferred(run())


@pytest_twisted.ensureDeferred
async def test_ping_pong_after_auth(desktop):
    """An authenticated desktop is answered on ping, with the same id."""
    token = await token_of(desktop, "1001")
    [pong] = await exchange(desktop, token, json.dumps({"type": "ping", "v": 1, "id": 7}))
    assert pong == {"type": "pong", "v": 1, "id": 7}


@pytest_twisted.ensureDeferred
async def test_bad_frames_get_a_reason_and_the_connection_stays(desktop):
    """Non-JSON, non-object, missing type, wrong version, unknown type, binary: each gets an error."""
    token = await token_of(desktop, "1001")
    replies = await exchange(
        desktop, token, "{nope", "[1,2]", json.dumps({"v": 1}), json.dumps({"type": "ping", "v": 9}),
        json.dumps({"type": "dance"}), b"\x00\x01", json.dumps({"type": "ping"}))
    reasons = [r.get("reason") for r in replies[:-1]]
    assert reasons == [
        "not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        "a frame must be a JSON object",
        "missing 'type'",
        "unsupported protocol version 9; this server speaks 1",
        "unknown frame type 'dance'",
        "binary frames are not accepted; send JSON text",
    ]
    assert replies[-1]["type"] == "pong"


@pytest_twisted.ensureDeferred
async def test_foreign_origin_is_refused(desktop):
    """A browser page from an origin not allowed cannot open the websocket (HTTP 403)."""
    token = await token_of(desktop, "1001")
    with pytest.raises(InvalidStatus) as info:
        await exchange(desktop, token, origin="https://evil.example")
    assert info.value.response.status_code == 403
    assert await exchange(desktop, token, json.dumps({"type": "ping"}), origin="https://desk.example.com")


def fetch(address):
    try:
        with urllib.request.urlopen(address, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest_twisted.ensureDeferred
async def test_pages_health_and_no_path_traversal(desktop):
    """/ serves the desktop page, /healthz answers, ../ cannot leave static/."""
    status, body = await threads.deferToThread(fetch, url(desktop, "/"))
    assert status == 200 and b"<title>callcenter agent desktop</title>" in body
    assert await threads.deferToThread(fetch, url(desktop, "/healthz")) == (200, b"ok\n")
    status, _ = await threads.deferToThread(fetch, url(desktop, "/..%2f..%2fpyproject.toml"))
    assert status == 404
    status, _ = await threads.deferToThread(fetch, url(desktop, "/../server.py"))
    assert status == 404


def fetch_headers(address):
    """``(status, headers)`` of a GET."""
    try:
        with urllib.request.urlopen(address, timeout=5) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@pytest_twisted.ensureDeferred
async def test_static_pages_carry_the_content_security_policy(desktop):
    """Every static answer forbids inline code, foreign resources and framing."""
    for path in ("/", "/wallboard.html", "/desktop.js", "/wallboard.js", "/desktop.css"):
        status, headers = await threads.deferToThread(fetch_headers, url(desktop, path))
        assert status == 200, path
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
    status, headers = await threads.deferToThread(fetch_headers, url(desktop, "/no-such-page.html"))
    assert status == 404 and headers["Content-Security-Policy"] == CSP


def test_pages_have_no_inline_code():
    """The CSP refuses inline scripts, styles and handlers, so the pages must not rely on any."""
    import re
    from agent_desktop.server import STATIC

    for page in ("index.html", "wallboard.html"):
        html = (STATIC / page).read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page
        assert not re.search(r"<style\b", html, re.I), page
        assert not re.search(r"\s(style|on[a-z]+)\s*=", html, re.I), page
    for script in ("desktop.js", "wallboard.js"):
        assert ".innerHTML" not in (STATIC / script).read_text(encoding="utf-8"), script
