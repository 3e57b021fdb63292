"""Benchmark: issue 5's device-engine goals, every client stack side by side in one run.

Against mosquitto 2.0 (a subprocess on 127.0.0.1: mutual TLS capped at 1.2, EC P-256 server key,
so no emulator cost is in it), with K distinct EC P-256 device certificates, MQTT 5:

1. Connect rate, four stacks: the ``native`` engine, a minimal raw stdlib-asyncio client
   (``open_connection(ssl=...)`` + hand-encoded CONNECT), the ``awscrt`` engine and bare awscrt
   (awsiotsdk ``mtls_from_path`` MQTT 5 clients). At most ``--in-flight`` (default 100)
   connects at once: mosquitto listens with a backlog of 100, and a burst beyond it (awscrt
   starts connects fast enough) drops SYNs, each costing a 1 s retransmission; the tables
   count those drops (TcpExt ListenDrops). Per stack: connects/s, client CPU per connect
   (``time.process_time()`` over the window, every thread), connect latency percentiles and,
   apart, preparation CPU per device (TLS context / client). Rounds interleave the stacks;
   medians are reported. Everything is disconnected and mosquitto left to settle between.
   mosquitto's CPU is printed: near 100% of a core it is the limit, and client CPU per connect
   is then the figure that compares clients.
2. Held connections: N idle ``native`` devices in one fresh process (:mod:`engine_hold`); RSS
   per device with and without its SSLContext. Above one process's descriptor limit the count
   is capped (and said so); mosquittos are added so none needs more than its own limit.
3. Publish throughput: P connected devices per stack, QoS 1, 100-byte payloads, ``window``
   in flight per device, for ``duration`` s: PUBACKed messages/s and client CPU per message.
   The raw client runs twice: answering each read's PUBACKs with one write (the goal's
   baseline) and with one write per PUBLISH (``raw1``, the naive loop). The awscrt stacks
   keep the SDK's AWS IoT Core flow control (100 publishes/s per connection), which caps them
   at 100 x devices msgs/s.

awscrt cannot cap TLS at 1.2 itself (the awscrt engine refuses ``max_tls_version``); the broker's
cap makes every stack speak 1.2, checked once at start. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are
removed from this process's environment first (bare awscrt would re-read that bundle for every
TLS context, measurements.md §1). Both awscrt stacks get ``--crt-threads`` event-loop threads.

Run: ``python -m benchmarks.bench_engine [--quick] [--connects 1000] [--rounds 3] [--hold 20000]
[--publishers 1000] [--duration 10] [--window 10] [--in-flight 100] [--stacks native,raw,...]``
(``--quick``: a smoke run in well under 90 s once identities are cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import selectors
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import awscrt

from benchmarks import engine_fixtures as fx
from benchmarks.engine_bare_crt import BareCrtStack
from benchmarks.engine_stacks import (
    ConnectSample,
    EngineStack,
    Meter,
    Prep,
    PublishSample,
    RawStack,
)
from fleet_sim.device.awscrt_engine import AwscrtEngine
from fleet_sim.device.link import Engine
from fleet_sim.device.native_engine import NativeEngine

STACKS = ("native", "raw", "raw1", "awscrt", "bare")
LABELS = {
    "native": "native engine",
    "raw": "raw asyncio",
    "raw1": "raw, 1 wr/msg",
    "awscrt": "awscrt engine",
    "bare": "bare awscrt",
}
#: Stacks that only differ from another one when publishing (not run in the connect rounds).
PUBLISH_ONLY = ("raw1",)
PAYLOAD = bytes(range(100))
SETTLE_MAX_S = 10.0
CLIENT_FD_MARGIN = 48
HOLD_TIMEOUT_BASE_S = 120.0

GOAL_CRT_RATIO = 0.9
GOAL_NATIVE_CPU_MS = 1.5
GOAL_HOLD_KIB = 70.0
GOAL_VS_RAW = 0.8
GOAL_VS_BARE = 1.2


class Stack(Protocol):
    """What :mod:`engine_stacks` and :mod:`engine_bare_crt` stacks offer."""

    name: str

    def prepare(self, count: int) -> Prep: ...

    async def connect(self, count: int, in_flight: int, meter: Meter) -> ConnectSample: ...

    async def publish(
        self, duration_s: float, window: int, payload: bytes, meter: Meter
    ) -> PublishSample: ...

    async def disconnect(self) -> None: ...

    def release(self) -> None: ...


@dataclass
class Results:
    """What the run measured, per stack key."""

    preps: dict[str, Prep] = field(default_factory=dict)
    connects: dict[str, list[ConnectSample]] = field(default_factory=dict)
    publishes: dict[str, PublishSample] = field(default_factory=dict)
    hold: dict[str, Any] | None = None


def verdict(ok: bool) -> str:
    """MET / MISSED."""
    return "MET" if ok else "MISSED"


# --------------------------------------------------------------------------- stages


def make_stacks(
    keys: Sequence[str], fixture: fx.Fixture, port: int, threads: int
) -> dict[str, Stack]:
    """The stacks to run, by key."""
    made: dict[str, Stack] = {}
    for key in keys:
        if key == "native":
            made[key] = EngineStack(
                LABELS[key], NativeEngine(), fixture, port, max_tls_version=ssl.TLSVersion.TLSv1_2
            )
        elif key in ("raw", "raw1"):
            made[key] = RawStack(fixture, port, per_message=key == "raw1")
        elif key == "awscrt":
            # cast: AwscrtEngine.phases is inferred as tuple[str], the protocol wants
            # tuple[str, ...] (a typing slip in awscrt_engine.py, harmless at run time)
            engine = cast(Engine, AwscrtEngine(threads=threads))
            made[key] = EngineStack(LABELS[key], engine, fixture, port, max_tls_version=None)
        else:
            made[key] = BareCrtStack(fixture, port, threads=threads)
    return made


async def settle(broker_pid: int) -> None:
    """Wait until mosquitto is (nearly) idle: under 5% of a core over 0.25 s, bounded."""
    deadline = time.monotonic() + SETTLE_MAX_S
    await asyncio.sleep(0.5)
    while time.monotonic() < deadline:
        before = fx.cpu_seconds(broker_pid)
        await asyncio.sleep(0.25)
        if fx.cpu_seconds(broker_pid) - before < 0.0125:
            return


async def run_client_stages(
    args: argparse.Namespace, stacks: dict[str, Stack], broker: fx.Broker, results: Results
) -> None:
    """Connect-rate rounds, then publish throughput, on one mosquitto."""
    meter = Meter([broker.pid])
    needed = max(args.connects, args.publishers)
    for key, stack in stacks.items():
        count = args.publishers if key in PUBLISH_ONLY else needed
        results.preps[key] = prep = stack.prepare(count)
        say(f"prepared {prep.devices} devices for {stack.name}: {prep.cpu_ms_per_device:.2f} ms "
            f"CPU/device ({prep.wall_s:.1f} s)")  # fmt: skip
    if args.connects:
        for round_ in range(args.rounds):
            for key, stack in stacks.items():
                if key in PUBLISH_ONLY:
                    continue
                sample = await stack.connect(args.connects, args.in_flight, meter)
                results.connects.setdefault(key, []).append(sample)
                m = sample.measure
                say(f"round {round_ + 1} {stack.name:>13}: {sample.rate:6.0f} connects/s "
                    f"{sample.cpu_ms:5.2f} ms CPU/connect, mosquitto "
                    f"{100 * m.broker_cpu_s / m.wall_s:3.0f}%, {m.listen_drops} SYN drops "
                    f"({sample.connected}/{sample.devices} connected"
                    f"{failed_note(sample.failures)})")  # fmt: skip
                await stack.disconnect()
                await settle(broker.pid)
        print_connects(args, results)
    if args.publishers:
        for key, stack in stacks.items():
            sample = await stack.connect(args.publishers, args.in_flight, meter)
            if sample.connected < args.publishers:
                say(f"{stack.name}: only {sample.connected}/{args.publishers} connected "
                    f"({summarize(sample.failures)})")  # fmt: skip
            await settle(broker.pid)
            pub = await stack.publish(args.duration, args.window, PAYLOAD, meter)
            results.publishes[key] = pub
            say(f"publish {stack.name:>13}: {pub.rate:8.0f} msgs/s {pub.cpu_us:5.1f} µs CPU/msg, "
                f"mosquitto {100 * pub.measure.broker_cpu_s / pub.measure.wall_s:3.0f}% "
                f"({pub.devices} devices, {pub.errors} errors)")  # fmt: skip
            await stack.disconnect()
            await settle(broker.pid)
        print_publishes(args, results)
    for stack in stacks.values():
        stack.release()


def failed_note(failures: Sequence[str]) -> str:
    """``, failures: …`` when there were any."""
    return f", failures: {summarize(failures)}" if failures else ""


def summarize(failures: Sequence[str]) -> str:
    """``name×count`` for each failure name."""
    counts: dict[str, int] = {}
    for name in failures:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name}×{count}" for name, count in sorted(counts.items()))


def run_hold(
    args: argparse.Namespace, fixture: fx.Fixture, work: Path, nofile: int
) -> dict[str, Any]:
    """Held connections in a child process; returns its figures plus the brokers' RSS."""
    count = min(args.hold, nofile - CLIENT_FD_MARGIN)
    per_broker = nofile - fx.BROKER_FD_MARGIN
    broker_count = max(1, math.ceil(count / per_broker))
    if count < args.hold:
        say(f"hold: {args.hold} asked, but one process may open only {nofile} descriptors "
            f"(RLIMIT_NOFILE hard limit): holding {count}")  # fmt: skip
    with fx.brokers(fixture, work, broker_count) as running:
        for broker in running:
            if fx.negotiated_version(fixture, broker.port) != "TLSv1.2":
                raise RuntimeError("mosquitto is not capped at TLS 1.2")
        broker_rss0 = sum(fx.rss_kib(b.pid) for b in running)
        config = {
            "count": count,
            "in_flight": args.hold_in_flight,
            "rate": args.hold_rate,
            "idle_s": args.hold_idle,
            "pem_dir": str(fixture.pem_dir),
            "ca_file": str(fixture.ca_file),
            "ports": [b.port for b in running],
        }
        command = [sys.executable, "-m", "benchmarks.engine_hold", json.dumps(config)]
        repo = Path(__file__).resolve().parent.parent
        child = subprocess.Popen(
            command, cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            timeout = HOLD_TIMEOUT_BASE_S + count / 50 + 2 * args.hold_idle
            figures: dict[str, Any] = json.loads(_read_line(child, timeout))
            figures["broker_rss_delta_kib"] = sum(fx.rss_kib(b.pid) for b in running) - broker_rss0
            figures["brokers"] = broker_count
            figures["nofile"] = nofile
            assert child.stdin is not None
            child.stdin.write("\n")
            child.stdin.flush()
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return figures


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"the hold child gave no result within {timeout:.0f} s")
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"the hold child died (exit {child.wait()})")
    return line


# --------------------------------------------------------------------------- report


def say(text: str) -> None:
    """A progress line."""
    print(f"  · {text}", flush=True)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def connect_medians(results: Results, key: str) -> tuple[float, float]:
    """Median connects/s and CPU ms/connect of one stack over the rounds."""
    samples = results.connects.get(key, [])
    return _median([s.rate for s in samples]), _median([s.cpu_ms for s in samples])


def print_connects(args: argparse.Namespace, results: Results) -> None:
    """The connect-rate table and its goals."""
    print(f"\nConnect rate: {args.connects} devices, distinct EC P-256 certificates, "
          f"mutual TLS 1.2, MQTT 5, ≤{args.in_flight} in flight, "
          f"median of {args.rounds} round(s)")  # fmt: skip
    print(f"{'stack':<15}{'connects/s':>11}{'CPU ms/conn':>13}{'prep ms/dev':>13}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'mosq CPU':>10}{'failed':>8}"
          f"{'SYN drops':>11}")  # fmt: skip
    for key, samples in results.connects.items():
        rate, cpu = connect_medians(results, key)
        latencies = sorted(x for s in samples for x in s.latencies_s)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        broker = _median([100 * s.measure.broker_cpu_s / s.measure.wall_s for s in samples])
        failed = sum(len(s.failures) for s in samples)
        drops = sum(s.measure.listen_drops for s in samples)
        print(f"{LABELS[key]:<15}{rate:>11.0f}{cpu:>13.2f}"
              f"{results.preps[key].cpu_ms_per_device:>13.2f}{q[49] * 1000:>8.0f}"
              f"{q[98] * 1000:>8.0f}{max(latencies, default=0) * 1000:>8.0f}"
              f"{broker:>9.0f}%{failed:>8}{drops:>11}")  # fmt: skip


def print_publishes(args: argparse.Namespace, results: Results) -> None:
    """The publish table."""
    print(f"\nPublish throughput: {args.publishers} devices, QoS 1, {len(PAYLOAD)}-byte payloads, "
          f"{args.window} in flight per device, {args.duration:g} s")  # fmt: skip
    print(f"{'stack':<15}{'acked msgs/s':>13}{'CPU µs/msg':>12}{'mosq CPU':>10}"
          f"{'devices':>9}{'errors':>8}")  # fmt: skip
    for key, pub in results.publishes.items():
        m = pub.measure
        broker = 100 * m.broker_cpu_s / m.wall_s
        print(f"{LABELS[key]:<15}{pub.rate:>13.0f}{pub.cpu_us:>12.1f}"
              f"{broker:>9.0f}%{pub.devices:>9}{pub.errors:>8}")  # fmt: skip


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
            connect_medians(results, "awscrt"), connect_medians(results, "bare")
        )
        ratio = e_rate / b_rate
        print(f"  connect: awscrt engine / bare awscrt = {ratio:.2f} in connects/s (goal ≥ "
              f"{GOAL_CRT_RATIO}: {verdict(ratio >= GOAL_CRT_RATIO)}); CPU/connect "
              f"{e_cpu:.2f} vs {b_cpu:.2f} ms = {e_cpu / b_cpu:.2f}x")  # fmt: skip
    if "native" in results.connects:
        rate, cpu = connect_medians(results, "native")
        print(f"  connect: native engine client CPU {cpu:.2f} ms/connect (goal ≤ "
              f"{GOAL_NATIVE_CPU_MS} ms: {verdict(cpu <= GOAL_NATIVE_CPU_MS)}); prep "
              f"{results.preps['native'].cpu_ms_per_device:.2f} ms/device apart")  # fmt: skip
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


# --------------------------------------------------------------------------- main


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` fills in the small defaults)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, well under 90 s")
    parser.add_argument("--connects", type=int, help="devices per connect round (1000)")
    parser.add_argument("--rounds", type=int, help="connect rounds per stack (3; quick 1)")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=100,
        help="connects at once (100: more overflows mosquitto's listen backlog of 100)",
    )
    parser.add_argument("--hold", type=int, help="held native devices (20000; quick 2000)")
    parser.add_argument("--hold-in-flight", type=int, default=100)
    parser.add_argument("--hold-rate", type=float, default=500.0, help="held connects/s cap")
    parser.add_argument("--hold-idle", type=float, default=3.0, help="idle seconds (twice)")
    parser.add_argument("--publishers", type=int, help="publishing devices (1000; quick 500)")
    parser.add_argument("--duration", type=float, help="publish seconds (10; quick 3)")
    parser.add_argument("--window", type=int, default=10, help="QoS 1 in flight per device")
    parser.add_argument("--stacks", default=",".join(STACKS), help="subset of " + ",".join(STACKS))
    parser.add_argument("--crt-threads", type=int, default=1, help="awscrt event-loop threads")
    parser.add_argument("--cache-dir", type=Path, default=fx.DEFAULT_CACHE)
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, small in (
        ("connects", 1000, 300),
        ("rounds", 3, 1),
        ("hold", 20000, 2000),
        ("publishers", 1000, 500),
        ("duration", 10.0, 3.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    keys = [k.strip() for k in args.stacks.split(",") if k.strip()]
    unknown = set(keys) - set(STACKS)
    if unknown:
        parser.error(f"unknown stacks {sorted(unknown)}; choose from {','.join(STACKS)}")
    args.stack_keys = keys
    return args


def header(args: argparse.Namespace) -> None:
    """Versions, machine and load."""
    print(f"fleetsim engine benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"command: python -m benchmarks.bench_engine {' '.join(sys.argv[1:])}".rstrip())
    print(f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}, awscrt "
          f"{awscrt.__version__}, {fx.mosquitto_version()}, {os.cpu_count()} CPUs, "
          f"load average {fx.load_average()}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Run the stages the options ask for and print the tables and goals."""
    args = parse(argv)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        os.environ.pop(name, None)
    nofile = fx.raise_nofile()
    header(args)
    results = Results()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleetsim-bench-engine-") as tmp:
        work = Path(tmp)
        fixture = fx.prepare(
            args.cache_dir, max(args.connects, args.publishers, args.hold, 1), work, say
        )
        if args.connects or args.publishers:
            with fx.mosquitto(fixture, work) as broker:
                version = fx.negotiated_version(fixture, broker.port)
                if version != "TLSv1.2":
                    raise RuntimeError(f"mosquitto negotiated {version}, not TLSv1.2")
                say(f"mosquitto pid {broker.pid} on port {broker.port}, negotiates {version}")
                stacks = make_stacks(args.stack_keys, fixture, broker.port, args.crt_threads)
                asyncio.run(run_client_stages(args, stacks, broker, results))
        if args.hold:
            results.hold = run_hold(args, fixture, work, nofile)
            print_hold(args, results.hold)
    print_goals(args, results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average {fx.load_average()}")


if __name__ == "__main__":
    main()
