"""RunResult's JSON form (fleetsim.run/1): exact round trip, schema, precise errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from fleet_sim.errors import RunFileError
from fleet_sim.metrics import SCHEMA, RunResult
from fleet_sim.metrics.run_schema import RUN_SCHEMA, run_schema_json
from tests.unit.metrics.sample import sample_result


@pytest.fixture(scope="module")
def result() -> RunResult:
    return sample_result()


def test_round_trip_is_exact(result: RunResult) -> None:
    text = result.to_json()
    back = RunResult.from_json(text)
    assert back == result
    assert back.to_json() == text


def test_document_is_versioned_and_complete(result: RunResult) -> None:
    data = json.loads(result.to_json())
    assert next(iter(data)) == "schema"
    assert data["schema"] == SCHEMA == "fleetsim.run/1"
    assert data["passed"] is False
    assert data["meta"]["seed"] == 42
    assert data["meta"]["engines"] == {"sensors": "native", "gateways": "awscrt"}
    sensors = data["metrics"]["groups"][0]
    assert sensors["name"] == "sensors"
    connect = sensors["phases"]["connect"]
    assert connect["histogram"].startswith("HISTF")
    assert {"count", "min", "mean", "p50", "p90", "p99", "p99.9", "max", "sum_us"} <= set(connect)
    assert sensors["expected_drops"] == [
        {"phase": "connect", "failure": "closed_before_connack", "count": 100}
    ]
    assert len(sensors["timeline"]["completed"]["connect"]) == sensors["timeline"]["seconds"]
    assert data["values"]["failure_ratio"] == pytest.approx(2 / 120)
    assert data["thresholds"][0]["expression"] == "connect.p99 < 2s"


def test_document_validates_against_the_json_schema(result: RunResult) -> None:
    validator = jsonschema.Draft202012Validator(RUN_SCHEMA)
    validator.check_schema(RUN_SCHEMA)
    validator.validate(result.to_dict())
    assert json.loads(run_schema_json()) == RUN_SCHEMA


def test_schema_rejects_a_broken_document(result: RunResult) -> None:
    data = result.to_dict()
    data["metrics"]["groups"][0]["failures"][0]["failure"] = "Not A Name"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, RUN_SCHEMA)


def test_saved_histograms_can_be_merged_later(result: RunResult) -> None:
    back = RunResult.from_json(result.to_json())
    sensors = back.metrics.group("sensors").phases["connect"].decode()
    gateways = back.metrics.group("gateways").phases["connect"].decode()
    sensors.merge(gateways)
    assert sensors.stats() == back.metrics.phases["connect"].stats


def broken(result: RunResult, edit: Any) -> str:
    data = copy.deepcopy(result.to_dict())
    edit(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="fleetsim.run/2"), "schema: unsupported 'fleetsim.run/2'"),
        (lambda d: d.pop("meta"), "meta: missing"),
        (lambda d: d["meta"].update(duration_s="20s"), "meta.duration_s: expected a number"),
        (lambda d: d["meta"].update(seed=1.5), "meta.seed: expected a whole number"),
        (
            lambda d: d["metrics"]["groups"][1].pop("name"),
            "metrics.groups[1].name: missing",
        ),
        (
            lambda d: d["metrics"]["groups"][0]["phases"]["connect"].update(p99=None),
            "metrics.groups[0].phases.connect.p99: expected a number, got null",
        ),
        (
            lambda d: d["metrics"]["groups"][0]["phases"]["connect"].update(count=5),
            "metrics.groups[0].phases.connect: count is 5 but the histogram holds 98",
        ),
        (
            lambda d: d["metrics"]["groups"][0]["phases"]["connect"].update(histogram="xx"),
            "metrics.groups[0].phases.connect.histogram: not an encoded HdrHistogram",
        ),
        (
            lambda d: d["metrics"]["groups"][0]["timeline"]["counters"]["devices"].pop(),
            "metrics.groups[0].timeline.counters.devices: expected 20 values, got 19",
        ),
        (
            lambda d: d["metrics"]["groups"][0]["timeline"]["completed"]["connect"].__setitem__(
                0, 1.5
            ),
            "metrics.groups[0].timeline.completed.connect[0]: expected a whole number",
        ),
        (lambda d: d["thresholds"][0].update(kind="speed"), "thresholds[0].kind: unknown"),
        (lambda d: d["thresholds"][0].update(passed="yes"), "thresholds[0].passed: expected"),
        (lambda d: d.update(metrics=[]), "metrics: expected an object, got an array"),
    ],
)
def test_invalid_documents_name_the_location(result: RunResult, edit: Any, message: str) -> None:
    with pytest.raises(RunFileError) as info:
        RunResult.from_json(broken(result, edit))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not JSON"), ("[1, 2]", "the document: expected an object"), (b"\xff", "JSON")],
)
def test_not_a_run_document(text: str | bytes, message: str) -> None:
    with pytest.raises(RunFileError, match=message):
        RunResult.from_json(text)


def test_exit_code_follows_the_thresholds(result: RunResult) -> None:
    assert result.exit_code == 1
    passing = sample_result(("connect.p99 < 2s",))
    assert passing.passed
    assert passing.exit_code == 0
    assert sample_result(()).exit_code == 0
