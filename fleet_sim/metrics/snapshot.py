"""What a run measured, as immutable values, and its versioned JSON form (``fleetsim.run/1``).

* :class:`RunSnapshot`: the metrics alone, as :meth:`MetricsRecorder.snapshot` takes them:
  per group, per phase latency stats and histograms, failures by phase and name (expected
  drops apart), counters, last gauge values and per-second time series; plus every phase's
  histogram merged over all groups.
* :class:`RunResult`: a snapshot with the run's metadata (:class:`RunMeta`), the threshold
  outcomes (:class:`ThresholdOutcome`) and the metric values thresholds were checked against.
  :meth:`RunResult.to_json` / :meth:`RunResult.from_json` round-trip exactly; the document is
  described by :data:`fleet_sim.metrics.run_schema.RUN_SCHEMA`.

Units: seconds (floats) for durations and timestamps relative to the start, fractions for
ratios, per second for rates; wall-clock times are ISO 8601 UTC strings. A latency histogram is
stored as HdrHistogram's compressed base64 text plus the exact sum of its microseconds, so
runs can be merged later. Time series have one value per second of the run: bucket ``i``
covers ``[i, i + 1)`` seconds after the start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleet_sim import __version__
from fleet_sim.errors import RunFileError
from fleet_sim.metrics.group_result import (
    FailureCount,
    GroupResult,
    PhaseResult,
    Timeline,
    frozen,
)
from fleet_sim.metrics.json_reader import JsonReader
from fleet_sim.scenario.thresholds import ThresholdResult

__all__ = [
    "SCHEMA",
    "FailureCount",
    "GroupResult",
    "PhaseResult",
    "RunMeta",
    "RunResult",
    "RunSnapshot",
    "ThresholdOutcome",
    "Timeline",
    "frozen",
    "iso_utc",
]

#: The JSON document's ``schema`` value; bump the number on an incompatible change.
SCHEMA = "fleetsim.run/1"


def iso_utc(wall: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds (``2024-05-01T12:00:00.000Z``)."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """The metrics of a run (or of a run so far).

    Attributes:
        elapsed_s: seconds from the recorder's start to the snapshot.
        groups: per group, in scenario order.
        phases: phase → latencies over all groups.
    """

    elapsed_s: float
    groups: tuple[GroupResult, ...] = ()
    phases: Mapping[str, PhaseResult] = field(default_factory=frozen)

    def group(self, name: str) -> GroupResult:
        """The group called ``name``.

        Raises:
            KeyError: no such group.
        """
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "elapsed_s": self.elapsed_s,
            "phases": {k: v.to_dict() for k, v in self.phases.items()},
            "groups": [g.to_dict() for g in self.groups],
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> RunSnapshot:
        """Read the JSON form."""
        return cls(
            elapsed_s=data.number("elapsed_s"),
            groups=tuple(GroupResult.from_dict(g) for g in data.children("groups")),
            phases=frozen(
                {k: PhaseResult.from_dict(v) for k, v in data.child_map("phases").items()}
            ),
        )


# --------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What was run, where, when and how.

    Attributes:
        scenario: the scenario's name.
        description: the scenario's description.
        seed: the seed the run used (reported so it can be repeated).
        started_at: wall-clock start, ISO 8601 UTC (see :func:`iso_utc`).
        ended_at: wall-clock end, ISO 8601 UTC.
        duration_s: how long the run lasted (the denominator of rates).
        target: the endpoint, e.g. ``local emulator 127.0.0.1:8883`` or an AWS endpoint.
        engines: group → device engine (``native``, ``awscrt``).
        notes: facts a reader needs, e.g. ``awscrt engine reports connect as one phase``.
        fleetsim_version: the fleetsim that ran it.
    """

    scenario: str
    description: str = ""
    seed: int | None = None
    started_at: str = ""
    ended_at: str = ""
    duration_s: float = 0.0
    target: str = ""
    engines: Mapping[str, str] = field(default_factory=frozen)
    notes: tuple[str, ...] = ()
    fleetsim_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "scenario": self.scenario,
            "description": self.description,
            "seed": self.seed,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "target": self.target,
            "engines": dict(self.engines),
            "notes": list(self.notes),
            "fleetsim_version": self.fleetsim_version,
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> RunMeta:
        """Read the JSON form."""
        return cls(
            scenario=data.text("scenario"),
            description=data.text("description", ""),
            seed=data.optional_integer("seed"),
            started_at=data.text("started_at", ""),
            ended_at=data.text("ended_at", ""),
            duration_s=data.number("duration_s"),
            target=data.text("target", ""),
            engines=frozen(data.text_map("engines")),
            notes=data.texts("notes"),
            fleetsim_version=data.text("fleetsim_version", ""),
        )


@dataclass(frozen=True, slots=True)
class ThresholdOutcome:
    """One threshold as checked, self-contained (no re-parsing needed to report it).

    Attributes:
        expression: as written, e.g. ``connect.p99 < 2s``.
        key: the metric value it read, e.g. ``connect.p99``.
        kind: ``latency``, ``ratio``, ``count`` or ``rate`` (fixes the unit).
        operator: ``<``, ``<=``, ``>``, ``>=`` or ``==``.
        limit: the limit in base units.
        observed: the observed value in base units, or None when nothing was measured.
        passed: whether it held.
    """

    expression: str
    key: str
    kind: str
    operator: str
    limit: float
    observed: float | None
    passed: bool

    @classmethod
    def of(cls, result: ThresholdResult) -> ThresholdOutcome:
        """From a checked threshold."""
        threshold = result.threshold
        return cls(
            expression=threshold.expression,
            key=threshold.key,
            kind=threshold.kind.value,
            operator=threshold.operator.value,
            limit=threshold.value,
            observed=result.observed,
            passed=result.passed,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "expression": self.expression,
            "key": self.key,
            "kind": self.kind,
            "operator": self.operator,
            "limit": self.limit,
            "observed": self.observed,
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: JsonReader) -> ThresholdOutcome:
        """Read the JSON form."""
        kind = data.text("kind")
        if kind not in ("latency", "ratio", "count", "rate"):
            raise RunFileError(f"{data.path}.kind: unknown metric kind {kind!r}")
        operator = data.text("operator")
        if operator not in ("<", "<=", ">", ">=", "=="):
            raise RunFileError(f"{data.path}.operator: unknown operator {operator!r}")
        return cls(
            expression=data.text("expression"),
            key=data.text("key"),
            kind=kind,
            operator=operator,
            limit=data.number("limit"),
            observed=data.optional_number("observed"),
            passed=data.boolean("passed"),
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: metadata, metrics, threshold outcomes and the values they read.

    Attributes:
        meta: what, where, when.
        metrics: everything measured.
        thresholds: outcomes in scenario order.
        values: every metric value (see :func:`fleet_sim.metrics.values.metric_values`).
    """

    meta: RunMeta
    metrics: RunSnapshot
    thresholds: tuple[ThresholdOutcome, ...] = ()
    values: Mapping[str, float] = field(default_factory=frozen)

    @property
    def passed(self) -> bool:
        """Every threshold held (True without thresholds)."""
        return all(t.passed for t in self.thresholds)

    @property
    def exit_code(self) -> int:
        """0 when every threshold held, 1 otherwise."""
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as Python objects (``schema`` first)."""
        return {
            "schema": SCHEMA,
            "passed": self.passed,
            "meta": self.meta.to_dict(),
            "thresholds": [t.to_dict() for t in self.thresholds],
            "values": dict(self.values),
            "metrics": self.metrics.to_dict(),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The JSON document (``fleetsim.run/1``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: object) -> RunResult:
        """Read a parsed JSON document.

        Raises:
            RunFileError: not a ``fleetsim.run/1`` document; the message names the location.
        """
        root = JsonReader(data)
        schema = root.text("schema")
        if schema != SCHEMA:
            raise RunFileError(f"schema: unsupported {schema!r} (this fleetsim reads {SCHEMA!r})")
        return cls(
            meta=RunMeta.from_dict(root.child("meta")),
            metrics=RunSnapshot.from_dict(root.child("metrics")),
            thresholds=tuple(ThresholdOutcome.from_dict(t) for t in root.children("thresholds")),
            values=frozen(root.number_map("values")),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> RunResult:
        """Parse :meth:`to_json`'s text.

        Raises:
            RunFileError: not JSON, or not a ``fleetsim.run/1`` document.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunFileError(f"not JSON: {exc}") from None
        return cls.from_dict(data)
