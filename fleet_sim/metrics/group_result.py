"""Per-group results of a run: phase latencies, failure counts, per-second time series.

The building blocks of :class:`fleet_sim.metrics.snapshot.RunSnapshot` (which re-exports
them), each with its JSON form. Units as in :mod:`fleet_sim.metrics.snapshot`: seconds,
whole counts, one value per second of the run in time series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from fleet_sim.errors import RunFileError
from fleet_sim.metrics.histogram import LatencyHistogram, LatencyStats
from fleet_sim.metrics.json_reader import JsonReader

__all__ = ["FailureCount", "GroupResult", "PhaseResult", "Timeline", "frozen"]

_K = TypeVar("_K")
_V = TypeVar("_V")


def frozen(mapping: Mapping[_K, _V] | None = None) -> Mapping[_K, _V]:
    """A read-only copy of ``mapping``."""
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """One phase's latencies: summary stats and the mergeable histogram.

    Attributes:
        stats: count, min, mean, percentiles and max, in seconds.
        histogram: HdrHistogram's compressed base64 encoding (microseconds, 1 µs … 1 h).
        sum_us: exact sum of the recorded microseconds (the mean without rounding).
    """

    stats: LatencyStats
    histogram: str
    sum_us: int

    @classmethod
    def of(cls, histogram: LatencyHistogram) -> PhaseResult:
        """Summarize and encode a histogram."""
        return cls(histogram.stats(), histogram.encode(), histogram.sum_us)

    def decode(self) -> LatencyHistogram:
        """The histogram back, e.g. to read another percentile or to merge runs."""
        return LatencyHistogram.decode(self.histogram, sum_us=self.sum_us)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the stats by threshold names, ``histogram`` and ``sum_us``."""
        return {
            **self.stats.as_dict(),
            "count": self.stats.count,
            "histogram": self.histogram,
            "sum_us": self.sum_us,
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> PhaseResult:
        """Read the JSON form."""
        stats = LatencyStats(
            count=data.integer("count"),
            min=data.number("min"),
            mean=data.number("mean"),
            p50=data.number("p50"),
            p90=data.number("p90"),
            p99=data.number("p99"),
            p999=data.number("p99.9"),
            max=data.number("max"),
        )
        result = cls(stats, data.text("histogram"), data.integer("sum_us"))
        try:
            decoded = result.decode()
        except ValueError as exc:
            raise RunFileError(f"{data.path}.histogram: {exc}") from None
        if decoded.count != stats.count:
            raise RunFileError(
                f"{data.path}: count is {stats.count} but the histogram holds {decoded.count}"
            )
        return result


@dataclass(frozen=True, slots=True)
class FailureCount:
    """How often one failure happened in one phase of one group."""

    phase: str
    failure: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"phase": self.phase, "failure": self.failure, "count": self.count}

    @classmethod
    def from_dict(cls, data: JsonReader) -> FailureCount:
        """Read the JSON form."""
        return cls(data.text("phase"), data.text("failure"), data.integer("count"))


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per-second time series of one group; every series has :attr:`seconds` values.

    Attributes:
        seconds: number of one-second buckets.
        completed: phase → completions (successful timed phases) per second.
        failures: failure name → real failures per second.
        expected: failure name → expected drops per second.
        counters: counter → increments per second.
        gauges: gauge → its value at the end of each second (carried forward).
    """

    seconds: int = 0
    completed: Mapping[str, tuple[int, ...]] = field(default_factory=frozen)
    failures: Mapping[str, tuple[int, ...]] = field(default_factory=frozen)
    expected: Mapping[str, tuple[int, ...]] = field(default_factory=frozen)
    counters: Mapping[str, tuple[int, ...]] = field(default_factory=frozen)
    gauges: Mapping[str, tuple[float, ...]] = field(default_factory=frozen)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "seconds": self.seconds,
            "completed": {k: list(v) for k, v in self.completed.items()},
            "failures": {k: list(v) for k, v in self.failures.items()},
            "expected": {k: list(v) for k, v in self.expected.items()},
            "counters": {k: list(v) for k, v in self.counters.items()},
            "gauges": {k: list(v) for k, v in self.gauges.items()},
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> Timeline:
        """Read the JSON form."""
        n = data.integer("seconds")
        return cls(
            seconds=n,
            completed=frozen(data.count_series_map("completed", n)),
            failures=frozen(data.count_series_map("failures", n)),
            expected=frozen(data.count_series_map("expected", n)),
            counters=frozen(data.count_series_map("counters", n)),
            gauges=frozen(data.series_map("gauges", n)),
        )


@dataclass(frozen=True, slots=True)
class GroupResult:
    """Everything measured for one device group.

    Attributes:
        name: the group's name.
        phases: phase → latencies.
        failures: real failures, by phase and name.
        expected_drops: drops the provisioning method expects (first JITP/JITR connect).
        counters: counter totals (``devices``, ``messages_sent`` …).
        gauges: the last value of each gauge (``connected`` …).
        timeline: per-second series.
    """

    name: str
    phases: Mapping[str, PhaseResult] = field(default_factory=frozen)
    failures: tuple[FailureCount, ...] = ()
    expected_drops: tuple[FailureCount, ...] = ()
    counters: Mapping[str, int] = field(default_factory=frozen)
    gauges: Mapping[str, float] = field(default_factory=frozen)
    timeline: Timeline = field(default_factory=Timeline)

    @property
    def failure_total(self) -> int:
        """Real failures of any kind."""
        return sum(f.count for f in self.failures)

    @property
    def expected_total(self) -> int:
        """Expected drops."""
        return sum(f.count for f in self.expected_drops)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "phases": {k: v.to_dict() for k, v in self.phases.items()},
            "failures": [f.to_dict() for f in self.failures],
            "expected_drops": [f.to_dict() for f in self.expected_drops],
            "counters": dict(self.counters),
            "gauges": dict(self.gauges),
            "timeline": self.timeline.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> GroupResult:
        """Read the JSON form."""
        return cls(
            name=data.text("name"),
            phases=frozen(
                {k: PhaseResult.from_dict(v) for k, v in data.child_map("phases").items()}
            ),
            failures=tuple(FailureCount.from_dict(f) for f in data.children("failures")),
            expected_drops=tuple(
                FailureCount.from_dict(f) for f in data.children("expected_drops")
            ),
            counters=frozen(data.integer_map("counters")),
            gauges=frozen(data.number_map("gauges")),
            timeline=Timeline.from_dict(data.child("timeline")),
        )
