"""``fleetsim run scenario.yaml``: run a scenario, show progress, write reports, set the exit code.

Exit codes: 0 every threshold met, 1 a threshold failed, 2 invalid input or a setup error.
Ctrl-C stops gracefully (devices disconnect, a partial report is still written); a second
Ctrl-C stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from fleet_sim.engine.run import RunHooks, RunOptions, execute
from fleet_sim.engine.runner import FleetRunner
from fleet_sim.errors import FleetSimError
from fleet_sim.metrics.progress import ProgressDisplay
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.metrics.report_html import write_html_report
from fleet_sim.metrics.report_json import write_json_report
from fleet_sim.metrics.report_junit import write_junit_report
from fleet_sim.metrics.snapshot import RunResult
from fleet_sim.scenario.load import load_scenario
from fleet_sim.scenario.model import Scenario

EXIT_INVALID = 2


def run(
    scenario_file: Annotated[Path, typer.Argument(help="The scenario YAML file.")],
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Override the run duration (seconds).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here too.")
    ] = None,
    junit_out: Annotated[
        Path | None, typer.Option("--junit", help="Write the JUnit XML report here too.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report here too.")
    ] = None,
    certs_dir: Annotated[
        Path, typer.Option(help="Fleet CA and identity cache (reused across runs).")
    ] = Path("certs"),
    progress: Annotated[
        bool, typer.Option(help="Live progress on the terminal (off when not a TTY).")
    ] = True,
) -> None:
    """Run a scenario against its target and report every phase's timing and failure."""
    console = Console(stderr=True)
    try:
        scenario = load_scenario(scenario_file)
    except FleetSimError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    options = RunOptions(seed=seed, duration_s=duration, certs_dir=certs_dir)
    show = progress and sys.stderr.isatty()
    try:
        result = asyncio.run(_run(scenario, options, console, show=show))
    except FleetSimError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    outputs = _report_paths(scenario, json_out, junit_out, html_out)
    for kind, path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        {"json": write_json_report, "junit": write_junit_report, "html": write_html_report}[kind](
            result, path
        )
    _summary(console, result, outputs)
    raise typer.Exit(result.exit_code)


async def _run(
    scenario: Scenario, options: RunOptions, console: Console, *, show: bool
) -> RunResult:
    loop = asyncio.get_running_loop()
    hooks = RunHooks()
    holder: dict[str, FleetRunner] = {}
    display: list[asyncio.Task[None]] = []

    def started(runner: FleetRunner, recorder: MetricsRecorder) -> None:
        holder["runner"] = runner
        duration = options.duration_s or scenario.run.duration
        console.print(
            f"running [bold]{scenario.name}[/bold]: {scenario.device_count} devices, "
            f"{duration:g} s (Ctrl-C stops gracefully)",
            highlight=False,
        )
        if show:
            display.append(
                asyncio.ensure_future(_progress(console, recorder, loop.time, scenario.name))
            )

    hooks.on_start = started
    with _interrupts(loop, holder, hooks):
        try:
            return await execute(scenario, options, hooks=hooks)
        finally:
            for task in display:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _progress(
    console: Console, recorder: MetricsRecorder, now: Callable[[], float], title: str
) -> None:
    """Redraw the live panel from the event loop (no thread reads the recorder)."""
    display = ProgressDisplay(recorder, now=now, console=console, enabled=True, title=title)
    with Live(display.render(), console=console, auto_refresh=False, transient=False) as live:
        try:
            while True:
                await asyncio.sleep(1 / display.refresh_per_second)
                live.update(display.render(), refresh=True)
        finally:
            live.update(display.render(), refresh=True)


@contextlib.contextmanager
def _interrupts(
    loop: asyncio.AbstractEventLoop, holder: dict[str, FleetRunner], hooks: RunHooks
) -> Iterator[None]:
    def interrupt() -> None:
        runner = holder.get("runner")
        if runner is not None:
            runner.request_stop("interrupted")
        else:  # still setting up: the fleet stops as soon as it starts
            hooks.stop_requested = True

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, interrupt)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _report_paths(
    scenario: Scenario, json_out: Path | None, junit_out: Path | None, html_out: Path | None
) -> list[tuple[str, Path]]:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    wanted: list[tuple[str, Path]] = []
    for kind, explicit, template in (
        ("json", json_out, scenario.reports.json_path),
        ("junit", junit_out, scenario.reports.junit_path),
        ("html", html_out, scenario.reports.html_path),
    ):
        if explicit is not None:
            wanted.append((kind, explicit))
        if template is not None:
            values = {"name": scenario.name, "timestamp": stamp}
            wanted.append((kind, Path(template.render(values, random.Random(0)))))
    return wanted


def _summary(console: Console, result: RunResult, outputs: list[tuple[str, Path]]) -> None:
    values = result.values
    connected = values.get("connected_ratio")
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [f"[bold]{result.meta.scenario}[/bold]: {verdict} in {result.meta.duration_s:.1f} s"]
    if connected is not None:
        lines.append(f"  connected: {connected:.1%} of devices")
    for phase in ("connect", "publish", "subscribe"):
        p50, p99 = values.get(f"{phase}.p50"), values.get(f"{phase}.p99")
        if p50 is not None and p99 is not None:
            lines.append(f"  {phase}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    for outcome in result.thresholds:
        mark = "[green]ok[/green]" if outcome.passed else "[red]FAIL[/red]"
        lines.append(f"  {mark} {outcome.expression} (observed {outcome.observed})")
    lines.extend(f"  note: {note}" for note in result.meta.notes)
    for kind, path in outputs:
        lines.append(f"  {kind} report: {path}")
    console.print("\n".join(lines), highlight=False)
