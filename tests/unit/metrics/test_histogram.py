"""LatencyHistogram: percentiles against the sorted-list truth, merging, encoding."""

from __future__ import annotations

import math
import random

import pytest
from hdrh.histogram import HdrHistogram

from fleet_sim.metrics.histogram import HIGHEST_US, LatencyHistogram, percentile_stat

PERCENTILES = (1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0)


def truth(sorted_us: list[int], q: float) -> float:
    """HdrHistogram's definition: the value of rank round(q% of n), in seconds."""
    rank = max(1, int(q * len(sorted_us) / 100 + 0.5))
    return sorted_us[rank - 1] / 1e6


def within_hdr_precision(observed: float, expected: float) -> bool:
    # 3 significant digits: buckets are at most 1/1024 of the value wide; plus 1 µs rounding
    return abs(observed - expected) <= expected / 1000 + 1e-6


def sample(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(-3.0, 1.2) for _ in range(n)]  # ~50 ms median, long tail


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_the_sorted_truth(seed: int) -> None:
    durations = sample(random.Random(seed), 20_000)
    histogram = LatencyHistogram()
    for d in durations:
        histogram.record(d)
    as_us = sorted(int(d * 1e6 + 0.5) for d in durations)
    observed = histogram.percentiles(PERCENTILES)
    for q in PERCENTILES:
        assert within_hdr_precision(observed[q], truth(as_us, q)), q
    assert histogram.count == len(durations)
    assert within_hdr_precision(histogram.min, as_us[0] / 1e6)
    assert within_hdr_precision(histogram.max, as_us[-1] / 1e6)
    assert histogram.mean == pytest.approx(sum(as_us) / len(as_us) / 1e6, rel=1e-12)


def test_stats_name_the_standard_percentiles() -> None:
    histogram = LatencyHistogram()
    for ms in range(1, 1001):
        histogram.record(ms / 1000)
    stats = histogram.stats()
    assert stats.count == 1000
    assert within_hdr_precision(stats.p50, 0.5)
    assert within_hdr_precision(stats.p90, 0.9)
    assert within_hdr_precision(stats.p99, 0.99)
    assert within_hdr_precision(stats.p999, 0.999)
    assert stats.min == pytest.approx(0.001)
    assert stats.mean == pytest.approx(0.5005)
    assert set(stats.as_dict()) == {"count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"}
    assert stats.as_dict()["p99.9"] == stats.p999


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(9)
    parts = [sample(rng, 3000) for _ in range(4)]
    whole = LatencyHistogram()
    merged = LatencyHistogram()
    for part in parts:
        piece = LatencyHistogram()
        for d in part:
            piece.record(d)
            whole.record(d)
        merged.merge(piece)
    assert merged == whole
    assert merged.encode() == whole.encode()
    assert merged.stats() == whole.stats()


def test_merging_an_empty_histogram_keeps_the_minimum() -> None:
    histogram = LatencyHistogram()
    histogram.record(0.25)
    histogram.merge(LatencyHistogram())
    assert histogram.min == pytest.approx(0.25, rel=1e-3)
    empty = LatencyHistogram()
    empty.merge(histogram)
    assert empty.min == histogram.min


def test_copy_is_independent() -> None:
    histogram = LatencyHistogram()
    histogram.record(0.1)
    clone = histogram.copy()
    clone.record(0.2)
    assert (histogram.count, clone.count) == (1, 2)


def test_encode_decode_round_trip() -> None:
    histogram = LatencyHistogram()
    for d in sample(random.Random(4), 5000):
        histogram.record(d)
    text = histogram.encode()
    assert text.startswith("HISTF")  # HdrHistogram's V2 compressed base64 cookie
    back = LatencyHistogram.decode(text, sum_us=histogram.sum_us)
    assert back == histogram
    assert back.stats() == histogram.stats()


def test_encoding_is_readable_by_plain_hdrhistogram() -> None:
    histogram = LatencyHistogram()
    for ms in (1, 2, 3, 500):
        histogram.record(ms / 1000)
    plain = HdrHistogram.decode(histogram.encode())
    assert plain.get_total_count() == 4
    assert plain.get_value_at_percentile(100) == pytest.approx(500_000, rel=1e-3)


def test_decode_without_sum_estimates_the_mean() -> None:
    histogram = LatencyHistogram()
    for ms in range(1, 101):
        histogram.record(ms / 1000)
    back = LatencyHistogram.decode(histogram.encode())
    assert back.mean == pytest.approx(histogram.mean, rel=1e-3)


def test_decode_rejects_garbage_and_other_layouts() -> None:
    with pytest.raises(ValueError, match="not an encoded HdrHistogram"):
        LatencyHistogram.decode("not base64 at all!")
    other = HdrHistogram(1, 60_000_000, 2)
    other.record_value(5)
    with pytest.raises(ValueError, match="range or precision"):
        LatencyHistogram.decode(other.encode().decode())


def test_fast_record_path_is_identical_to_hdrhistograms_own() -> None:
    rng = random.Random(5)
    values = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 65535, 65536, HIGHEST_US - 1, HIGHEST_US]
    values += [int(10 ** rng.uniform(0, math.log10(HIGHEST_US))) for _ in range(20_000)]
    ours = LatencyHistogram()
    reference = HdrHistogram(1, HIGHEST_US, 3)
    for v in values:
        ours.record_us(v)
        assert reference.record_value(v)
    assert ours.encode() == reference.encode().decode()
    assert ours.count == reference.get_total_count()
    assert ours.max == reference.get_max_value() / 1e6
    assert ours.min == reference.get_min_value() / 1e6


def test_out_of_range_durations_are_clamped_and_counted() -> None:
    histogram = LatencyHistogram()
    histogram.record(-0.5)
    histogram.record(5 * 3600.0)
    histogram.record(0.001)
    assert histogram.count == 3
    assert histogram.clamped == 2
    assert histogram.min == 0.0
    assert histogram.max == pytest.approx(3600.0, rel=1e-3)


def test_empty_histogram_reads_as_zeros() -> None:
    stats = LatencyHistogram().stats()
    assert stats.count == 0
    assert (stats.min, stats.mean, stats.p99, stats.max) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("q", [0.0, -1.0, 100.5, math.nan])
def test_percentile_must_be_in_range(q: float) -> None:
    histogram = LatencyHistogram()
    histogram.record(0.1)
    with pytest.raises(ValueError, match="percentile"):
        histogram.percentile(q)


@pytest.mark.parametrize(("q", "stat"), [(50.0, "p50"), (99.9, "p99.9"), (99.99, "p99.99")])
def test_percentile_stat_names_match_thresholds(q: float, stat: str) -> None:
    assert percentile_stat(q) == stat
