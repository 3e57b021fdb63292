"""Short, readable renderings of metric values for people (terminal, HTML, JUnit messages).

Reports show at most four significant digits (``18.2ms``, ``97.14%``, ``523.4/s``): enough
to compare against a limit, and short enough for a table. A value that rounds onto a limit it
does not reach (99.996 % shown as ``100%``) keeps more digits, so the text never contradicts a
verdict. The JSON report keeps full precision.
"""

from __future__ import annotations

from fleet_sim.scenario.thresholds import MetricKind

__all__ = ["format_latency", "format_ratio", "format_value"]


def _significant(value: float, digits: int) -> str:
    text = f"{value:.{digits}g}"
    if "e" in text:
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text


def _exactish(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits, more when rounding would change its side
    of a round number (99.996 → ``99.996`` rather than ``100``)."""
    for more in range(digits, 10):
        text = _significant(value, more)
        if float(text) == value or (float(text) != round(value) or value == round(value)):
            return text
    return repr(value)


def format_latency(seconds: float) -> str:
    """``420µs``, ``18.2ms``, ``2.51s``, ``3.5m``."""
    if seconds == 0:
        return "0s"
    if seconds < 1e-3:
        return f"{_significant(seconds * 1e6, 3)}µs"
    if seconds < 1:
        return f"{_significant(seconds * 1e3, 3)}ms"
    if seconds < 120:
        return f"{_significant(seconds, 3)}s"
    return f"{_significant(seconds / 60, 3)}m"


def format_ratio(fraction: float) -> str:
    """``2.857%``, ``99.95%``, ``0.1%``."""
    return f"{_exactish(fraction * 100, 4)}%"


def format_value(value: float | None, kind: MetricKind | str) -> str:
    """A value of a metric of ``kind`` (``latency``, ``ratio``, ``count``, ``rate``); None is
    ``no data``."""
    if value is None:
        return "no data"
    kind = MetricKind(kind)
    if kind is MetricKind.LATENCY:
        return format_latency(value)
    if kind is MetricKind.RATIO:
        return format_ratio(value)
    if kind is MetricKind.RATE:
        return f"{_significant(value, 4)}/s"
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.0f}"
