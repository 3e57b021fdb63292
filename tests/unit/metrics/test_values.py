"""metric_values: exactly the names thresholds read, in base units; build_result."""

from __future__ import annotations

import pytest

from fleet_sim.metrics import MetricsRecorder, RunResult, build_result, metric_values
from fleet_sim.scenario.thresholds import METRICS, MetricKind, parse_threshold
from tests.unit.metrics.sample import META, sample_result


@pytest.fixture(scope="module")
def result() -> RunResult:
    return sample_result()


@pytest.fixture(scope="module")
def values(result: RunResult) -> dict[str, float]:
    return metric_values(result)


def test_run_wide_counts_ratios_and_rates(values: dict[str, float]) -> None:
    assert values["devices"] == 120
    assert values["devices_failed"] == 2
    assert values["failure_ratio"] == pytest.approx(2 / 120)
    assert values["connected"] == 118
    assert values["connected_ratio"] == pytest.approx(118 / 120)
    assert values["failures"] == 3  # 2 CONNACK refusals + 1 publish timeout
    assert values["expected_drops"] == 100  # JITP first drops are not failures
    assert values["messages_sent"] == 100
    assert values["messages_received"] == 50
    assert values["reconnects"] == 0
    assert values["publish_failure_ratio"] == pytest.approx(1 / 101)
    assert values["connect_rate"] == pytest.approx(118 / 20)  # META.duration_s is 20 s
    assert values["publish_rate"] == pytest.approx(100 / 20)
    assert values["receive_rate"] == pytest.approx(50 / 20)


def test_latencies_in_seconds_per_phase_and_group(
    result: RunResult, values: dict[str, float]
) -> None:
    connect = result.metrics.phases["connect"].stats
    assert values["connect.p99"] == connect.p99
    assert values["connect.p99.9"] == connect.p999
    assert values["connect.count"] == 118
    assert 0.05 <= values["connect.p50"] <= 0.3
    assert values["sensors.connect.count"] == 98
    assert values["gateways.connect.count"] == 20
    assert values["sensors.provision.p50"] == pytest.approx(0.4, abs=0.06)
    for stat in ("min", "mean", "p50", "p90", "p99", "p99.9", "max", "count"):
        assert f"tls.{stat}" in values
    assert "gateways.tls.p50" not in values  # awscrt: connect only
    assert "subscribe.p99" not in values  # never measured: thresholds see "no data"


def test_per_group_values(values: dict[str, float]) -> None:
    assert values["sensors.failure_ratio"] == pytest.approx(0.02)
    assert values["gateways.failure_ratio"] == 0
    assert values["gateways.connected_ratio"] == 1
    assert values["sensors.expected_drops"] == 100
    assert values["gateways.failures"] == 1
    assert values["gateways.publish_failure_ratio"] == pytest.approx(1 / 51)
    assert values["sensors.publish_failure_ratio"] == 0
    assert values["gateways.connect_rate"] == pytest.approx(1.0)


def test_every_threshold_metric_is_produced(values: dict[str, float]) -> None:
    # the sample has no subscriptions, no own-traffic deliveries and no provisioning counter
    unmeasured = {"subscribe", "delivery", "provision_attempts_per_device"}
    for name, metric in METRICS.items():
        if name in unmeasured:
            continue
        key = f"{name}.p99" if metric.kind is MetricKind.LATENCY else name
        assert key in values, key


def test_every_run_wide_name_parses_as_a_threshold_key(values: dict[str, float]) -> None:
    checked = 0
    for key in values:
        head = key.split(".")[0]
        if head not in METRICS or key.endswith(".count"):
            continue  # group-prefixed, expected_drops, devices …, or count (no threshold stat)
        assert parse_threshold(f"{key} < 1").key == key
        checked += 1
    assert checked > 40


def test_extra_percentiles_on_request(result: RunResult) -> None:
    values = metric_values(result, percentiles=(95, 99.99))
    assert values["connect.p95"] == result.metrics.phases["connect"].decode().percentile(95)
    assert "connect.p99.99" in values
    assert "sensors.connect.p95" in values
    assert "connect.p95" not in metric_values(result)


def test_build_result_checks_thresholds_with_extra_percentiles() -> None:
    run = sample_result(("connect.p95 < 1s", "failures == 3", "publish_rate > 10/s"))
    assert [t.passed for t in run.thresholds] == [True, True, False]
    assert run.thresholds[0].observed == run.values["connect.p95"]
    assert run.thresholds[2].observed == pytest.approx(5.0)
    assert run.thresholds[2].kind == "rate"
    assert not run.passed


def test_missing_data_fails_the_threshold(result: RunResult) -> None:
    subscribe = result.thresholds[-1]
    assert subscribe.key == "subscribe.p99"
    assert subscribe.observed is None
    assert not subscribe.passed


def test_empty_run_has_counts_but_no_ratios() -> None:
    snapshot = MetricsRecorder(start=0.0).snapshot(10.0)
    values = metric_values(snapshot)
    assert values["failures"] == 0
    assert values["messages_sent"] == 0
    assert values["connect_rate"] == 0
    assert "failure_ratio" not in values
    assert "connected_ratio" not in values
    assert "publish_failure_ratio" not in values
    run = build_result(snapshot, META, [parse_threshold("failure_ratio < 1%")])
    assert not run.passed


def test_snapshot_rates_use_the_elapsed_time() -> None:
    recorder = MetricsRecorder(start=0.0)
    recorder.count("g", "messages_sent", 30, now=1.0)
    assert metric_values(recorder.snapshot(10.0))["publish_rate"] == pytest.approx(3.0)
