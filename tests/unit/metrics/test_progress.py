"""The live progress panel: what it shows, when it is off, how often it computes p99s."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fleet_sim.metrics import LatencyHistogram, MetricsRecorder
from fleet_sim.metrics.progress import MAX_REFRESH_PER_SECOND, ProgressDisplay, render_progress


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def busy_recorder() -> MetricsRecorder:
    r = MetricsRecorder(start=0.0, groups=("sensors",))
    for i in range(20):
        r.count("sensors", "devices", now=0.5)
        r.phase("sensors", "connect", 0.1 + i / 1000, now=0.5)
        r.count("sensors", "messages_sent", now=0.5)
    r.gauge("sensors", "connected", 17, now=1.2)
    r.gauge("sensors", "connecting", 3, now=1.2)
    r.count("sensors", "devices_failed", now=1.2)
    r.failure("sensors", "connect", "tcp_timeout", now=1.2)
    r.failure("sensors", "connect", "closed_before_connack", now=1.2, expected=True)
    return r


def text_of(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=140, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_frame_shows_groups_rates_and_p99s() -> None:
    view = busy_recorder().live_view(1.5)
    text = text_of(render_progress(view, {"connect": 0.119}, title="demo"))
    assert "demo" in text
    assert "1s elapsed" in text or "2s elapsed" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("sensors"))
    assert [cell for cell in row.split() if cell != "│"] == [
        "sensors",
        "20",
        "17",
        "3",
        "1",
        "1",
        "1",
        "20",
        "20",
        "0",
    ]
    assert "connect n=20 p99=119ms" in text


def test_phase_without_a_p99_yet_shows_an_ellipsis() -> None:
    view = busy_recorder().live_view(1.5)
    assert "p99=…" in text_of(render_progress(view, {}))


def test_off_when_the_console_is_not_a_terminal() -> None:
    out = io.StringIO()
    display = ProgressDisplay(busy_recorder(), now=FakeClock(1.0), console=Console(file=out))
    assert not display.enabled
    with display:
        pass
    assert out.getvalue() == ""


def test_explicitly_disabled_even_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True)
    with ProgressDisplay(busy_recorder(), now=FakeClock(1.0), console=console, enabled=False):
        pass
    assert out.getvalue() == ""


def test_draws_on_a_terminal_and_leaves_the_last_frame() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    display = ProgressDisplay(busy_recorder(), now=FakeClock(1.5), console=console, title="run")
    assert display.enabled
    with display:
        pass
    text = out.getvalue()
    assert "sensors" in text
    assert "p99=119ms" in text  # the final frame computes fresh percentiles


def test_refresh_rate_is_capped() -> None:
    recorder = MetricsRecorder(start=0.0)
    fast = ProgressDisplay(recorder, now=FakeClock(), refresh_per_second=30, enabled=False)
    assert fast.refresh_per_second == MAX_REFRESH_PER_SECOND == 4.0
    slow = ProgressDisplay(recorder, now=FakeClock(), refresh_per_second=1, enabled=False)
    assert slow.refresh_per_second == 1


def test_percentiles_are_recomputed_only_when_due_and_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = busy_recorder()
    calls: list[str] = []
    original = MetricsRecorder.phase_histogram

    def counting(self: MetricsRecorder, phase: str, group: str | None = None) -> LatencyHistogram:
        calls.append(phase)
        return original(self, phase, group)

    monkeypatch.setattr(MetricsRecorder, "phase_histogram", counting)
    clock = FakeClock(1.0)
    display = ProgressDisplay(recorder, now=clock, enabled=False, percentile_every_s=2.0)
    display.render()
    assert calls == ["connect"]
    clock.now = 2.0
    recorder.phase("sensors", "connect", 0.5, now=1.9)
    display.render()
    assert calls == ["connect"]  # not due yet
    clock.now = 3.5
    display.render()
    assert calls == ["connect", "connect"]  # due, and the count changed
    clock.now = 6.0
    display.render()
    assert calls == ["connect", "connect"]  # due, but nothing new


def test_rendering_does_not_change_the_recorder() -> None:
    recorder = busy_recorder()
    before = recorder.snapshot(2.0)
    display = ProgressDisplay(recorder, now=FakeClock(2.0), enabled=False)
    text_of(display.render())
    assert recorder.snapshot(2.0) == before
