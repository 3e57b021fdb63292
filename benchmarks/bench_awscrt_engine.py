"""Benchmark: the awscrt engine against bare awscrt, connecting N devices to a broker.

Both sides use the same prepared TLS contexts (built before the measured window), the same
awscrt client options and callbacks, and the same broker subprocess: the emulator
(``python -m fleet_sim emulator --no-limits``, i.e. ``BrokerLimits.unlimited()``) or, to make
the client the limit, mosquitto. The broker's CPU is not this process's. N devices connect with
at most ``--in-flight`` attempts at once (mosquitto's listen backlog drops SYNs beyond ~100,
which costs a 1 s retransmission); the window runs from the first ``start()`` / ``connect()``
to the last CONNACK. Measured per side: connects/s and client CPU per connect
(``time.process_time()`` delta / N: awscrt's native threads plus Python).

"bare" is what an SDK user writes: clients started from a plain thread, CONNACKs counted in
awscrt's callback threads, no asyncio. "engine" is :class:`AwscrtEngine` links awaited on an
asyncio loop (callbacks bridged onto it). Rounds alternate bare/engine; medians are reported
with the engine/bare ratio (the goal: the engine within 10% of bare awscrt).

Run: ``python -m benchmarks.bench_awscrt_engine [--devices 200] [--rounds 5] [--in-flight 50]
[--threads 1] [--mqtt311] [--uvloop] [--broker emulator|mosquitto]``. The first run generates
and registers the devices (cached under ``--cache-dir``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awscrt import mqtt, mqtt5

from benchmarks import broker_fixtures as fx
from fleet_sim.device.awscrt_engine import AwscrtDevice, AwscrtEngine
from fleet_sim.device.awscrt_links import NEVER_MS, socket_options
from fleet_sim.device.link import DeviceLink, Endpoint, LinkSpec

TIMEOUT_S = 30.0
SETTLE_S = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    """One round of one side."""

    seconds: float
    cpu: float
    devices: int
    driver_cpu: float
    """CPU of the thread that starts the clients: the event loop's (engine) or the starter's."""

    @property
    def rate(self) -> float:
        """Connects per second."""
        return self.devices / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Client CPU milliseconds per connect."""
        return self.cpu / self.devices * 1000

    @property
    def driver_ms(self) -> float:
        """CPU milliseconds per connect of the driving thread."""
        return self.driver_cpu / self.devices * 1000


# --------------------------------------------------------------------------- our engine


async def _engine_round(devices: list[AwscrtDevice], in_flight: int) -> Sample:
    links: list[DeviceLink] = [device.new_link(None) for device in devices]
    slots = asyncio.Semaphore(in_flight)

    async def connect(link: DeviceLink) -> None:
        async with slots:
            await link.connect(timeout_s=TIMEOUT_S)

    thread0, cpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(connect(link) for link in links))
    wall1, cpu1, thread1 = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(link.disconnect() for link in links))
    return Sample(wall1 - wall0, cpu1 - cpu0, len(links), thread1 - thread0)


# --------------------------------------------------------------------------- bare awscrt


class _Countdown:
    """Counts CONNACKs from awscrt's threads; set when all arrived."""

    def __init__(self, count: int, in_flight: int) -> None:
        self._left = count
        self.slots = threading.BoundedSemaphore(in_flight)
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.failures: list[object] = []

    def hit(self, *_: object, **__: object) -> None:
        self.slots.release()
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def fail(self, data: object) -> None:
        self.failures.append(data)
        self.hit()


def _nothing(data: object) -> None:
    """A disconnection callback (the engine registers one too)."""


def _bare_round(devices: list[AwscrtDevice], mqtt5_: bool, in_flight: int) -> Sample:
    countdown = _Countdown(len(devices), in_flight)
    clients: list[Any] = []
    connects: list[Future[Any]] = []
    thread0, cpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    for device in devices:
        countdown.slots.acquire()
        s = device.settings
        if mqtt5_:
            client = mqtt5.Client(
                mqtt5.ClientOptions(
                    host_name=s.host,
                    port=s.port,
                    bootstrap=s.bootstrap,
                    socket_options=socket_options(TIMEOUT_S),
                    tls_ctx=s.tls_context,
                    connect_options=s.connect_packet,
                    session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
                    extended_validation_and_flow_control_options=(
                        mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS
                    ),
                    offline_queue_behavior=(
                        mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT
                    ),
                    retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.NONE,
                    min_reconnect_delay_ms=NEVER_MS,
                    max_reconnect_delay_ms=NEVER_MS,
                    connack_timeout_ms=int(TIMEOUT_S * 1000),
                    on_lifecycle_event_connection_success_fn=countdown.hit,
                    on_lifecycle_event_connection_failure_fn=countdown.fail,
                    on_lifecycle_event_disconnection_fn=_nothing,
                )
            )
            clients.append(client)
            client.start()
        else:
            connection = mqtt.Connection(
                client=s.mqtt3_client,
                host_name=s.host,
                port=s.port,
                client_id=s.client_id,
                clean_session=True,
                on_connection_interrupted=countdown.hit,
                reconnect_min_timeout_secs=NEVER_MS // 1000,
                reconnect_max_timeout_secs=NEVER_MS // 1000,
                keep_alive_secs=s.keep_alive_s,
                ping_timeout_ms=3000,
                socket_options=socket_options(TIMEOUT_S),
            )
            clients.append(connection)
            connect = connection.connect()
            connects.append(connect)
            connect.add_done_callback(countdown.hit)
    if not countdown.done.wait(TIMEOUT_S):
        raise RuntimeError("bare awscrt: not every device connected in time")
    wall1, cpu1, thread1 = time.perf_counter(), time.process_time(), time.thread_time()
    if countdown.failures or any(c.exception() for c in connects):
        raise RuntimeError("bare awscrt: some connects failed")
    for client in clients:
        if mqtt5_:
            client.stop(mqtt5.DisconnectPacket())
        else:
            client.disconnect()
    return Sample(wall1 - wall0, cpu1 - cpu0, len(devices), thread1 - thread0)


# --------------------------------------------------------------------------- driver


def _summary(label: str, samples: list[Sample]) -> tuple[float, float]:
    rate = statistics.median(s.rate for s in samples)
    cpu = statistics.median(s.cpu_ms for s in samples)
    driver = statistics.median(s.driver_ms for s in samples)
    rates = ", ".join(f"{s.rate:.0f}" for s in samples)
    print(
        f"{label:>7}: {rate:5.0f} connects/s  {cpu:5.2f} ms CPU/connect "
        f"(driving thread {driver:4.2f})  rounds: {rates}"
    )
    return rate, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=50, help="connects at once (both sides)")
    parser.add_argument("--threads", type=int, default=1, help="awscrt event-loop threads")
    parser.add_argument("--mqtt311", action="store_true", help="MQTT 3.1.1 instead of 5")
    parser.add_argument("--uvloop", action="store_true", help="run the engine on uvloop")
    parser.add_argument(
        "--broker",
        choices=("emulator", "mosquitto"),
        default="emulator",
        help="mosquitto (C) leaves the client as the limit; the emulator usually is the limit",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/fleetsim-bench-awscrt"))
    args = parser.parse_args()
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):  # bare awscrt would pay the trap
        os.environ.pop(name, None)
    fx.raise_nofile()
    fixture = fx.prepare(args.cache_dir, args.devices)
    start_broker = fx.mosquitto if args.broker == "mosquitto" else fx.emulator
    with tempfile.TemporaryDirectory() as work, start_broker(fixture, Path(work)) as broker:
        engine = AwscrtEngine(threads=args.threads)
        where = Endpoint("127.0.0.1", broker.port, "localhost")
        devices = [
            engine.prepare(
                LinkSpec(
                    client_id=d.client_id,
                    endpoint=where,
                    certificate_file=d.key_file,
                    key_file=None,
                    ca_file=fixture.root_ca_file,
                    mqtt5=not args.mqtt311,
                )
            )
            for d in fixture.devices
        ]
        bare: list[Sample] = []
        ours: list[Sample] = []

        async def run() -> None:
            for _ in range(args.rounds):
                bare.append(
                    await asyncio.to_thread(_bare_round, devices, not args.mqtt311, args.in_flight)
                )
                await asyncio.sleep(SETTLE_S)
                ours.append(await _engine_round(devices, args.in_flight))
                await asyncio.sleep(SETTLE_S)

        if args.uvloop:
            import uvloop

            uvloop.run(run())
        else:
            asyncio.run(run())
    version = "MQTT 3.1.1" if args.mqtt311 else "MQTT 5"
    loop = "uvloop" if args.uvloop else "asyncio"
    broker_name = "mosquitto" if args.broker == "mosquitto" else "emulator --no-limits"
    print(
        f"{args.devices} devices, {args.in_flight} in flight, {version}, {loop}, "
        f"awscrt threads={args.threads}, {args.rounds} rounds, {broker_name} (subprocess)"
    )
    bare_rate, bare_cpu = _summary("bare", bare)
    our_rate, our_cpu = _summary("engine", ours)
    print(
        f"  ratio engine/bare: connects/s {our_rate / bare_rate:.2f}, "
        f"CPU/connect {our_cpu / bare_cpu:.2f}"
    )


if __name__ == "__main__":
    main()
