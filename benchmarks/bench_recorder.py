"""MetricsRecorder speed: ns per ``phase()``, ``count()``, ``failure()`` and ``gauge()`` call.

Run: ``python -m benchmarks.bench_recorder`` (a few seconds). Calls go to 4 groups × 5 phases
with the time advancing 10 µs per call, so one-second buckets roll over as in a real run;
the loop's own cost (iterating prepared arguments) is measured and subtracted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from fleet_sim.metrics import MetricsRecorder

CALLS = 300_000
GROUPS = ("sensors", "gateways", "meters", "cameras")
PHASES = ("tcp", "tls", "connack", "connect", "publish")


def _arguments(seed: int) -> list[tuple[str, str, float, float]]:
    rng = random.Random(seed)
    return [
        (rng.choice(GROUPS), rng.choice(PHASES), rng.lognormvariate(-3.0, 1.0), i * 1e-5)
        for i in range(CALLS)
    ]


def _ns_per_call(body: Callable[[list[tuple[str, str, float, float]]], None]) -> float:
    args = _arguments(1)
    body(args[:1000])  # warm up

    def empty(items: list[tuple[str, str, float, float]]) -> None:
        for _group, _name, _value, _now in items:
            pass

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        empty(args)
        loop = time.perf_counter() - start
        start = time.perf_counter()
        body(args)
        best = min(best, time.perf_counter() - start - loop)
    return best / CALLS * 1e9


def main() -> None:
    recorder = MetricsRecorder(start=0.0, groups=GROUPS)
    phase, count = recorder.phase, recorder.count
    failure, gauge = recorder.failure, recorder.gauge

    def phases(items: list[tuple[str, str, float, float]]) -> None:
        for group, name, value, now in items:
            phase(group, name, value, now=now)

    def counts(items: list[tuple[str, str, float, float]]) -> None:
        for group, _name, _value, now in items:
            count(group, "messages_sent", now=now)

    def failures(items: list[tuple[str, str, float, float]]) -> None:
        for group, name, _value, now in items:
            failure(group, name, "connect_timeout", now=now)

    def gauges(items: list[tuple[str, str, float, float]]) -> None:
        for group, _name, value, now in items:
            gauge(group, "connected", value, now=now)

    for label, body in (
        ("phase()", phases),
        ("count()", counts),
        ("failure()", failures),
        ("gauge()", gauges),
    ):
        print(f"{label:<10} {_ns_per_call(body):7.0f} ns per call")
    start = time.perf_counter()
    snapshot = recorder.snapshot(CALLS * 1e-5)
    took = (time.perf_counter() - start) * 1e3
    print(f"snapshot() {took:7.1f} ms ({len(snapshot.groups)} groups, {len(PHASES)} phases)")


if __name__ == "__main__":
    main()
