"""The terminal summary of a run: verdict, thresholds, groups and phase latencies (rich).

Printed by ``fleetsim report`` and at the end of ``fleetsim run``; it is the short form of the
HTML report's header.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fleet_sim.metrics.formatting import format_latency, format_value
from fleet_sim.metrics.names import Counter, Gauge
from fleet_sim.metrics.snapshot import RunResult

__all__ = ["render_summary", "verdict_line"]


def verdict_line(result: RunResult) -> str:
    """``PASSED: all 3 thresholds`` / ``FAILED: 1 of 3 thresholds`` / ``NO THRESHOLDS``."""
    if not result.thresholds:
        return "NO THRESHOLDS"
    failed = sum(not t.passed for t in result.thresholds)
    if failed:
        return f"FAILED: {failed} of {len(result.thresholds)} thresholds"
    return f"PASSED: all {len(result.thresholds)} thresholds"


def _thresholds(result: RunResult) -> Table:
    table = Table(
        title="Thresholds",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("threshold", "observed", "result"):
        table.add_column(column, justify="left" if column == "threshold" else "right")
    for t in result.thresholds:
        verdict = Text("pass", "green") if t.passed else Text("FAIL", "bold red")
        table.add_row(t.expression, format_value(t.observed, t.kind), verdict)
    return table


_GROUP_COLUMNS = (
    "group",
    "engine",
    "devices",
    "connected",
    "failed",
    "failures",
    "expected",
    "sent",
    "recv",
)


def _groups(result: RunResult) -> Table:
    table = Table(
        title="Groups",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in _GROUP_COLUMNS:
        left = column in ("group", "engine")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for g in result.metrics.groups:
        table.add_row(
            g.name,
            result.meta.engines.get(g.name, ""),
            str(g.counters.get(Counter.DEVICES, 0)),
            f"{g.gauges.get(Gauge.CONNECTED, 0.0):g}",
            str(g.counters.get(Counter.DEVICES_FAILED, 0)),
            Text(str(g.failure_total), "red" if g.failure_total else ""),
            str(g.expected_total),
            str(g.counters.get(Counter.MESSAGES_SENT, 0)),
            str(g.counters.get(Counter.MESSAGES_RECEIVED, 0)),
        )
    return table


def _phases(result: RunResult) -> Table:
    table = Table(
        title="Latency (all groups)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in ("phase", "count", "min", "p50", "p90", "p99", "p99.9", "max"):
        table.add_column(column, justify="left" if column == "phase" else "right", no_wrap=True)
    for phase, r in result.metrics.phases.items():
        s = r.stats
        table.add_row(
            phase,
            str(s.count),
            *(format_latency(v) for v in (s.min, s.p50, s.p90, s.p99, s.p999, s.max)),
        )
    return table


def render_summary(result: RunResult) -> RenderableType:
    """The summary as a rich renderable."""
    meta = result.meta
    style = "bold green" if result.passed else "bold red"
    if not result.thresholds:
        style = "bold"
    facts = [
        meta.started_at,
        format_latency(meta.duration_s),
        f"seed {meta.seed}" if meta.seed is not None else "",
        meta.target,
    ]
    parts: list[RenderableType] = [
        Text(f"fleetsim run: {meta.scenario}", "bold"),
        Text(" · ".join(filter(None, facts))),
        Text(verdict_line(result), style),
    ]
    if result.thresholds:
        parts.append(_thresholds(result))
    if result.metrics.groups:
        parts.append(_groups(result))
    if result.metrics.phases:
        parts.append(_phases(result))
    parts.extend(Text(f"note: {note}", "dim") for note in meta.notes)
    return Group(*parts)
