"""Minimal MQTT 3.1.1 clients over mutual TLS 1.2 for the broker benchmark's load generator.

Each client is a :class:`~fleet_sim.transport.tls_protocol.TlsProtocol` (TLS through memory
BIOs over a plain asyncio transport, no per-connection read buffer) driving a tiny MQTT state
machine. Packets are built once by :func:`fleet_sim.mqtt.codec.encode`; the hot paths (counting
PUBLISHes, answering them with PUBACKs, counting PUBACKs) walk the frame headers by hand, so
the generator spends well under a microsecond per message and the broker stays the limit.
Both brokers get exactly these clients, the same device certificates and the same cipher.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import cast

from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import (
    Connect,
    Disconnect,
    ProtocolVersion,
    Publish,
    QoS,
)
from fleet_sim.transport.tls_protocol import ReadBuffer, TlsProtocol

V311 = ProtocolVersion.MQTT_3_1_1
DISCONNECT = encode(Disconnect(), V311)
#: One TLS 1.2 suite for both brokers (AWS IoT offers it; no broker-side preference applies).
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
SERVER_NAME = "localhost"
HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 30.0
PAYLOAD = bytes(range(100))


class BenchTls(TlsProtocol):
    """:class:`TlsProtocol` that also accepts uvloop's transports (``TCPTransport`` is not an
    ``asyncio.Transport`` subclass, which ``TlsProtocol.connection_made`` asserts)."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the client handshake."""
        self.transport = cast(asyncio.Transport, transport)
        if self._handshake():
            self._drain_plaintext()


def client_context(root_ca_file: Path, device_file: Path) -> ssl.SSLContext:
    """A TLS 1.2 client context presenting one device's certificate (cert and key in one
    file) and trusting the brokers' root CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHER)
    context.load_verify_locations(cafile=str(root_ca_file))
    context.load_cert_chain(str(device_file))
    return context


class Client:
    """One MQTT client (a ``TlsHandler``): CONNECT on handshake, then frames to ``on_frames``."""

    __slots__ = ("_connect", "closed", "connack", "frames", "frames_ready", "pending", "tls")

    def __init__(self, loop: asyncio.AbstractEventLoop, client_id: str, keep_alive: int) -> None:
        self._connect = encode(Connect(client_id=client_id, keep_alive=keep_alive), V311)
        self.connack: asyncio.Future[int] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.tls: TlsProtocol | None = None
        self.pending = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.frames_ready: asyncio.Event | None = None

    # ------------------------------------------------------------------ TlsHandler

    def tls_established(self, tls: TlsProtocol) -> None:
        """Send CONNECT."""
        self.tls = tls
        tls.write(self._connect)

    def tls_data(self, data: bytes) -> None:
        """CONNACK first, then whatever the subclass does with frames."""
        if not self.connack.done():
            self.pending += data
            if len(self.pending) < 4:
                return
            if self.pending[0] != 0x20:
                self.connack.set_exception(RuntimeError(f"not a CONNACK: {self.pending[:4]!r}"))
                return
            self.connack.set_result(self.pending[3])
            del self.pending[:4]
            if not self.pending:
                return
            data = bytes(self.pending)
            self.pending.clear()
        self.on_data(data)

    def tls_closed(self, error: BaseException | None) -> None:
        """Resolve the futures."""
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(f"closed before CONNACK: {error!r}"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self.frames_ready is not None:
            self.frames_ready.set()

    def tls_pause_writing(self) -> None:
        """Not used: flow control is by message window."""

    def tls_resume_writing(self) -> None:
        """Not used."""

    # ------------------------------------------------------------------ frames

    def on_data(self, data: bytes) -> None:
        """Slow path (set-up): collect whole frames as (first byte, body)."""
        buf = self.pending
        buf += data
        pos, size = 0, len(buf)
        while pos + 2 <= size:
            length, shift, index = 0, 0, pos + 1
            while index < size and buf[index] & 0x80:
                length |= (buf[index] & 0x7F) << shift
                shift += 7
                index += 1
            if index >= size:
                break
            length |= buf[index] << shift
            end = index + 1 + length
            if end > size:
                break
            self.frames.append((buf[pos], bytes(buf[index + 1 : end])))
            pos = end
        del buf[:pos]
        if self.frames and self.frames_ready is not None:
            self.frames_ready.set()

    async def next_frame(self) -> tuple[int, bytes]:
        """The next set-up frame (within :data:`CONNECT_TIMEOUT_S`)."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            while not self.frames:
                if self.closed.done():
                    raise ConnectionError("the broker closed the connection")
                self.frames_ready = asyncio.Event()
                await self.frames_ready.wait()
        return self.frames.pop(0)

    def send(self, data: bytes) -> None:
        """Write raw MQTT bytes."""
        assert self.tls is not None
        self.tls.write(data)

    def close(self) -> None:
        """DISCONNECT and close (close_notify, FIN)."""
        if self.tls is not None and not self.closed.done():
            self.tls.write(DISCONNECT)
            self.tls.close()


async def open_client(
    client: Client, context: ssl.SSLContext, port: int, read_buffer: ReadBuffer
) -> Client:
    """TCP connect, TLS handshake, CONNECT, CONNACK 0; raises otherwise."""
    loop = asyncio.get_running_loop()

    def factory() -> TlsProtocol:
        return BenchTls(
            context,
            client,
            server_side=False,
            read_buffer=read_buffer,
            server_hostname=SERVER_NAME,
        )

    transport, _ = await loop.create_connection(factory, HOST, port)
    try:
        code = await asyncio.wait_for(client.connack, CONNECT_TIMEOUT_S)
    except BaseException:
        transport.abort()
        raise
    if code != 0:
        transport.abort()
        raise ConnectionError(f"CONNACK return code {code}")
    return client


class Publisher(Client):
    """Pipelines PUBLISHes to one topic, keeping ``window`` messages not yet received by the
    subscriber (and, for QoS 1, at most ``max_inflight`` without PUBACK)."""

    __slots__ = ("_batch", "_packet", "_prefix", "acked", "max_inflight", "running", "sent",
                 "subscriber", "window")  # fmt: skip

    def __init__(self, loop: asyncio.AbstractEventLoop, client_id: str, topic: str, qos: int,
                 window: int, max_inflight: int) -> None:  # fmt: skip
        super().__init__(loop, client_id, keep_alive=60)
        self.window = window
        self.max_inflight = max_inflight
        self.sent = 0
        self.acked = 0
        self.running = False
        self.subscriber: Subscriber | None = None
        if qos == 0:
            self._packet = encode(Publish(topic=topic, payload=PAYLOAD), V311)
            self._batch = self._packet * 64
            self._prefix = b""
        else:
            sample = encode(
                Publish(topic=topic, payload=PAYLOAD, qos=QoS.AT_LEAST_ONCE, packet_id=1), V311
            )
            cut = len(sample) - len(PAYLOAD) - 2
            self._prefix = sample[:cut]
            self._packet = b""
            self._batch = b""

    def pump(self) -> None:
        """Send as many messages as the windows allow, in one write."""
        if not self.running or self.subscriber is None or self.tls is None:
            return
        room = self.window - (self.sent - self.subscriber.received)
        if self._prefix:
            room = min(room, self.max_inflight - (self.sent - self.acked))
            if room <= 0:
                return
            prefix, sent = self._prefix, self.sent
            parts = []
            for n in range(sent, sent + room):
                pid = n % 65535 + 1
                parts.append(prefix + pid.to_bytes(2, "big") + PAYLOAD)
            self.sent = sent + room
            self.tls.write(b"".join(parts))
            return
        if room < 64:
            return
        batches = room // 64
        self.sent += batches * 64
        self.tls.write(self._batch * batches)

    def on_data(self, data: bytes) -> None:
        """Count PUBACKs (4-byte frames) and refill."""
        buf = self.pending
        buf += data
        pos, size, acks = 0, len(buf), 0
        while pos + 2 <= size:
            end = pos + 2 + buf[pos + 1]  # every frame we get is < 128 bytes
            if end > size:
                break
            if buf[pos] == 0x40:
                acks += 1
            pos = end
        del buf[:pos]
        self.acked += acks
        self.pump()


class Subscriber(Client):
    """Counts the PUBLISHes it receives; answers QoS 1 ones with PUBACK."""

    __slots__ = ("publisher", "received")

    def __init__(self, loop: asyncio.AbstractEventLoop, client_id: str) -> None:
        super().__init__(loop, client_id, keep_alive=60)
        self.received = 0
        self.publisher: Publisher | None = None

    def on_data(self, data: bytes) -> None:
        """Fast path once subscribed; the set-up path before."""
        if self.publisher is None:
            super().on_data(data)
            return
        buf = self.pending
        buf += data
        pos, size, count = 0, len(buf), 0
        acks: list[bytes] = []
        while pos + 2 <= size:
            first = buf[pos]
            length = buf[pos + 1]
            head = 2
            if length & 0x80:  # 2-byte remaining length (not for 100-byte payloads)
                if pos + 3 > size:
                    break
                length = (length & 0x7F) | buf[pos + 2] << 7
                head = 3
            end = pos + head + length
            if end > size:
                break
            if first & 0xF0 == 0x30:
                count += 1
                if first & 0x06:
                    at = pos + head + 2 + (buf[pos + head] << 8 | buf[pos + head + 1])
                    acks.append(b"\x40\x02" + buf[at : at + 2])
            pos = end
        del buf[:pos]
        self.received += count
        if acks and self.tls is not None:
            self.tls.write(b"".join(acks))
        self.publisher.pump()


