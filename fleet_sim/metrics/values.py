"""Metric values by the names thresholds use, and checking a run against its thresholds.

:func:`metric_values` flattens a run into ``{name: value}`` in base units (seconds,
fractions, counts, per second). The names, over all groups:

============================  ==========================================================
``<phase>.<stat>``            latency of a phase (``dns``, ``tcp``, ``tls``, ``connack``,
                              ``connect``, ``provision``, ``publish``, ``subscribe`` and any
                              other phase the engine recorded); ``<stat>`` is ``min``,
                              ``mean``, ``p50``, ``p90``, ``p99``, ``p99.9``, ``max``, any extra
                              percentile asked for (``p95``), and ``count``. Only phases with
                              at least one sample appear.
``failure_ratio``             devices that gave up / devices started (when any started)
``connected_ratio``           devices that connected at least once / devices started (idem)
``publish_failure_ratio``     failed QoS 1 publishes / (acknowledged + failed) (when any)
``failures``                  real failures of any kind (expected drops excluded)
``expected_drops``            drops the provisioning method expects (first JITP/JITR connect)
``connected``                 the most devices connected at once (peak of the ``connected`` gauge)
``devices``                   devices started
``devices_failed``            devices that gave up
``devices_connected``         devices that completed at least one connect
``provision_attempts_per_device``  JITP/JITR connect attempts (claim: provisioning attempts)
                              until a device had its identity, averaged (when provisioning ran)
``reconnects``                reconnects after the first connect
``messages_sent``             messages published
``messages_received``         messages received
``connect_rate``              successful connects per second of the run
``publish_rate``              messages published per second of the run
``receive_rate``              messages received per second of the run
============================  ==========================================================

Every name is also given per group as ``<group>.<name>`` (``sensors.connect.p99``,
``sensors.failure_ratio``). Group names cannot contain dots, so the keys are unambiguous.
Counts are always present (0 when nothing happened); ratios only with a non-zero
denominator, and latencies only with samples, so a threshold on something never measured
fails as "no data" instead of passing on a made-up 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fleet_sim.metrics.histogram import STANDARD_PERCENTILES, percentile_stat
from fleet_sim.metrics.names import Counter, Gauge, Phase
from fleet_sim.metrics.snapshot import (
    GroupResult,
    PhaseResult,
    RunMeta,
    RunResult,
    RunSnapshot,
    ThresholdOutcome,
    frozen,
)
from fleet_sim.scenario.thresholds import Threshold, evaluate_thresholds

__all__ = ["build_result", "metric_values"]


def _phase_values(
    prefix: str, phases: Mapping[str, PhaseResult], extra: Sequence[float]
) -> dict[str, float]:
    values: dict[str, float] = {}
    for phase, result in phases.items():
        if result.stats.count == 0:
            continue
        for stat, value in result.stats.as_dict().items():
            values[f"{prefix}{phase}.{stat}"] = value
        if extra:
            for q, value in result.decode().percentiles(extra).items():
                values[f"{prefix}{phase}.{percentile_stat(q)}"] = value
    return values


def _peak_connected(groups: Iterable[GroupResult]) -> float:
    """The most devices connected at once (per-second gauge, summed over the groups)."""
    series = [group.timeline.gauges.get(Gauge.CONNECTED, ()) for group in groups]
    length = max((len(s) for s in series), default=0)
    return max((sum(s[i] for s in series if i < len(s)) for i in range(length)), default=0.0)


def _totals(groups: Iterable[GroupResult]) -> dict[str, float]:
    groups = tuple(groups)
    devices = failed = reconnects = sent = received = failures = expected = ever = attempts = 0
    connected = 0.0
    acked = publish_failures = connects = 0
    for group in groups:
        counters = group.counters
        devices += counters.get(Counter.DEVICES, 0)
        failed += counters.get(Counter.DEVICES_FAILED, 0)
        ever += counters.get(Counter.DEVICES_CONNECTED, 0)
        attempts += counters.get(Counter.PROVISION_ATTEMPTS, 0)
        reconnects += counters.get(Counter.RECONNECTS, 0)
        sent += counters.get(Counter.MESSAGES_SENT, 0)
        received += counters.get(Counter.MESSAGES_RECEIVED, 0)
        connected += group.gauges.get(Gauge.CONNECTED, 0.0)  # replaced by the peak below
        failures += group.failure_total
        expected += group.expected_total
        publish_failures += sum(f.count for f in group.failures if f.phase == Phase.PUBLISH)
        publish = group.phases.get(Phase.PUBLISH)
        acked += publish.stats.count if publish is not None else 0
        connect = group.phases.get(Phase.CONNECT)
        connects += connect.stats.count if connect is not None else 0
    values: dict[str, float] = {
        "failures": failures,
        "expected_drops": expected,
        "connected": max(connected, _peak_connected(groups)),
        "devices": devices,
        "devices_failed": failed,
        "devices_connected": ever,
        "reconnects": reconnects,
        "messages_sent": sent,
        "messages_received": received,
        "connects": connects,
    }
    if devices:
        values["failure_ratio"] = failed / devices
        values["connected_ratio"] = ever / devices
    if attempts and ever:
        values["provision_attempts_per_device"] = attempts / ever
    if acked + publish_failures:
        values["publish_failure_ratio"] = publish_failures / (acked + publish_failures)
    return values


def _rates(values: dict[str, float], duration_s: float) -> None:
    connects = values.pop("connects")
    if duration_s > 0:
        values["connect_rate"] = connects / duration_s
        values["publish_rate"] = values["messages_sent"] / duration_s
        values["receive_rate"] = values["messages_received"] / duration_s


def metric_values(
    run: RunResult | RunSnapshot, *, percentiles: Iterable[float] = ()
) -> dict[str, float]:
    """Every metric value of a run, by the names thresholds use (see the module docstring).

    Args:
        run: a finished run (rates use ``meta.duration_s``) or a snapshot (rates use
            ``elapsed_s``).
        percentiles: extra percentiles to compute from the histograms, e.g. ``(95,)`` for
            ``connect.p95``; p50, p90, p99 and p99.9 are always there.

    Returns:
        Values in base units: seconds, fractions, counts, per second.
    """
    snapshot = run.metrics if isinstance(run, RunResult) else run
    duration = run.meta.duration_s if isinstance(run, RunResult) else run.elapsed_s
    extra = sorted(set(percentiles) - set(STANDARD_PERCENTILES))
    values = _phase_values("", snapshot.phases, extra)
    totals = _totals(snapshot.groups)
    _rates(totals, duration)
    values.update(totals)
    for group in snapshot.groups:
        prefix = f"{group.name}."
        values.update(_phase_values(prefix, group.phases, extra))
        group_totals = _totals((group,))
        _rates(group_totals, duration)
        values.update({prefix + name: value for name, value in group_totals.items()})
    return {name: float(value) for name, value in values.items()}


def build_result(
    snapshot: RunSnapshot, meta: RunMeta, thresholds: Sequence[Threshold] = ()
) -> RunResult:
    """Check a run's thresholds and bundle everything into a :class:`RunResult`.

    Args:
        snapshot: the recorder's final snapshot.
        meta: what, where, when (``duration_s`` is the denominator of rates).
        thresholds: the scenario's thresholds, in order.
    """
    wanted = (t.percentile for t in thresholds if t.percentile is not None)
    partial = RunResult(meta=meta, metrics=snapshot)
    values = metric_values(partial, percentiles=wanted)
    outcomes = tuple(ThresholdOutcome.of(r) for r in evaluate_thresholds(thresholds, values))
    return RunResult(meta=meta, metrics=snapshot, thresholds=outcomes, values=frozen(values))
