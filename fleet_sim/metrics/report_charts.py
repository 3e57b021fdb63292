"""The HTML report's charts, as plotly figures built from a :class:`RunResult`.

Each function returns a figure, or None when the run has nothing to show for it (no
messages, no failures), so the page can say so in words instead of drawing an empty frame.
Latencies are shown in milliseconds (people read "p99 180 ms" faster than "0.18 s"); time
series are per second of the run, one trace per group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fleet_sim.metrics.failures import describe_failure
from fleet_sim.metrics.names import Counter, Gauge, Phase
from fleet_sim.metrics.snapshot import GroupResult, PhaseResult, RunResult

__all__ = [
    "connect_chart",
    "failures_chart",
    "failures_over_time_chart",
    "latency_chart",
    "latency_distribution_chart",
    "messages_chart",
]

#: Percentiles plotted on the latency-distribution curve.
_CURVE = (0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999)
_STATS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
_TEMPLATE = "plotly_white"
#: One colour per group, the same in every chart (plotly's default qualitative palette).
_PALETTE = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)
_HEIGHT = 380


def _layout(fig: go.Figure, title: str, **extra: object) -> go.Figure:
    layout: dict[str, object] = {
        "title": {"text": title, "x": 0.01},
        "template": _TEMPLATE,
        "height": _HEIGHT,
        "margin": {"l": 60, "r": 30, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.18},
        "hovermode": "x unified",
    }
    fig.update_layout(**(layout | extra))
    return fig


def _colors(groups: Sequence[GroupResult]) -> dict[str, str]:
    return {g.name: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}


def _seconds(groups: Sequence[GroupResult]) -> list[int]:
    return list(range(max((g.timeline.seconds for g in groups), default=0)))


def connect_chart(result: RunResult) -> go.Figure | None:
    """Successful connects per second (bars) and connected devices (lines), per group."""
    groups = result.metrics.groups
    x = _seconds(groups)
    if not x:
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colors = _colors(groups)
    for group in groups:
        color = colors[group.name]
        connects = group.timeline.completed.get(Phase.CONNECT)
        if connects is not None:
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=list(connects),
                    name=f"{group.name} connects/s",
                    marker={"color": color},
                    opacity=0.55,
                ),
                secondary_y=False,
            )
        connected = group.timeline.gauges.get(Gauge.CONNECTED)
        if connected is not None:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(connected),
                    name=f"{group.name} connected",
                    mode="lines",
                    line={"width": 2.5, "color": color},
                ),
                secondary_y=True,
            )
    if not fig.data:
        return None
    fig.update_xaxes(title_text="seconds since start")
    fig.update_yaxes(title_text="connects / s", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="connected devices", secondary_y=True, rangemode="tozero")
    return _layout(fig, "Connect rate and connected devices", barmode="stack")


def _latency_rows(result: RunResult) -> list[tuple[str, str, PhaseResult]]:
    groups = result.metrics.groups
    if len(groups) <= 1:
        return [("all", phase, r) for phase, r in result.metrics.phases.items()]
    return [(g.name, phase, r) for g in groups for phase, r in g.phases.items()]


def latency_chart(result: RunResult) -> go.Figure | None:
    """p50 / p90 / p99 / p99.9 per phase (and per group when there are several), in ms."""
    rows = [row for row in _latency_rows(result) if row[2].stats.count > 0]
    if not rows:
        return None
    several = len(result.metrics.groups) > 1
    x: list[object] = (
        [[g for g, _, _ in rows], [p for _, p, _ in rows]] if several else [p for _, p, _ in rows]
    )
    fig = go.Figure()
    for label, _ in _STATS:
        values = [r.stats.as_dict()[label] * 1000 for _, _, r in rows]
        fig.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=label,
                customdata=[
                    [r.stats.count, r.stats.min * 1000, r.stats.mean * 1000, r.stats.max * 1000]
                    for _, _, r in rows
                ],
                hovertemplate=(
                    f"{label} %{{y:.3f}} ms<br>n=%{{customdata[0]}} min=%{{customdata[1]:.3f}}"
                    " mean=%{customdata[2]:.3f} max=%{customdata[3]:.3f} ms<extra></extra>"
                ),
            )
        )
    fig.update_yaxes(title_text="latency (ms)", rangemode="tozero")
    title = "Latency percentiles per phase" + (" and group" if several else "")
    return _layout(fig, title, barmode="group", hovermode="closest")


def latency_distribution_chart(result: RunResult) -> go.Figure | None:
    """Latency by percentile (HdrHistogram's classic plot), one curve per phase, all groups."""
    fig = go.Figure()
    for phase, phase_result in result.metrics.phases.items():
        if phase_result.stats.count == 0:
            continue
        histogram = phase_result.decode()
        points = [q for q in _CURVE if q > 0]
        values = histogram.percentiles(points)
        xs = [1.0] + [1 / (1 - q / 100) for q in points]
        ys = [histogram.min * 1000] + [values[q] * 1000 for q in points]
        labels = ["min"] + [f"p{q:g}" for q in points]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=phase,
                text=labels,
                hovertemplate="%{text}: %{y:.3f} ms<extra>" + phase + "</extra>",
            )
        )
    if not fig.data:
        return None
    fig.update_xaxes(
        type="log",
        title_text="percentile",
        tickvals=[1, 2, 10, 100, 1000, 10000, 100000],
        ticktext=["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"],
    )
    fig.update_yaxes(title_text="latency (ms)", rangemode="tozero")
    return _layout(fig, "Latency by percentile (all groups)", hovermode="closest")


def _tally(groups: Sequence[GroupResult], expected: bool) -> dict[str, dict[str, int]]:
    by_name: dict[str, dict[str, int]] = {}
    for group in groups:
        for f in group.expected_drops if expected else group.failures:
            per_group = by_name.setdefault(f.failure, {})
            per_group[group.name] = per_group.get(group.name, 0) + f.count
    return by_name


def failures_chart(result: RunResult) -> go.Figure | None:
    """Failures by kind (stacked by group), expected drops shown apart, hatched."""
    groups = result.metrics.groups
    real, expected = _tally(groups, False), _tally(groups, True)
    if not real and not expected:
        return None
    names = sorted(real, key=lambda n: sum(real[n].values()))
    expected_names = sorted(expected, key=lambda n: sum(expected[n].values()))
    fig = go.Figure()
    colors = _colors(groups)
    for group in groups:
        if any(group.name in real[n] for n in names):
            fig.add_trace(_failure_bar(group.name, colors[group.name], names, real, ""))
    for group in groups:
        if any(group.name in expected[n] for n in expected_names):
            fig.add_trace(
                _failure_bar(
                    group.name, colors[group.name], expected_names, expected, " (expected)"
                )
            )
    fig.update_xaxes(title_text="count", rangemode="tozero")
    rows = len(names) + len(expected_names)
    return _layout(
        fig,
        "Failures by kind",
        barmode="stack",
        hovermode="closest",
        height=max(_HEIGHT, 120 + 28 * rows),
    )


def _failure_bar(
    group: str,
    color: str,
    names: Sequence[str],
    tally: Mapping[str, Mapping[str, int]],
    suffix: str,
) -> go.Bar:
    labels = [f"{n}{suffix}" for n in names]
    return go.Bar(
        y=labels,
        x=[tally[n].get(group, 0) for n in names],
        orientation="h",
        name=f"{group}{suffix}",
        customdata=[describe_failure(n) for n in names],
        hovertemplate="%{y}: %{x}<br>%{customdata}<extra>" + group + "</extra>",
        marker={"color": color, "pattern": {"shape": "/" if suffix else ""}},
    )


def failures_over_time_chart(result: RunResult) -> go.Figure | None:
    """Real failures per second by kind, all groups together."""
    groups = result.metrics.groups
    x = _seconds(groups)
    totals: dict[str, list[int]] = {}
    for group in groups:
        for name, series in group.timeline.failures.items():
            column = totals.setdefault(name, [0] * len(x))
            for i, n in enumerate(series):
                column[i] += n
    if not totals:
        return None
    fig = go.Figure()
    for name, column in sorted(totals.items()):
        fig.add_trace(go.Bar(x=x, y=column, name=name))
    fig.update_xaxes(title_text="seconds since start")
    fig.update_yaxes(title_text="failures / s", rangemode="tozero")
    return _layout(fig, "Failures over time", barmode="stack")


def messages_chart(result: RunResult) -> go.Figure | None:
    """Messages published and received per second, per group."""
    groups = result.metrics.groups
    x = _seconds(groups)
    fig = go.Figure()
    colors = _colors(groups)
    for group in groups:
        for counter, label, dash in (
            (Counter.MESSAGES_SENT, "sent/s", "solid"),
            (Counter.MESSAGES_RECEIVED, "received/s", "dot"),
        ):
            series = group.timeline.counters.get(counter)
            if series is not None and any(series):
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=list(series),
                        name=f"{group.name} {label}",
                        mode="lines",
                        line={"color": colors[group.name], "dash": dash},
                    )
                )
    if not fig.data:
        return None
    fig.update_xaxes(title_text="seconds since start")
    fig.update_yaxes(title_text="messages / s", rangemode="tozero")
    return _layout(fig, "Messages over time")
