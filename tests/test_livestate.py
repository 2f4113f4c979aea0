"""One contract, two implementations: in process and real Redis."""

from __future__ import annotations

import uuid

import pytest
import pytest_twisted

from callcenter.aio import as_deferred
from callcenter.livestate import InProcessLiveState, RedisLiveState


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["in-process", "redis"])
def live(request):
    if request.param == "in-process":
        return InProcessLiveState(), None
    url = request.getfixturevalue("redis_url")
    return RedisLiveState(url, prefix=f"test-{uuid.uuid4().hex}:"), url


def run(coro):
    return as_deferred(coro)


@pytest_twisted.ensureDeferred
async def test_only_one_call_reserves_an_agent(live):
    """The second reservation of a held agent fails; the holder keeps it."""
    state, _ = live
    assert await run(state.reserve_agent("1001", "call-a", 10_000))
    assert not await run(state.reserve_agent("1001", "call-b", 10_000))
    assert await run(state.reservation_of("1001")) == "call-a"
    await run(state.close())


@pytest_twisted.ensureDeferred
async def test_only_the_holder_releases(live):
    """Another call cannot release a reservation; the holder can, once."""
    state, _ = live
    await run(state.reserve_agent("1002", "call-a", 10_000))
    assert not await run(state.release_agent("1002", "call-b"))
    assert await run(state.release_agent("1002", "call-a"))
    assert not await run(state.release_agent("1002", "call-a"))
    assert await run(state.reserve_agent("1002", "call-b", 10_000))
    await run(state.close())


@pytest_twisted.ensureDeferred
async def test_agent_state_fields_merge(live):
    """Agent state is a set of fields; updates merge."""
    state, _ = live
    await run(state.set_agent_state("1003", {"state": "ready", "name": "张伟"}))
    await run(state.set_agent_state("1003", {"state": "busy"}))
    assert await run(state.agent_state("1003")) == {"state": "busy", "name": "张伟"}
    assert await run(state.agent_state("nobody")) == {}
    await run(state.close())


@pytest_twisted.ensureDeferred
async def test_reservation_is_atomic_across_daemons(redis_url):
    """Two daemons racing for one agent in Redis: exactly one wins, every time."""
    prefix = f"race-{uuid.uuid4().hex}:"
    one, two = RedisLiveState(redis_url, prefix=prefix), RedisLiveState(redis_url, prefix=prefix)
    import asyncio

    for n in range(50):
        wins = await run(asyncio.gather(one.reserve_agent(f"a{n}", "x", 5000), two.reserve_agent(f"a{n}", "y", 5000)))
        assert sorted(wins) == [False, True]
    await run(one.close())
    await run(two.close())


@pytest_twisted.ensureDeferred
async def test_in_process_reservation_expires_with_the_clock():
    """A reservation lapses after its TTL on the injected clock."""
    clock = FakeClock()
    state = InProcessLiveState(clock)
    assert await run(state.reserve_agent("1", "c", 1500))
    clock.now += 1.4
    assert await run(state.reservation_of("1")) == "c"
    clock.now += 0.2
    assert await run(state.reservation_of("1")) is None
    assert await run(state.reserve_agent("1", "d", 1500))
