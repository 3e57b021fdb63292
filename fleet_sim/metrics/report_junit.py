"""The JUnit XML report, for CI systems: one test case per threshold and one per group.

Layout (what Jenkins, GitLab, GitHub test reporters and pytest's own ``junitxml`` produce)::

    <testsuites name="fleetsim" tests failures errors time>
      <testsuite name="<scenario>.thresholds" …>       one <testcase> per threshold; a
                                                       <failure> gives observed vs limit
      <testsuite name="<scenario>.groups" …>           one <testcase> per device group; a
                                                       <failure> when it had real failures
                                                       (expected drops never fail it)

The suite of thresholds is left out when the scenario has none. Built with
:mod:`xml.etree.ElementTree`, so every attribute and text is escaped; control characters XML
1.0 forbids are removed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter as Tally
from pathlib import Path

from fleet_sim.metrics.failures import describe_failure
from fleet_sim.metrics.formatting import format_latency, format_value
from fleet_sim.metrics.names import Counter
from fleet_sim.metrics.report_json import write_text_atomic
from fleet_sim.metrics.snapshot import GroupResult, RunResult, ThresholdOutcome
from fleet_sim.scenario.thresholds import MetricKind, format_metric_value

__all__ = ["render_junit_report", "write_junit_report"]

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _FORBIDDEN.sub("", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(iso: str) -> str:
    """JUnit's timestamp: ISO 8601 without zone or fraction (``2024-05-01T12:00:00``)."""
    return iso[:19] if len(iso) >= 19 else iso


def _threshold_case(parent: ET.Element, outcome: ThresholdOutcome, classname: str) -> bool:
    case = ET.SubElement(
        parent,
        "testcase",
        {"classname": classname, "name": _clean(outcome.expression), "time": "0.000"},
    )
    limit = format_metric_value(outcome.limit, MetricKind(outcome.kind))
    observed = format_value(outcome.observed, outcome.kind)
    if outcome.passed:
        ET.SubElement(case, "system-out").text = f"{outcome.key} = {observed}"
        return False
    message = f"{outcome.key} = {observed}, limit {outcome.operator} {limit}"
    failure = ET.SubElement(case, "failure", {"message": _clean(message), "type": "threshold"})
    failure.text = _clean(
        f"threshold: {outcome.expression}\nobserved:  {observed}\n"
        f"limit:     {outcome.operator} {limit}\n"
    )
    return True


def _group_summary(group: GroupResult) -> str:
    counters = group.counters
    lines = [
        f"devices: {counters.get(Counter.DEVICES, 0)}",
        f"connected at least once: {counters.get(Counter.DEVICES_CONNECTED, 0)}",
        f"devices failed: {counters.get(Counter.DEVICES_FAILED, 0)}",
        f"messages sent: {counters.get(Counter.MESSAGES_SENT, 0)}",
        f"messages received: {counters.get(Counter.MESSAGES_RECEIVED, 0)}",
        f"real failures: {group.failure_total}",
        f"expected drops: {group.expected_total}",
    ]
    for phase, result in group.phases.items():
        stats = result.stats
        lines.append(
            f"{phase}: n={stats.count} p50={format_latency(stats.p50)} "
            f"p99={format_latency(stats.p99)}"
        )
    lines.extend(f"expected drop {d.phase}/{d.failure}: {d.count}" for d in group.expected_drops)
    return "\n".join(lines) + "\n"


def _group_case(parent: ET.Element, group: GroupResult, classname: str, time: str) -> bool:
    case = ET.SubElement(
        parent, "testcase", {"classname": classname, "name": _clean(group.name), "time": time}
    )
    failed = group.failure_total > 0
    if failed:
        by_name = Tally[str]()
        for f in group.failures:
            by_name[f.failure] += f.count
        kinds = ", ".join(f"{name} ×{n}" for name, n in by_name.most_common())
        failure = ET.SubElement(
            case,
            "failure",
            {"message": _clean(f"{group.failure_total} failures: {kinds}"), "type": "failures"},
        )
        failure.text = _clean(
            "".join(
                f"{f.phase}: {f.failure} ×{f.count} ({describe_failure(f.failure)})\n"
                for f in group.failures
            )
        )
    ET.SubElement(case, "system-out").text = _clean(_group_summary(group))
    return failed


def _suite(root: ET.Element, name: str, result: RunResult) -> ET.Element:
    return ET.SubElement(
        root,
        "testsuite",
        {
            "name": _clean(name),
            "timestamp": _timestamp(result.meta.started_at),
            "hostname": "fleetsim",
        },
    )


def _close_suite(suite: ET.Element, tests: int, failures: int, time: str) -> None:
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", time)


def render_junit_report(result: RunResult) -> str:
    """The JUnit XML document (UTF-8 text with an XML declaration)."""
    scenario = result.meta.scenario or "run"
    time = _seconds(result.meta.duration_s)
    root = ET.Element("testsuites", {"name": "fleetsim"})
    total_tests = total_failures = 0
    if result.thresholds:
        suite = _suite(root, f"{scenario}.thresholds", result)
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("scenario", scenario),
            ("seed", "" if result.meta.seed is None else str(result.meta.seed)),
            ("target", result.meta.target),
            ("started_at", result.meta.started_at),
        ):
            ET.SubElement(props, "property", {"name": key, "value": _clean(value)})
        classname = f"fleetsim.{scenario}.thresholds"
        failed = sum(_threshold_case(suite, o, classname) for o in result.thresholds)
        _close_suite(suite, len(result.thresholds), failed, "0.000")
        total_tests += len(result.thresholds)
        total_failures += failed
    groups = result.metrics.groups
    suite = _suite(root, f"{scenario}.groups", result)
    classname = f"fleetsim.{scenario}.groups"
    failed = sum(_group_case(suite, g, classname, time) for g in groups)
    _close_suite(suite, len(groups), failed, time)
    total_tests += len(groups)
    total_failures += failed
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    root.set("time", time)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_junit_report(result: RunResult, path: Path) -> None:
    """Write the JUnit XML report to ``path``."""
    write_text_atomic(path, render_junit_report(result))
