"""HTML report: self-contained (no network references), charts carry the run's data."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.metrics import MetricsRecorder, RunMeta, RunResult, build_result
from fleet_sim.metrics.report_html import render_html_report, write_html_report
from tests.unit.metrics.sample import sample_result


class Tags(HTMLParser):
    """Every start tag with its attributes (script contents are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.fixture(scope="module")
def result() -> RunResult:
    return sample_result()


@pytest.fixture(scope="module")
def page(result: RunResult) -> str:
    return render_html_report(result)


def figure_data(page: str, div_id: str) -> list[dict[str, Any]]:
    """The traces plotly draws into ``div_id``."""
    match = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",\s*', page)
    assert match is not None, div_id
    data, _ = json.JSONDecoder().raw_decode(page, match.end())
    assert isinstance(data, list)
    return data


def test_no_network_references(page: str) -> None:
    parser = Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        for name in ("src", "href", "data", "srcset", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value), (tag, name, value)
        assert not (tag == "script" and "src" in attrs), attrs
        assert tag not in ("link", "iframe", "img", "object", "embed")
    assert not re.search(r"<script[^>]+src\s*=", page)
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?https?:", page)
    assert "@import" not in page


def test_plotly_is_embedded_inline_once(page: str) -> None:
    parser = Tags()
    parser.feed(page)
    big = [s for s in parser.scripts if len(s) > 1_000_000]
    assert len(big) == 1
    assert "plotly.js" in big[0][:2000]  # the bundle's licence banner


def test_header_verdict_thresholds_and_groups(page: str) -> None:
    assert "<title>fleetsim: demo</title>" in page
    assert "FAILED: 2 of 5 thresholds" in page
    assert "two groups &lt;b&gt;escaped&lt;/b&gt;" in page
    assert "local emulator 127.0.0.1:8883" in page
    assert "awscrt engine reports connect as one phase" in page
    assert "<td>connect.p99 &lt; 2s</td>" in page
    assert "<td>failure_ratio &lt; 0.1%</td><td>1.667%</td>" in page
    assert "<td>sensors</td><td>native</td><td>100</td><td>98 (98.00%)</td>" in page


def test_connect_chart_carries_the_per_second_series(result: RunResult, page: str) -> None:
    traces = {t["name"]: t for t in figure_data(page, "chart-connect")}
    sensors = result.metrics.group("sensors").timeline
    assert traces["sensors connects/s"]["y"] == list(sensors.completed["connect"])
    assert traces["sensors connected"]["y"] == list(sensors.gauges["connected"])
    assert traces["gateways connected"]["y"][-1] == 20


def test_latency_chart_carries_percentiles_per_phase_and_group(
    result: RunResult, page: str
) -> None:
    traces = {t["name"]: t for t in figure_data(page, "chart-latency")}
    assert set(traces) == {"p50", "p90", "p99", "p99.9"}
    groups, phases = traces["p99"]["x"]
    expected = [
        result.metrics.group(g).phases[p].stats.p99 * 1000
        for g, p in zip(groups, phases, strict=True)
    ]
    assert traces["p99"]["y"] == pytest.approx(expected)
    assert ("gateways", "connect") in set(zip(groups, phases, strict=True))
    curve = {t["name"] for t in figure_data(page, "chart-latency-distribution")}
    assert curve == set(result.metrics.phases)


def test_failures_chart_separates_expected_drops(page: str) -> None:
    traces = figure_data(page, "chart-failures")
    real = {t["name"]: dict(zip(t["y"], t["x"], strict=True)) for t in traces}
    assert real["sensors"]["connack_refused:135"] == 2
    assert real["gateways"]["publish_timeout"] == 1
    assert real["sensors (expected)"] == {"closed_before_connack (expected)": 100}


def test_messages_chart(page: str) -> None:
    names = {t["name"] for t in figure_data(page, "chart-messages")}
    assert names == {
        "sensors sent/s",
        "sensors received/s",
        "gateways sent/s",
        "gateways received/s",
    }


def test_an_empty_run_still_renders(tmp_path: Path) -> None:
    empty = build_result(
        MetricsRecorder(start=0.0, groups=("g",)).snapshot(3.0),
        RunMeta(scenario="empty", duration_s=3.0),
    )
    path = tmp_path / "report.html"
    write_html_report(empty, path)
    page = path.read_text(encoding="utf-8")
    assert "NO THRESHOLDS" in page
    assert "No phase completed." in page
    assert "No failures and no expected drops." in page
    assert "No messages were sent or received." in page
