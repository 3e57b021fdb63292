"""The ``native`` device engine: :class:`NativeConnection` links behind the engine interface.

Each prepared device owns its TLS context (built once, outside the measured window) and its
:class:`~fleet_sim.mqtt.client.ClientSession`, reused across reconnects so a persistent session
resends unacknowledged QoS 1 messages. All devices of a loop share one TLS read buffer.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from fleet_sim.device.link import DeviceLink, LinkSpec
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, Publish
from fleet_sim.transport.tls_protocol import ReadBuffer


class NativeDevice:
    """One device prepared for the native engine."""

    __slots__ = ("_context", "_read_buffer", "session", "spec")

    def __init__(self, spec: LinkSpec, context: ssl.SSLContext, read_buffer: ReadBuffer) -> None:
        self.spec = spec
        self._context = context
        self._read_buffer = read_buffer
        self.session = ClientSession(
            spec.client_id,
            version=ProtocolVersion.MQTT_5 if spec.mqtt5 else ProtocolVersion.MQTT_3_1_1,
            keep_alive=spec.keep_alive_s,
            clean_start=spec.clean_session,
        )

    def new_link(self, on_message: Callable[[Publish], None] | None) -> DeviceLink:
        """A fresh connection using this device's context and session."""
        return NativeConnection(
            self.session,
            self.spec.endpoint,
            self._context,
            read_buffer=self._read_buffer,
            on_message=on_message,
        )


class NativeEngine:
    """Our own MQTT client over asyncio; times TCP, TLS and CONNECT→CONNACK separately."""

    name: str = "native"
    phases: tuple[str, ...] = ("tcp", "tls", "connack")

    def __init__(self) -> None:
        self._read_buffer = ReadBuffer()

    def prepare(self, spec: LinkSpec) -> NativeDevice:
        """Build the device's TLS context.

        Raises:
            CertificateError: unreadable or mismatched certificate/key files.
        """
        settings = TlsSettings(
            ca_file=spec.ca_file, alpn=spec.alpn, max_version=spec.max_tls_version
        )
        context = client_context(settings, spec.certificate_file, spec.key_file)
        return NativeDevice(spec, context, self._read_buffer)
