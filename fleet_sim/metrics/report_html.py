"""The HTML report: one self-contained page a person would rather look at than read.

**Charting library: plotly** (plotly.py building the figures, plotly.js drawing them). Chosen
because it gives interactive charts (hover for exact values, zoom into a ramp, click a group
in the legend to hide it) from a pure-Python wheel with two small dependencies, and because
plotly.py ships the complete plotly.js bundle, which we embed inline once
(:func:`plotly.offline.get_plotlyjs`), so the page opens offline, from a CI artifact or an
e-mail attachment, with no CDN. The cost is ~4.8 MB of JavaScript per report, acceptable for a
load-test artifact. matplotlib with inline SVG would give smaller files but static pictures,
and a heavier compiled dependency.

The page has no network references at all: no ``src``/``href`` to http(s), no fonts, no
MathJax. Above the charts: the verdict, the run's facts, the thresholds table, the per-group
summary and the per-phase latency table, so the page is useful even with JavaScript off.
All text from the run is HTML-escaped; plotly escapes ``<`` inside the figures' JSON.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import plotly.io as pio
from plotly.offline import get_plotlyjs

from fleet_sim.metrics import report_charts as charts
from fleet_sim.metrics.formatting import format_latency, format_value
from fleet_sim.metrics.names import Counter, Phase
from fleet_sim.metrics.report_json import write_text_atomic
from fleet_sim.metrics.snapshot import RunResult
from fleet_sim.scenario.thresholds import MetricKind, format_metric_value

__all__ = ["render_html_report", "write_html_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;
background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:26px}h2{margin:32px 0 10px;font-size:19px}
.sub{color:#5b6475;margin-bottom:16px}
.verdict{display:inline-block;padding:6px 16px;border-radius:6px;font-weight:700;color:#fff;
font-size:18px;margin:8px 0 12px}
.pass{background:#1f8a4c}.fail{background:#c62828}.none{background:#6b7280}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0001;margin-bottom:8px}
th,td{padding:5px 10px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th{background:#eef1f5;font-weight:600}
td:first-child,th:first-child{text-align:left}
td.ok{color:#1f8a4c;font-weight:600}td.bad{color:#c62828;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.facts dt{color:#5b6475}dl.facts dd{margin:0}
.chart{background:#fff;box-shadow:0 1px 2px #0001;margin:12px 0;padding:4px}
.empty{color:#5b6475;font-style:italic}
ul.notes{margin:4px 0}
.scroll{overflow-x:auto}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ms(seconds: float) -> str:
    return format_latency(seconds)


class _Cell(str):
    """A table cell that is already HTML (``<td …>…</td>``)."""

    __slots__ = ()


def _status(ok: bool, text: str) -> _Cell:
    return _Cell(f'<td class="{"ok" if ok else "bad"}">{_e(text)}</td>')


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(c if isinstance(c, _Cell) else f"<td>{_e(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _verdict(result: RunResult) -> str:
    if not result.thresholds:
        return '<div class="verdict none">NO THRESHOLDS</div>'
    failed = sum(not t.passed for t in result.thresholds)
    if failed:
        text = f"FAILED: {failed} of {len(result.thresholds)} thresholds"
        return f'<div class="verdict fail">{text}</div>'
    return f'<div class="verdict pass">PASSED: all {len(result.thresholds)} thresholds</div>'


def _facts(result: RunResult) -> str:
    meta = result.meta
    engines = ", ".join(f"{g}: {e}" for g, e in meta.engines.items())
    facts = [
        ("Target", meta.target),
        ("Started", meta.started_at),
        ("Ended", meta.ended_at),
        ("Duration", _ms(meta.duration_s)),
        ("Seed", "" if meta.seed is None else str(meta.seed)),
        ("Engines", engines),
        ("fleetsim", meta.fleetsim_version),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v)
    notes = ""
    if meta.notes:
        notes = '<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in meta.notes) + "</ul>"
    return f'<dl class="facts">{items}</dl>{notes}'


def _thresholds(result: RunResult) -> str:
    if not result.thresholds:
        return '<p class="empty">The scenario sets no thresholds.</p>'
    rows = []
    for t in result.thresholds:
        limit = format_metric_value(t.limit, MetricKind(t.kind))
        verdict = _status(t.passed, "pass" if t.passed else "FAIL")
        rows.append(
            [t.expression, format_value(t.observed, t.kind), f"{t.operator} {limit}", verdict]
        )
    return _table(["Threshold", "Observed", "Limit", "Result"], rows)


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2%}" if whole else "–"


def _groups(result: RunResult) -> str:
    rows = []
    for g in result.metrics.groups:
        devices = g.counters.get(Counter.DEVICES, 0)
        connected = g.counters.get(Counter.DEVICES_CONNECTED, 0)
        failed = g.counters.get(Counter.DEVICES_FAILED, 0)
        connect = g.phases.get(Phase.CONNECT)
        rows.append(
            [
                g.name,
                result.meta.engines.get(g.name, ""),
                str(devices),
                f"{connected:g} ({_ratio(connected, devices)})",
                f"{failed} ({_ratio(failed, devices)})",
                _ms(connect.stats.p50) if connect and connect.stats.count else "–",
                _ms(connect.stats.p99) if connect and connect.stats.count else "–",
                str(g.counters.get(Counter.MESSAGES_SENT, 0)),
                str(g.counters.get(Counter.MESSAGES_RECEIVED, 0)),
                _status(g.failure_total == 0, str(g.failure_total)),
                str(g.expected_total),
            ]
        )
    headers = [
        "Group",
        "Engine",
        "Devices",
        "Connected",
        "Gave up",
        "Connect p50",
        "Connect p99",
        "Sent",
        "Received",
        "Failures",
        "Expected drops",
    ]
    return _table(headers, rows)


def _phases(result: RunResult) -> str:
    rows = []
    scopes = [("all groups", result.metrics.phases)]
    if len(result.metrics.groups) > 1:
        scopes += [(g.name, g.phases) for g in result.metrics.groups]
    for scope, phases in scopes:
        for phase, r in phases.items():
            s = r.stats
            rows.append(
                [
                    scope,
                    phase,
                    str(s.count),
                    _ms(s.min),
                    _ms(s.p50),
                    _ms(s.p90),
                    _ms(s.p99),
                    _ms(s.p999),
                    _ms(s.max),
                    _ms(s.mean),
                ]
            )
    if not rows:
        return '<p class="empty">No phase completed.</p>'
    return _table(
        ["Scope", "Phase", "Count", "min", "p50", "p90", "p99", "p99.9", "max", "mean"], rows
    )


def _chart(figure: object, div_id: str, empty: str) -> str:
    if figure is None:
        return f'<p class="empty">{_e(empty)}</p>'
    body = pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        default_height="380px",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="chart">{body}</div>'


def _charts(result: RunResult) -> str:
    connect = _chart(charts.connect_chart(result), "chart-connect", "No connects were recorded.")
    latency = _chart(charts.latency_chart(result), "chart-latency", "No phase completed.")
    curve = charts.latency_distribution_chart(result)
    if curve is not None:
        latency += _chart(curve, "chart-latency-distribution", "")
    failures = _chart(
        charts.failures_chart(result), "chart-failures", "No failures and no expected drops."
    )
    over_time = charts.failures_over_time_chart(result)
    if over_time is not None:
        failures += _chart(over_time, "chart-failures-time", "")
    messages = _chart(
        charts.messages_chart(result), "chart-messages", "No messages were sent or received."
    )
    return (
        f"<h2>Connections</h2>{connect}"
        f"<h2>Latency</h2>{latency}{_phases(result)}"
        f"<h2>Failures</h2>{failures}"
        f"<h2>Messages</h2>{messages}"
    )


def render_html_report(result: RunResult) -> str:
    """The complete HTML page."""
    meta = result.meta
    description = f'<div class="sub">{_e(meta.description)}</div>' if meta.description else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fleetsim: {_e(meta.scenario)}</title>"
        f"<style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body><main>"
        f"<h1>fleetsim run: {_e(meta.scenario)}</h1>{description}"
        f"{_verdict(result)}{_facts(result)}"
        f"<h2>Thresholds</h2>{_thresholds(result)}"
        f"<h2>Groups</h2>{_groups(result)}"
        f"{_charts(result)}"
        "</main></body></html>\n"
    )


def write_html_report(result: RunResult, path: Path) -> None:
    """Write the HTML report to ``path``."""
    write_text_atomic(path, render_html_report(result))
