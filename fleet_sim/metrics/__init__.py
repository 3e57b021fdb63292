"""Metrics, statistics and reports of a run.

The core (pure, no clock, no I/O) is re-exported here: the failure taxonomy
(:mod:`~fleet_sim.metrics.failures`), the recorded names (:mod:`~fleet_sim.metrics.names`),
latency histograms (:mod:`~fleet_sim.metrics.histogram`), the recorder the engine calls
(:mod:`~fleet_sim.metrics.recorder`), the immutable results and their JSON form
(:mod:`~fleet_sim.metrics.snapshot`) and the metric values thresholds read
(:mod:`~fleet_sim.metrics.values`). The report writers (``report_json``, ``report_junit``,
``report_html``, ``report_text``) and the live display (``progress``) are imported from their
modules, so importing the core does not load plotly or rich.
"""

from __future__ import annotations

from fleet_sim.metrics.failures import Failure, FailureKind, describe_failure
from fleet_sim.metrics.histogram import STANDARD_PERCENTILES, LatencyHistogram, LatencyStats
from fleet_sim.metrics.names import Counter, Gauge, Phase
from fleet_sim.metrics.recorder import GroupLive, LiveView, MetricsRecorder
from fleet_sim.metrics.snapshot import (
    SCHEMA,
    FailureCount,
    GroupResult,
    PhaseResult,
    RunMeta,
    RunResult,
    RunSnapshot,
    ThresholdOutcome,
    Timeline,
    iso_utc,
)
from fleet_sim.metrics.values import build_result, metric_values

__all__ = [
    "SCHEMA",
    "STANDARD_PERCENTILES",
    "Counter",
    "Failure",
    "FailureCount",
    "FailureKind",
    "Gauge",
    "GroupLive",
    "GroupResult",
    "LatencyHistogram",
    "LatencyStats",
    "LiveView",
    "MetricsRecorder",
    "Phase",
    "PhaseResult",
    "RunMeta",
    "RunResult",
    "RunSnapshot",
    "ThresholdOutcome",
    "Timeline",
    "build_result",
    "describe_failure",
    "iso_utc",
    "metric_values",
]
