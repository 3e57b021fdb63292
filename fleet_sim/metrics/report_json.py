"""The JSON report: the complete, machine-readable run (``fleetsim.run/1``), written and read.

The document is :meth:`RunResult.to_json` (see :mod:`fleet_sim.metrics.snapshot` for the
layout and :mod:`fleet_sim.metrics.run_schema` for its JSON Schema). ``fleetsim report``
re-renders the other reports from it, so it holds everything they need, histograms included.
"""

from __future__ import annotations

import os
from pathlib import Path

from fleet_sim.errors import RunFileError
from fleet_sim.metrics.snapshot import RunResult

__all__ = ["read_json_report", "render_json_report", "write_json_report", "write_text_atomic"]


def render_json_report(result: RunResult) -> str:
    """The JSON document, indented, ending with a newline."""
    return result.to_json(indent=2) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it.

    Missing parent directories are created; the file gets the usual permissions (umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_report(result: RunResult, path: Path) -> None:
    """Write the JSON report to ``path``."""
    write_text_atomic(path, render_json_report(result))


def read_json_report(path: Path) -> RunResult:
    """Read a JSON report.

    Raises:
        RunFileError: the file cannot be read or is not a ``fleetsim.run/1`` document; the
            error names the file and the problem.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunFileError("no such file", file=path) from None
    except IsADirectoryError:
        raise RunFileError("is a directory, not a run file", file=path) from None
    except OSError as exc:
        raise RunFileError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        return RunResult.from_json(data)
    except RunFileError as exc:
        raise RunFileError(exc.message, file=path) from None
