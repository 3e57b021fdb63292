"""``fleetsim run`` end to end: the CLI as a subprocess against the embedded emulator.

Every run of this module starts at once, as soon as the first test needs one (each CLI
process spends seconds importing and setting up, little of it on the CPU), and each test then
waits for its own run and checks its exit code, its output and its reports. Interrupts are
sent by a watcher thread at the right moment of a run (after "running …" appears, or while
setup is still under way), whenever the test that checks them gets to run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fleet_sim.metrics.run_schema import RUN_SCHEMA
from fleet_sim.metrics.snapshot import SCHEMA, RunResult

pytestmark = pytest.mark.timeout(120)

CONNECT_PHASES = ("tcp", "tls", "connack", "connect")

_PUBLISH = """
      - type: publish
        topic: "dt/{group}/{thing_name}/telemetry"
        payload: '{{"seq": {seq}, "t": {random.uniform(18, 25):.1f}}}'
        qos: 1
        interval: 400ms"""

_SUBSCRIBE = """
      - type: subscribe
        filters: ["cmd/{thing_name}/#", "dt/{group}/{thing_name}/#"]
        qos: 1"""


def _scenario(
    name: str,
    groups: str,
    *,
    duration: str = "2s",
    thresholds: tuple[str, ...] = ("connect.p99 < 5s", "failure_ratio < 1%"),
) -> str:
    listed = "".join(f"\n  - {t}" for t in thresholds)
    return f"""version: 1
name: {name}
target: local
fleet:{groups}
run:
  duration: {duration}
  seed: 7
  graceful_stop: 3s
thresholds:{listed}
"""


def _group(
    name: str, count: int, *, protocol: str = "mqtt5", behaviours: str = "", extra: str = ""
) -> str:
    return f"""
  - name: {name}
    count: {count}
    arrival: 50/s
    connect:
      protocol: {protocol}
      retry: {{max_attempts: 3, base: 100ms, cap: 1s}}{extra}
    behaviours:{behaviours or " [{type: idle}]"}"""


#: Allows the device's own connect and any topic, but denies publishing under dt/. The
#: Condition keeps the load-time policy check out of it (it cannot judge conditions).
_DENY_DT = """
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: iot:Connect
          Resource: "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"
        - Effect: Allow
          Action: [iot:Publish, iot:Receive, iot:Subscribe]
          Resource: "*"
        - Effect: Deny
          Action: iot:Publish
          Resource: "arn:aws:iot:*:*:topic/dt/*"
          Condition: {StringLike: {"iot:ClientId": "*"}}"""

_INVALID = """version: 1
name: broken
target: local
fleet:
  - name: sensors
    count: 2
    connect:
      retry:
        max_attempts: 3
        jitter: fulll
run:
  duration: 2s
"""
INVALID_LINE = _INVALID.splitlines().index("        jitter: fulll") + 1

#: A connect.p99 limit no TLS connect can meet: 1 µs, written in seconds.
IMPOSSIBLE_S = "0.000001"

PASS_THRESHOLDS = ("connect.p99 < 5s", "failure_ratio < 1%", "messages_sent > 0")

#: Each CLI process spends ~2.5 s of CPU (imports, emulator, setup), so cases share runs: the
#: passing run has an MQTT 3.1.1 group, the failing run's devices publish where their policy
#: denies it.
SCENARIOS: dict[str, str] = {
    "pass": _scenario(
        "cli-pass",
        _group("sensors", 8, behaviours=_PUBLISH + _SUBSCRIBE)
        + _group("gauges", 4)
        + _group("legacy", 5, protocol="mqtt311", behaviours=_PUBLISH + _SUBSCRIBE),
        thresholds=PASS_THRESHOLDS,
    ),
    "fail": _scenario(
        "cli-fail",
        _group("denied", 5, behaviours=_PUBLISH, extra=_DENY_DT),
        thresholds=(f"connect.p99 < {IMPOSSIBLE_S}", "failure_ratio < 1%"),
    ),
    "invalid": _INVALID,
    "interrupt": _scenario("cli-interrupt", _group("sensors", 10), duration="30s"),
    "setup-interrupt": _scenario(
        "cli-setup-interrupt", _group("sensors", 80).replace("50/s", "200/s"), duration="6s"
    ),
}

EXTRA_ARGS: dict[str, tuple[str, ...]] = {"pass": ("--seed", "4242")}


@dataclass
class CliRun:
    """One ``fleetsim run`` subprocess and its files."""

    name: str
    directory: Path
    process: subprocess.Popen[bytes]
    interrupted_at: float | None = None
    watchers: list[threading.Thread] = field(default_factory=list)

    @property
    def scenario_file(self) -> Path:
        return self.directory / f"{self.name}.yaml"

    @property
    def certs_dir(self) -> Path:
        return self.directory / "certs"

    def path(self, kind: str) -> Path:
        return self.directory / f"out.{kind}"

    def stderr(self) -> str:
        return (self.directory / "stderr.txt").read_text(errors="replace")

    def stdout(self) -> str:
        return (self.directory / "stdout.txt").read_text(errors="replace")

    def wait(self, timeout: float = 100) -> int:
        code = self.process.wait(timeout=timeout)
        for watcher in self.watchers:
            watcher.join(timeout=5)
        return code

    def junit(self) -> ET.Element:
        return ET.parse(self.path("xml")).getroot()  # noqa: S314 (our own output)

    def report(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path("json").read_text())
        return loaded

    def interrupt_when(self, ready: Callable[[], bool], *, delay: float) -> None:
        """SIGINT the run ``delay`` seconds after ``ready()`` first holds (a watcher thread)."""

        def watch() -> None:
            while self.process.poll() is None:
                if ready():
                    time.sleep(delay)
                    if self.process.poll() is None:
                        self.interrupted_at = time.monotonic()
                        self.process.send_signal(signal.SIGINT)
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=watch, name=f"interrupt-{self.name}", daemon=True)
        self.watchers.append(thread)
        thread.start()


def _start(base: Path, name: str) -> CliRun:
    directory = base / name
    directory.mkdir()
    (directory / f"{name}.yaml").write_text(SCENARIOS[name])
    command = [
        sys.executable,
        "-m",
        "fleet_sim",
        "run",
        f"{name}.yaml",
        "--no-progress",
        "--json",
        "out.json",
        "--junit",
        "out.xml",
        "--html",
        "out.html",
        "--certs-dir",
        str(directory / "certs"),
        *EXTRA_ARGS.get(name, ()),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with (directory / "stdout.txt").open("wb") as out, (directory / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(command, cwd=directory, stdout=out, stderr=err, env=env)
    return CliRun(name, directory, process)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CliRun]]:
    base = tmp_path_factory.mktemp("fleetsim-run")
    started = {name: _start(base, name) for name in SCENARIOS}
    interrupt = started["interrupt"]
    interrupt.interrupt_when(lambda: "running cli-interrupt" in interrupt.stderr(), delay=1.0)
    during_setup = started["setup-interrupt"]
    fleet_ca = during_setup.certs_dir / "fleet-ca" / "fleet-ca.pem"
    during_setup.interrupt_when(fleet_ca.exists, delay=0.0)
    yield started
    for run in started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(timeout=10)


def _finished(runs: dict[str, CliRun], name: str) -> tuple[int, CliRun]:
    run = runs[name]
    code = run.wait()
    assert "Traceback" not in run.stderr(), run.stderr()
    return code, run


def _check_stats(stats: dict[str, Any], where: str) -> None:
    assert stats["count"] > 0, where
    ordered = [stats[k] for k in ("min", "p50", "p90", "p99", "p99.9", "max")]
    assert ordered == sorted(ordered), (where, ordered)
    assert 0 < stats["min"] <= stats["mean"] <= stats["max"] < 5, where


# --------------------------------------------------------------------------- a passing run

GROUPS = {"sensors": 8, "gauges": 4, "legacy": 5}
DEVICES = sum(GROUPS.values())
SUBSCRIBERS = GROUPS["sensors"] + GROUPS["legacy"]


def test_a_passing_run_exits_0_with_a_complete_json_report(runs):
    code, run = _finished(runs, "pass")
    assert code == 0, run.stderr()
    report = run.report()
    jsonschema.validate(report, RUN_SCHEMA)
    assert report["schema"] == SCHEMA == "fleetsim.run/1"
    assert report["passed"] is True
    result = RunResult.from_json(run.path("json").read_text())  # reads back
    assert result.meta.scenario == "cli-pass"
    assert result.meta.seed == 4242  # --seed overrides the scenario's 7
    assert result.meta.engines == dict.fromkeys(GROUPS, "native")
    assert 1.9 < result.meta.duration_s < 4
    assert not any(note.startswith("stopped early") for note in result.meta.notes)

    values = report["values"]
    assert values["devices"] == DEVICES
    assert values["devices_connected"] == DEVICES
    assert (values["failures"], values["devices_failed"], values["reconnects"]) == (0, 0, 0)
    assert values["messages_sent"] > 0
    assert values["messages_received"] >= values["messages_sent"] * 0.8  # own telemetry echoes
    assert [t["passed"] for t in report["thresholds"]] == [True, True, True]
    assert [t["expression"] for t in report["thresholds"]] == list(PASS_THRESHOLDS)


def test_a_passing_run_reports_every_phase_with_sane_stats(runs):
    code, run = _finished(runs, "pass")
    assert code == 0
    report = run.report()
    phases = report["metrics"]["phases"]
    assert {*CONNECT_PHASES, "subscribe", "publish"} <= set(phases)
    for name, stats in phases.items():
        _check_stats(stats, name)
    for name in CONNECT_PHASES:  # one connect per device, no reconnects
        assert phases[name]["count"] == DEVICES, name
    assert phases["subscribe"]["count"] == SUBSCRIBERS
    assert phases["publish"]["count"] == report["values"]["messages_sent"]  # all QoS 1, acked
    # a whole connect is at least as long as each of its parts
    for part in ("tcp", "tls", "connack"):
        assert phases["connect"]["max"] >= phases[part]["max"] * 0.99, part
        assert phases["connect"]["min"] >= phases[part]["min"] * 0.99, part
    groups = {group["name"]: group for group in report["metrics"]["groups"]}
    assert list(groups) == list(GROUPS)
    for name, count in GROUPS.items():
        assert groups[name]["phases"]["connect"]["count"] == count, name
        assert groups[name]["counters"]["devices"] == count, name
        assert report["values"][f"{name}.devices_connected"] == count, name
    assert "publish" not in groups["gauges"]["phases"]


def test_connected_is_the_peak_of_devices_connected_at_once(runs):
    code, run = _finished(runs, "pass")
    assert code == 0
    assert run.report()["values"]["connected"] == DEVICES


def test_an_mqtt311_group_connects_publishes_and_subscribes(runs):
    code, run = _finished(runs, "pass")
    assert code == 0
    values = run.report()["values"]
    assert values["legacy.devices_connected"] == GROUPS["legacy"]
    assert values["legacy.failures"] == 0
    assert values["legacy.messages_sent"] > 0
    assert values["legacy.messages_received"] > 0
    assert values["legacy.subscribe.count"] == GROUPS["legacy"]
    assert values["legacy.publish.count"] == values["legacy.messages_sent"]
    assert values["legacy.connack.count"] == GROUPS["legacy"]


def test_a_passing_run_writes_junit_and_html(runs):
    code, run = _finished(runs, "pass")
    assert code == 0
    root = run.junit()
    assert root.tag == "testsuites"
    cases = root.findall(".//testcase")
    # one test case per threshold and one per group
    assert [case.get("name") for case in cases] == [*PASS_THRESHOLDS, *GROUPS]
    assert root.findall(".//failure") == []
    assert root.get("tests") == str(len(PASS_THRESHOLDS) + len(GROUPS))
    assert root.get("failures") == "0"
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["seed"] == "4242"

    html = run.path("html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "cli-pass" in html
    assert "PASSED" in run.stderr() + run.stdout()


# --------------------------------------------------------------------------- failing, invalid


def test_a_failed_threshold_exits_1_and_is_reported_as_failed(runs):
    code, run = _finished(runs, "fail")
    assert code == 1, run.stderr()
    report = run.report()
    assert report["passed"] is False
    outcomes = {t["expression"]: t for t in report["thresholds"]}
    failed = outcomes[f"connect.p99 < {IMPOSSIBLE_S}"]
    assert failed["passed"] is False
    assert failed["observed"] > 1e-6
    assert failed["limit"] == pytest.approx(1e-6)
    assert outcomes["failure_ratio < 1%"]["passed"] is True
    root = run.junit()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    thresholds = suites["cli-fail.thresholds"]
    assert thresholds.get("failures") == "1"
    (failure,) = thresholds.findall(".//failure")
    assert "connect.p99" in (failure.get("message") or "")
    assert "FAIL" in run.stderr() + run.stdout()


def test_an_invalid_scenario_exits_2_with_one_line_naming_the_yaml_path_and_line(runs):
    code, run = _finished(runs, "invalid")
    assert code == 2
    lines = [line for line in run.stderr().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("error:")
    assert "fleet[0].connect.retry.jitter" in line
    assert f"invalid.yaml:{INVALID_LINE}" in line
    assert "fulll" in line
    assert run.stdout() == ""
    for kind in ("json", "xml", "html"):
        assert not run.path(kind).exists()


# --------------------------------------------------------------------------- interrupts


def test_ctrl_c_stops_gracefully_and_still_writes_the_reports(runs):
    code, run = _finished(runs, "interrupt")
    assert run.interrupted_at is not None, "the run never printed its 'running' line"
    assert code == 0, run.stderr()  # the thresholds held for what ran
    report = run.report()
    assert "stopped early: interrupted" in report["meta"]["notes"]
    assert 0.8 < report["meta"]["duration_s"] < 10  # interrupted about 1 s in, not 30 s
    assert report["values"]["devices"] == 10
    assert report["values"]["devices_connected"] == 10
    assert report["values"]["failures"] == 0
    assert run.path("xml").exists()
    assert run.path("html").exists()
    assert "stopped early: interrupted" in run.stderr() + run.stdout()


def test_ctrl_c_during_setup_stops_the_run(runs):
    _code, run = _finished(runs, "setup-interrupt")
    assert run.interrupted_at is not None, "setup finished before the interrupt was sent"
    took = time.monotonic() - run.interrupted_at
    assert took < 4.5, f"ran {took:.1f} s after Ctrl-C (the scenario lasts 6 s)"


# --------------------------------------------------------------------------- protocol cases


def test_publishes_a_policy_denies_are_counted_as_puback_failure_135(runs):
    code, run = _finished(runs, "fail")
    assert code == 1, run.stderr()  # the impossible connect.p99, not the denials
    report = run.report()
    (group,) = report["metrics"]["groups"]
    denied = [f for f in group["failures"] if f["failure"] == "puback_failure:135"]
    assert len(denied) == 1
    assert denied[0]["phase"] == "publish"
    assert denied[0]["count"] >= 5  # every device publishes at least once in 2 s
    assert group["failures"] == denied  # nothing else failed
    values = report["values"]
    assert values["messages_sent"] == 0  # none was acknowledged
    assert values["publish_failure_ratio"] == 1.0
    assert values["failures"] == denied[0]["count"]
    assert values["devices_connected"] == 5
    assert values["devices_failed"] == 0  # the devices stay connected
    root = run.junit()
    groups = [suite for suite in root.iter("testsuite") if suite.get("name") == "cli-fail.groups"]
    (failure,) = groups[0].findall(".//failure")  # the group had real failures
    assert "puback_failure:135" in ET.tostring(failure, encoding="unicode")
