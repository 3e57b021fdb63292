"""Arrival math: constant, linear ramp and Poisson schedules."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from fleet_sim.scenario.model_arrival import Arrival, ConstantArrival, LinearArrival
from fleet_sim.scenario.schedule import arrival_offsets, expected_arrivals

ARRIVAL: TypeAdapter[Arrival] = TypeAdapter(Arrival)


def arrival(value: object) -> Arrival:
    return ARRIVAL.validate_python(value)


def test_constant_rate_is_evenly_spaced_from_zero():
    offsets = arrival_offsets(arrival("50/s"), 101, random.Random(0))
    assert offsets[0] == 0.0
    assert offsets[-1] == pytest.approx(2.0)
    gaps = {round(b - a, 12) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.02}


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "linear", "from": "0/s", "to": "100/s", "over": "10s"},
        {"type": "linear", "from": "10/s", "to": "200/s", "over": "1m"},
        {"type": "linear", "from": "100/s", "to": "5/s", "over": "20s"},  # ramps down
        {"type": "linear", "from": "20/s", "to": "20/s", "over": "5s"},  # flat
    ],
)
def test_linear_ramp_count_over_time_matches_the_integral(spec):
    ramp = arrival(spec)
    assert isinstance(ramp, LinearArrival)
    count = 3000
    offsets = arrival_offsets(ramp, count, random.Random(0))
    assert offsets == sorted(offsets)
    # device i arrives where the integral of the rate reaches i
    for i in range(0, count, 97):
        assert expected_arrivals(ramp, offsets[i]) == pytest.approx(i, abs=1e-6)
    # so the number arrived by any time t is the integral, rounded up
    end = offsets[-1]
    for k in range(1, 50):
        t = end * k / 50
        arrived = sum(1 for offset in offsets if offset <= t)
        assert arrived == min(count, math.floor(expected_arrivals(ramp, t)) + 1)


def test_linear_ramp_rate_rises_as_specified():
    ramp = arrival({"type": "linear", "from": "0/s", "to": "100/s", "over": "10s"})
    offsets = arrival_offsets(ramp, 1500, random.Random(0))

    def within(a: float, b: float) -> int:
        return sum(1 for o in offsets if a <= o < b)

    assert within(0, 1) == pytest.approx(5, abs=1)  # ∫0..1 10t dt = 5
    assert within(9, 10) == pytest.approx(95, abs=1)  # ∫9..10 10t dt = 95
    assert within(11, 12) == pytest.approx(100, abs=1)  # after the ramp: 100/s


def test_poisson_mean_rate_within_tolerance_for_a_fixed_seed():
    offsets = arrival_offsets(
        arrival({"type": "poisson", "rate": "40/s"}), 20_000, random.Random(7)
    )
    assert offsets == sorted(offsets)
    assert offsets[0] > 0
    assert len(offsets) / offsets[-1] == pytest.approx(40, rel=0.02)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    # exponential gaps: standard deviation equals the mean
    mean = sum(gaps) / len(gaps)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert sd == pytest.approx(mean, rel=0.05)


def test_poisson_schedule_is_reproducible():
    poisson = arrival({"type": "poisson", "rate": 5})
    assert arrival_offsets(poisson, 50, random.Random(1)) == arrival_offsets(
        poisson, 50, random.Random(1)
    )
    assert arrival_offsets(poisson, 50, random.Random(1)) != arrival_offsets(
        poisson, 50, random.Random(2)
    )


def test_deterministic_shapes_do_not_draw_from_the_rng():
    rng = random.Random(9)
    state = rng.getstate()
    arrival_offsets(ConstantArrival(rate=3.0), 10, rng)
    arrival_offsets(arrival({"type": "linear", "from": 1, "to": 2, "over": 1}), 10, rng)
    assert rng.getstate() == state


def test_edge_counts():
    assert arrival_offsets(arrival(5), 0, random.Random(0)) == []
    with pytest.raises(ValueError, match="count"):
        arrival_offsets(arrival(5), -1, random.Random(0))
    assert expected_arrivals(arrival(5), -1.0) == 0.0


rates = st.floats(min_value=0.01, max_value=10_000, allow_nan=False)


@given(
    start=st.floats(min_value=0, max_value=10_000, allow_nan=False),
    end=rates,
    over=st.floats(min_value=0.001, max_value=10_000, allow_nan=False),
    count=st.integers(min_value=0, max_value=300),
)
def test_linear_offsets_never_go_backwards(start, end, over, count):
    ramp = arrival({"type": "linear", "from": start, "to": end, "over": over})
    offsets = arrival_offsets(ramp, count, random.Random(0))
    assert len(offsets) == count
    assert all(b >= a for a, b in itertools.pairwise(offsets))
    assert all(math.isfinite(o) and o >= 0 for o in offsets)
