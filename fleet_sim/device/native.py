"""The native device engine's MQTT connection: our sans-IO client session over our TLS protocol.

:class:`NativeConnection` drives a :class:`~fleet_sim.mqtt.client.ClientSession` over a
:class:`~fleet_sim.transport.tls_protocol.TlsProtocol` on a plain TCP transport, so the connect
path is timed phase by phase (TCP connect, TLS handshake, CONNECT→CONNACK) and every protocol
signal (no CONNACK, reason codes, server DISCONNECT) reaches the caller as a classified error
with a stable ``failure`` name (see :mod:`fleet_sim.errors`).

Writes are coalesced: commands issued in one loop iteration leave in one TLS write.
Durations are measured on the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Sequence

from fleet_sim.device.link import ConnectTimings, Endpoint
from fleet_sim.errors import (
    ConnectionFailed,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    FleetSimError,
    OperationRejected,
    OperationTimeout,
    TlsHandshakeFailed,
)
from fleet_sim.mqtt import events as ev
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import Publish, QoS, Subscription
from fleet_sim.transport.tls_protocol import ReadBuffer, TlsProtocol

#: TLS alerts that mean "the server refused our certificate".
_CERT_REJECTED = (
    "ALERT_BAD_CERTIFICATE",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_UNSUPPORTED_CERTIFICATE",
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_ACCESS_DENIED",
    "ALERT_DECRYPT_ERROR",
)


def classify_tls_error(error: BaseException | None) -> str:
    """The failure name of a TLS-level error: our certificate refused, or anything else."""
    if isinstance(error, ssl.SSLError) and not isinstance(error, ssl.SSLCertVerificationError):
        reason = error.reason or str(error)
        if any(marker in reason for marker in _CERT_REJECTED):
            return "tls_cert_rejected"
    return "tls_handshake_failed"


class NativeConnection:
    """One device's MQTT-over-TLS connection, driven on the running event loop."""

    def __init__(
        self,
        session: ClientSession,
        endpoint: Endpoint,
        context: ssl.SSLContext,
        *,
        read_buffer: ReadBuffer,
        on_message: Callable[[Publish], None] | None = None,
    ) -> None:
        self.session = session
        self._endpoint = endpoint
        self._context = context
        self._read_buffer = read_buffer
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._tls: TlsProtocol | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._connack: asyncio.Future[None] | None = None
        self._publishes: dict[int, tuple[asyncio.Future[int], float]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._subscribes: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._connected = False
        self._closed: asyncio.Future[FleetSimError | None] = self._loop.create_future()

    @property
    def closed(self) -> asyncio.Future[FleetSimError | None]:
        """Resolves when the connection ends: None for our own disconnect, else the error."""
        return self._closed

    @property
    def connected(self) -> bool:
        """CONNACK received and not closed since."""
        return self._connected

    # ------------------------------------------------------------------ connect

    async def connect(self, *, timeout_s: float) -> ConnectTimings:
        """TCP, TLS, CONNECT→CONNACK, each timed.

        Raises:
            ConnectionFailed: with ``failure`` ``dns``, ``tcp_refused``, ``tcp_timeout``,
                ``tcp_error``, ``tls_handshake_failed``, ``tls_cert_rejected``,
                ``closed_before_connack``, ``connack_refused:<code>`` or ``connect_timeout``.
        """
        loop = self._loop
        endpoint, context = self._endpoint, self._context
        deadline = loop.time() + timeout_s
        started = loop.time()
        try:
            async with asyncio.timeout_at(deadline):
                await self._open_tcp(endpoint, context)
        except TimeoutError:
            raise ConnectionFailed(
                f"TCP connect to {endpoint.host}:{endpoint.port} timed out",
                phase="tcp",
                failure="tcp_timeout",
            ) from None
        tcp_done = loop.time()
        assert self._tls is not None
        self._handshake = loop.create_future()
        self._tls.start_handshake()
        try:
            async with asyncio.timeout_at(deadline):
                await self._handshake
        except TimeoutError:
            self.abort()
            raise ConnectTimeout("TLS handshake timed out", phase="tls") from None
        tls_done = loop.time()
        self._connack = loop.create_future()
        self.session.connect(tls_done)
        self._flush()
        self._rearm()
        try:
            async with asyncio.timeout_at(deadline):
                await self._connack
        except TimeoutError:
            self.abort()
            raise ConnectTimeout("no CONNACK within the connect timeout", phase="mqtt") from None
        self._connected = True
        done = loop.time()
        return ConnectTimings(
            total_s=done - started,
            tcp_s=tcp_done - started,
            tls_s=tls_done - tcp_done,
            mqtt_s=done - tls_done,
        )

    async def _open_tcp(self, endpoint: Endpoint, context: ssl.SSLContext) -> None:
        server_name = endpoint.server_name
        try:
            await self._loop.create_connection(
                lambda: self._make_protocol(context, server_name), endpoint.host, endpoint.port
            )
        except socket.gaierror as error:
            raise ConnectionFailed(
                f"cannot resolve {endpoint.host}: {error}", phase="dns", failure="dns"
            ) from None
        except ConnectionRefusedError:
            raise ConnectionFailed(
                f"connection refused by {endpoint.host}:{endpoint.port}",
                phase="tcp",
                failure="tcp_refused",
            ) from None
        except OSError as error:
            raise ConnectionFailed(
                f"TCP connect to {endpoint.host}:{endpoint.port} failed: {error}",
                phase="tcp",
                failure="tcp_error",
            ) from None

    def _make_protocol(self, context: ssl.SSLContext, server_name: str | None) -> TlsProtocol:
        self._tls = TlsProtocol(
            context,
            self,
            server_side=False,
            read_buffer=self._read_buffer,
            server_hostname=server_name,
            autostart=False,
        )
        return self._tls

    # ------------------------------------------------------------------ operations

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False, timeout_s: float
    ) -> None:
        """Publish; for QoS 1 wait for the PUBACK.

        Raises:
            OperationRejected: PUBACK with a failure code (``puback_failure:<code>``).
            OperationTimeout: no PUBACK in time (``publish_timeout``).
            ConnectionLost: the connection ended first.
        """
        self._require_open()
        packet_id = self.session.publish(
            topic, payload, qos=qos, retain=retain, now=self._loop.time()
        )
        self._schedule_flush()
        if packet_id is None:
            return
        loop = self._loop
        future: asyncio.Future[int] = loop.create_future()
        deadline = loop.time() + timeout_s
        self._publishes[packet_id] = (future, deadline)
        if self._sweep is None:
            self._sweep = loop.call_at(deadline, self._expire_publishes)
        code = await future
        if code >= 0x80:
            raise OperationRejected(
                f"PUBACK reason 0x{code:02x} for {topic}", operation="puback", reason_code=code
            )

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], *, timeout_s: float
    ) -> tuple[int, ...]:
        """Subscribe and return the SUBACK codes (failures are not raised: callers count them).

        Raises:
            OperationTimeout: no SUBACK in time (``subscribe_timeout``).
            ConnectionLost: the connection ended first.
        """
        self._require_open()
        packet_id = self.session.subscribe(
            [Subscription(topic_filter=f, qos=QoS(q)) for f, q in filters], now=self._loop.time()
        )
        future: asyncio.Future[tuple[int, ...]] = self._loop.create_future()
        self._subscribes[packet_id] = future
        self._schedule_flush()
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            self._subscribes.pop(packet_id, None)
            raise OperationTimeout("no SUBACK in time", operation="subscribe") from None

    async def disconnect(self, *, timeout_s: float = 2.0) -> None:
        """Send DISCONNECT and close (no Will on AWS)."""
        if self._closed.done():
            return
        if self._connected:
            self.session.disconnect(now=self._loop.time())
            self._flush()
        self._finish(None)
        if self._tls is not None:
            self._tls.close()

    def abort(self) -> None:
        """Drop the connection at once (like a device losing power)."""
        self._finish(ConnectionLost("aborted by the simulator", failure="aborted"))
        if self._tls is not None:
            self._tls.abort()

    # ------------------------------------------------------------------ TlsHandler

    def tls_established(self, tls: TlsProtocol) -> None:
        """Handshake done."""
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_result(None)

    def tls_data(self, data: bytes) -> None:
        """Bytes from the server."""
        self.session.receive_data(data, self._loop.time())
        self._process_events()
        self._flush()
        self._rearm()

    def tls_closed(self, error: BaseException | None) -> None:
        """The TCP connection is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        handshake = self._handshake
        if handshake is not None and not handshake.done():
            failure = classify_tls_error(error)
            handshake.set_exception(
                TlsHandshakeFailed(f"TLS handshake failed: {error}", phase="tls", failure=failure)
            )
            self._finish(None)
            return
        if self._connack is not None and not self._connack.done() and error is not None:
            failure = classify_tls_error(error)
            if failure == "tls_cert_rejected":  # TLS 1.3: the server refuses after our Finished
                self._connack.set_exception(
                    TlsHandshakeFailed(
                        f"certificate rejected: {error}", phase="tls", failure=failure
                    )
                )
        self.session.connection_lost(self._loop.time())
        self._process_events()

    def tls_pause_writing(self) -> None:
        """Back-pressure from the socket (not used: publishes are paced by the scenario)."""

    def tls_resume_writing(self) -> None:
        """Back-pressure relieved."""

    # ------------------------------------------------------------------ internals

    def _process_events(self) -> None:
        session = self.session
        while (event := session.next_event()) is not None:
            if isinstance(event, ev.PublishAcknowledged):
                entry = self._publishes.pop(event.packet_id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(event.reason_code)
            elif isinstance(event, ev.MessageReceived):
                if self._on_message is not None:
                    self._on_message(event.publish)
            elif isinstance(event, ev.Subscribed):
                sub = self._subscribes.pop(event.packet_id, None)
                if sub is not None and not sub.done():
                    sub.set_result(event.reason_codes)
            elif isinstance(event, ev.Connected):
                if self._connack is not None and not self._connack.done():
                    self._connack.set_result(None)
            else:
                self._terminal(event)

    def _terminal(self, event: ev.Event) -> None:
        connack = self._connack
        error: FleetSimError
        if isinstance(event, ev.ConnectRefused):
            error = ConnectRefused(
                f"CONNACK refused with 0x{event.reason_code:02x}", reason_code=event.reason_code
            )
        elif isinstance(event, ev.ConnectionClosed) and connack is not None and not connack.done():
            error = ConnectionFailed(
                "the server closed the connection before CONNACK",
                phase="mqtt",
                failure="closed_before_connack",
            )
        elif isinstance(event, ev.Disconnected):
            if not event.by_server:
                return
            error = ConnectionLost(
                f"server DISCONNECT 0x{event.reason_code:02x}",
                reason_code=event.reason_code,
                failure=f"disconnected_by_server:{event.reason_code}",
            )
        elif isinstance(event, ev.KeepAliveTimeout):
            error = ConnectionLost("no PINGRESP in time", failure="keepalive_timeout")
            if self._tls is not None:
                self._tls.abort()
        elif isinstance(event, ev.ProtocolViolation):
            error = ConnectionLost(
                f"protocol violation by the server: {event.message}", failure="protocol_error"
            )
            if self._tls is not None:
                self._tls.abort()
        elif isinstance(event, ev.ConnectionClosed):
            error = ConnectionLost("the server closed the connection", failure="connection_lost")
        else:
            return
        if connack is not None and not connack.done():
            if isinstance(error, ConnectionFailed):
                connack.set_exception(error)
            else:
                connack.set_exception(
                    ConnectionFailed(str(error), phase="mqtt", failure="closed_before_connack")
                )
        self._finish(error)

    def _finish(self, error: FleetSimError | None) -> None:
        self._connected = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lost = error if error is not None else ConnectionLost("disconnected", failure="closed")
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for publish, _ in self._publishes.values():
            if not publish.done():
                publish.set_exception(lost)
        for subscribe in self._subscribes.values():
            if not subscribe.done():
                subscribe.set_exception(lost)
        self._publishes.clear()
        self._subscribes.clear()
        if not self._closed.done():
            self._closed.set_result(error)

    def _expire_publishes(self) -> None:
        """Fail the publishes whose deadline passed; re-arm for the earliest one left."""
        self._sweep = None
        now = self._loop.time()
        earliest = None
        for packet_id, (future, deadline) in list(self._publishes.items()):
            if deadline <= now:
                del self._publishes[packet_id]
                if not future.done():
                    future.set_exception(OperationTimeout("no PUBACK in time", operation="publish"))
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._sweep = self._loop.call_at(earliest, self._expire_publishes)

    def _require_open(self) -> None:
        if not self._connected:
            error = self._closed.result() if self._closed.done() else None
            raise error or ConnectionLost("not connected", failure="not_connected")

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and self._tls is not None:
            self._tls.write(data)

    def _rearm(self) -> None:
        deadline = self.session.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() <= deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.session.handle_timer(self._loop.time())
        self._process_events()
        self._flush()
        if not self._closed.done():
            self._rearm()
