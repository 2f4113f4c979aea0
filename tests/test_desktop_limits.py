"""Who gets which frames, slow and noisy desktops, frame size, and agents whose desktop is gone."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import pytest
import pytest_twisted
from twisted.internet import task
from websockets.exceptions import ConnectionClosed

from acd.inputs import SetNotReady
from agent_desktop import messages
from callcenter.aio import as_deferred
from tests.test_desktop_server import make_desktop, open_desktop, token_of


async def until(predicate, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def close_of(ws):
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv()
    return info.value.rcvd.code, info.value.rcvd.reason


class FakeAcd:
    """The ACD's agent rows and commands, as the ghost watch uses them."""

    def __init__(self, states):
        self.states = states
        self.commands = []

    def agent_rows(self):
        return [{"agent": a, "state": s} for a, s in self.states.items()]

    async def command(self, command):
        self.commands.append(command)
        return {"ok": True, "agent": None}


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def acd():
    return FakeAcd({"1001": "ready", "1002": "logged-out"})


@pytest.fixture
def desktop(clock, acd):
    svc = make_desktop(clock, acd=lambda: acd, send_queue=8, heartbeat_seconds=30)
    pytest_twisted.blockon(svc.startService())
    yield svc
    pytest_twisted.blockon(svc.stopService())


@pytest_twisted.ensureDeferred
async def test_an_agent_gets_only_their_frames_and_supervisors_get_theirs(desktop):
    tokens = {name: await token_of(desktop, name) for name in ("1001", "1002", "boss")}

    async def scenario():
        ws = {name: await open_desktop(desktop, token) for name, token in tokens.items()}
        await until(lambda: len(desktop.hub.desktops()) == 3, "three desktops")
        assert desktop.hub.send_to_agent("1002", messages.frame("offer", to="1002")) == 1
        assert desktop.hub.send_to_supervisors(messages.frame("board", n=1)) == 1
        assert desktop.hub.send_to_agent("1001", messages.frame("offer", to="1001")) == 1
        got = {name: json.loads(await w.recv()) for name, w in ws.items()}
        for w in ws.values():
            await w.close()
        return got

    got = await as_deferred(scenario())
    assert got == {"1001": {"type": "offer", "v": 1, "to": "1001"},
                   "1002": {"type": "offer", "v": 1, "to": "1002"},
                   "boss": {"type": "board", "v": 1, "n": 1}}


@pytest_twisted.ensureDeferred
async def test_a_desktop_that_stops_reading_is_dropped_while_another_keeps_up(desktop):
    slow_token, fast_token = await token_of(desktop, "1001"), await token_of(desktop, "1002")
    big = messages.frame("filler", data=base64.b64encode(os.urandom(24_000)).decode())  # not compressible

    async def scenario():
        slow = await open_desktop(desktop, slow_token, max_queue=1)  # its client stops reading the socket
        fast = await open_desktop(desktop, fast_token)
        await until(lambda: len(desktop.hub.desktops()) == 2, "two desktops")
        lags = []

        async def read_fast():
            async for raw in fast:
                lags.append(time.monotonic() - json.loads(raw)["sent"])

        reader = asyncio.ensure_future(read_fast())
        deadline = time.monotonic() + 20
        while desktop.hub.desktops("1001"):
            assert time.monotonic() < deadline, "the slow desktop was never dropped"
            desktop.hub.send_to_agent("1001", big)
            desktop.hub.send_to_agent("1002", messages.frame("tick", sent=time.monotonic()))
            await asyncio.sleep(0.001)
        desktop.hub.send_to_agent("1002", messages.frame("tick", sent=time.monotonic()))
        sent = len(lags) + 1
        await until(lambda: len(lags) >= sent, "the fast desktop's frames")
        reader.cancel()
        await fast.close()
        return lags, await close_of(slow)

    lags, closed = await as_deferred(scenario())
    assert closed == (1013, "too slow")
    assert max(lags) < 1.0, f"the fast desktop waited up to {max(lags):.2f}s"


@pytest_twisted.ensureDeferred
async def test_too_many_frames_get_errors_then_close_with_4429(desktop):
    token = await token_of(desktop, "1001")

    async def scenario():
        ws = await open_desktop(desktop, token)
        for n in range(40):  # the burst (the test clock stands still, so the bucket never refills)
            await ws.send(json.dumps({"type": "ping", "id": n}))
            assert json.loads(await ws.recv())["type"] == "pong"
        await ws.send(json.dumps({"type": "ping"}))
        error = json.loads(await ws.recv())
        for _ in range(18):
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == error
        await ws.send(json.dumps({"type": "ping"}))  # the 20th refused in a row
        return error, await close_of(ws)

    error, closed = await as_deferred(scenario())
    assert error == {"type": "error", "v": 1, "reason": "too many frames; slow down"}
    assert closed == (4429, "too many frames")


@pytest_twisted.ensureDeferred
async def test_a_frame_over_64_kib_closes_with_1009(desktop):
    token = await token_of(desktop, "1001")

    async def scenario():
        ws = await open_desktop(desktop, token)
        await ws.send(json.dumps({"type": "ping", "pad": "x" * messages.MAX_FRAME}))
        return await close_of(ws)

    code, _ = await as_deferred(scenario())
    assert code == 1009


@pytest_twisted.ensureDeferred
async def test_an_agent_without_a_desktop_for_the_heartbeat_time_is_set_not_ready(desktop, clock, acd):
    tokens = {name: await token_of(desktop, name) for name in ("1001", "1002")}

    async def scenario():
        for token in tokens.values():
            ws = await open_desktop(desktop, token)
            await ws.close()
        await until(lambda: not desktop.hub.desktops(), "the desktops to leave")
        clock.advance(29.9)
        await asyncio.sleep(0.05)
        assert acd.commands == []
        clock.advance(0.1)
        await until(lambda: acd.commands, "the not-ready command")

    await as_deferred(scenario())
    assert acd.commands == [SetNotReady("1001", "desktop-lost")]  # 1002 is not logged in to the ACD


@pytest_twisted.ensureDeferred
async def test_a_desktop_back_within_the_heartbeat_time_keeps_the_agent_as_they_were(desktop, clock, acd):
    token = await token_of(desktop, "1001")

    async def scenario():
        first = await open_desktop(desktop, token)
        second = await open_desktop(desktop, token)
        await first.close()
        await until(lambda: len(desktop.hub.desktops("1001")) == 1, "one desktop left")
        clock.advance(60)  # another desktop of the agent is still there
        await second.close()
        await until(lambda: not desktop.hub.desktops(), "the last desktop to leave")
        clock.advance(20)
        back = await open_desktop(desktop, token)
        await until(lambda: desktop.hub.desktops("1001"), "the desktop back")
        clock.advance(20)
        await asyncio.sleep(0.05)
        await back.close()

    await as_deferred(scenario())
    assert acd.commands == []
