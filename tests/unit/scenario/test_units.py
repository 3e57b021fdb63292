"""Durations, rates and percentages as scenario files write them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_sim.scenario.units import (
    format_duration,
    format_percent,
    format_rate,
    parse_duration,
    parse_percent,
    parse_rate,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("30", 30.0),
        (" 2m ", 120.0),
        (30, 30.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["30x", "s", "1h30", "-1s", "", "1 minute", True, None, [1], "nan"]
)
def test_bad_durations(text):
    with pytest.raises(ValueError, match=r"must be a duration|must not be negative|got"):
        parse_duration(text)


def test_non_finite_numbers_are_refused():
    with pytest.raises(ValueError, match="finite"):
        parse_duration(math.inf)
    with pytest.raises(ValueError, match="finite"):
        parse_rate(math.nan)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("50", 50.0), ("50/s", 50.0), ("600/m", 10.0), ("600/min", 10.0), ("3600/h", 1.0), (7, 7.0)],
)
def test_rates(text, per_second):
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "50/d", "-5/s", "/s", False])
def test_bad_rates(text):
    with pytest.raises(ValueError, match="must"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("0.1%", 0.001), ("99%", 0.99), ("100 %", 1.0), ("0%", 0.0), (0.25, 0.25), ("0.5", 0.5)],
)
def test_percentages(text, fraction):
    assert parse_percent(text) == fraction


@pytest.mark.parametrize("text", ["150%", 1.5, "-1%", "lots", "%"])
def test_bad_percentages(text):
    with pytest.raises(ValueError, match="must"):
        parse_percent(text)


def test_formatting_reads_like_the_input():
    assert format_duration(0.5) == "500ms"
    assert format_duration(30) == "30s"
    assert format_duration(150) == "2.5m"
    assert format_duration(7200) == "2h"
    assert format_rate(2.5) == "2.5/s"
    assert format_percent(0.001) == "0.1%"


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_formatted_durations_parse_back(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-5, abs=1e-9)
