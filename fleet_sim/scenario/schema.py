"""The scenario file's JSON Schema, for editors (``fleetsim schema > fleetsim.schema.json``).

Generated from the pydantic models, so it cannot drift from what the loader accepts. It
describes the YAML as written: shorthands (``target: local``, ``arrival: 50/s``,
``provisioning: preregistered``), durations, rates and percentages as strings or numbers, and
templates and thresholds as strings, and any constrained scalar may instead be an
environment reference (``${NAME}``, interpolated by the loader). The loader checks more than
a schema can (template fields, cross-field rules, policies); the schema is for completion and
early hints.

With the YAML language server, point a scenario at it with a first line such as
``# yaml-language-server: $schema=./fleetsim.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from fleet_sim.scenario.model import Scenario
from fleet_sim.scenario.templates import Template

__all__ = ["SCHEMA_DIALECT", "SCHEMA_ID", "scenario_json_schema"]

#: The JSON Schema dialect pydantic generates.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: The schema's identifier.
SCHEMA_ID = "https://fleetsim.dev/schema/scenario-1.json"


def _as_written(value: Any) -> Any:
    if isinstance(value, Template):
        return value.source
    if isinstance(value, Mapping):
        return {key: _as_written(item) for key, item in value.items()}
    return value


#: A string made of ``${NAME}`` references, which the loader interpolates before validation.
ENV_REFERENCE = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "An environment variable reference: ${NAME} or ${NAME:-default}.",
}
_CONSTRAINED_SCALAR = {"integer", "number", "boolean"}


def _allow_env(schema: Any, *, key: str | None = None) -> Any:
    """Let constrained scalars also be written as ``${NAME}`` (not discriminators)."""
    if isinstance(schema, list):
        return [_allow_env(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {
        name: (
            {prop: _allow_env(sub, key=prop) for prop, sub in value.items()}
            if name in ("properties", "$defs", "patternProperties")
            else _allow_env(value)
        )
        for name, value in schema.items()
    }
    constrained = (
        result.get("type") in _CONSTRAINED_SCALAR
        or "enum" in result
        or "const" in result
        or (result.get("type") == "string" and "pattern" in result)
    )
    if constrained and key != "type":
        return {"anyOf": [result, ENV_REFERENCE]}
    return result


class _Generator(GenerateJsonSchema):
    """Writes template defaults (``{group}-{index:05d}``) as the text they were written as."""

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_as_written(dft))


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (a fresh dict each call)."""
    schema = Scenario.model_json_schema(
        mode="validation", by_alias=True, schema_generator=_Generator
    )
    schema = _allow_env(schema)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        **schema,
        "patternProperties": {"^x-": {"description": "Extension field (ignored): anchors."}},
        "title": "fleetsim scenario",
        "description": (
            "A fleetsim load-test scenario: target, device groups, run control, "
            "thresholds and reports."
        ),
    }
