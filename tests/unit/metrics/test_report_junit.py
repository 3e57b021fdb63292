"""JUnit XML: one case per threshold and per group, parsable, failures where they belong."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from fleet_sim.metrics import MetricsRecorder, RunMeta, build_result
from fleet_sim.metrics.report_junit import render_junit_report, write_junit_report
from fleet_sim.scenario.thresholds import parse_threshold
from tests.unit.metrics.sample import sample_result


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))  # noqa: S314 (our own output)


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in suite.findall("testcase")}


def test_structure_and_counts() -> None:
    text = render_junit_report(sample_result())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = parse(text)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.attrib["name"] for s in suites] == ["demo.thresholds", "demo.groups"]
    for suite in suites:
        found = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(found)
        assert int(suite.attrib["failures"]) == sum(c.find("failure") is not None for c in found)
        assert suite.attrib["errors"] == "0"
        assert suite.attrib["timestamp"] == "2024-05-01T12:00:00"
        for case in found:
            assert case.attrib["classname"].startswith("fleetsim.demo.")
            float(case.attrib["time"])
    assert int(root.attrib["tests"]) == 5 + 2
    assert int(root.attrib["failures"]) == sum(int(s.attrib["failures"]) for s in suites)
    assert float(root.attrib["time"]) == 20.0


def test_one_case_per_threshold_with_observed_and_limit() -> None:
    root = parse(render_junit_report(sample_result()))
    thresholds = cases(root.findall("testsuite")[0])
    assert list(thresholds) == [
        "connect.p99 < 2s",
        "failure_ratio < 0.1%",
        "connected_ratio >= 95%",
        "provision.p50 <= 500ms",
        "subscribe.p99 < 1s",
    ]
    assert thresholds["connect.p99 < 2s"].find("failure") is None
    failure = thresholds["failure_ratio < 0.1%"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "failure_ratio = 1.667%, limit < 0.1%"
    assert failure.attrib["type"] == "threshold"
    assert "observed:  1.667%" in (failure.text or "")
    missing = thresholds["subscribe.p99 < 1s"].find("failure")
    assert missing is not None
    assert "no data" in missing.attrib["message"]
    properties = {
        p.attrib["name"]: p.attrib["value"] for p in root.findall("testsuite")[0].iter("property")
    }
    assert properties["seed"] == "42"


def test_one_case_per_group_failing_on_real_failures_only() -> None:
    recorder = MetricsRecorder(start=0.0, groups=("jitp", "broken"))
    recorder.count("jitp", "devices", now=0.1)
    recorder.failure("jitp", "connect", "closed_before_connack", now=0.1, expected=True)
    recorder.phase("jitp", "connect", 0.2, now=0.5)
    recorder.failure("broken", "connect", "tls_cert_rejected", now=0.2)
    recorder.failure("broken", "connect", "tls_cert_rejected", now=0.3)
    recorder.failure("broken", "publish", "puback_failure:135", now=0.4)
    result = build_result(recorder.snapshot(1.0), RunMeta(scenario="s", duration_s=1.0))
    root = parse(render_junit_report(result))
    assert [s.attrib["name"] for s in root.findall("testsuite")] == ["s.groups"]  # no thresholds
    groups = cases(root.findall("testsuite")[0])
    assert groups["jitp"].find("failure") is None  # the expected drop does not fail it
    out = groups["jitp"].find("system-out")
    assert out is not None
    assert "expected drop connect/closed_before_connack: 1" in (out.text or "")
    failure = groups["broken"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "3 failures: tls_cert_rejected ×2, puback_failure:135 ×1"
    assert "server rejected the device certificate" in (failure.text or "")
    assert "PUBACK with a failure code: 0x87 not authorized" in (failure.text or "")


def test_text_is_escaped_and_control_characters_removed() -> None:
    meta = RunMeta(scenario='a<b>&"c"', target="bell\x07here", duration_s=1.0)
    result = build_result(
        MetricsRecorder(start=0.0, groups=("g",)).snapshot(1.0),
        meta,
        [parse_threshold("failures < 1")],
    )
    text = render_junit_report(result)
    root = parse(text)
    suite = root.findall("testsuite")[0]
    assert suite.attrib["name"] == 'a<b>&"c".thresholds'
    target = next(p for p in suite.iter("property") if p.attrib["name"] == "target")
    assert target.attrib["value"] == "bellhere"


def test_write_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "junit.xml"
    write_junit_report(sample_result(), path)
    assert parse(path.read_text(encoding="utf-8")).tag == "testsuites"
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]  # no temporary left
