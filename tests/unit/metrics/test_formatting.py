"""Readable metric values for people."""

from __future__ import annotations

import pytest

from fleet_sim.metrics.formatting import format_latency, format_ratio, format_value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.00042, "420µs"),
        (0.0181913, "18.2ms"),
        (0.280063, "280ms"),
        (2.51234, "2.51s"),
        (300.0, "5m"),
    ],
)
def test_latency(seconds: float, text: str) -> None:
    assert format_latency(seconds) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.0, "0%"),
        (0.001, "0.1%"),
        (0.02857142857, "2.857%"),
        (0.9995, "99.95%"),
        (0.99996, "99.996%"),  # never rounded up onto 100 %
        (0.999999, "99.9999%"),
        (1.0, "100%"),
    ],
)
def test_ratio(fraction: float, text: str) -> None:
    assert format_ratio(fraction) == text


def test_values_by_kind() -> None:
    assert format_value(None, "latency") == "no data"
    assert format_value(523.4444, "rate") == "523.4/s"
    assert format_value(12.0, "count") == "12"
    assert format_value(0.5, "ratio") == "50%"
    assert format_value(0.5, "latency") == "500ms"
