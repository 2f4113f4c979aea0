"""Exponential backoff with jitter, as a pure function of the attempt number."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``attempt`` (0 = first retry).

    ``initial * factor**attempt`` capped at ``cap``, then spread by
    ``+-jitter`` (a fraction) so that several daemons restarting together do
    not hammer Asterisk in step.  The first retry waits at most
    ``initial * (1 + jitter)`` seconds.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        spread = base * self.jitter * (2.0 * rand() - 1.0)
        return max(0.0, min(self.cap, base + spread))
