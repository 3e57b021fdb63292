"""A small, deterministic run for the metrics tests: two groups, failures, expected drops."""

from __future__ import annotations

import random

from fleet_sim.metrics import Failure, MetricsRecorder, RunMeta, RunResult, build_result
from fleet_sim.scenario.thresholds import parse_threshold

START = 1000.0
META = RunMeta(
    scenario="demo",
    description="two groups <b>escaped</b>",
    seed=42,
    started_at="2024-05-01T12:00:00.000Z",
    ended_at="2024-05-01T12:00:20.000Z",
    duration_s=20.0,
    target="local emulator 127.0.0.1:8883",
    engines={"sensors": "native", "gateways": "awscrt"},
    notes=("awscrt engine reports connect as one phase",),
)


def record_sample(recorder: MetricsRecorder, *, seed: int = 7) -> None:
    """100 sensors (JITP: every device's first connect dropped, 2 refused) and 20 gateways."""
    rng = random.Random(seed)
    for group, devices in (("sensors", 100), ("gateways", 20)):
        connected = 0
        for i in range(devices):
            now = START + i * 0.1
            recorder.count(group, "devices", now=now)
            if group == "sensors":
                recorder.failure(group, "connect", "closed_before_connack", now=now, expected=True)
            if group == "sensors" and i in (10, 60):
                recorder.failure(group, "connect", Failure.connack_refused(0x87), now=now)
                recorder.count(group, "devices_failed", now=now)
                continue
            if group == "sensors":
                recorder.phase(group, "tcp", rng.uniform(0.001, 0.01), now=now)
                recorder.phase(group, "tls", rng.uniform(0.01, 0.05), now=now)
                recorder.phase(group, "connack", rng.uniform(0.005, 0.03), now=now)
                recorder.phase(group, "provision", rng.uniform(0.2, 0.6), now=now)
            recorder.phase(group, "connect", rng.uniform(0.05, 0.3), now=now)
            connected += 1
            recorder.count(group, "devices_connected", now=now)
            recorder.gauge(group, "connected", connected, now=now)
        for k in range(50):
            now = START + 10 + k * 0.1
            recorder.count(group, "messages_sent", now=now)
            recorder.phase(group, "publish", rng.uniform(0.02, 0.08), now=now)
            if k % 2:
                recorder.count(group, "messages_received", now=now)
        if group == "gateways":
            recorder.failure(group, "publish", Failure.publish_timeout(), now=START + 12.5)


THRESHOLDS = (
    "connect.p99 < 2s",
    "failure_ratio < 0.1%",
    "connected_ratio >= 95%",
    "provision.p50 <= 500ms",
    "subscribe.p99 < 1s",
)


def sample_result(thresholds: tuple[str, ...] = THRESHOLDS) -> RunResult:
    """The sample run, checked against ``thresholds``."""
    recorder = MetricsRecorder(start=START, groups=("sensors", "gateways"))
    record_sample(recorder)
    snapshot = recorder.snapshot(START + 20.0)
    return build_result(snapshot, META, [parse_threshold(t) for t in thresholds])
