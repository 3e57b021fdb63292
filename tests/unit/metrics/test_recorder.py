"""MetricsRecorder: totals, per-second buckets (fake time), snapshots, merging, live view."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fleet_sim.metrics import Failure, LatencyHistogram, MetricsRecorder
from tests.unit.metrics.sample import START, record_sample


def make(**kwargs: object) -> MetricsRecorder:
    return MetricsRecorder(start=100.0, **kwargs)  # type: ignore[arg-type]


def test_phases_are_bucketed_by_whole_seconds_since_start() -> None:
    r = make()
    for now in (100.0, 100.2, 100.999, 101.0, 103.5):
        r.phase("g", "connect", 0.1, now=now)
    snap = r.snapshot(104.0)
    timeline = snap.group("g").timeline
    assert timeline.seconds == 4
    assert timeline.completed["connect"] == (3, 1, 0, 1)


def test_timeline_covers_the_elapsed_time_even_when_idle() -> None:
    r = make()
    r.count("g", "messages_sent", now=100.5)
    snap = r.snapshot(105.2)
    assert snap.elapsed_s == pytest.approx(5.2)
    assert snap.group("g").timeline.seconds == 6
    assert snap.group("g").timeline.counters["messages_sent"] == (1, 0, 0, 0, 0, 0)


def test_out_of_order_times_land_in_their_own_second() -> None:
    r = make()
    r.count("g", "messages_sent", now=102.1)
    r.count("g", "messages_sent", 2, now=100.4)  # reported late
    r.count("g", "messages_sent", now=102.9)
    timeline = r.snapshot(103.0).group("g").timeline
    assert timeline.counters["messages_sent"] == (2, 0, 2)
    assert r.snapshot(103.0).group("g").counters["messages_sent"] == 4


def test_histograms_per_group_and_phase_and_merged_over_groups() -> None:
    r = make()
    for ms in range(1, 101):
        r.phase("a", "connect", ms / 1000, now=100.0)
        r.phase("b", "connect", ms / 100, now=100.0)
    r.phase("a", "tls", 0.02, now=100.0)
    snap = r.snapshot(101.0)
    assert snap.group("a").phases["connect"].stats.count == 100
    assert snap.group("a").phases["connect"].stats.max == pytest.approx(0.1, rel=1e-3)
    assert snap.group("b").phases["connect"].stats.max == pytest.approx(1.0, rel=1e-3)
    overall = snap.phases["connect"]
    assert overall.stats.count == 200
    assert overall.stats.max == pytest.approx(1.0, rel=1e-3)
    assert overall.stats.min == pytest.approx(0.001, rel=1e-3)
    assert "tls" not in snap.group("b").phases
    assert list(snap.phases) == ["tls", "connect"]  # connect order, not alphabetical


def test_phase_duration_is_recorded_in_microseconds() -> None:
    r = make()
    r.phase("g", "tcp", 0.0123456, now=100.0)
    result = r.snapshot(101.0).group("g").phases["tcp"]
    assert result.sum_us == 12346
    assert result.stats.mean == pytest.approx(0.012346)


def test_failures_are_counted_per_group_phase_and_name_and_expected_apart() -> None:
    r = make()
    r.failure("g", "connect", "tcp_refused", now=100.1)
    r.failure("g", "connect", Failure.tcp_refused(), now=101.1)
    r.failure("g", "connect", Failure.connack_refused(0x87), now=101.2)
    r.failure("g", "publish", "publish_timeout", now=101.3)
    r.failure("g", "connect", "closed_before_connack", now=100.5, expected=True)
    group = r.snapshot(102.0).group("g")
    totals = {(f.phase, f.failure): f.count for f in group.failures}
    assert totals == {
        ("connect", "tcp_refused"): 2,
        ("connect", "connack_refused:135"): 1,
        ("publish", "publish_timeout"): 1,
    }
    assert [(f.phase, f.failure, f.count) for f in group.expected_drops] == [
        ("connect", "closed_before_connack", 1)
    ]
    assert group.failure_total == 4
    assert group.expected_total == 1
    assert group.timeline.failures["tcp_refused"] == (1, 1)
    assert group.timeline.expected["closed_before_connack"] == (1, 0)
    assert "closed_before_connack" not in group.timeline.failures


def test_gauges_keep_their_last_value_and_carry_forward() -> None:
    r = make()
    r.gauge("g", "connected", 5, now=101.2)
    r.gauge("g", "connected", 7, now=101.8)
    r.gauge("g", "connected", 3, now=103.1)
    group = r.snapshot(105.0).group("g")
    assert group.gauges["connected"] == 3
    assert group.timeline.gauges["connected"] == (0.0, 7.0, 7.0, 3.0, 3.0)


def test_group_order_declared_first_then_sorted() -> None:
    r = MetricsRecorder(start=0.0, groups=("zeta", "alpha"))
    r.count("mid", "devices", now=0.0)
    r.failure("beta", "connect", "dns", now=0.0)
    assert r.group_names() == ("zeta", "alpha", "beta", "mid")
    assert [g.name for g in r.snapshot(1.0).groups] == ["zeta", "alpha", "beta", "mid"]


def test_declared_group_without_data_still_appears() -> None:
    snap = MetricsRecorder(start=0.0, groups=("idle",)).snapshot(2.0)
    assert snap.group("idle").failure_total == 0
    assert snap.group("idle").timeline.seconds == 2
    with pytest.raises(KeyError):
        snap.group("missing")


def test_merge_equals_recording_everything_in_one() -> None:
    whole = MetricsRecorder(start=START, groups=("sensors", "gateways"))
    record_sample(whole, seed=1)
    record_sample(whole, seed=2)
    first = MetricsRecorder(start=START, groups=("sensors", "gateways"))
    record_sample(first, seed=1)
    second = MetricsRecorder(start=START, groups=("sensors", "gateways"))
    record_sample(second, seed=2)
    first.merge(second)
    merged, expected = first.snapshot(START + 20), whole.snapshot(START + 20)
    for a, b in zip(merged.groups, expected.groups, strict=True):
        assert a.phases == b.phases
        assert a.failures == b.failures
        assert a.expected_drops == b.expected_drops
        assert a.counters == b.counters
        assert a.timeline.completed == b.timeline.completed
        assert a.timeline.counters == b.timeline.counters
    assert merged.phases == expected.phases


def test_merge_adds_gauges_of_workers_and_aligns_seconds() -> None:
    a = MetricsRecorder(start=100.0)
    b = MetricsRecorder(start=102.0)  # started two seconds later
    a.gauge("g", "connected", 10, now=100.5)  # second 0
    b.gauge("g", "connected", 4, now=102.5)  # its second 0 = our second 2
    a.gauge("g", "connected", 12, now=103.5)  # second 3
    b.count("g", "messages_sent", now=102.1)
    a.merge(b)
    group = a.snapshot(105.0).group("g")
    assert group.timeline.gauges["connected"] == (10.0, 10.0, 14.0, 16.0, 16.0)
    assert group.gauges["connected"] == 16
    assert group.timeline.counters["messages_sent"] == (0, 0, 1, 0, 0)
    a.count("g", "messages_sent", now=104.2)  # recording still works after a merge
    assert a.snapshot(105.0).group("g").counters["messages_sent"] == 2


def test_live_view_reads_totals_and_the_last_complete_second() -> None:
    r = MetricsRecorder(start=0.0, groups=("g",))
    for i in range(10):
        r.count("g", "devices", now=i * 0.1)
    for now in (1.1, 1.2, 1.3):
        r.phase("g", "connect", 0.05, now=now)
        r.count("g", "messages_sent", now=now)
    r.phase("g", "connect", 0.05, now=2.1)  # the current, incomplete second
    r.gauge("g", "connected", 4, now=2.1)
    r.gauge("g", "connecting", 2, now=2.1)
    r.count("g", "devices_failed", now=2.2)
    r.failure("g", "connect", "tcp_timeout", now=2.2)
    r.failure("g", "connect", "closed_before_connack", now=2.2, expected=True)
    view = r.live_view(2.5)
    assert view.elapsed_s == 2.5
    (g,) = view.groups
    assert (g.devices, g.connected, g.connecting, g.devices_failed) == (10, 4, 2, 1)
    assert (g.failures, g.expected_drops) == (1, 1)
    assert (g.connects_per_s, g.sent_per_s, g.received_per_s) == (3, 3, 0)
    assert view.phase_counts == {"connect": 4}


def test_phase_histogram_merges_groups_and_is_a_copy() -> None:
    r = make()
    r.phase("a", "connect", 0.1, now=100.0)
    r.phase("b", "connect", 0.3, now=100.0)
    merged = r.phase_histogram("connect")
    assert merged.count == 2
    assert r.phase_histogram("connect", group="b").count == 1
    merged.record(1.0)
    assert r.phase_histogram("connect").count == 2
    assert r.phase_histogram("nothing") == LatencyHistogram()


def test_the_core_never_reads_a_clock_or_does_io() -> None:
    package = Path(__file__).resolve().parents[3] / "fleet_sim" / "metrics"
    core = [
        "failures",
        "names",
        "histogram",
        "recorder",
        "snapshot",
        "values",
        "json_reader",
        "group_result",
    ]
    forbidden = {"time", "asyncio", "socket", "ssl", "threading"}
    for name in core:
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden, name
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in forbidden, name
            elif isinstance(node, ast.Attribute):
                assert node.attr not in {"now", "time", "monotonic", "utcnow"}, name
