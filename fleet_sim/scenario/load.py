"""Load a scenario: YAML text or file → a validated, frozen :class:`Scenario`.

This is the edge where files and the environment are read. Everything wrong with a file is
reported at once, as one :class:`~fleet_sim.errors.ScenarioValidationError` (a
:class:`~fleet_sim.errors.ScenarioError`) whose message lists every problem with its YAML
path and ``file:line``, e.g.::

    scenario.yaml: 2 problems
      fleet[1].connect.retry.jitter: must be one of none, full, equal, decorrelated; got
        'fulll' (scenario.yaml:23)
      thresholds[0]: unknown metric 'conect' (did you mean connect?); … (scenario.yaml:31)

(one line per problem; wrapped here).

Top-level keys starting with ``x-`` are extension fields, ignored (as in Compose files):
they hold YAML anchors for settings that several groups merge with ``<<: *name``.

Relative file paths in the scenario (CA certificates, identity directories, templates) are
relative to the scenario file; :func:`load_scenario` also checks that they exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from fleet_sim.errors import ScenarioError, ScenarioValidationError
from fleet_sim.scenario.diagnostics import problems_from_validation
from fleet_sim.scenario.model import Scenario
from fleet_sim.scenario.model_base import format_loc
from fleet_sim.scenario.yaml_source import Problem, read_yaml

__all__ = ["load_scenario", "parse_scenario"]


def _errors(problems: list[Problem], source: str) -> ScenarioValidationError:
    unique: dict[tuple[str, int | None, str], ScenarioError] = {}
    for problem in sorted(problems, key=lambda p: (p.line or 0, format_loc(p.loc))):
        path = format_loc(problem.loc)
        where = f"{source}:{problem.line}" if problem.line is not None else source
        key = (path, problem.line, problem.message)
        unique.setdefault(key, ScenarioError(problem.message, path=path, source=where))
    return ScenarioValidationError(list(unique.values()), file=source)


def _covered(loc: tuple[str | int, ...], by: list[tuple[str | int, ...]]) -> bool:
    return any(loc[: len(prefix)] == prefix for prefix in by)


def parse_scenario(
    text: str,
    *,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    check_files: bool = False,
) -> Scenario:
    """Parse and validate scenario YAML.

    Args:
        text: the YAML document.
        source: the name errors give the file (``scenario.yaml``).
        env: the environment for ``${NAME}`` interpolation; default ``os.environ``.
        base_dir: what relative file paths are relative to; default as written.
        check_files: whether files the scenario names must exist.

    Returns:
        The validated scenario.

    Raises:
        ScenarioValidationError: the document has problems; all are listed.
    """
    document = read_yaml(text, env=os.environ if env is None else env)
    problems = list(document.problems)
    if document.data is not None and not isinstance(document.data, dict):
        problems.append(Problem((), 1, "a scenario must be a mapping (name:, fleet:, run: …)"))
    if not isinstance(document.data, dict):
        raise _errors(problems, source)
    context = {"base_dir": base_dir, "check_files": check_files}
    data = {key: value for key, value in document.data.items() if not key.startswith("x-")}
    try:
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as exc:
        reading = [problem.loc for problem in problems]  # don't pile on: value already wrong
        problems.extend(
            problem
            for problem in problems_from_validation(Scenario, exc, document.root)
            if not _covered(problem.loc, reading)
        )
    else:
        if not problems:
            return scenario
    raise _errors(problems, source)


def load_scenario(path: str | Path, *, env: Mapping[str, str] | None = None) -> Scenario:
    """Load and validate a scenario file.

    Args:
        path: the YAML file; errors name it as given.
        env: the environment for ``${NAME}`` interpolation; default ``os.environ``.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: the file cannot be read.
        ScenarioValidationError: the file has problems; all are listed.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the scenario: {exc}", source=str(path)) from None
    return parse_scenario(text, source=str(path), env=env, base_dir=file.parent, check_files=True)
