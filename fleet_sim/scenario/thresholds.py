"""Pass/fail thresholds: ``connect.p99 < 2s``, ``failure_ratio < 0.1%`` … (pure).

A threshold is ``<metric>[.<stat>] <operator> <value>``:

* the **metric** comes from :data:`METRICS`, whose kind fixes the value's unit: latencies
  take a duration (``2s``, ``500ms``; a plain number is seconds), ratios a percentage
  (``0.1%``) or a fraction, counts a whole number, rates a rate (``50/s``);
* a **stat** is required for latencies and forbidden otherwise: ``min``, ``max``, ``mean`` or
  a percentile ``p50``, ``p99``, ``p99.9`` …;
* the **operator** is one of ``<``, ``<=``, ``>``, ``>=``, ``==``.

:func:`evaluate_thresholds` checks parsed thresholds against a mapping of observed values
keyed by :attr:`Threshold.key` (``"connect.p99"``, ``"failure_ratio"``) in base units
(seconds, fractions, counts, per second). A metric with no observed value fails: a threshold
nobody could check protects nothing.
"""

from __future__ import annotations

import difflib
import enum
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fleet_sim.scenario.units import (
    format_duration,
    format_percent,
    format_rate,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = [
    "METRICS",
    "THRESHOLD_PATTERN",
    "Metric",
    "MetricKind",
    "Operator",
    "Threshold",
    "ThresholdResult",
    "all_passed",
    "evaluate_thresholds",
    "format_metric_value",
    "parse_threshold",
]


class MetricKind(enum.StrEnum):
    """What a metric measures, which fixes its unit."""

    LATENCY = "latency"  # seconds; needs a stat
    RATIO = "ratio"  # fraction in [0, 1]
    COUNT = "count"  # whole number
    RATE = "rate"  # per second


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric thresholds may name."""

    kind: MetricKind
    description: str


#: The metrics a run reports, by name.
METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "connect": Metric(MetricKind.LATENCY, "connect time: TCP + TLS + CONNACK, per success"),
        "tcp": Metric(MetricKind.LATENCY, "TCP connect time"),
        "tls": Metric(MetricKind.LATENCY, "TLS handshake time"),
        "connack": Metric(MetricKind.LATENCY, "MQTT CONNECT to CONNACK"),
        "provision": Metric(MetricKind.LATENCY, "time to obtain a device identity"),
        "delivery": Metric(MetricKind.LATENCY, "publish to delivery back to the same device"),
        "publish": Metric(MetricKind.LATENCY, "QoS 1 PUBLISH to PUBACK"),
        "subscribe": Metric(MetricKind.LATENCY, "SUBSCRIBE to SUBACK"),
        "failure_ratio": Metric(MetricKind.RATIO, "devices that failed / devices"),
        "connected_ratio": Metric(MetricKind.RATIO, "devices that ever connected / devices"),
        "publish_failure_ratio": Metric(MetricKind.RATIO, "failed QoS 1 publishes / publishes"),
        "failures": Metric(MetricKind.COUNT, "failures of any kind"),
        "connected": Metric(MetricKind.COUNT, "most devices connected at once"),
        "expected_drops": Metric(MetricKind.COUNT, "drops the provisioning method expects"),
        "provision_attempts_per_device": Metric(
            MetricKind.COUNT, "attempts until a device had its identity (average)"
        ),
        "reconnects": Metric(MetricKind.COUNT, "reconnects after the first connect"),
        "messages_sent": Metric(MetricKind.COUNT, "messages published"),
        "messages_received": Metric(MetricKind.COUNT, "messages received"),
        "connect_rate": Metric(MetricKind.RATE, "successful connects per second"),
        "publish_rate": Metric(MetricKind.RATE, "messages published per second"),
        "receive_rate": Metric(MetricKind.RATE, "messages received per second"),
    }
)


class Operator(enum.StrEnum):
    """A comparison; the value is how it is written."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="

    def compare(self, observed: float, limit: float) -> bool:
        """``observed <op> limit``."""
        return _COMPARE[self](observed, limit)


_COMPARE: Mapping[Operator, Callable[[float, float], bool]] = MappingProxyType(
    {
        Operator.LT: operator.lt,
        Operator.LE: operator.le,
        Operator.GT: operator.gt,
        Operator.GE: operator.ge,
        Operator.EQ: operator.eq,
    }
)

_EXPRESSION = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<stat>[A-Za-z0-9_.]+))?"
    r"\s*(?P<op><=|>=|==|<|>|=|!=)\s*(?P<value>\S.*?)\s*"
)
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")
_NAMED_STATS = ("min", "max", "mean")

#: A JSON Schema pattern for editors (the parser checks metric names and units too).
THRESHOLD_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_.]+)?\s*(<=|>=|==|<|>)\s*\S.*$"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold.

    Attributes:
        metric: a :data:`METRICS` name.
        stat: ``min``, ``max``, ``mean`` or ``p<q>`` for latencies, else None.
        operator: the comparison.
        value: the limit in base units (seconds, fraction, count, per second).
        expression: the text as written.
    """

    metric: str
    stat: str | None
    operator: Operator
    value: float
    expression: str

    @property
    def kind(self) -> MetricKind:
        """The metric's kind."""
        return METRICS[self.metric].kind

    @property
    def key(self) -> str:
        """The observed-values key: ``"connect.p99"`` or ``"failure_ratio"``."""
        return self.metric if self.stat is None else f"{self.metric}.{self.stat}"

    @property
    def percentile(self) -> float | None:
        """The percentile asked for (``99.9`` for ``p99.9``), or None."""
        if self.stat is None or not self.stat.startswith("p"):
            return None
        return float(self.stat[1:])

    def holds(self, observed: float) -> bool:
        """Whether ``observed`` satisfies the threshold."""
        return self.operator.compare(observed, self.value)

    def __str__(self) -> str:
        return f"{self.key} {self.operator.value} {format_metric_value(self.value, self.kind)}"


def format_metric_value(value: float, kind: MetricKind) -> str:
    """Render a value of a metric of ``kind`` in its natural unit."""
    if kind is MetricKind.LATENCY:
        return format_duration(value)
    if kind is MetricKind.RATIO:
        return format_percent(value)
    if kind is MetricKind.RATE:
        return format_rate(value)
    return f"{value:g}"


def _stat(metric: str, kind: MetricKind, stat: str | None) -> str | None:
    if kind is not MetricKind.LATENCY:
        if stat is not None:
            raise ValueError(f"{metric} is a {kind.value} and takes no statistic (.{stat})")
        return None
    if stat is None:
        raise ValueError(
            f"{metric} is a latency and needs a statistic: {metric}.p99, {metric}.mean, "
            f"{metric}.max …"
        )
    if stat in _NAMED_STATS:
        return stat
    match = _PERCENTILE.fullmatch(stat)
    if match is not None and 0 < float(match.group(1)) <= 100:
        return f"p{float(match.group(1)):g}"
    raise ValueError(
        f"unknown statistic {stat!r}; use min, max, mean or a percentile such as p50, p99, p99.9"
    )


def _value(metric: str, kind: MetricKind, text: str) -> float:
    try:
        if kind is MetricKind.LATENCY:
            return parse_duration(text)
        if kind is MetricKind.RATIO:
            return parse_percent(text)
        if kind is MetricKind.RATE:
            return parse_rate(text)
    except ValueError as exc:
        raise ValueError(f"{metric} is a {kind.value}: the limit {exc}") from None
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{metric} is a count: the limit must be a whole number; got {text!r}")
    return float(text)


def parse_threshold(text: object) -> Threshold:
    """Parse one threshold expression.

    Args:
        text: e.g. ``"connect.p99 < 2s"``.

    Returns:
        The threshold.

    Raises:
        ValueError: the expression is malformed, names an unknown metric or statistic, or
            its limit has the wrong unit; the message says what is expected.
    """
    if not isinstance(text, str):
        raise ValueError(f"must be a threshold such as 'connect.p99 < 2s'; got {text!r}")
    match = _EXPRESSION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"must look like '<metric>[.<stat>] <op> <value>', e.g. 'connect.p99 < 2s' or "
            f"'failure_ratio < 0.1%'; got {text!r}"
        )
    metric, op = match.group("metric"), match.group("op")
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, list(METRICS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown metric {metric!r}{hint}; known metrics: {', '.join(METRICS)}")
    if op in ("=", "!="):
        raise ValueError(f"operator {op!r} is not supported; use <, <=, >, >= or ==")
    kind = METRICS[metric].kind
    stat = _stat(metric, kind, match.group("stat"))
    value = _value(metric, kind, match.group("value"))
    return Threshold(metric, stat, Operator(op), value, text.strip())


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """A threshold checked against a run.

    Attributes:
        threshold: what was checked.
        observed: the observed value, or None when the run produced none.
        passed: whether the threshold held (False when nothing was observed).
    """

    threshold: Threshold
    observed: float | None
    passed: bool

    def __str__(self) -> str:
        if self.observed is None:
            return f"{self.threshold}: no data (fail)"
        shown = format_metric_value(self.observed, self.threshold.kind)
        return f"{self.threshold}: {shown} ({'pass' if self.passed else 'fail'})"


def evaluate_thresholds(
    thresholds: Iterable[Threshold], observed: Mapping[str, float]
) -> tuple[ThresholdResult, ...]:
    """Check every threshold against observed values.

    Args:
        thresholds: the thresholds, in report order.
        observed: values by :attr:`Threshold.key`, in base units.

    Returns:
        One result per threshold, in the same order.
    """
    results: list[ThresholdResult] = []
    for threshold in thresholds:
        value = observed.get(threshold.key)
        passed = value is not None and threshold.holds(value)
        results.append(ThresholdResult(threshold, value, passed))
    return tuple(results)


def all_passed(results: Iterable[ThresholdResult]) -> bool:
    """Whether every threshold held (True when there are none)."""
    return all(result.passed for result in results)
