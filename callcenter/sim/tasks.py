"""Cooperative "channel threads" driven by an injected clock.

Asterisk runs every channel's dialplan in its own thread.  The simulator runs
each one as a generator that yields what it waits for:

* ``Sleep(seconds)``: resume after that long on the clock;
* ``Wait()``: resume when someone calls ``task.wake(value)``.

Other channels reach a task only through the scheduler's FIFO ``soon`` queue
(``task.interrupt(exc)`` throws ``exc`` at the task's yield point), so a task
always runs to its next yield before another one starts, as a thread holding
the channel lock would.  ``Scheduler.turn()`` wraps every entry point (clock
callbacks, network input, API calls) and drains that queue before returning,
so a whole call runs deterministically on ``twisted.internet.task.Clock``.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)


class Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)


class Wait:
    """Block until ``Task.wake()``; ``timeout`` seconds (if given) wakes it with ``None``."""

    __slots__ = ("timeout",)

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout


class Interrupt(Exception):
    """Thrown into a task at its yield point."""


class HangupSignal(Interrupt):
    """The channel was hung up (a soft hangup reached its thread)."""


class RedirectSignal(Interrupt):
    """An async goto (AMI Redirect) to ``context, exten, priority``."""

    def __init__(self, context: str, exten: str, priority: int) -> None:
        super().__init__(context, exten, priority)
        self.target = (context, exten, priority)


TaskBody = Generator[Any, Any, Any]


def instant(fn: Callable[..., Any]) -> Callable[..., TaskBody]:
    """Make a function that never waits usable where a generator is expected (``yield from``)."""

    @functools.wraps(fn)
    def body(*args: Any) -> TaskBody:
        return fn(*args)
        yield  # unreachable: it only makes ``body`` a generator

    return body


class Scheduler:
    """The clock plus the FIFO of work "other threads" do next."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self._soon: deque[tuple[Callable[..., Any], tuple]] = deque()
        self._depth = 0
        self.errors: list[str] = []  # failures of simulated threads (tests assert it stays empty)

    def now(self) -> float:
        return self.clock.seconds()

    @contextmanager
    def turn(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._drain()

    def soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._soon.append((fn, args))
        if self._depth == 0:
            self._drain()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any):
        return self.clock.callLater(max(0.0, delay), self._run, fn, args)

    def _run(self, fn: Callable[..., Any], args: tuple) -> None:
        with self.turn():
            fn(*args)

    def _drain(self) -> None:
        self._depth += 1
        try:
            while self._soon:
                fn, args = self._soon.popleft()
                try:
                    fn(*args)
                except Exception as exc:  # one broken step must not stop the simulated PBX
                    logger.exception("simulator step %r failed", fn)
                    self.errors.append(f"{fn!r}: {exc!r}")
        finally:
            self._depth -= 1


class Task:
    """Drives one generator: a channel's dialplan or a helper thread."""

    def __init__(self, scheduler: Scheduler, body: TaskBody, name: str) -> None:
        self.scheduler = scheduler
        self.body = body
        self.name = name
        self.done = False
        self.waiting: Sleep | Wait | None = None
        self._timer = None
        self._running = False
        self.on_done: list[Callable[[], None]] = []

    def start(self) -> None:
        self._step(value=None)

    def wake(self, value: Any = None) -> None:
        """Resume a task blocked in ``Wait`` (ignored otherwise)."""
        if isinstance(self.waiting, Wait):
            self._step(value=value)

    def interrupt(self, exc: Interrupt) -> None:
        """Throw ``exc`` at the task's yield point (queued: other threads come first)."""
        self.scheduler.soon(self._throw, exc)

    def _throw(self, exc: Interrupt) -> None:
        if not self.done:
            self._step(exc=exc)

    def cancel(self) -> None:
        self._cancel_timer()
        if not self.done:
            self.done = True
            self.body.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _step(self, value: Any = None, exc: Interrupt | None = None) -> None:
        if self.done or self._running:
            return
        self._cancel_timer()
        self.waiting = None
        self._running = True
        try:
            command = self.body.throw(exc) if exc is not None else self.body.send(value)
        except StopIteration:
            self._finish()
            return
        except Interrupt:
            self._finish()
            return
        except Exception as exc:
            logger.exception("simulated thread %s failed", self.name)
            self.scheduler.errors.append(f"{self.name}: {exc!r}")
            self._finish()
            return
        finally:
            self._running = False
        self.waiting = command
        if isinstance(command, Sleep):
            self._timer = self.scheduler.call_later(command.seconds, self._step)
        elif isinstance(command, Wait):
            if command.timeout is not None:
                self._timer = self.scheduler.call_later(command.timeout, self._step)
        else:
            raise TypeError(f"task {self.name} yielded {command!r}")

    def _finish(self) -> None:
        self.done = True
        callbacks, self.on_done = self.on_done, []
        for callback in callbacks:
            callback()
