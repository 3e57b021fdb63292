"""The JSON Schema (draft 2020-12) of the run document, ``fleetsim.run/1``.

Built in code so it cannot drift from the package data; :func:`run_schema_json` renders it
for tools (``jsonschema``, editors). :meth:`RunResult.from_json` does its own, stricter
checks (histogram contents, series lengths) with location-aware messages; the schema is the
contract for other readers of the report.
"""

from __future__ import annotations

import json
from typing import Any

from fleet_sim.metrics.snapshot import SCHEMA

__all__ = ["RUN_SCHEMA", "run_schema_json"]

_NUMBER: dict[str, Any] = {"type": "number"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_SECONDS: dict[str, Any] = {"type": "number", "description": "seconds"}


def _map_of(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": value}


def _series(item: dict[str, Any]) -> dict[str, Any]:
    return _map_of({"type": "array", "items": item})


_PHASE: dict[str, Any] = {
    "type": "object",
    "description": "Latencies of one phase in seconds, and the HdrHistogram they come from.",
    "required": [
        "count",
        "min",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "histogram",
        "sum_us",
    ],
    "properties": {
        "count": _COUNT,
        **dict.fromkeys(("min", "mean", "p50", "p90", "p99", "p99.9", "max"), _SECONDS),
        "histogram": {
            "type": "string",
            "description": "HdrHistogram V2 compressed base64; microseconds, 1..3.6e9, 3 digits",
        },
        "sum_us": {"type": "integer", "description": "exact sum of the recorded microseconds"},
    },
}

_FAILURE: dict[str, Any] = {
    "type": "object",
    "required": ["phase", "failure", "count"],
    "properties": {
        "phase": {"type": "string"},
        "failure": {
            "type": "string",
            "pattern": r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.\-]+)?$",
            "description": "stable failure name, e.g. connack_refused:135",
        },
        "count": _COUNT,
    },
}

_TIMELINE: dict[str, Any] = {
    "type": "object",
    "description": "One value per second of the run; bucket i covers [i, i+1) s.",
    "required": ["seconds"],
    "properties": {
        "seconds": _COUNT,
        "completed": _series(_COUNT),
        "failures": _series(_COUNT),
        "expected": _series(_COUNT),
        "counters": _series(_COUNT),
        "gauges": _series(_NUMBER),
    },
}

_GROUP: dict[str, Any] = {
    "type": "object",
    "required": ["name", "phases", "failures", "expected_drops", "timeline"],
    "properties": {
        "name": {"type": "string"},
        "phases": _map_of(_PHASE),
        "failures": {"type": "array", "items": _FAILURE},
        "expected_drops": {"type": "array", "items": _FAILURE},
        "counters": _map_of(_COUNT),
        "gauges": _map_of(_NUMBER),
        "timeline": _TIMELINE,
    },
}

_THRESHOLD: dict[str, Any] = {
    "type": "object",
    "required": ["expression", "key", "kind", "operator", "limit", "observed", "passed"],
    "properties": {
        "expression": {"type": "string"},
        "key": {"type": "string"},
        "kind": {"enum": ["latency", "ratio", "count", "rate"]},
        "operator": {"enum": ["<", "<=", ">", ">=", "=="]},
        "limit": _NUMBER,
        "observed": {"type": ["number", "null"]},
        "passed": {"type": "boolean"},
    },
}

_META: dict[str, Any] = {
    "type": "object",
    "required": ["scenario", "duration_s"],
    "properties": {
        "scenario": {"type": "string"},
        "description": {"type": "string"},
        "seed": {"type": ["integer", "null"]},
        "started_at": {"type": "string", "description": "ISO 8601 UTC"},
        "ended_at": {"type": "string", "description": "ISO 8601 UTC"},
        "duration_s": _SECONDS,
        "target": {"type": "string"},
        "engines": _map_of({"type": "string"}),
        "notes": {"type": "array", "items": {"type": "string"}},
        "fleetsim_version": {"type": "string"},
    },
}

#: The run document's schema.
RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:fleetsim:run:1",
    "title": "fleetsim run",
    "description": "A fleetsim run: metadata, threshold outcomes, metric values and metrics.",
    "type": "object",
    "required": ["schema", "meta", "thresholds", "values", "metrics"],
    "properties": {
        "schema": {"const": SCHEMA},
        "passed": {"type": "boolean", "description": "every threshold held"},
        "meta": _META,
        "thresholds": {"type": "array", "items": _THRESHOLD},
        "values": _map_of(_NUMBER),
        "metrics": {
            "type": "object",
            "required": ["elapsed_s", "phases", "groups"],
            "properties": {
                "elapsed_s": _SECONDS,
                "phases": _map_of(_PHASE),
                "groups": {"type": "array", "items": _GROUP},
            },
        },
    },
}


def run_schema_json() -> str:
    """The schema as JSON text."""
    return json.dumps(RUN_SCHEMA, indent=2)
