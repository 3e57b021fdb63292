"""``fleetsim schema`` prints a valid JSON Schema that accepts the example scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fleet_sim.cli.main import app
from fleet_sim.scenario.schema import SCHEMA_DIALECT, scenario_json_schema

SCENARIOS = sorted((Path(__file__).resolve().parents[3] / "scenarios").glob("*.yaml"))
GOOD = Path(__file__).parent / "fixtures" / "good"

jsonschema = pytest.importorskip("jsonschema")


def printed_schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def validator() -> Any:
    return jsonschema.Draft202012Validator(printed_schema())


def test_fleetsim_schema_prints_a_valid_json_schema():
    schema = printed_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "fleet"}
    assert {"target", "fleet", "run", "thresholds", "reports"} <= set(schema["properties"])
    assert schema == scenario_json_schema()


def test_schema_output_option_writes_a_file(tmp_path):
    out = tmp_path / "fleetsim.schema.json"
    result = CliRunner().invoke(app, ["schema", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == scenario_json_schema()


@pytest.mark.parametrize(
    "path", [*SCENARIOS, GOOD / "full.yaml", GOOD / "minimal.yaml"], ids=lambda p: p.name
)
def test_schema_accepts_the_example_scenarios_as_written(path):
    # as written: ${ENV} references, shorthands, durations and rates as strings
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(data)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"fleet": [{"name": "g", "count": 1, "conect": {}}]}, ["fleet", 0]),
        (
            {"fleet": [{"name": "g", "count": 1, "connect": {"retry": {"jitter": "fulll"}}}]},
            ["fleet", 0, "connect", "retry", "jitter"],
        ),
        (
            {"fleet": [{"name": "g", "count": 1, "connect": {"timeout": "5x"}}]},
            ["fleet", 0, "connect", "timeout"],
        ),
        (
            {"fleet": [{"name": "g", "count": 1, "behaviours": [{"type": "publsh"}]}]},
            ["fleet", 0, "behaviours", 0],
        ),
        ({"thresholds": ["connect.p99 about 2s"]}, ["thresholds", 0]),
        ({"fleet": []}, ["fleet"]),
    ],
)
def test_schema_rejects_obvious_mistakes(patch, where):
    data = {"name": "s", "fleet": [{"name": "g", "count": 1}], **patch}
    errors = list(validator().iter_errors(data))
    assert errors
    assert any(list(e.absolute_path)[: len(where)] == where for e in errors)


def test_extension_fields_and_env_references_are_allowed():
    data = {
        "name": "s",
        "x-defaults": {"anything": True},
        "fleet": [{"name": "g", "count": "${COUNT}", "connect": {"retry": {"jitter": "${J}"}}}],
    }
    assert not list(validator().iter_errors(data))
