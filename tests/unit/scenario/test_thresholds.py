"""Threshold expressions: parsing into (metric, stat, operator, value) and evaluation."""

from __future__ import annotations

import re

import pytest

from fleet_sim.scenario.thresholds import (
    METRICS,
    MetricKind,
    Operator,
    Threshold,
    all_passed,
    evaluate_thresholds,
    parse_threshold,
)


@pytest.mark.parametrize(
    ("text", "metric", "stat", "operator", "value"),
    [
        ("connect.p99 < 2s", "connect", "p99", Operator.LT, 2.0),
        ("failure_ratio < 0.1%", "failure_ratio", None, Operator.LT, 0.001),
        ("provision.p50 <= 500ms", "provision", "p50", Operator.LE, 0.5),
        ("connected_ratio >= 99%", "connected_ratio", None, Operator.GE, 0.99),
        ("connect.p99.9<1.5s", "connect", "p99.9", Operator.LT, 1.5),
        ("tls.mean > 0", "tls", "mean", Operator.GT, 0.0),
        ("publish.max == 1m", "publish", "max", Operator.EQ, 60.0),
        ("connect.p99.0 < 1", "connect", "p99", Operator.LT, 1.0),
        ("messages_sent >= 1000", "messages_sent", None, Operator.GE, 1000.0),
        ("publish_rate > 600/m", "publish_rate", None, Operator.GT, 10.0),
        ("failure_ratio <= 0.05", "failure_ratio", None, Operator.LE, 0.05),
    ],
)
def test_parsing(text, metric, stat, operator, value):
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.stat, threshold.operator) == (metric, stat, operator)
    assert threshold.value == value
    assert threshold.expression == text.strip()
    assert threshold.kind is METRICS[metric].kind


def test_key_percentile_and_display():
    threshold = parse_threshold("connect.p99.9 < 1500ms")
    assert threshold.key == "connect.p99.9"
    assert threshold.percentile == 99.9
    assert str(threshold) == "connect.p99.9 < 1.5s"
    assert parse_threshold("failure_ratio < 0.1%").percentile is None
    assert str(parse_threshold("failure_ratio < 0.001")) == "failure_ratio < 0.1%"
    assert parse_threshold("connect.mean < 1s").percentile is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connect < 2s", "connect is a latency and needs a statistic"),
        ("connect.p99 < 5%", "connect is a latency: the limit must be a duration"),
        ("failure_ratio.p99 < 1%", "failure_ratio is a ratio and takes no statistic"),
        ("failure_ratio < 200%", "between 0% and 100%"),
        ("conect.p99 < 2s", "unknown metric 'conect' (did you mean connect?)"),
        ("connect.p0 < 1s", "unknown statistic 'p0'"),
        ("connect.p101 < 1s", "unknown statistic 'p101'"),
        ("connect.median < 1s", "unknown statistic 'median'"),
        ("connect.p99 = 2s", "operator '=' is not supported"),
        ("connect.p99 != 2s", "operator '!=' is not supported"),
        ("connect.p99", "must look like"),
        ("< 2s", "must look like"),
        ("failures < 1.5", "failures is a count: the limit must be a whole number"),
        ("publish_rate > fast", "publish_rate is a rate: the limit must be a rate"),
        (42, "must be a threshold such as"),
    ],
)
def test_bad_thresholds(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_threshold(text)


@pytest.mark.parametrize(
    ("operator", "observed", "holds"),
    [
        ("<", 1.0, True),
        ("<", 2.0, False),
        ("<=", 2.0, True),
        ("<=", 2.1, False),
        (">", 2.1, True),
        (">", 2.0, False),
        (">=", 2.0, True),
        (">=", 1.9, False),
        ("==", 2.0, True),
        ("==", 2.5, False),
    ],
)
def test_operators(operator, observed, holds):
    assert parse_threshold(f"connect.p99 {operator} 2s").holds(observed) is holds


def test_evaluation_against_observed_values():
    thresholds = [
        parse_threshold("connect.p99 < 2s"),
        parse_threshold("failure_ratio < 0.1%"),
        parse_threshold("provision.p50 <= 500ms"),
    ]
    results = evaluate_thresholds(thresholds, {"connect.p99": 1.25, "failure_ratio": 0.002})
    assert [r.passed for r in results] == [True, False, False]
    assert [r.observed for r in results] == [1.25, 0.002, None]
    assert [str(r) for r in results] == [
        "connect.p99 < 2s: 1.25s (pass)",
        "failure_ratio < 0.1%: 0.2% (fail)",
        "provision.p50 <= 500ms: no data (fail)",
    ]
    assert not all_passed(results)
    assert all_passed(results[:1])
    assert all_passed(())


def test_every_metric_has_a_kind_and_description():
    assert all(isinstance(m.kind, MetricKind) and m.description for m in METRICS.values())


def test_thresholds_are_values():
    a = parse_threshold("connect.p99 < 2s")
    assert a == parse_threshold("connect.p99 < 2s")
    assert hash(a) == hash(parse_threshold("connect.p99 < 2s"))
    assert isinstance(a, Threshold)
