"""``fleetsim report run.json``: re-renders a saved run, exit code 0 / 1 / 2."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fleet_sim.cli.main import app
from fleet_sim.metrics.report_json import write_json_report
from tests.unit.metrics.sample import sample_result


def fleetsim(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fleet_sim", "report", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str] | Result) -> str:
    stderr = done.stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def failing_run(tmp_path: Path) -> Path:
    path = tmp_path / "run.json"
    write_json_report(sample_result(), path)
    return path


@pytest.fixture
def passing_run(tmp_path: Path) -> Path:
    path = tmp_path / "passing.json"
    write_json_report(sample_result(("connect.p99 < 2s", "connected_ratio >= 95%")), path)
    return path


def test_failed_threshold_exits_1_and_writes_the_reports(tmp_path: Path, failing_run: Path) -> None:
    done = fleetsim(tmp_path, "run.json", "--html", "out/report.html", "--junit", "junit.xml")
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    assert "FAILED: 2 of 5 thresholds" in done.stdout
    assert "failure_ratio < 0.1%" in done.stdout
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "FAILED: 2 of 5 thresholds" in page
    root = ET.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 (our own output)
    assert root.attrib["failures"] == "4"


def test_all_thresholds_met_exits_0(tmp_path: Path, passing_run: Path) -> None:
    done = fleetsim(tmp_path, passing_run.name)
    assert done.returncode == 0, done.stderr
    assert "PASSED: all 2 thresholds" in done.stdout


def test_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    done = fleetsim(tmp_path, "nope.json")
    assert done.returncode == 2
    assert one_error_line(done) == "error: nope.json: no such file"


def test_invalid_json_exits_2_naming_file_and_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"schema": "fleetsim.run/1", ', encoding="utf-8")
    done = fleetsim(tmp_path, "bad.json")
    assert done.returncode == 2
    assert one_error_line(done).startswith("error: bad.json: not JSON:")


# In-process from here on (same command, faster than a new interpreter per case).

runner = CliRunner()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"schema": "fleetsim.run/9"}',
            "schema: unsupported 'fleetsim.run/9' (this fleetsim reads 'fleetsim.run/1')",
        ),
        ('{"schema": "fleetsim.run/1", "meta": {}}', "meta.scenario: missing"),
        ("[]", "the document: expected an object, got an array"),
    ],
)
def test_not_a_valid_run_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")
    done = runner.invoke(app, ["report", str(path)])
    assert done.exit_code == 2
    assert one_error_line(done) == f"error: {path}: {message}"


def test_a_directory_exits_2(tmp_path: Path) -> None:
    done = runner.invoke(app, ["report", str(tmp_path)])
    assert done.exit_code == 2
    assert "is a directory" in one_error_line(done)


def test_unwritable_output_exits_2(tmp_path: Path, failing_run: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    done = runner.invoke(app, ["report", str(failing_run), "--junit", str(blocker / "x.xml")])
    assert done.exit_code == 2
    assert one_error_line(done).startswith(f"error: {blocker / 'x.xml'}: cannot write")


def test_quiet_prints_nothing(failing_run: Path, passing_run: Path) -> None:
    done = runner.invoke(app, ["report", "--quiet", str(failing_run)])
    assert (done.exit_code, done.stdout) == (1, "")
    assert runner.invoke(app, ["report", "-q", str(passing_run)]).exit_code == 0


def test_run_without_thresholds_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    write_json_report(sample_result(()), path)
    done = runner.invoke(app, ["report", str(path)])
    assert done.exit_code == 0
    assert "NO THRESHOLDS" in done.stdout
