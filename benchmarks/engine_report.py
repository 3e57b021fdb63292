"""Tables and goal verdicts of the engine benchmark (:mod:`benchmarks.bench_engine`).

Everything here only formats :class:`Results`; nothing measures. Goals are issue 5's:
the awscrt engine within 10% of bare awscrt in connects/s, the native engine at most 1.5 ms of
client CPU per connect, 20,000 held devices at most 70 KB each, and in publish throughput the
native engine at least 0.8x the raw stdlib-asyncio loop and 1.2x bare awscrt.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.engine_stacks import ConnectSample, Prep, PublishSample

PAYLOAD_BYTES = 100

LABELS = {
    "native": "native engine",
    "raw": "raw asyncio",
    "raw1": "raw, 1 wr/msg",
    "awscrt": "awscrt engine",
    "bare": "bare awscrt",
}

#: mosquitto above this share of a core during a window: it, not the client, sets the pace.
BROKER_BOUND = 85.0

GOAL_CRT_RATIO = 0.9
GOAL_NATIVE_CPU_MS = 1.5
GOAL_HOLD_KIB = 70.0
GOAL_VS_RAW = 0.8
GOAL_VS_BARE = 1.2


@dataclass
class Results:
    """What the run measured, per stack key."""

    preps: dict[str, Prep] = field(default_factory=dict)
    connects: dict[str, list[ConnectSample]] = field(default_factory=dict)
    publishes: dict[str, PublishSample] = field(default_factory=dict)
    hold: dict[str, Any] | None = None
    floors_ms: list[float] = field(default_factory=list)
    connect_floors_ms: dict[str, list[float]] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    """MET / MISSED."""
    return "MET" if ok else "MISSED"


def failed_note(failures: Sequence[str]) -> str:
    """``, failures: …`` when there were any."""
    return f", failures: {summarize(failures)}" if failures else ""


def summarize(failures: Sequence[str]) -> str:
    """``name×count`` for each failure name."""
    counts: dict[str, int] = {}
    for name in failures:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name}×{count}" for name, count in sorted(counts.items()))


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def connect_medians(results: Results, key: str) -> tuple[float, float]:
    """Median connects/s and CPU ms/connect of one stack over the rounds."""
    samples = results.connects.get(key, [])
    return _median([s.rate for s in samples]), _median([s.cpu_ms for s in samples])


def floor_multiple(results: Results, key: str) -> float:
    """Median over the rounds of CPU/connect ÷ the handshake floor measured just before."""
    samples = results.connects.get(key, [])
    floors = results.connect_floors_ms.get(key, [])
    return _median([s.cpu_ms / f for s, f in zip(samples, floors, strict=False) if f > 0])


def bound_mark(broker_percent: float) -> str:
    """`` *`` when mosquitto was (nearly) saturated in the window."""
    return "  *" if broker_percent >= BROKER_BOUND else ""


def broker_note(worst: float) -> None:
    """Say when mosquitto, not the client, was the limit somewhere in the table."""
    if worst >= BROKER_BOUND:
        print(f"  * mosquitto used ≥{BROKER_BOUND:.0f}% of a core: it limited that row's rate; "
              "compare client CPU per operation there")  # fmt: skip


def print_connects(args: argparse.Namespace, results: Results) -> None:
    """The connect-rate table and its goals."""
    print(f"\nConnect rate: {args.connects} devices, distinct EC P-256 certificates, "
          f"mutual TLS 1.2, MQTT 5, ≤{args.in_flight} in flight, "
          f"median of {args.rounds} round(s)")  # fmt: skip
    print(f"{'stack':<15}{'connects/s':>11}{'CPU ms/conn':>13}{'÷ floor':>9}{'prep ms/dev':>13}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'mosq CPU':>10}{'failed':>8}"
          f"{'SYN drops':>11}")  # fmt: skip
    for key, samples in results.connects.items():
        rate, cpu = connect_medians(results, key)
        latencies = sorted(x for s in samples for x in s.latencies_s)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        broker = _median([100 * s.measure.broker_cpu_s / s.measure.wall_s for s in samples])
        failed = sum(len(s.failures) for s in samples)
        drops = sum(s.measure.listen_drops for s in samples)
        print(f"{LABELS[key]:<15}{rate:>11.0f}{cpu:>13.2f}{floor_multiple(results, key):>9.2f}"
              f"{results.preps[key].cpu_ms_per_device:>13.2f}{q[49] * 1000:>8.0f}"
              f"{q[98] * 1000:>8.0f}{max(latencies, default=0) * 1000:>8.0f}"
              f"{broker:>9.0f}%{failed:>8}{drops:>11}{bound_mark(broker)}")  # fmt: skip
    broker_note(
        max(
            (
                _median([100 * s.measure.broker_cpu_s / s.measure.wall_s for s in samples])
                for samples in results.connects.values()
            ),
            default=0.0,
        )
    )
    print(
        "  (÷ floor: CPU/connect over the client-side OpenSSL CPU of one handshake, measured "
        "in-process just before each window: this machine's speed drifts by up to ~1.5x, the "
        "ratio much less; SYN drops: TcpExt ListenDrops of the whole network namespace)"
    )


def print_publishes(args: argparse.Namespace, results: Results) -> None:
    """The publish table."""
    print(f"\nPublish throughput: {args.publishers} devices, QoS 1, {PAYLOAD_BYTES}-byte payloads, "
          f"{args.window} in flight per device, {args.duration:g} s")  # fmt: skip
    print(f"{'stack':<15}{'acked msgs/s':>13}{'CPU µs/msg':>12}{'mosq CPU':>10}"
          f"{'devices':>9}{'errors':>8}")  # fmt: skip
    for key, pub in results.publishes.items():
        m = pub.measure
        broker = 100 * m.broker_cpu_s / m.wall_s
        print(f"{LABELS[key]:<15}{pub.rate:>13.0f}{pub.cpu_us:>12.1f}"
              f"{broker:>9.0f}%{pub.devices:>9}{pub.errors:>8}{bound_mark(broker)}")  # fmt: skip
    broker_note(
        max(
            (100 * p.measure.broker_cpu_s / p.measure.wall_s for p in results.publishes.values()),
            default=0.0,
        )
    )


def print_hold(args: argparse.Namespace, hold: dict[str, Any]) -> None:
    """The held-connections figures."""
    n = max(1, hold["connected"])
    with_ctx = (hold["rss_connected_kib"] - hold["rss_start_kib"]) / n
    without = (hold["rss_connected_kib"] - hold["rss_prepared_kib"]) / n
    contexts = (hold["rss_prepared_kib"] - hold["rss_start_kib"]) / max(1, hold["asked"])
    print(f"\nHeld connections (native engine, one process): {hold['asked']} asked "
          f"(--hold {args.hold}), {hold['connected']} connected, {hold['still_connected']} "
          f"still connected after {2 * args.hold_idle:g} s idle; "
          f"{hold['brokers']} mosquitto(s)")  # fmt: skip
    if hold["failures"]:
        print(f"  failures: {hold['failures']}")
    print(f"  RSS: start {hold['rss_start_kib'] / 1024:.0f} MiB, contexts prepared "
          f"{hold['rss_prepared_kib'] / 1024:.0f} MiB, connected "
          f"{hold['rss_connected_kib'] / 1024:.0f} MiB")  # fmt: skip
    print(f"  per device incl. its SSLContext: {with_ctx:.1f} KiB; excl. contexts: "
          f"{without:.1f} KiB; the SSLContext alone: {contexts:.1f} KiB")  # fmt: skip
    print(f"  prepare {1000 * hold['prep_cpu_s'] / max(1, hold['asked']):.2f} ms CPU/device; "
          f"connect {hold['connected'] / hold['connect_wall_s']:.0f}/s, "
          f"{1000 * hold['connect_cpu_s'] / n:.2f} ms CPU/connect; idle CPU "
          f"{100 * hold['idle_cpu_fraction']:.1f}% of a core; mosquitto RSS "
          f"+{hold['broker_rss_delta_kib'] / n:.1f} KiB/connection")  # fmt: skip


def print_goals(args: argparse.Namespace, results: Results) -> None:
    """Issue 5's ratios and goals."""
    print("\nGoals (issue 5)")
    if "awscrt" in results.connects and "bare" in results.connects:
        (e_rate, e_cpu), (b_rate, b_cpu) = (
            connect_medians(results, "awscrt"),
            connect_medians(results, "bare"),
        )
        ratio = e_rate / b_rate
        e_floor, b_floor = floor_multiple(results, "awscrt"), floor_multiple(results, "bare")
        print(f"  connect: awscrt engine / bare awscrt = {ratio:.2f} in connects/s (goal ≥ "
              f"{GOAL_CRT_RATIO}: {verdict(ratio >= GOAL_CRT_RATIO)}); CPU/connect "
              f"{e_cpu:.2f} vs {b_cpu:.2f} ms = {e_cpu / b_cpu:.2f}x "
              f"(÷ floor: {e_floor:.2f} vs {b_floor:.2f} = {e_floor / b_floor:.2f}x)")  # fmt: skip
    if "native" in results.connects:
        rate, cpu = connect_medians(results, "native")
        print(f"  connect: native engine client CPU {cpu:.2f} ms/connect (goal ≤ "
              f"{GOAL_NATIVE_CPU_MS} ms: {verdict(cpu <= GOAL_NATIVE_CPU_MS)}); prep "
              f"{results.preps['native'].cpu_ms_per_device:.2f} ms/device apart")  # fmt: skip
        multiple = floor_multiple(results, "native")
        floors = results.connect_floors_ms.get("native", [])
        print(f"           = {multiple:.2f}x the client-side OpenSSL CPU of one handshake "
              f"measured just before (floors {', '.join(f'{f:.2f}' for f in floors)} ms): at "
              f"a 1.0 ms floor that is {multiple:.2f} ms")  # fmt: skip
        if "raw" in results.connects:
            r_rate, r_cpu = connect_medians(results, "raw")
            print(f"           native / raw asyncio: {rate / r_rate:.2f}x connects/s, "
                  f"{cpu / r_cpu:.2f}x CPU/connect")  # fmt: skip
    if results.hold is not None:
        hold = results.hold
        n = max(1, hold["connected"])
        with_ctx = (hold["rss_connected_kib"] - hold["rss_start_kib"]) / n
        print(f"  held: {hold['connected']} devices (goal 20000 in one process), {with_ctx:.1f} "
              f"KiB/device incl. context (goal ≤ {GOAL_HOLD_KIB:g}: "
              f"{verdict(with_ctx <= GOAL_HOLD_KIB)})")  # fmt: skip
    pubs = results.publishes
    if "native" in pubs:
        native = pubs["native"]
        for key, goal in (("raw", GOAL_VS_RAW), ("raw1", None), ("bare", GOAL_VS_BARE)):
            if key not in pubs:
                continue
            other = pubs[key]
            ratio = native.rate / other.rate
            judged = (
                f"goal ≥ {goal}: {verdict(ratio >= goal)}"
                if goal is not None
                else "the naive loop, for calibration"
            )
            print(f"  publish: native / {LABELS[key]} = {ratio:.2f} in msgs/s ({judged}); "
                  f"CPU/msg {native.cpu_us:.1f} vs {other.cpu_us:.1f} µs = "
                  f"{other.cpu_us / native.cpu_us:.2f}x as efficient")  # fmt: skip
