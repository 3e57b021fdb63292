"""The broker benchmark's three measurements, run by the load generator against one broker.

* :func:`handshakes`: K connects (TLS + CONNECT/CONNACK, then DISCONNECT), N in flight.
* :func:`throughput`: one publisher, one subscriber, 100-byte payloads, QoS 0 or 1.
* :func:`hold_idle`: C clients connected and idle; the broker's RSS before and after.

CPU is read from /proc around each measured window for three parties: the broker process, this
generator process, and everything else on the machine (other people's work shows up there and
makes a sample suspect).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.broker_clients import Client, Publisher, Subscriber, open_client
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import ProtocolVersion, QoS, Subscribe, Subscription
from fleet_sim.transport.tls_protocol import ReadBuffer

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (from /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds used during a measured window."""

    seconds: float
    broker: float
    generator: float
    others: float

    def share(self, cpu: float) -> str:
        """``cpu`` as a percentage of one core over the window."""
        return f"{cpu / self.seconds:.0%}"

    def describe(self) -> str:
        """``broker 98%, generator 60%, others 3%`` (of one core each)."""
        return (
            f"broker CPU {self.share(self.broker)}, generator {self.share(self.generator)}, "
            f"others {self.share(self.others)}"
        )


class Meter:
    """Reads the three CPU counters at the start and end of a window."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        return (
            time.perf_counter(),
            cpu_seconds(self.broker_pid),
            time.process_time(),
            machine_busy_seconds(),
        )

    def restart(self) -> None:
        """Start the window now."""
        self._start = self._read()

    def stop(self) -> Usage:
        """End the window."""
        end = self._read()
        wall, broker, generator, busy = (b - a for a, b in zip(self._start, end, strict=True))
        return Usage(wall, broker, generator, max(0.0, busy - broker - generator))


# --------------------------------------------------------------------------- handshakes


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """Connections made (TLS handshake + CONNECT/CONNACK, then closed)."""

    ok: int
    failed: int
    usage: Usage
    tls: str

    @property
    def rate(self) -> float:
        """Accepted connects per second."""
        return self.ok / self.usage.seconds


async def handshakes(
    contexts: Sequence[tuple[str, ssl.SSLContext]],
    port: int,
    in_flight: int,
    broker_pid: int,
    time_limit_s: float,
) -> HandshakeResult:
    """Connect every (client id, context) once, at most ``in_flight`` at a time."""
    loop = asyncio.get_running_loop()
    read_buffer = ReadBuffer()
    gate = asyncio.Semaphore(in_flight)
    failures: list[BaseException] = []
    tls_facts: list[str] = []
    deadline = time.monotonic() + time_limit_s

    async def one(client_id: str, context: ssl.SSLContext) -> bool:
        async with gate:
            if time.monotonic() > deadline:
                return False
            client = Client(loop, client_id, keep_alive=60)
            try:
                await open_client(client, context, port, read_buffer)
            except (OSError, TimeoutError, ssl.SSLError) as error:
                failures.append(error)
                return False
            if not tls_facts and client.tls is not None:
                obj = client.tls.ssl_object
                cipher = obj.cipher()
                tls_facts.append(f"{obj.version()} {cipher[0] if cipher else '?'}")
            client.close()
            return True

    meter = Meter(broker_pid)
    results = await asyncio.gather(*(one(cid, ctx) for cid, ctx in contexts))
    usage = meter.stop()
    await asyncio.sleep(0.2)  # let the last closes go out
    if failures:
        print(f"    {len(failures)} failed connects, first: {failures[0]!r}")
    ok = sum(results)
    return HandshakeResult(ok, len(results) - ok, usage, tls_facts[0] if tls_facts else "")


# --------------------------------------------------------------------------- throughput


@dataclass(frozen=True, slots=True)
class ThroughputResult:
    """Messages received by the subscriber within the measured window."""

    qos: int
    window: int
    received: int
    usage: Usage
    published: int
    delivered_total: int

    @property
    def rate(self) -> float:
        """Messages per second through the broker."""
        return self.received / self.usage.seconds


async def throughput(
    contexts: Sequence[tuple[str, ssl.SSLContext]],
    port: int,
    *,
    qos: int,
    seconds: float,
    window: int,
    max_inflight: int,
    broker_pid: int,
    warmup_s: float = 0.5,
) -> ThroughputResult:
    """One publisher and one subscriber on ``bench/q<qos>`` for ``seconds``."""
    loop = asyncio.get_running_loop()
    read_buffer = ReadBuffer()
    topic = f"bench/q{qos}"
    (pub_id, pub_ctx), (sub_id, sub_ctx) = contexts[0], contexts[1]
    subscriber = Subscriber(loop, sub_id)
    await open_client(subscriber, sub_ctx, port, read_buffer)
    subscribe = Subscribe(
        packet_id=1, subscriptions=(Subscription(topic_filter=topic, qos=QoS(qos)),)
    )
    subscriber.send(encode(subscribe, ProtocolVersion.MQTT_3_1_1))
    first, body = await subscriber.next_frame()
    if first != 0x90 or body[-1] != qos:
        raise RuntimeError(f"SUBSCRIBE {topic} QoS {qos} refused: {first:#x} {body!r}")
    publisher = Publisher(loop, pub_id, topic, qos, window, max_inflight)
    await open_client(publisher, pub_ctx, port, read_buffer)
    subscriber.publisher, publisher.subscriber = publisher, subscriber
    try:
        publisher.running = True
        publisher.pump()
        await asyncio.sleep(warmup_s)
        received0 = subscriber.received
        meter = Meter(broker_pid)
        await asyncio.sleep(seconds)
        received1 = subscriber.received
        usage = meter.stop()
        publisher.running = False
        for _ in range(60):  # up to 3 s for the last messages
            if subscriber.received >= publisher.sent:
                break
            await asyncio.sleep(0.05)
    finally:
        publisher.close()
        subscriber.close()
    if received1 == received0:
        raise RuntimeError(f"no message went through the broker (QoS {qos})")
    return ThroughputResult(
        qos, window, received1 - received0, usage, publisher.sent, subscriber.received
    )


# --------------------------------------------------------------------------- idle connections


@dataclass(frozen=True, slots=True)
class IdleResult:
    """Broker RSS before and while ``held`` connections are open."""

    held: int
    failed: int
    rss_before_kb: int
    rss_after_kb: int
    connect_seconds: float

    @property
    def per_connection_kb(self) -> float:
        """RSS growth per held connection, in KB (1000 bytes)."""
        return (self.rss_after_kb - self.rss_before_kb) * 1024 / 1000 / max(1, self.held)


async def hold_idle(
    devices: Sequence[tuple[str, Callable[[], ssl.SSLContext]]],
    port: int,
    in_flight: int,
    broker_pid: int,
    settle_s: float,
    time_limit_s: float,
) -> IdleResult:
    """Connect every device and keep it connected; read the broker's RSS before and after."""
    loop = asyncio.get_running_loop()
    read_buffer = ReadBuffer()
    gate = asyncio.Semaphore(in_flight)
    held: list[Client] = []
    failures: list[BaseException] = []
    deadline = time.monotonic() + time_limit_s

    async def one(client_id: str, make_context: Callable[[], ssl.SSLContext]) -> None:
        async with gate:
            if time.monotonic() > deadline:
                return
            client = Client(loop, client_id, keep_alive=1200)
            try:
                held.append(await open_client(client, make_context(), port, read_buffer))
            except (OSError, TimeoutError, ssl.SSLError) as error:
                failures.append(error)

    before = rss_kb(broker_pid)
    began = time.perf_counter()
    try:
        await asyncio.gather(*(one(cid, make) for cid, make in devices))
        connect_seconds = time.perf_counter() - began
        await asyncio.sleep(settle_s)
        alive = sum(1 for client in held if not client.closed.done())
        after = rss_kb(broker_pid)
    finally:
        for client in held:
            if client.tls is not None:
                client.tls.abort()
        await asyncio.sleep(0.5)
    if failures:
        print(f"    {len(failures)} failed connects, first: {failures[0]!r}")
    return IdleResult(alive, len(devices) - alive, before, after, connect_seconds)
