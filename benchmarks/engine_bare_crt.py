"""Bare awscrt for the engine benchmark: what an AWS IoT Device SDK v2 user writes, no fleetsim.

Each device is an MQTT 5 client from ``awsiot.mqtt5_client_builder.mtls_from_path`` (its own TLS
context, built in :meth:`BareCrtStack.prepare`, outside any window) on one shared client
bootstrap with ``threads`` event-loop threads (the awscrt engine's default is 1; the same count
is given to both, so the comparison is the wrapper's cost). Clients are started from a plain
thread, at most ``in_flight`` connecting at once; CONNACKs and PUBACKs are counted in awscrt's
callback threads; a PUBACK callback issues the device's next publish. No asyncio.

``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` must be unset in this process (the driver does it): awscrt
re-reads that bundle for every TLS context (measurements.md §1).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any

from awscrt import io, mqtt5
from awsiot import mqtt5_client_builder

from benchmarks.engine_fixtures import SERVER_NAME, Fixture
from benchmarks.engine_stacks import (
    CONNECT_TIMEOUT_S,
    DISCONNECT_WAIT_S,
    DRAIN_S,
    ConnectSample,
    Meter,
    Prep,
    PublishSample,
    timed_prep,
    topic_of,
)

KEEP_ALIVE_S = 60


class _ConnectRound:
    """CONNACK bookkeeping of one connect window (callbacks come from awscrt's threads)."""

    def __init__(self, count: int, in_flight: int) -> None:
        self.slots = threading.BoundedSemaphore(in_flight)
        self.started = [0.0] * count
        self.settled = bytearray(count)
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.left = count
        self.lock = threading.Lock()
        self.done = threading.Event()

    def settle(self, index: int, failure: str | None) -> None:
        now = time.perf_counter()
        with self.lock:
            if index >= len(self.settled) or self.settled[index]:
                return
            self.settled[index] = 1
            if failure is None:
                self.latencies.append(now - self.started[index])
            else:
                self.failures.append(failure)
            self.left -= 1
            if self.left == 0:
                self.done.set()
        self.slots.release()


class BareCrtStack:
    """awsiotsdk MQTT 5 clients used directly."""

    name = "bare awscrt"

    def __init__(self, fixture: Fixture, port: int, *, threads: int) -> None:
        self._fixture = fixture
        self._port = port
        group = io.EventLoopGroup(threads)
        self._bootstrap = io.ClientBootstrap(group, io.DefaultHostResolver(group))
        self._clients: list[Any] = []
        self._round: _ConnectRound | None = None
        self._connected: list[int] = []
        self._started = 0
        self._stopped = threading.Semaphore(0)

    # ------------------------------------------------------------------ callbacks

    def _success(self, index: int, _data: object) -> None:
        if self._round is not None:
            self._round.settle(index, None)

    def _failure(self, index: int, data: Any) -> None:
        if self._round is not None:
            self._round.settle(index, type(getattr(data, "exception", data)).__name__)

    def _on_stopped(self, _data: object) -> None:
        self._stopped.release()

    # ------------------------------------------------------------------ stack

    def prepare(self, count: int) -> Prep:
        """Build each device's client with ``mtls_from_path`` (TLS context included)."""
        fixture = self._fixture

        def build(index: int) -> Any:
            return mqtt5_client_builder.mtls_from_path(
                endpoint=SERVER_NAME,
                port=self._port,
                cert_filepath=str(fixture.cert_file(index)),
                pri_key_filepath=str(fixture.key_file(index)),
                ca_filepath=str(fixture.ca_file),
                client_id=fixture.client_id(index),
                client_bootstrap=self._bootstrap,
                keep_alive_interval_sec=KEEP_ALIVE_S,
                on_lifecycle_connection_success=lambda data, i=index: self._success(i, data),
                on_lifecycle_connection_failure=lambda data, i=index: self._failure(i, data),
                on_lifecycle_stopped=self._on_stopped,
            )

        self._clients, prep = timed_prep(count, build)
        return prep

    async def connect(self, count: int, in_flight: int, meter: Meter) -> ConnectSample:
        """``client.start()`` the first ``count`` clients, ``in_flight`` at once."""
        return await asyncio.to_thread(self._connect_blocking, count, in_flight, meter)

    def _connect_blocking(self, count: int, in_flight: int, meter: Meter) -> ConnectSample:
        round_ = self._round = _ConnectRound(count, in_flight)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S + count / 10
        meter.start()
        for index in range(count):
            if not round_.slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
            round_.started[index] = time.perf_counter()
            self._clients[index].start()
        round_.done.wait(max(0.0, deadline - time.monotonic()))
        measure = meter.stop()
        with round_.lock:
            self._connected = [i for i in range(count) if round_.settled[i]]
            latencies, failures = tuple(round_.latencies), tuple(round_.failures)
        self._round = None
        self._started = sum(1 for t in round_.started if t)
        return ConnectSample(count, len(latencies), measure, latencies, failures)

    async def publish(
        self, duration_s: float, window: int, payload: bytes, meter: Meter
    ) -> PublishSample:
        """``window`` publishes per client; each PUBACK callback publishes the next one."""
        return await asyncio.to_thread(self._publish_blocking, duration_s, window, payload, meter)

    def _publish_blocking(
        self, duration_s: float, window: int, payload: bytes, meter: Meter
    ) -> PublishSample:
        lock = threading.Lock()
        state = {"acked": 0, "errors": 0, "outstanding": 0}
        running = [True]
        drained = threading.Event()

        def start_pump(client: Any, packet: Any) -> None:
            def done(future: Future[Any]) -> None:
                error = future.exception()
                ok = error is None and future.result().puback.reason_code < 0x80
                with lock:
                    state["acked" if ok else "errors"] += 1
                    again = running[0] and ok
                    if not again:
                        state["outstanding"] -= 1
                        if state["outstanding"] == 0 and not running[0]:
                            drained.set()
                if again:
                    client.publish(packet).add_done_callback(done)

            with lock:
                state["outstanding"] += window
            for _ in range(window):
                client.publish(packet).add_done_callback(done)

        clients = [self._clients[i] for i in self._connected]
        packets = [
            mqtt5.PublishPacket(
                topic=topic_of(self._fixture.client_id(i)),
                payload=payload,
                qos=mqtt5.QoS.AT_LEAST_ONCE,
            )
            for i in self._connected
        ]
        meter.start()
        for client, packet in zip(clients, packets, strict=True):
            start_pump(client, packet)
        time.sleep(duration_s)
        with lock:
            acked = state["acked"]
            measure = meter.stop()
            running[0] = False
            if state["outstanding"] == 0:
                drained.set()
        drained.wait(DRAIN_S)
        return PublishSample(len(clients), acked, measure, state["errors"])

    async def disconnect(self) -> None:
        """Stop every started client and wait (bounded) until they say they stopped."""
        await asyncio.to_thread(self._disconnect_blocking)

    def _disconnect_blocking(self) -> None:
        started, self._stopped = self._started, threading.Semaphore(0)
        for client in self._clients[:started]:
            client.stop(mqtt5.DisconnectPacket())
        deadline = time.monotonic() + DISCONNECT_WAIT_S
        for _ in range(started):
            if not self._stopped.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
        self._connected = []
        self._started = 0

    def release(self) -> None:
        """Forget the clients."""
        self._clients = []
