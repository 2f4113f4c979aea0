"""The one bridge between Twisted and asyncio.

The daemon runs Twisted on the asyncio reactor, so panoramisk, websockets and
redis.asyncio share one event loop with Twisted.  Twisted coroutines
(``Deferred.fromCoroutine``) cannot await asyncio futures and asyncio tasks
cannot await Deferreds; every crossing goes through this module.

``install_asyncio_reactor()`` must run before anything imports
``twisted.internet.reactor``; ``callcenter.__main__`` and the CLI do it first.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, Coroutine, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


class ReactorMismatch(RuntimeError):
    """A reactor other than the asyncio reactor was installed first."""


def install_asyncio_reactor() -> Any:
    """Install (once) and return Twisted's asyncio reactor on a fresh loop."""
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise ReactorMismatch(
                f"the {type(reactor).__name__} was installed before the asyncio "
                "reactor; import callcenter.aio and install it first"
            )
        return reactor
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor

    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


def loop_of(reactor: Any) -> asyncio.AbstractEventLoop:
    """The asyncio loop that drives ``reactor``."""
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is None:
        raise ReactorMismatch("the running reactor is not the asyncio reactor")
    return loop


def as_deferred(aw: Awaitable[T] | Coroutine[Any, Any, T]) -> "Deferred[T]":
    """Run an asyncio awaitable as a task and return a Deferred for it."""
    return Deferred.fromFuture(asyncio.ensure_future(aw))


def as_future(d: "Deferred[T]", loop: asyncio.AbstractEventLoop | None = None) -> "asyncio.Future[T]":
    """Wrap a Deferred so that asyncio code can await it."""
    return d.asFuture(loop or asyncio.get_event_loop())


async def resolved(value: Any) -> Any:
    """What ``value`` comes to, awaited in an asyncio task: a coroutine's or an asyncio future's result,
    a Deferred's result (a CRM store call), or ``value`` itself when it is neither."""
    if asyncio.iscoroutine(value) or asyncio.isfuture(value):
        return await value
    if isinstance(value, Deferred):
        return await value.asFuture(asyncio.get_running_loop())
    return value
