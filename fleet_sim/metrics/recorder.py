"""The metrics recorder: the one object the engine reports every measurement to (pure).

:class:`MetricsRecorder` is called for every phase, failure, message and gauge change, so its
four recording methods do the least possible: a dict lookup, an HdrHistogram record or a
counter increment, and an increment in the current one-second bucket. Time is passed in
(``now``, seconds on the run's monotonic clock); the recorder never reads a clock. Bucket ``i``
of the time series holds what happened in ``[start + i, start + i + 1)``.

Everything else (percentiles, merging groups, dense time series) happens in
:meth:`MetricsRecorder.snapshot`, once at the end of a run, and in
:meth:`MetricsRecorder.live_view`, which the progress display calls on its own timer. Both only
read: ``live_view`` takes its copies with single ``dict.copy()`` calls, which CPython performs
atomically, so a display thread may call it while the event loop keeps recording.

Names: phases, counters and gauges are plain strings; :mod:`fleet_sim.metrics.names` lists
the ones reports and thresholds know. Failure names follow :mod:`fleet_sim.metrics.failures`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fleet_sim.metrics.failures import Failure
from fleet_sim.metrics.histogram import LatencyHistogram
from fleet_sim.metrics.names import Counter, Gauge, Phase, phase_sort_key
from fleet_sim.metrics.snapshot import (
    FailureCount,
    GroupResult,
    PhaseResult,
    RunSnapshot,
    Timeline,
    frozen,
)

__all__ = ["GroupLive", "LiveView", "MetricsRecorder"]

_Key = tuple[str, str]
_FailureKey = tuple[str, str, str]


class _Second:
    """What happened in one second: per-key increments and last gauge values."""

    __slots__ = ("completed", "counts", "expected", "failures", "gauges")

    def __init__(self) -> None:
        self.completed: dict[_Key, int] = {}  # (group, phase)
        self.failures: dict[_Key, int] = {}  # (group, failure name)
        self.expected: dict[_Key, int] = {}  # (group, failure name)
        self.counts: dict[_Key, int] = {}  # (group, counter)
        self.gauges: dict[_Key, float] = {}  # (group, gauge)


@dataclass(frozen=True, slots=True)
class GroupLive:
    """One group right now, for the progress display.

    Attributes:
        name: the group.
        devices: devices started.
        connected: devices connected now.
        connecting: connect attempts in flight now.
        devices_failed: devices that gave up.
        failures: real failures so far.
        expected_drops: expected drops so far.
        connects_per_s: successful connects in the last complete second.
        sent_per_s: messages published in the last complete second.
        received_per_s: messages received in the last complete second.
    """

    name: str
    devices: int
    connected: float
    connecting: float
    devices_failed: int
    failures: int
    expected_drops: int
    connects_per_s: int
    sent_per_s: int
    received_per_s: int


@dataclass(frozen=True, slots=True)
class LiveView:
    """A cheap look at a running recorder (no percentiles).

    Attributes:
        elapsed_s: seconds since the start.
        groups: per group.
        phase_counts: phase → completions over all groups.
    """

    elapsed_s: float
    groups: tuple[GroupLive, ...]
    phase_counts: Mapping[str, int]


class MetricsRecorder:
    """Records phases, failures, counters and gauges per group, and per second.

    Args:
        start: the run's start on the clock ``now`` values come from.
        groups: group names in report order (groups first seen later follow, sorted).
    """

    __slots__ = (
        "_completed",
        "_counters",
        "_counts",
        "_current",
        "_expected",
        "_failures",
        "_gauge_values",
        "_groups",
        "_histograms",
        "_second",
        "_seconds",
        "start",
    )

    def __init__(self, *, start: float, groups: Iterable[str] = ()) -> None:
        self.start = start
        self._groups = tuple(groups)
        self._histograms: dict[_Key, LatencyHistogram] = {}
        self._failures: dict[_FailureKey, int] = {}
        self._expected: dict[_FailureKey, int] = {}
        self._counters: dict[_Key, int] = {}
        self._gauge_values: dict[_Key, float] = {}
        self._seconds: dict[int, _Second] = {}
        self._second = -1
        self._current = _Second()
        self._completed = self._current.completed
        self._counts = self._current.counts

    # ------------------------------------------------------------------ recording (hot)

    def _roll(self, second: int) -> _Second:
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = _Second()
        self._second = second
        self._current = bucket
        self._completed = bucket.completed
        self._counts = bucket.counts
        return bucket

    def _bucket(self, second: int) -> _Second:
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = _Second()
        return bucket

    def phase(self, group: str, phase: str, duration_s: float, *, now: float) -> None:
        """Record one successful timed phase.

        Args:
            group: the device group.
            phase: e.g. ``connect`` (see :class:`~fleet_sim.metrics.names.Phase`).
            duration_s: how long it took, in seconds.
            now: when it ended (run clock).
        """
        key = (group, phase)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = LatencyHistogram()
        histogram.record_us(int(duration_s * 1_000_000.0 + 0.5))
        second = int(now - self.start)
        if second != self._second:
            self._roll(second)
        completed = self._completed
        completed[key] = completed.get(key, 0) + 1

    def failure(
        self,
        group: str,
        phase: str,
        failure: str | Failure,
        *,
        now: float,
        expected: bool = False,
    ) -> None:
        """Record one failure.

        Args:
            group: the device group.
            phase: the phase that failed, e.g. ``connect``, ``publish``.
            failure: its stable name (``connack_refused:135``) or a :class:`Failure`.
            now: when it happened (run clock).
            expected: a drop the provisioning method expects (the first JITP/JITR connect);
                counted apart, never a real failure.
        """
        name = failure if isinstance(failure, str) else failure.name
        key = (group, phase, name)
        second = int(now - self.start)
        bucket = self._current if second == self._second else self._roll(second)
        per_second = bucket.expected if expected else bucket.failures
        totals = self._expected if expected else self._failures
        totals[key] = totals.get(key, 0) + 1
        series = (group, name)
        per_second[series] = per_second.get(series, 0) + 1

    def count(self, group: str, name: str, n: int = 1, *, now: float) -> None:
        """Add ``n`` to a counter (see :class:`~fleet_sim.metrics.names.Counter`)."""
        key = (group, name)
        counters = self._counters
        counters[key] = counters.get(key, 0) + n
        second = int(now - self.start)
        if second != self._second:
            self._roll(second)
        counts = self._counts
        counts[key] = counts.get(key, 0) + n

    def gauge(self, group: str, name: str, value: float, *, now: float) -> None:
        """Set a gauge (see :class:`~fleet_sim.metrics.names.Gauge`) to ``value``."""
        key = (group, name)
        self._gauge_values[key] = value
        second = int(now - self.start)
        bucket = self._current if second == self._second else self._roll(second)
        bucket.gauges[key] = value

    # ------------------------------------------------------------------ merging

    def merge(self, other: MetricsRecorder) -> None:
        """Add everything ``other`` recorded (another worker's share of the run).

        Histograms, counters and failures add up; gauges add up too (each worker holds part
        of a group's devices). Time series are aligned on the two recorders' ``start``
        (rounded to whole seconds), so ``start`` must come from the same clock.
        """
        for key, histogram in other._histograms.items():
            mine = self._histograms.get(key)
            if mine is None:
                mine = self._histograms[key] = LatencyHistogram()
            mine.merge(histogram)
        for mine_f, theirs_f in (
            (self._failures, other._failures),
            (self._expected, other._expected),
        ):
            for fkey, n in theirs_f.items():
                mine_f[fkey] = mine_f.get(fkey, 0) + n
        _add(self._counters, other._counters)
        for key, value in other._gauge_values.items():
            self._gauge_values[key] = self._gauge_values.get(key, 0.0) + value
        offset = round(other.start - self.start)
        gauge_updates = (
            _gauge_updates(self._seconds.items(), 0),
            _gauge_updates(other._seconds.items(), offset),
        )
        for second, theirs in other._seconds.items():
            bucket = self._bucket(max(0, second + offset))
            _add(bucket.completed, theirs.completed)
            _add(bucket.failures, theirs.failures)
            _add(bucket.expected, theirs.expected)
            _add(bucket.counts, theirs.counts)
        for key in gauge_updates[0].keys() | gauge_updates[1].keys():
            mine_g, theirs_g = gauge_updates[0].get(key, {}), gauge_updates[1].get(key, {})
            last_mine = last_theirs = 0.0  # a gauge is 0 until first set
            for second in sorted(mine_g.keys() | theirs_g.keys()):
                last_mine = mine_g.get(second, last_mine)
                last_theirs = theirs_g.get(second, last_theirs)
                self._bucket(second).gauges[key] = last_mine + last_theirs
        self._groups += tuple(g for g in other._groups if g not in self._groups)
        self._second = -1  # the current bucket may have been replaced

    # ------------------------------------------------------------------ reading

    def group_names(self) -> tuple[str, ...]:
        """Declared groups first, then any other group recorded, sorted."""
        seen: set[str] = set()
        for keys in (self._histograms, self._counters, self._gauge_values):
            seen.update(key[0] for key in list(keys))
        for fkeys in (self._failures, self._expected):
            seen.update(key[0] for key in list(fkeys))
        return self._groups + tuple(sorted(seen - set(self._groups)))

    def phase_histogram(self, phase: str, group: str | None = None) -> LatencyHistogram:
        """A copy of one phase's histogram, of one group or merged over all groups."""
        merged = LatencyHistogram()
        for (g, p), histogram in list(self._histograms.items()):
            if p == phase and (group is None or g == group):
                merged.merge(histogram)
        return merged

    def live_view(self, now: float) -> LiveView:
        """Counts, gauges and last-second rates right now (cheap; safe from another thread)."""
        counters = self._counters.copy()
        gauges = self._gauge_values.copy()
        failures = self._failures.copy()
        expected = self._expected.copy()
        last = self._seconds.get(int(now - self.start) - 1)
        last_counts = last.counts.copy() if last is not None else {}
        last_done = last.completed.copy() if last is not None else {}
        phase_counts: dict[str, int] = {}
        for (_, phase), histogram in list(self._histograms.items()):
            phase_counts[phase] = phase_counts.get(phase, 0) + histogram.count
        groups = tuple(
            GroupLive(
                name=name,
                devices=counters.get((name, Counter.DEVICES), 0),
                connected=gauges.get((name, Gauge.CONNECTED), 0.0),
                connecting=gauges.get((name, Gauge.CONNECTING), 0.0),
                devices_failed=counters.get((name, Counter.DEVICES_FAILED), 0),
                failures=sum(n for (g, _, _), n in failures.items() if g == name),
                expected_drops=sum(n for (g, _, _), n in expected.items() if g == name),
                connects_per_s=last_done.get((name, Phase.CONNECT), 0),
                sent_per_s=last_counts.get((name, Counter.MESSAGES_SENT), 0),
                received_per_s=last_counts.get((name, Counter.MESSAGES_RECEIVED), 0),
            )
            for name in self.group_names()
        )
        return LiveView(now - self.start, groups, frozen(phase_counts))

    def snapshot(self, now: float) -> RunSnapshot:
        """Everything recorded so far, summarized (percentiles, dense per-second series)."""
        elapsed = now - self.start
        last_second = max(self._seconds, default=-1)
        seconds = max(last_second + 1, math.ceil(elapsed), 0)
        ordered = sorted(self._seconds.items())
        groups = tuple(self._group(name, seconds, ordered) for name in self.group_names())
        phases: dict[str, LatencyHistogram] = {}
        for (_, phase), histogram in self._histograms.items():
            phases.setdefault(phase, LatencyHistogram()).merge(histogram)
        return RunSnapshot(
            elapsed_s=elapsed,
            groups=groups,
            phases=frozen(
                {p: PhaseResult.of(phases[p]) for p in sorted(phases, key=phase_sort_key)}
            ),
        )

    def _group(self, name: str, seconds: int, ordered: list[tuple[int, _Second]]) -> GroupResult:
        mine = {p: h for (g, p), h in self._histograms.items() if g == name}
        phases = {p: PhaseResult.of(mine[p]) for p in sorted(mine, key=phase_sort_key)}
        failures = tuple(
            FailureCount(p, f, n) for (g, p, f), n in sorted(self._failures.items()) if g == name
        )
        expected = tuple(
            FailureCount(p, f, n) for (g, p, f), n in sorted(self._expected.items()) if g == name
        )
        return GroupResult(
            name=name,
            phases=frozen(phases),
            failures=failures,
            expected_drops=expected,
            counters=frozen({c: n for (g, c), n in sorted(self._counters.items()) if g == name}),
            gauges=frozen(
                {k: float(v) for (g, k), v in sorted(self._gauge_values.items()) if g == name}
            ),
            timeline=_timeline(name, seconds, ordered),
        )


def _add(mine: dict[_Key, int], theirs: Mapping[_Key, int]) -> None:
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


def _gauge_updates(
    seconds: Iterable[tuple[int, _Second]], offset: int
) -> dict[_Key, dict[int, float]]:
    updates: dict[_Key, dict[int, float]] = {}
    for second, bucket in seconds:
        for key, value in bucket.gauges.items():
            updates.setdefault(key, {})[max(0, second + offset)] = value
    return updates


def _dense(
    name: str, seconds: int, ordered: list[tuple[int, _Second]], pick: str
) -> dict[str, tuple[int, ...]]:
    columns: dict[str, list[int]] = {}
    for second, bucket in ordered:
        for (group, series), n in getattr(bucket, pick).items():
            if group == name and 0 <= second < seconds:
                column = columns.get(series)
                if column is None:
                    column = columns[series] = [0] * seconds
                column[second] += n
    return {k: tuple(v) for k, v in sorted(columns.items())}


def _timeline(name: str, seconds: int, ordered: list[tuple[int, _Second]]) -> Timeline:
    gauges: dict[str, list[float]] = {}
    for second, bucket in ordered:
        for (group, gauge), value in bucket.gauges.items():
            if group == name and 0 <= second < seconds:
                column = gauges.get(gauge)
                if column is None:
                    column = gauges[gauge] = [math.nan] * seconds
                column[second] = float(value)
    for column in gauges.values():  # carry each value forward; 0 before the first one
        last = 0.0
        for i, value in enumerate(column):
            if math.isnan(value):
                column[i] = last
            else:
                last = value
    return Timeline(
        seconds=seconds,
        completed=frozen(_dense(name, seconds, ordered, "completed")),
        failures=frozen(_dense(name, seconds, ordered, "failures")),
        expected=frozen(_dense(name, seconds, ordered, "expected")),
        counters=frozen(_dense(name, seconds, ordered, "counts")),
        gauges=frozen({k: tuple(v) for k, v in sorted(gauges.items())}),
    )
