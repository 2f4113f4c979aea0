"""Small helpers shared by tests."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable


from callcenter.aio import as_deferred


def asyncio_test(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an asyncio coroutine test on the shared asyncio reactor's loop."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return as_deferred(fn(*args, **kwargs))

    return wrapper


def sleep(seconds: float) -> Any:
    """A Deferred that fires after ``seconds`` on the reactor (for Twisted coroutine tests)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds)


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """In a Twisted coroutine test: wait, never blocking the reactor, until ``predicate()`` is true."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await sleep(0.05)
        waited += 0.05


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait (on the loop, never blocking it) until ``predicate()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def copy_flows(target) -> str:
    """A private copy of the shipped IVR flows (the daemon keeps versions next to them)."""
    import shutil
    from pathlib import Path

    import ivr_flows

    dest = Path(target) / "flows"
    shutil.copytree(Path(ivr_flows.__file__).parent / "flows", dest,
                    ignore=shutil.ignore_patterns(".history"), dirs_exist_ok=True)
    return str(dest)


def always_open_routes(*extra: str) -> str:
    """A routes.yaml with the shipped lines (4000 hotline, 4001 VIP) open around the clock, plus
    ``extra`` route lines such as ``'"4050": {flow: lab, calendar: always, closed: after_hours}'``."""
    lines = ['"4000": {flow: hotline, calendar: always, closed: after_hours}',
             '"4001": {flow: vip, calendar: always, closed: after_hours}', *extra]
    routes = "".join(f"  {line}\n" for line in lines)
    return ("timezone: Asia/Shanghai\n"
            "calendars:\n  always:\n    hours: {mon-sun: [\"00:00-24:00\"]}\n"
            "transfers: {allow: [\"_6XXX\"]}\n"
            f"routes:\n{routes}"
            "default: {flow: hotline, calendar: always, closed: after_hours}\n")


#: A flow that hands the caller straight to the daemon's ACD (``.format(queue=...)``).
ACD_FLOW = """
description: Straight to the daemon's ACD.
start: to_agent
language: en
nodes:
  to_agent:
    type: queue
    queue: {queue}
"""


def write_acd_flows(flows_dir, **queues: str) -> None:
    """One ACD_FLOW file per ``name=queue`` in ``flows_dir`` (e.g. ``acd="support"`` -> acd.yaml)."""
    from pathlib import Path

    for name, queue in queues.items():
        Path(flows_dir, f"{name}.yaml").write_text(ACD_FLOW.format(queue=queue), encoding="utf-8")
