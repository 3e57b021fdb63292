"""``fleetsim schema``: print the scenario file's JSON Schema (for editors and CI checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleet_sim.scenario.schema import scenario_json_schema

__all__ = ["schema"]


def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of scenario files."""
    text = json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
