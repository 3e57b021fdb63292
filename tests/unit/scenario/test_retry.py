"""Backoff and jitter, checked against AWS's "Exponential Backoff And Jitter" definitions."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fleet_sim.scenario.retry import Jitter, RetryPolicy

bases = st.floats(min_value=0.001, max_value=60, allow_nan=False, allow_infinity=False)
caps = st.floats(min_value=0.001, max_value=3600, allow_nan=False, allow_infinity=False)
attempts = st.integers(min_value=0, max_value=2000)
seeds = st.integers(min_value=0, max_value=2**32)


ANY_JITTER = st.sampled_from(list(Jitter))


@st.composite
def policies(draw, jitter=ANY_JITTER):
    base = draw(bases)
    cap = draw(caps.filter(lambda c: c >= base))
    return RetryPolicy(
        base=base, cap=cap, jitter=draw(jitter), max_attempts=draw(st.integers(1, 50))
    )


@given(policies(), attempts, seeds)
def test_every_delay_lies_within_zero_and_cap(policy, attempt, seed):
    rng = random.Random(seed)
    previous = None
    for n in range(attempt % 20, attempt % 20 + 5):
        delay = policy.delay(n, previous, rng)
        assert 0.0 <= delay <= policy.cap
        previous = delay


@given(policies(st.just(Jitter.NONE)), st.integers(min_value=0, max_value=1000), seeds)
def test_no_jitter_is_exactly_capped_exponential(policy, attempt, seed):
    expected = min(policy.cap, policy.base * 2**attempt)  # 2**1000 still fits a float
    assert policy.delay(attempt, None, random.Random(seed)) == expected


@given(policies(st.just(Jitter.DECORRELATED)), seeds)
def test_decorrelated_jitter_stays_within_base_and_cap(policy, seed):
    rng = random.Random(seed)
    previous = None
    for n in range(30):
        delay = policy.delay(n, previous, rng)
        assert policy.base <= delay <= policy.cap
        assert delay <= 3 * (previous if previous is not None else policy.base)
        previous = delay


@given(policies(st.just(Jitter.EQUAL)), attempts, seeds)
def test_equal_jitter_keeps_at_least_half(policy, attempt, seed):
    temp = policy.exponential(attempt)
    assert temp / 2 <= policy.delay(attempt, None, random.Random(seed)) <= temp


@given(policies(st.just(Jitter.FULL)), attempts, seeds)
def test_full_jitter_is_uniform_up_to_the_exponential(policy, attempt, seed):
    assert 0 <= policy.delay(attempt, None, random.Random(seed)) <= policy.exponential(attempt)


@given(policies(), seeds)
def test_delays_gives_one_per_retry_and_is_reproducible(policy, seed):
    first = list(policy.delays(random.Random(seed)))
    assert len(first) == policy.max_attempts - 1
    assert first == list(policy.delays(random.Random(seed)))


def test_full_jitter_averages_half_the_exponential():
    policy = RetryPolicy(base=1.0, cap=100.0, jitter=Jitter.FULL)
    rng = random.Random(3)
    mean = statistics.fmean(policy.delay(3, None, rng) for _ in range(20_000))
    assert mean == pytest.approx(4.0, rel=0.03)


def test_decorrelated_grows_from_the_previous_delay():
    policy = RetryPolicy(base=1.0, cap=1000.0, jitter=Jitter.DECORRELATED)
    rng = random.Random(0)
    assert all(1.0 <= policy.delay(0, 10.0, rng) <= 30.0 for _ in range(1000))
    assert max(policy.delay(0, 10.0, rng) for _ in range(1000)) > 20.0


def test_huge_attempts_do_not_overflow():
    policy = RetryPolicy(base=1.0, cap=30.0, jitter=Jitter.NONE)
    assert policy.delay(10**6, None, random.Random(0)) == 30.0
    with pytest.raises(ValueError, match="0 or more"):
        policy.delay(-1, None, random.Random(0))


def test_base_must_not_exceed_cap():
    with pytest.raises(ValidationError, match="must not be longer than cap"):
        RetryPolicy(base=10.0, cap=5.0)
