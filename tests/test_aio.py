"""callcenter.aio: the crossing between Twisted and asyncio on one loop."""

from __future__ import annotations

import asyncio

import pytest_twisted
from twisted.internet import defer, task

from callcenter.aio import as_deferred, resolved


@pytest_twisted.ensureDeferred
async def test_resolved_awaits_a_deferred_a_coroutine_a_future_or_takes_a_value():
    from twisted.internet import reactor

    async def inside_asyncio():
        later = task.deferLater(reactor, 0.01, lambda: "from a Deferred")

        async def coro():
            return "from a coroutine"

        future = asyncio.get_running_loop().create_future()
        future.set_result("from a future")
        return [await resolved(later), await resolved(coro()), await resolved(future), await resolved(7),
                await resolved(None)]

    assert await as_deferred(inside_asyncio()) == [
        "from a Deferred", "from a coroutine", "from a future", 7, None]


@pytest_twisted.ensureDeferred
async def test_resolved_raises_what_the_deferred_failed_with():
    async def inside_asyncio():
        try:
            await resolved(defer.fail(LookupError("no such customer")))
        except LookupError as exc:
            return str(exc)

    assert await as_deferred(inside_asyncio()) == "no such customer"
