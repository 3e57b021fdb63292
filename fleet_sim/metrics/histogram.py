"""Latency histograms: a thin wrapper over HdrHistogram (the ``hdrhistogram`` package, ``hdrh``).

Durations are recorded in seconds and stored as whole microseconds, from 1 µs to 1 h, with 3
significant digits: every percentile is within 0.1 % of the true value, whatever the spread,
in a fixed ~190 KiB of counts. Longer durations are clamped to 1 h, negative ones to 0 (and
counted in :attr:`LatencyHistogram.clamped`).

Histograms are mergeable (:meth:`LatencyHistogram.merge`), and :meth:`~LatencyHistogram.encode`
gives HdrHistogram's standard compressed base64 form (V2), which the JSON report stores so
later tooling (or other HdrHistogram implementations) can merge runs from several machines.
HdrHistogram's own mean walks every bucket (tens of milliseconds); this wrapper keeps the
exact sum of recorded microseconds instead, and stores it next to the encoded counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "STANDARD_PERCENTILES",
    "LatencyHistogram",
    "LatencyStats",
    "percentile_stat",
]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3


def _index_constants() -> tuple[int, int, int, int]:
    prototype = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    assert prototype.unit_magnitude == 0  # lowest 1 µs: the index shift below relies on it
    half_magnitude = prototype.sub_bucket_half_count_magnitude
    return (
        prototype.sub_bucket_mask,
        half_magnitude + 1,
        half_magnitude,
        prototype.sub_bucket_half_count,
    )


# HdrHistogram's counts-index arithmetic for our fixed range and precision (see record_us).
_SUB_BUCKET_MASK, _BUCKET_SHIFT, _HALF_MAGNITUDE, _HALF_COUNT = _index_constants()

#: The percentiles every report shows.
STANDARD_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


def percentile_stat(percentile: float) -> str:
    """The stat name of a percentile, as thresholds write it: 99.9 → ``"p99.9"``."""
    return f"p{percentile:g}"


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Summary of one histogram, in seconds.

    Attributes:
        count: durations recorded.
        min: the smallest (HDR precision).
        mean: exact mean.
        p50: median.
        p90: 90th percentile.
        p99: 99th percentile.
        p999: 99.9th percentile.
        max: the largest (HDR precision).
    """

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def as_dict(self) -> dict[str, float]:
        """Stats by the names thresholds use: ``min``, ``mean``, ``p50`` … ``p99.9``, ``max``,
        plus ``count``."""
        return {
            "count": float(self.count),
            "min": self.min,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p99.9": self.p999,
            "max": self.max,
        }


class LatencyHistogram:
    """An HdrHistogram of durations (seconds in, microseconds inside).

    Not thread-safe; one writer at a time.
    """

    __slots__ = ("_hdr", "clamped", "sum_us")

    def __init__(self, *, _hdr: HdrHistogram | None = None, sum_us: int = 0) -> None:
        self._hdr = (
            _hdr if _hdr is not None else HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        )
        #: Exact sum of the recorded microseconds (for the mean).
        self.sum_us = sum_us
        #: Durations outside 0 … 1 h that were clamped into range.
        self.clamped = 0

    # ------------------------------------------------------------------ recording

    def record(self, seconds: float) -> None:
        """Record one duration."""
        self.record_us(int(seconds * 1_000_000.0 + 0.5))

    def record_us(self, micros: int) -> None:
        """Record one duration in whole microseconds (clamped to 0 … 1 h).

        This is the recorder's hot path, so it computes the counts index inline with
        ``int.bit_length`` (HdrHistogram's own ``record_value`` takes five calls and
        ``bin()``); it updates the same public fields ``record_value`` does, and the tests
        check that both give byte-identical encodings.
        """
        if not 0 <= micros <= HIGHEST_US:
            micros = 0 if micros < 0 else HIGHEST_US
            self.clamped += 1
        hdr = self._hdr
        bucket = (micros | _SUB_BUCKET_MASK).bit_length() - _BUCKET_SHIFT
        hdr.counts[((bucket + 1) << _HALF_MAGNITUDE) + (micros >> bucket) - _HALF_COUNT] += 1
        hdr.total_count += 1
        if micros < hdr.min_value:
            hdr.min_value = micros
        if micros > hdr.max_value:
            hdr.max_value = micros
        self.sum_us += micros

    def merge(self, other: LatencyHistogram) -> None:
        """Add every duration of ``other`` to this histogram."""
        if other.count == 0:  # hdrh's add() would reset the minimum to 0
            return
        self._hdr.add(other._hdr)
        self.sum_us += other.sum_us
        self.clamped += other.clamped

    def copy(self) -> LatencyHistogram:
        """An independent copy."""
        clone = LatencyHistogram()
        clone.merge(self)
        return clone

    # ------------------------------------------------------------------ reading

    @property
    def count(self) -> int:
        """Durations recorded."""
        return cast(int, self._hdr.get_total_count())

    @property
    def min(self) -> float:
        """Smallest duration in seconds (0 when empty)."""
        return 0.0 if self.count == 0 else self._hdr.get_min_value() / 1e6

    @property
    def max(self) -> float:
        """Largest duration in seconds (0 when empty)."""
        return cast(int, self._hdr.get_max_value()) / 1e6

    @property
    def mean(self) -> float:
        """Exact mean in seconds (0 when empty)."""
        count = self.count
        return 0.0 if count == 0 else self.sum_us / count / 1e6

    def percentile(self, percentile: float) -> float:
        """The duration at ``percentile`` (0 < percentile ≤ 100), in seconds; 0 when empty."""
        return self.percentiles((percentile,))[percentile]

    def percentiles(self, percentiles: Iterable[float]) -> Mapping[float, float]:
        """Several percentiles in one pass, in seconds, keyed by the percentile asked for."""
        wanted = sorted(set(percentiles))
        for q in wanted:
            if not 0 < q <= 100 or math.isnan(q):
                raise ValueError(f"a percentile is in (0, 100]; got {q}")
        if self.count == 0:
            return dict.fromkeys(wanted, 0.0)
        values = cast(dict[float, int], self._hdr.get_percentile_to_value_dict(wanted))
        return {q: values[q] / 1e6 for q in wanted}

    def stats(self) -> LatencyStats:
        """min / mean / p50 / p90 / p99 / p99.9 / max in seconds."""
        p = self.percentiles(STANDARD_PERCENTILES)
        return LatencyStats(
            count=self.count,
            min=self.min,
            mean=self.mean,
            p50=p[50.0],
            p90=p[90.0],
            p99=p[99.0],
            p999=p[99.9],
            max=self.max,
        )

    # ------------------------------------------------------------------ encoding

    def encode(self) -> str:
        """HdrHistogram's compressed base64 (V2) encoding of the counts."""
        encoded = self._hdr.encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)

    @classmethod
    def decode(cls, encoded: str, *, sum_us: int | None = None) -> LatencyHistogram:
        """Rebuild a histogram from :meth:`encode`'s text.

        Args:
            encoded: the base64 text.
            sum_us: the exact sum stored next to it; without it the mean is estimated from
                the buckets.

        Raises:
            ValueError: the text is not an HdrHistogram encoding of this range and precision.
        """
        try:
            hdr = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # hdrh raises TypeError, zlib.error, its own exceptions
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from None
        if (
            hdr.lowest_trackable_value != LOWEST_US
            or hdr.highest_trackable_value != HIGHEST_US
            or hdr.significant_figures != SIGNIFICANT_DIGITS
        ):
            raise ValueError(
                "HdrHistogram range or precision differs: expected "
                f"{LOWEST_US}..{HIGHEST_US} µs with {SIGNIFICANT_DIGITS} digits"
            )
        if sum_us is None:
            sum_us = round(hdr.get_mean_value() * hdr.get_total_count())
        return cls(_hdr=hdr, sum_us=sum_us)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return self.sum_us == other.sum_us and self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, mean={self.mean:.6f}s)"
