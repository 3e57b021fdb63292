"""``fleetsim report run.json``: re-render a saved run's reports and give its verdict.

Reads a JSON report (``fleetsim.run/1``), prints the summary, writes the HTML and JUnit
reports when asked, and exits like ``fleetsim run`` did: 0 when every threshold held, 1 when
one failed, 2 when the file cannot be read or is not a valid run (one ``error: <file>:
<problem>`` line on stderr) or a report cannot be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleet_sim.errors import RunFileError
from fleet_sim.metrics.report_html import write_html_report
from fleet_sim.metrics.report_json import read_json_report
from fleet_sim.metrics.report_junit import write_junit_report
from fleet_sim.metrics.report_text import render_summary

__all__ = ["report"]

EXIT_ERROR = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


def report(
    run_file: Annotated[
        Path, typer.Argument(help="A run's JSON report (written by fleetsim run).")
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report to this file.")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write the JUnit XML report to this file.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Re-render a saved run; exit 0 if every threshold held, 1 if one failed, 2 on bad input."""
    try:
        result = read_json_report(run_file)
    except RunFileError as exc:
        raise _fail(str(exc)) from None
    for path, write in ((html, write_html_report), (junit, write_junit_report)):
        if path is None:
            continue
        try:
            write(result, path)
        except OSError as exc:
            raise _fail(f"{path}: cannot write: {exc.strerror or exc}") from None
    if not quiet:
        Console().print(render_summary(result))
    raise typer.Exit(result.exit_code)
