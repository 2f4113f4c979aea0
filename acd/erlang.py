"""Erlang C: what a single queue of ``agents`` identical servers should achieve.

The textbook M/M/N model: Poisson arrivals, exponential handling times, no
abandons, no wrap-up, callers served first come first served.  ``load`` is
the offered traffic in Erlangs, ``A = arrival rate * average handling time``
(360 calls in 30 minutes with a 240 s handling time is ``A = 0.2 * 240 = 48``).

The probability of waiting is computed from Erlang B by its recurrence,
``B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1))``, which stays between 0 and 1 at
every step: no factorials, no powers, exact enough for thousands of agents.
Then ``C = N B / (N - A (1 - B))``.

With ``agents <= load`` the queue grows without bound: every caller waits
(``C = 1``), the service level is 0 and the average wait infinite.
"""

from __future__ import annotations

import math


def erlang_b(agents: int, load: float) -> float:
    """Probability that a caller finds all ``agents`` busy when nobody may wait (blocking)."""
    _check(agents, load)
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller has to wait at all, P(W > 0)."""
    _check(agents, load)
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


def service_level(agents: int, load: float, aht: float, threshold: float) -> float:
    """Share of callers answered within ``threshold`` seconds, P(W <= t)."""
    if aht <= 0:
        raise ValueError(f"the average handling time must be positive, not {aht!r}")
    if threshold < 0:
        raise ValueError(f"the threshold cannot be negative: {threshold!r}")
    c = erlang_c(agents, load)
    if agents <= load:
        return 0.0
    return 1.0 - c * math.exp(-(agents - load) * threshold / aht)


def average_speed_of_answer(agents: int, load: float, aht: float) -> float:
    """Mean wait of all callers (those answered at once count 0 s); ``inf`` when unstable."""
    if aht <= 0:
        raise ValueError(f"the average handling time must be positive, not {aht!r}")
    c = erlang_c(agents, load)
    if agents <= load:
        return math.inf
    return c * aht / (agents - load)


def occupancy(agents: int, load: float) -> float:
    """Share of the agents' time spent handling calls, ``A / N`` (1 when unstable)."""
    _check(agents, load)
    return min(1.0, load / agents) if agents else 1.0


def agents_for(load: float, aht: float, threshold: float, target: float) -> int:
    """The fewest agents whose service level reaches ``target`` (a share, 0 < target < 1)."""
    if not 0 < target < 1:
        raise ValueError(f"the target must be a share between 0 and 1, not {target!r}")
    agents = max(1, math.floor(load) + 1)
    while service_level(agents, load, aht, threshold) < target:
        agents += 1
    return agents


def _check(agents: int, load: float) -> None:
    if agents < 0:
        raise ValueError(f"the number of agents cannot be negative: {agents!r}")
    if load < 0 or math.isnan(load):
        raise ValueError(f"the offered load must be a non-negative number of Erlangs, not {load!r}")
