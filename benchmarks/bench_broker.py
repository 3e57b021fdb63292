"""Benchmark: the emulator's gateway and broker side by side with mosquitto 2.0, one run.

Same load generator (:mod:`benchmarks.broker_load`, in this process; each broker is a
subprocess whose CPU and RSS are read from /proc), same machine, same certificates (the
emulator's EC P-256 server certificate for both, one test CA, a distinct EC P-256 device
certificate per connection), mutual TLS 1.2 with one cipher suite, policy evaluation on in the
emulator (every device registered ACTIVE with a policy and its thing attached; ``--no-limits``).

Measured, for each broker, then the ratio emulator / mosquitto against the issue's goals:

1. TLS handshakes: K connections (TLS + CONNECT/CONNACK, then DISCONNECT and close), at most
   N in flight (100 by default: mosquitto 2.0 listens with a backlog of 100, and more in flight
   overflows its accept queue, so SYN retries would understate it); connects/s and broker CPU
   per connect.
2. QoS 0 and 3. QoS 1 messages/s from one publisher to one subscriber, 100-byte payloads. The
   publisher pipelines, keeping a window of messages the subscriber has not received yet (QoS
   0: each window of ``--windows`` is tried and each broker's best counts; QoS 1: also at most
   ``--qos1-inflight`` without PUBACK); broker CPU per message.
4. Idle connections: C connected TLS clients held by fresh broker processes; broker RSS growth
   per connection.

Every line also shows the CPU of the broker, of the generator and of everything else on the
machine during the window: a sample with "others" well above 0% was disturbed by other work
(``--wait-quiet`` waits for an idle machine before each phase). The table keeps the best of
``--repeats`` samples and the spread.

Run: ``python -m benchmarks.bench_broker [--quick] [--connections 10000] [--handshakes 2000]
[--seconds 5] [--repeats 3] [--wait-quiet 120]``. The first run generates and registers the
devices (about 20 s for 10,000; cached under ``--cache-dir`` for the next runs).
``--emulator-pythonpath DIR`` runs the emulator from a patched copy of ``fleet_sim`` in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import broker_clients as clients
from benchmarks import broker_fixtures as fx
from benchmarks import broker_load as load

BROKERS = ("mosquitto", "emulator")
T = TypeVar("T")


@dataclass
class Samples:
    """Repeated measurements of one metric for both brokers."""

    values: dict[str, list[float]] = field(default_factory=lambda: {b: [] for b in BROKERS})

    def add(self, broker: str, value: float) -> None:
        """Record one value."""
        self.values[broker].append(value)

    def best(self, broker: str, *, lower: bool = False) -> float:
        """The best value (highest, or lowest when ``lower``)."""
        got = self.values[broker]
        return (min if lower else max)(got) if got else float("nan")

    def spread(self, broker: str) -> str:
        """``min–max`` of the values."""
        got = self.values[broker]
        if len(got) < 2:
            return ""
        return f"{_num(min(got))}–{_num(max(got))}"

    def median(self, broker: str) -> float:
        """The median value."""
        got = self.values[broker]
        return statistics.median(got) if got else float("nan")


def _num(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def run_loop(coro: Coroutine[Any, Any, T], loop_name: str) -> T:
    """Run one phase on a fresh event loop (stdlib asyncio or uvloop)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop_name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def wait_for_quiet(max_wait_s: float, threshold: float = 0.15) -> None:
    """Wait (at most ``max_wait_s``) until the machine is nearly idle for 2 s: other people's
    work would otherwise land in the measurements. Nothing of ours runs meanwhile."""
    if max_wait_s <= 0:
        return
    began = time.monotonic()
    while True:
        busy0 = load.machine_busy_seconds()
        time.sleep(2.0)
        busy = (load.machine_busy_seconds() - busy0) / 2.0
        waited = time.monotonic() - began
        if busy < threshold:
            if waited > 3:
                print(f"  (waited {waited:.0f} s for a quiet machine)")
            return
        if waited >= max_wait_s:
            print(f"  (machine still busy after {waited:.0f} s: {busy:.0%} of a core; going on)")
            return


def load_average() -> str:
    """The 1/5/15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass
class Report:
    """Every sample of every metric."""

    handshakes: Samples = field(default_factory=Samples)
    handshake_cpu_ms: Samples = field(default_factory=Samples)
    qos0: Samples = field(default_factory=Samples)
    qos0_cpu_us: Samples = field(default_factory=Samples)
    qos1: Samples = field(default_factory=Samples)
    qos1_cpu_us: Samples = field(default_factory=Samples)
    idle_kb: Samples = field(default_factory=Samples)
    idle_held: dict[str, int] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)


def measure_traffic(
    args: argparse.Namespace,
    fixture: fx.Fixture,
    brokers: dict[str, fx.BrokerProcess],
    report: Report,
) -> None:
    """Handshakes, QoS 0 and QoS 1, each repeated, brokers alternating."""
    began = time.perf_counter()
    contexts = [
        (device.client_id, clients.client_context(fixture.root_ca_file, device.key_file))
        for device in fixture.devices[: args.handshakes]
    ]
    print(f"built {len(contexts)} client TLS contexts in {time.perf_counter() - began:.1f} s")
    for repeat in range(args.repeats):
        wait_for_quiet(args.wait_quiet)
        report.loads.append(load_average())
        for name in _order(repeat):
            broker = brokers[name]
            result = run_loop(
                load.handshakes(contexts, broker.port, args.in_flight, broker.pid, args.time_limit),
                args.loop,
            )
            report.handshakes.add(name, result.rate)
            report.handshake_cpu_ms.add(name, result.usage.broker / max(1, result.ok) * 1e3)
            report.tls[name] = result.tls
            print(
                f"  [{repeat + 1}] {name:9} handshakes: {result.ok}/{result.ok + result.failed} "
                f"in {result.usage.seconds:.2f} s = {result.rate:,.0f}/s; "
                f"{result.usage.describe()}"
            )
        for qos, rate_samples, cpu_samples in (
            (0, report.qos0, report.qos0_cpu_us),
            (1, report.qos1, report.qos1_cpu_us),
        ):
            wait_for_quiet(args.wait_quiet)
            for name in _order(repeat):
                best = max(
                    (_throughput(args, contexts, brokers[name], qos, w, repeat) for w in
                     (args.windows if qos == 0 else [args.qos1_window])),
                    key=lambda tp: tp.rate,
                )  # fmt: skip
                rate_samples.add(name, best.rate)
                cpu_samples.add(name, best.usage.broker / max(1, best.received) * 1e6)


def _throughput(
    args: argparse.Namespace,
    contexts: list[tuple[str, Any]],
    broker: fx.BrokerProcess,
    qos: int,
    window: int,
    repeat: int,
) -> load.ThroughputResult:
    flow = load.throughput(
        contexts[:2],
        broker.port,
        qos=qos,
        seconds=args.seconds,
        window=window,
        max_inflight=args.qos1_inflight,
        broker_pid=broker.pid,
    )
    tp = run_loop(flow, args.loop)
    lost = tp.published - tp.delivered_total
    print(
        f"  [{repeat + 1}] {broker.name:9} QoS {qos} window {window:>6}: {tp.rate:9,.0f} msgs/s; "
        f"{tp.usage.describe()}; {tp.usage.broker / max(1, tp.received) * 1e6:.1f} µs/msg; "
        f"not delivered {lost:,}"
    )
    return tp


def _order(repeat: int) -> tuple[str, ...]:
    return BROKERS if repeat % 2 == 0 else BROKERS[::-1]


def measure_idle(
    args: argparse.Namespace, fixture: fx.Fixture, workdir: Path, report: Report
) -> None:
    """Fresh broker processes, one at a time: hold ``--connections`` idle clients each."""
    root = fixture.root_ca_file

    def maker(path: Path) -> Callable[[], Any]:
        return lambda: clients.client_context(root, path)

    devices = [(d.client_id, maker(d.key_file)) for d in fixture.devices[: args.connections]]
    for name in BROKERS:
        with _broker(name, fixture, workdir, args) as broker:
            time.sleep(1.0)  # let start-up allocations settle
            wait_for_quiet(args.wait_quiet)
            report.loads.append(load_average())
            result = run_loop(
                load.hold_idle(
                    devices,
                    broker.port,
                    args.in_flight,
                    broker.pid,
                    settle_s=2.0,
                    time_limit_s=args.time_limit * 4,
                ),
                args.loop,
            )
        report.idle_kb.add(name, result.per_connection_kb)
        report.idle_held[name] = result.held
        print(
            f"  {name:9} idle: {result.held} held ({result.failed} failed, connected in "
            f"{result.connect_seconds:.1f} s), RSS {result.rss_before_kb / 1024:.1f} → "
            f"{result.rss_after_kb / 1024:.1f} MiB = {result.per_connection_kb:.1f} KB/conn"
        )


@contextlib.contextmanager
def _broker(
    name: str, fixture: fx.Fixture, workdir: Path, args: argparse.Namespace
) -> Iterator[fx.BrokerProcess]:
    if name == "mosquitto":
        with fx.mosquitto(fixture, workdir, tuple(args.mosquitto_option)) as broker:
            yield broker
    else:
        with fx.emulator(fixture, workdir, args.emulator_pythonpath) as broker:
            yield broker


def print_table(report: Report, args: argparse.Namespace) -> None:
    """The summary: best value (spread) per broker, ratio, goal, PASS/FAIL."""
    rows: list[tuple[str, Samples, bool, str, float | None]] = [
        ("TLS handshakes/s", report.handshakes, False, "≥ 0.9x", 0.9),
        ("  broker CPU ms/handshake", report.handshake_cpu_ms, True, "", None),
        ("QoS 0 msgs/s", report.qos0, False, "≥ 0.4x", 0.4),
        ("  broker CPU µs/msg", report.qos0_cpu_us, True, "", None),
        ("QoS 1 msgs/s", report.qos1, False, "≥ 0.4x", 0.4),
        ("  broker CPU µs/msg", report.qos1_cpu_us, True, "", None),
    ]
    header = f"{'metric':28} {'mosquitto':>24} {'emulator':>24} {'ratio':>7} {'goal':>10}  result"
    print()
    print(header)
    print("-" * len(header))
    for label, samples, lower, goal, threshold in rows:
        cells = []
        for broker in BROKERS:
            spread = samples.spread(broker)
            best = _num(samples.best(broker, lower=lower))
            cells.append(f"{best} ({spread})" if spread else best)
        ratio = samples.best("emulator", lower=lower) / samples.best("mosquitto", lower=lower)
        verdict = "" if threshold is None else ("PASS" if ratio >= threshold else "FAIL")
        print(f"{label:28} {cells[0]:>24} {cells[1]:>24} {ratio:>6.2f}x {goal:>10}  {verdict}")
    if report.idle_kb.values["emulator"]:
        mosq, emu = report.idle_kb.best("mosquitto", lower=True), report.idle_kb.best(
            "emulator", lower=True
        )
        held = report.idle_held
        label = f"idle KB/conn ({held.get('emulator', 0):,} held)"
        verdict = "PASS" if emu <= 70 and held.get("emulator", 0) >= args.connections else "FAIL"
        print(f"{label:28} {_num(mosq):>24} {_num(emu):>24} {emu / mosq:>6.2f}x "
              f"{'≤ 70 KB':>10}  {verdict}")  # fmt: skip
    print()
    print(f"best of {args.repeats} (min–max); ratio = emulator best / mosquitto best")
    ratios = [
        ("handshakes", report.handshakes),
        ("QoS 0", report.qos0),
        ("QoS 1", report.qos1),
    ]
    medians = ", ".join(
        f"{name} {samples.median('emulator') / samples.median('mosquitto'):.2f}x"
        for name, samples in ratios
    )
    print(f"median ratios: {medians}")
    print(f"TLS: mosquitto {report.tls.get('mosquitto', '?')}; emulator "
          f"{report.tls.get('emulator', '?')}")  # fmt: skip
    print(f"load average during the runs: {'; '.join(report.loads)}")


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a < 60 s smoke run")
    parser.add_argument("--connections", type=int, default=10_000, help="idle clients held")
    parser.add_argument("--handshakes", type=int, default=2_000, help="connects per run")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=100,
        help="connects in flight (mosquitto 2.0 listens with a backlog of 100: more overflows it)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each traffic test")
    parser.add_argument(
        "--windows",
        type=lambda text: [int(w) for w in text.split(",")],
        default=[4_000, 64_000],
        help="QoS 0 messages not yet received (comma-separated; each broker's best counts)",
    )
    parser.add_argument("--qos1-inflight", type=int, default=100, help="QoS 1 without PUBACK")
    parser.add_argument("--qos1-window", type=int, default=1_000, help="QoS 1 not yet received")
    parser.add_argument(
        "--mosquitto-option",
        action="append",
        default=[],
        help="extra mosquitto.conf line (repeatable), e.g. 'set_tcp_nodelay true'",
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument(
        "--emulator-pythonpath",
        help="put this first on the emulator's PYTHONPATH (measure a patched fleet_sim copy)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each phase, wait up to this many seconds for an idle machine",
    )
    parser.add_argument("--no-idle", action="store_true", help="skip the idle-connection test")
    parser.add_argument("--time-limit", type=float, default=60.0, help="per connect phase, s")
    parser.add_argument("--cache-dir", type=Path, default=fx.DEFAULT_CACHE)
    args = parser.parse_args()
    if args.quick:
        args.connections = min(args.connections, 1_000)
        args.handshakes = min(args.handshakes, 300)
        args.seconds = min(args.seconds, 1.5)
        args.repeats = 1
        args.windows = [16_000]
    args.handshakes = max(args.handshakes, 2)
    return args


def main() -> None:
    """Prepare, run both brokers, print the table."""
    args = parse_args()
    limit = fx.raise_nofile()
    if args.connections + 100 > limit:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {limit} is too low for {args.connections}")
    print(f"{fx.mosquitto_version()}; load average {load_average()}; {os.cpu_count()} CPUs")
    fixture = fx.prepare(args.cache_dir, max(args.connections, args.handshakes))
    report = Report()
    with tempfile.TemporaryDirectory(prefix="fleetsim-bench-broker-") as temporary:
        workdir = Path(temporary)
        with (
            fx.mosquitto(fixture, workdir, tuple(args.mosquitto_option)) as mosq,
            fx.emulator(fixture, workdir, args.emulator_pythonpath) as emu,
        ):
            measure_traffic(args, fixture, {"mosquitto": mosq, "emulator": emu}, report)
        if not args.no_idle:
            measure_idle(args, fixture, workdir, report)
    print_table(report, args)


if __name__ == "__main__":
    main()
