"""Erlang C against the direct formula and textbook values; the routing simulator against Erlang C."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from acd import erlang

ROOT = Path(__file__).resolve().parent.parent


def direct_erlang_c(agents: int, load: int) -> Fraction:
    """P(W > 0) straight from the textbook formula, in exact fractions."""
    a = Fraction(load)
    top = a ** agents / math.factorial(agents) * Fraction(agents, agents - load)
    return top / (sum(a ** k / math.factorial(k) for k in range(agents)) + top)


def log_space_erlang_c(agents: int, load: float) -> float:
    """P(W > 0) from logarithms of the terms (lgamma): an independent check for many agents."""
    logs = [k * math.log(load) - math.lgamma(k + 1) for k in range(agents)]
    last = agents * math.log(load) - math.lgamma(agents + 1) + math.log(agents / (agents - load))
    peak = max(max(logs), last)
    total = sum(math.exp(x - peak) for x in logs) + math.exp(last - peak)
    return math.exp(last - peak) / total


@pytest.mark.parametrize("agents", range(50, 59))
def test_probability_of_waiting_matches_the_direct_formula_for_48_erlangs(agents):
    """360 calls in 30 min with a 240 s AHT is 48 Erlangs; 50 to 58 agents."""
    assert erlang.erlang_c(agents, 48.0) == pytest.approx(float(direct_erlang_c(agents, 48)), rel=1e-12)


@pytest.mark.parametrize("agents", [11, 14, 55])
def test_service_level_and_asa_follow_from_the_probability_of_waiting(agents):
    load = {11: 10, 14: 10, 55: 48}[agents]
    aht = {10: 180.0, 48: 240.0}[load]
    c = float(direct_erlang_c(agents, load))
    assert erlang.service_level(agents, load, aht, 20.0) == pytest.approx(
        1 - c * math.exp(-(agents - load) * 20.0 / aht), rel=1e-12)
    assert erlang.average_speed_of_answer(agents, load, aht) == pytest.approx(c * aht / (agents - load), rel=1e-12)


def test_textbook_example_of_100_calls_in_half_an_hour_with_a_3_minute_aht():
    """The classic worked example: 10 Erlangs; 11 agents wait 68.21 %, 14 agents give SL 88.8 %."""
    assert erlang.erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-5)
    assert erlang.service_level(11, 10.0, 180.0, 20.0) == pytest.approx(0.3896, abs=5e-5)
    assert erlang.erlang_c(14, 10.0) == pytest.approx(0.1741, abs=5e-5)
    assert erlang.service_level(14, 10.0, 180.0, 20.0) == pytest.approx(0.8884, abs=5e-5)
    assert erlang.agents_for(10.0, 180.0, 20.0, 0.8) == 14


def test_48_erlangs_need_54_agents_for_80_percent_in_20_seconds():
    assert erlang.service_level(53, 48.0, 240.0, 20.0) < 0.8 < erlang.service_level(54, 48.0, 240.0, 20.0)
    assert erlang.agents_for(48.0, 240.0, 20.0, 0.8) == 54


def test_more_agents_always_means_less_waiting():
    values = [erlang.erlang_c(n, 48.0) for n in range(49, 80)]
    assert values == sorted(values, reverse=True)
    assert all(0 < v < 1 for v in values)


@pytest.mark.parametrize("agents,load", [(500, 480.0), (3000, 2950.0), (4000, 3990.5)])
def test_thousands_of_agents_stay_finite_and_match_the_log_space_formula(agents, load):
    c = erlang.erlang_c(agents, load)
    assert 0 < c < 1
    assert c == pytest.approx(log_space_erlang_c(agents, load), rel=1e-9)


def test_too_few_agents_means_everyone_waits_forever():
    assert erlang.erlang_c(48, 48.0) == 1.0
    assert erlang.service_level(40, 48.0, 240.0, 20.0) == 0.0
    assert erlang.average_speed_of_answer(48, 48.0, 240.0) == math.inf


def test_erlang_b_is_the_blocking_probability():
    assert erlang.erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang.erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang.erlang_b(0, 3.0) == 1.0


def test_no_load_never_waits():
    assert erlang.erlang_c(3, 0.0) == 0.0
    assert erlang.service_level(3, 0.0, 100.0, 0.0) == 1.0


@pytest.mark.parametrize("call", [
    lambda: erlang.erlang_c(-1, 2.0),
    lambda: erlang.erlang_c(3, -2.0),
    lambda: erlang.service_level(3, 1.0, 0.0, 20.0),
    lambda: erlang.service_level(3, 1.0, 100.0, -1.0),
    lambda: erlang.agents_for(3.0, 100.0, 20.0, 1.0),
])
def test_meaningless_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()


def load_simulator():
    spec = importlib.util.spec_from_file_location("acd_sim", ROOT / "scripts" / "acd_sim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["acd_sim"] = module          # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_simulated_distributor_serves_first_come_first_served_near_erlang_c():
    """2,000 callers at 48 Erlangs on 56 agents: the distributor's waits are exactly those of an
    ideal FCFS queue, and the service level is near Erlang C (loosely: few calls)."""
    sim = load_simulator()
    rng = random.Random(5)
    arrivals = sim.poisson_arrivals(rng, 0.2, 2_000, "support", 240.0)
    result = sim.simulate(sim.single_skill_setup(56), arrivals, seed=5, warmup=600.0)
    ideal = sim.fcfs_waits(arrivals, 56)[len(arrivals) - result.calls:]
    assert result.calls > 1_800
    assert result.waits == pytest.approx(ideal, abs=1e-9)
    assert all(result.answered)
    assert result.service_level() == pytest.approx(erlang.service_level(56, 48.0, 240.0, 20.0), abs=0.15)
    assert result.book.queue_figures("support", result.end).answered >= result.calls
