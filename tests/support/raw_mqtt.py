"""A blocking raw MQTT-over-TLS client for gateway and fuzz tests (stdlib ``ssl`` + our codec).

Unlike paho or awscrt it sends exactly the bytes it is given, can stop half-way through a
handshake, and reports how the server ended the connection, which is what tests of the
gateway's TLS behaviour and of hostile input need. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet_sim.emulator.app import EndpointInfo
from fleet_sim.errors import RemoteProtocolError
from fleet_sim.mqtt.codec import decode, encode
from fleet_sim.mqtt.packets import (
    ConnAck,
    Connect,
    Packet,
    ProtocolVersion,
    Publish,
    SubAck,
    Subscribe,
    Subscription,
)
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.pem_files import IdentityFiles, write_identity

TIMEOUT = 10.0


class Closed(Exception):
    """The server closed the connection (cleanly or not) before a packet arrived."""


def client_context(
    ca_file: str | Path,
    certificate: Path | None,
    key: Path | None,
    *,
    tls_version: ssl.TLSVersion | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A client context that verifies the emulator's server certificate and presents ours."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if tls_version is not None:
        context.minimum_version = tls_version
        context.maximum_version = tls_version
    if certificate is not None and key is not None:
        context.load_cert_chain(certificate, key)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


def tls_connect(
    info: EndpointInfo,
    context: ssl.SSLContext,
    *,
    port: int | None = None,
    server_hostname: str | None = "localhost",
    timeout: float = TIMEOUT,
) -> ssl.SSLSocket:
    """Open a TCP connection and complete the TLS handshake (raises ``ssl.SSLError``)."""
    raw = socket.create_connection((info.host, port or info.port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def abort(sock: socket.socket) -> None:
    """Reset the TCP connection (SO_LINGER 0: RST instead of FIN) and close the socket."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class RawClient:
    """One TLS connection speaking MQTT byte by byte."""

    def __init__(self, sock: ssl.SSLSocket, version: ProtocolVersion) -> None:
        self.sock = sock
        self.version = version
        self._buffer = bytearray()

    @classmethod
    def open(
        cls,
        info: EndpointInfo,
        certificate: Path,
        key: Path,
        *,
        version: ProtocolVersion = ProtocolVersion.MQTT_3_1_1,
        port: int | None = None,
        alpn: list[str] | None = None,
        tls_version: ssl.TLSVersion | None = None,
    ) -> RawClient:
        """Connect to the emulator with mutual TLS (SNI ``localhost``).

        Pin ``tls_version`` to TLS 1.2 to make a refused client certificate fail here: with
        TLS 1.3 the server's verdict on it only shows at the first read.
        """
        context = client_context(info.ca_file, certificate, key, alpn=alpn, tls_version=tls_version)
        return cls(tls_connect(info, context, port=port), version)

    def send(self, packet: Packet) -> None:
        """Encode and send one packet."""
        self.sock.sendall(encode(packet, self.version))

    def send_bytes(self, data: bytes) -> None:
        """Send raw bytes (which may be anything)."""
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLZeroReturnError, ConnectionError, ssl.SSLEOFError) as error:
            raise Closed(str(error)) from error
        except ssl.SSLError as error:  # e.g. an alert after the handshake (TLS 1.3)
            raise Closed(str(error)) from error
        if not chunk:
            raise Closed("EOF")
        self._buffer += chunk

    def receive(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet from the server; raises :class:`Closed` or ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = decode(self._buffer, self.version)
            except RemoteProtocolError as error:  # pragma: no cover - the server misbehaved
                raise AssertionError(f"undecodable bytes from the server: {error}") from error
            if result is not None:
                packet, used = result
                del self._buffer[:used]
                return packet
            self._fill(deadline)

    def wait_closed(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Read until the server closes the connection; returns the packets read before.

        Raises:
            TimeoutError: the connection is still open after ``timeout``.
        """
        packets: list[Packet] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                packets.append(self.receive(max(0.0, deadline - time.monotonic()) or 1e-3))
            except Closed:
                return packets

    def close(self) -> None:
        """Close the socket (no DISCONNECT)."""
        with contextlib.suppress(OSError):
            self.sock.close()


def open_watcher(
    info: EndpointInfo, certificate: Path, key: Path, client_id: str, filters: Sequence[str]
) -> RawClient:
    """An MQTT 5 client connected as ``client_id`` and subscribed (QoS 0) to ``filters``."""
    client = RawClient.open(info, certificate, key, version=ProtocolVersion.MQTT_5)
    try:
        client.send(Connect(client_id=client_id, protocol_version=ProtocolVersion.MQTT_5))
        connack = client.receive()
        assert isinstance(connack, ConnAck), connack
        assert connack.reason_code == 0, connack
        subscriptions = tuple(Subscription(topic_filter=f) for f in filters)
        client.send(Subscribe(packet_id=1, subscriptions=subscriptions))
        suback = client.receive()
        assert isinstance(suback, SubAck), suback
        assert set(suback.reason_codes) == {0}, suback
    except BaseException:
        client.close()
        raise
    return client


def publishes_within(client: RawClient, seconds: float) -> list[Publish]:
    """The PUBLISH packets that arrive within ``seconds`` (other packets are skipped)."""
    received: list[Publish] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            packet = client.receive(remaining)
        except TimeoutError:
            break
        if isinstance(packet, Publish):
            received.append(packet)
    return received


def self_signed_identity(common_name: str, directory: Path) -> tuple[DeviceIdentity, IdentityFiles]:
    """A self-signed client (non-CA) certificate and key, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(tz=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    identity = DeviceIdentity.from_objects(certificate, key)
    return identity, write_identity(identity, directory, common_name)
