"""The desktop server: pages over HTTP, versioned JSON frames over /ws, bad input answered."""

from __future__ import annotations

import json
import urllib.request

import pytest
import pytest_twisted
from twisted.internet import threads
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent_desktop.server import DesktopService
from callcenter.aio import as_deferred
from callcenter.config import DesktopConfig
from tests.servers import free_port


@pytest.fixture
def desktop():
    svc = DesktopService(DesktopConfig(bind="127.0.0.1", port=free_port(),
                                       allowed_origins=("https://desk.example.com",)))
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())


def url(svc, path, scheme="http"):
    host, port = svc.address
    return f"{scheme}://{host}:{port}{path}"


async def exchange(svc, *frames, origin=None):
    async with connect(url(svc, "/ws", "ws"), origin=origin) as ws:
        replies = [json.loads(await ws.recv())]
        for f in frames:
            await ws.send(f)
            replies.append(json.loads(await ws.recv()))
        return replies


@pytest_twisted.ensureDeferred
async def test_hello_then_ping_pong(desktop):
    """A desktop is greeted with a versioned hello and answered on ping."""
    hello, pong = await as_deferred(exchange(desktop, json.dumps({"type": "ping", "v": 1, "id": 7})))
    assert hello == {"type": "hello", "v": 1, "server": "callcenter"}
    assert pong == {"type": "pong", "v": 1, "id": 7}


@pytest_twisted.ensureDeferred
async def test_bad_frames_get_a_reason_and_the_connection_stays(desktop):
    """Non-JSON, non-object, missing type, wrong version, unknown type, binary: each gets an error."""
    replies = await as_deferred(exchange(
        desktop, "{nope", "[1,2]", json.dumps({"v": 1}), json.dumps({"type": "ping", "v": 9}),
        json.dumps({"type": "dance"}), b"\x00\x01", json.dumps({"type": "ping"})))
    reasons = [r.get("reason") for r in replies[1:-1]]
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
    """A browser page from an origin not allowed cannot open the websocket."""
    with pytest.raises(InvalidStatus) as info:
        await as_deferred(exchange(desktop, origin="https://evil.example"))
    assert info.value.response.status_code == 403
    replies = await as_deferred(exchange(desktop, origin="https://desk.example.com"))
    assert replies[0]["type"] == "hello"


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
