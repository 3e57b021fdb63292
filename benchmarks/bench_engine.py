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

This machine's speed drifts (a shared host: the same handshake cost 1.0 and 1.5 ms of CPU half
an hour apart), so before each connect window the client-side OpenSSL CPU of one handshake is
measured in-process (:mod:`engine_calibrate`) and CPU per connect is also shown as a multiple
of it (``÷ floor``): no Python stack can connect for less than that floor.

awscrt cannot cap TLS at 1.2 itself (the awscrt engine refuses ``max_tls_version``); the broker's
cap makes every stack speak 1.2, checked once at start. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are
removed from this process's environment first (bare awscrt would re-read that bundle for every
TLS context, measurements.md §1). Both awscrt stacks get ``--crt-threads`` event-loop threads.

Run: ``python -m benchmarks.bench_engine [--quick] [--connects 1000] [--rounds 3] [--hold 20000]
[--publishers 1000] [--duration 10] [--window 10] [--in-flight 100] [--stacks native,raw,...]``
(``--quick``: a smoke run in well under 90 s once identities are cached). Tables and goal
verdicts: :mod:`engine_report`.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import awscrt

from benchmarks import engine_fixtures as fx
from benchmarks.engine_bare_crt import BareCrtStack
from benchmarks.engine_calibrate import HandshakeFloor
from benchmarks.engine_report import (
    LABELS,
    PAYLOAD_BYTES,
    Results,
    failed_note,
    print_connects,
    print_goals,
    print_hold,
    print_publishes,
    summarize,
)
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
#: Stacks that only differ from another one when publishing (not run in the connect rounds).
PUBLISH_ONLY = ("raw1",)
PAYLOAD = bytes(range(PAYLOAD_BYTES))
SETTLE_MAX_S = 10.0
CLIENT_FD_MARGIN = 48
#: Calibration handshakes measured just before each connect window (see engine_calibrate).
FLOOR_HANDSHAKES = 300
HOLD_TIMEOUT_BASE_S = 120.0


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
    args: argparse.Namespace,
    stacks: dict[str, Stack],
    broker: fx.Broker,
    fixture: fx.Fixture,
    results: Results,
) -> None:
    """Connect-rate rounds, then publish throughput, on one mosquitto."""
    meter = Meter([broker.pid])
    calibration = HandshakeFloor(fixture)
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
                floor = calibration.measure_ms(FLOOR_HANDSHAKES)
                results.connect_floors_ms.setdefault(key, []).append(floor)
                sample = await stack.connect(args.connects, args.in_flight, meter)
                results.connects.setdefault(key, []).append(sample)
                m = sample.measure
                say(f"round {round_ + 1} {stack.name:>13}: {sample.rate:6.0f} connects/s "
                    f"{sample.cpu_ms:5.2f} ms CPU/connect, mosquitto "
                    f"{100 * m.broker_cpu_s / m.wall_s:3.0f}%, {m.listen_drops} SYN drops, "
                    f"floor {floor:.2f} ms "
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


def calibrate(fixture: fx.Fixture, results: Results) -> None:
    """Measure (again) the client-side OpenSSL CPU of one handshake: the floor of any stack."""
    floor = HandshakeFloor(fixture).measure_ms(FLOOR_HANDSHAKES)
    results.floors_ms.append(floor)
    say(f"calibration: client-side OpenSSL CPU per mutual-TLS 1.2 handshake {floor:.2f} ms "
        "(in-process, memory BIOs; this machine's speed drifts, so compare with it)")  # fmt: skip


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
        calibrate(fixture, results)
        if args.connects or args.publishers:
            with fx.mosquitto(fixture, work) as broker:
                version = fx.negotiated_version(fixture, broker.port)
                if version != "TLSv1.2":
                    raise RuntimeError(f"mosquitto negotiated {version}, not TLSv1.2")
                say(f"mosquitto pid {broker.pid} on port {broker.port}, negotiates {version}")
                stacks = make_stacks(args.stack_keys, fixture, broker.port, args.crt_threads)
                asyncio.run(run_client_stages(args, stacks, broker, fixture, results))
        if args.hold:
            results.hold = run_hold(args, fixture, work, nofile)
            print_hold(args, results.hold)
        calibrate(fixture, results)
    print_goals(args, results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average {fx.load_average()}")


if __name__ == "__main__":
    main()
