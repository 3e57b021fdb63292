"""The asyncio client stacks of the engine benchmark: a fleetsim engine, and the raw baseline.

Every stack does the same four things, so the driver can run them side by side:
``prepare(count)`` builds per-device TLS material outside any window (timed apart),
``connect(count, in_flight, meter)`` connects that many devices (at most ``in_flight`` at once)
inside a measured window and keeps them, ``publish(...)`` keeps ``window`` QoS 1 publishes in
flight per connected device for a fixed time and counts the PUBACKs, ``disconnect()`` ends them.

- :class:`EngineStack` drives a :class:`~fleet_sim.device.link.Engine` (``native`` or
  ``awscrt``) through its public interface only: ``prepare(LinkSpec)``, ``new_link(None)``,
  ``connect``, ``publish(..., qos=1)`` awaited by ``window`` coroutines per device.
- :class:`RawStack` is the minimal stdlib client: ``asyncio.open_connection(ssl=ctx)``,
  hand-encoded CONNECT / PUBLISH, PUBACKs counted in the byte stream. It answers the PUBACKs of
  one read with one ``writer.write`` of as many new PUBLISHes (what a careful hand-written
  client does; the native engine coalesces the same way), or with ``per_message=True`` with
  one ``writer.write`` per PUBLISH (the naive loop, one TLS record each).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from benchmarks import engine_raw_mqtt as raw
from benchmarks.engine_fixtures import HOST, SERVER_NAME, Fixture, cpu_seconds, listen_drops
from fleet_sim.device.link import DeviceLink, Endpoint, Engine, LinkSpec, PreparedDevice
from fleet_sim.errors import FleetSimError

CONNECT_TIMEOUT_S = 30.0
PUBLISH_TIMEOUT_S = 30.0
#: After a publish window: how long outstanding publishes may take to finish.
DRAIN_S = 10.0
DISCONNECT_WAIT_S = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Measure:
    """Wall time, this process's CPU, the brokers' CPU and SYNs dropped over one window."""

    wall_s: float
    cpu_s: float
    broker_cpu_s: float
    listen_drops: int


class Meter:
    """Takes :class:`Measure` s over windows (process CPU includes every thread)."""

    def __init__(self, broker_pids: Sequence[int]) -> None:
        self._pids = tuple(broker_pids)
        self._start = (0.0, 0.0, 0.0, 0)

    def _now(self) -> tuple[float, float, float, int]:
        broker = sum(cpu_seconds(pid) for pid in self._pids)
        return time.perf_counter(), time.process_time(), broker, listen_drops()

    def start(self) -> None:
        """Open a window."""
        self._start = self._now()

    def stop(self) -> Measure:
        """Close the window."""
        wall, cpu, broker, drops = self._now()
        w0, c0, b0, d0 = self._start
        return Measure(wall - w0, cpu - c0, broker - b0, drops - d0)


@dataclass(frozen=True, slots=True)
class Prep:
    """Preparing ``devices`` devices (TLS contexts / clients), outside any window."""

    devices: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_ms_per_device(self) -> float:
        """Client CPU milliseconds per prepared device."""
        return self.cpu_s / max(1, self.devices) * 1000


@dataclass(frozen=True, slots=True)
class ConnectSample:
    """One connect window of one stack."""

    devices: int
    connected: int
    measure: Measure
    latencies_s: tuple[float, ...]
    failures: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Successful connects per second."""
        return self.connected / self.measure.wall_s

    @property
    def cpu_ms(self) -> float:
        """Client CPU milliseconds per successful connect."""
        return self.measure.cpu_s / max(1, self.connected) * 1000


@dataclass(frozen=True, slots=True)
class PublishSample:
    """One publish window of one stack."""

    devices: int
    acked: int
    measure: Measure
    errors: int

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.measure.wall_s

    @property
    def cpu_us(self) -> float:
        """Client CPU microseconds per acknowledged message."""
        return self.measure.cpu_s / max(1, self.acked) * 1e6


def timed_prep(count: int, build: Callable[[int], T]) -> tuple[list[T], Prep]:
    """Call ``build(index)`` for each device, timing the lot."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    built = [build(index) for index in range(count)]
    return built, Prep(count, time.process_time() - cpu0, time.perf_counter() - wall0)


def topic_of(client_id: str) -> str:
    """The topic a device publishes to (no subscribers: mosquitto only acknowledges)."""
    return f"bench/{client_id}"


async def _connect_all(
    count: int, in_flight: int, meter: Meter, connect_one: Callable[[int], Awaitable[T]]
) -> tuple[list[T], ConnectSample]:
    """Run ``connect_one(index)`` for ``count`` devices, ``in_flight`` at once, in a window."""
    slots = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    failures: list[str] = []

    async def one(index: int) -> T | None:
        async with slots:
            began = time.perf_counter()
            try:
                connection = await connect_one(index)
            except FleetSimError as error:
                failures.append(getattr(error, "failure", type(error).__name__))
                return None
            except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as error:
                failures.append(type(error).__name__)
                return None
            latencies.append(time.perf_counter() - began)
            return connection

    meter.start()
    results = await asyncio.gather(*(one(index) for index in range(count)))
    measure = meter.stop()
    connected = [c for c in results if c is not None]
    sample = ConnectSample(count, len(connected), measure, tuple(latencies), tuple(failures))
    return connected, sample


# --------------------------------------------------------------------------- fleetsim engines


class EngineStack:
    """A fleetsim engine, used only through the engine interface."""

    def __init__(
        self,
        name: str,
        engine: Engine,
        fixture: Fixture,
        port: int,
        *,
        max_tls_version: ssl.TLSVersion | None,
    ) -> None:
        self.name = name
        self._engine = engine
        self._fixture = fixture
        self._endpoint = Endpoint(HOST, port, SERVER_NAME)
        self._max_tls = max_tls_version
        self._devices: list[PreparedDevice] = []
        self._links: list[DeviceLink] = []

    def prepare(self, count: int) -> Prep:
        """``engine.prepare(LinkSpec(...))`` for each device."""
        fixture = self._fixture

        def build(index: int) -> PreparedDevice:
            spec = LinkSpec(
                client_id=fixture.client_id(index),
                endpoint=self._endpoint,
                certificate_file=fixture.pem_file(index),
                key_file=None,
                ca_file=fixture.ca_file,
                max_tls_version=self._max_tls,
            )
            return self._engine.prepare(spec)

        self._devices, prep = timed_prep(count, build)
        return prep

    async def connect(self, count: int, in_flight: int, meter: Meter) -> ConnectSample:
        """``new_link(None).connect()`` for the first ``count`` devices."""
        devices = self._devices

        async def connect_one(index: int) -> DeviceLink:
            link = devices[index].new_link(None)
            await link.connect(timeout_s=CONNECT_TIMEOUT_S)
            return link

        self._links, sample = await _connect_all(count, in_flight, meter, connect_one)
        return sample

    async def publish(
        self, duration_s: float, window: int, payload: bytes, meter: Meter
    ) -> PublishSample:
        """``window`` coroutines per device, each awaiting QoS 1 publishes back to back."""
        acked = 0
        errors = 0
        running = True

        async def worker(link: DeviceLink, topic: str) -> None:
            nonlocal acked, errors
            while running:
                try:
                    await link.publish(topic, payload, qos=1, timeout_s=PUBLISH_TIMEOUT_S)
                except FleetSimError:
                    errors += 1
                    return
                acked += 1

        topics = [topic_of(self._fixture.client_id(i)) for i in range(len(self._links))]
        meter.start()
        tasks = [
            asyncio.create_task(worker(link, topic))
            for link, topic in zip(self._links, topics, strict=True)
            for _ in range(window)
        ]
        await asyncio.sleep(duration_s)
        count, measure = acked, meter.stop()
        running = False
        await _finish(tasks)
        return PublishSample(len(self._links), count, measure, errors)

    async def disconnect(self) -> None:
        """Disconnect every link."""
        links, self._links = self._links, []
        if links:
            await _bounded(asyncio.gather(*(link.disconnect() for link in links)))

    def release(self) -> None:
        """Forget the prepared devices."""
        self._devices = []


# --------------------------------------------------------------------------- raw stdlib client


class RawStack:
    """The minimal stdlib-asyncio client (stock ``asyncio`` SSL transport)."""

    def __init__(self, fixture: Fixture, port: int, *, per_message: bool = False) -> None:
        self.name = "raw asyncio, 1 write/msg" if per_message else "raw asyncio"
        self._per_message = per_message
        self._fixture = fixture
        self._port = port
        self._contexts: list[ssl.SSLContext] = []
        self._streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def prepare(self, count: int) -> Prep:
        """One client context per device: TLS 1.2 only, the test CA, the device cert + key."""
        fixture = self._fixture

        def build(index: int) -> ssl.SSLContext:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.load_verify_locations(cafile=str(fixture.ca_file))
            context.load_cert_chain(str(fixture.pem_file(index)))
            return context

        self._contexts, prep = timed_prep(count, build)
        return prep

    async def connect(self, count: int, in_flight: int, meter: Meter) -> ConnectSample:
        """open_connection + CONNECT + read CONNACK for the first ``count`` devices."""
        contexts, port, fixture = self._contexts, self._port, self._fixture

        async def connect_one(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(
                    HOST, port, ssl=contexts[index], server_hostname=SERVER_NAME
                )
                writer.write(raw.connect_packet(fixture.client_id(index)))
                head = await reader.readexactly(2)
                rest = await reader.readexactly(head[1])
            if not raw.connack_ok(head + rest):
                writer.close()
                raise OSError(f"CONNACK refused: {(head + rest).hex()}")
            return reader, writer

        self._streams, sample = await _connect_all(count, in_flight, meter, connect_one)
        return sample

    async def publish(
        self, duration_s: float, window: int, payload: bytes, meter: Meter
    ) -> PublishSample:
        """Per device: ``window`` PUBLISHes out, then one new PUBLISH per PUBACK read."""
        acked = 0
        errors = 0
        running = True
        per_message = self._per_message

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, topic: str
        ) -> None:
            nonlocal acked, errors
            encoder = raw.PublishEncoder(topic, payload)
            buffer = bytearray()
            writer.write(encoder.batch(window))
            outstanding = window
            while outstanding:
                data = await reader.read(65536)
                if not data:
                    errors += 1
                    return
                buffer += data
                count = raw.count_pubacks(buffer)
                acked += count
                outstanding -= count
                if running and count:
                    if per_message:
                        for _ in range(count):
                            writer.write(encoder.batch(1))
                    else:
                        writer.write(encoder.batch(count))
                    outstanding += count

        topics = [topic_of(self._fixture.client_id(i)) for i in range(len(self._streams))]
        meter.start()
        tasks = [
            asyncio.create_task(pump(reader, writer, topic))
            for (reader, writer), topic in zip(self._streams, topics, strict=True)
        ]
        await asyncio.sleep(duration_s)
        count, measure = acked, meter.stop()
        running = False
        await _finish(tasks)
        return PublishSample(len(self._streams), count, measure, errors)

    async def disconnect(self) -> None:
        """DISCONNECT and close every connection."""
        streams, self._streams = self._streams, []
        for _, writer in streams:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(raw.DISCONNECT)
                writer.close()
        waits = [asyncio.ensure_future(writer.wait_closed()) for _, writer in streams]
        if waits:
            await asyncio.wait(waits, timeout=DISCONNECT_WAIT_S)
            for wait in waits:
                if not wait.done():
                    wait.cancel()
                elif not wait.cancelled():
                    wait.exception()  # reset by peer etc.: retrieved, not raised

    def release(self) -> None:
        """Forget the contexts."""
        self._contexts = []


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Let publish workers finish their outstanding publishes (bounded), then cancel the rest."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _bounded(awaitable: Awaitable[object]) -> None:
    with contextlib.suppress(TimeoutError, FleetSimError):
        async with asyncio.timeout(DISCONNECT_WAIT_S):
            await awaitable
