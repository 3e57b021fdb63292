"""The ``awscrt`` device engine: devices driven by AWS's own device SDK (``awscrt``).

Devices behave like ones built on the AWS IoT Device SDK v2 (MQTT 5 client, or the MQTT 3.1.1
connection when ``LinkSpec.mqtt5`` is False), with the SDK builder's defaults, except that
awscrt's built-in reconnect is replaced by the scenario's retry policy (each connect attempt
is a new link; see :mod:`fleet_sim.device.awscrt_links`). awscrt does TLS (s2n) and MQTT in C on
its own threads, which makes it the cheapest connect measured (~1.1 ms client CPU, against
2.6-4 ms for the Python ``ssl`` stacks, measurements.md §1). It times the connect as a whole:
its only phase is ``connect`` (TCP + TLS + CONNACK).

One engine shares one ``EventLoopGroup`` (``threads`` native threads), host resolver and
client bootstrap among all its devices. :meth:`AwscrtEngine.prepare` builds the device's TLS
context (certificate, key, trusted CA, ALPN), outside the measured window; every link of the
device reuses it.

The ``SSL_CERT_FILE`` trap: building an awscrt TLS context parses the system CA bundle that
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name, even when a CA is given explicitly (the cost is all
in ``ClientTlsContext()``: the default trust store is loaded before awscrt installs ours).
With Debian's bundle that is ~6.5 ms of CPU per context instead of ~0.2 ms (measured here:
50 contexts, EC P-256 key; measurements.md §1 saw the fleet's connect rate fall ~6x). So
contexts are built with both variables removed from the process environment, under a lock,
and restored right after; the CA is always passed explicitly, so nothing is lost. The
variables are touched only during that build (no other thread of ours reads them then).

Connecting to ``Endpoint.server_name`` when set: awscrt sends as SNI and verifies the server
certificate against the very name it resolves, so it cannot connect to one address while
naming another; the SNI name wins (AWS routes on it) and ``Endpoint.host`` is only used when
there is no ``server_name``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from awscrt import io, mqtt, mqtt5

from fleet_sim.device.awscrt_bridge import LoopBridge
from fleet_sim.device.awscrt_links import CrtDeviceSettings
from fleet_sim.device.awscrt_mqtt5 import Mqtt5Link
from fleet_sim.device.awscrt_mqtt311 import Mqtt311Link
from fleet_sim.device.link import DeviceLink, LinkSpec
from fleet_sim.errors import CertificateError, ScenarioError
from fleet_sim.mqtt.packets import Publish

__all__ = ["AwscrtDevice", "AwscrtEngine"]

#: Environment variables that make awscrt re-read a CA bundle for every TLS context.
SYSTEM_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
#: MQTT 5 session expiry asked for persistent sessions (AWS IoT's default maximum, 1 h).
PERSISTENT_SESSION_EXPIRY_S = 3600

# The environment is process-wide, so is the lock that serializes swapping it.
_ENVIRONMENT_LOCK = threading.Lock()

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----.+?-----END (?P=label)-----\s*", re.DOTALL
)


@contextlib.contextmanager
def system_ca_variables_removed() -> Iterator[None]:
    """Remove ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` from the environment for the block.

    Only for the moment an awscrt TLS context is built (see the module docstring); restored
    on exit. A no-op when neither is set.
    """
    if not any(name in os.environ for name in SYSTEM_CA_VARIABLES):
        yield
        return
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.pop(name) for name in SYSTEM_CA_VARIABLES if name in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


def split_pem(data: bytes) -> tuple[bytes, bytes | None]:
    """Split a PEM file into its certificates (in order) and its private key, if it has one."""
    certificates: list[bytes] = []
    key: bytes | None = None
    for match in _PEM_BLOCK.finditer(data):
        block = match.group(0).strip() + b"\n"
        if b"PRIVATE KEY" in match.group("label"):
            key = key or block
        else:
            certificates.append(block)
    return b"".join(certificates), key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CertificateError(f"cannot read the {what}: {error.strerror}", file=path) from None


class AwscrtDevice:
    """One device prepared for the awscrt engine: its TLS context and connect settings."""

    __slots__ = ("_bridges", "settings", "spec")

    def __init__(
        self,
        spec: LinkSpec,
        settings: CrtDeviceSettings,
        bridges: Callable[[asyncio.AbstractEventLoop], LoopBridge],
    ) -> None:
        self.spec = spec
        self.settings = settings
        self._bridges = bridges

    def new_link(self, on_message: Callable[[Publish], None] | None) -> DeviceLink:
        """A fresh, unconnected link (one connection attempt); call from the event loop."""
        bridge = self._bridges(asyncio.get_running_loop())
        if self.spec.mqtt5:
            return Mqtt5Link(self.settings, bridge, on_message)
        return Mqtt311Link(self.settings, bridge, on_message)


class AwscrtEngine:
    """AWS's device SDK (awscrt) behind the engine interface; times the connect as a whole.

    Args:
        threads: native event-loop threads shared by all devices (1 is right for a 2-core
            machine; the loop thread of asyncio needs the other core).
    """

    name: str = "awscrt"
    phases: tuple[str, ...] = ("connect",)

    def __init__(self, *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._event_loop_group = io.EventLoopGroup(threads)
        self._host_resolver = io.DefaultHostResolver(self._event_loop_group)
        self.bootstrap = io.ClientBootstrap(self._event_loop_group, self._host_resolver)
        self._ca_cache: dict[Path, bytes] = {}
        self._bridge: LoopBridge | None = None

    def prepare(self, spec: LinkSpec) -> AwscrtDevice:
        """Build the device's TLS context (and, for MQTT 3.1.1, its awscrt client).

        Raises:
            CertificateError: unreadable certificate, key or CA file, or a key that does not
                fit (awscrt cannot say which; the certificate file is named).
            ScenarioError: ``max_tls_version`` below TLS 1.3 (awscrt cannot cap the version;
                use the native engine to pin TLS 1.2).
        """
        capped = spec.max_tls_version
        if capped is not None and capped not in (
            ssl.TLSVersion.TLSv1_3,
            ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ):
            raise ScenarioError(
                f"the awscrt engine cannot cap TLS at {capped.name}: use the native engine",
                path="max_tls_version",
            )
        tls_context = self._tls_context(spec)
        endpoint = spec.endpoint
        settings = CrtDeviceSettings(
            host=endpoint.server_name or endpoint.host,
            port=endpoint.port,
            client_id=spec.client_id,
            keep_alive_s=spec.keep_alive_s,
            clean_session=spec.clean_session,
            bootstrap=self.bootstrap,
            tls_context=tls_context,
            connect_packet=(
                mqtt5.ConnectPacket(
                    client_id=spec.client_id,
                    keep_alive_interval_sec=spec.keep_alive_s,
                    session_expiry_interval_sec=(
                        None if spec.clean_session else PERSISTENT_SESSION_EXPIRY_S
                    ),
                )
                if spec.mqtt5
                else None
            ),
            mqtt3_client=None if spec.mqtt5 else mqtt.Client(self.bootstrap, tls_context),
        )
        return AwscrtDevice(spec, settings, self.bridge_for)

    def bridge_for(self, loop: asyncio.AbstractEventLoop) -> LoopBridge:
        """The bridge that carries awscrt callbacks onto ``loop`` (one per loop in use)."""
        bridge = self._bridge
        if bridge is None or bridge.loop is not loop:
            bridge = self._bridge = LoopBridge(loop)
        return bridge

    def _tls_context(self, spec: LinkSpec) -> object:
        certificate = _read(spec.certificate_file, "device certificate")
        chain, key = split_pem(certificate)
        if spec.key_file is not None:
            _, key = split_pem(_read(spec.key_file, "private key"))
            if key is None:
                raise CertificateError("no private key in the file", file=spec.key_file)
        elif key is None:
            raise CertificateError(
                "no private key in the certificate file (and no key file given)",
                file=spec.certificate_file,
            )
        if not chain:
            raise CertificateError("no certificate in the file", file=spec.certificate_file)
        options = io.TlsContextOptions.create_client_with_mtls(chain, key)
        options.override_default_trust_store(self._ca(spec.ca_file))
        if spec.alpn:
            options.alpn_list = list(spec.alpn)
        try:
            with system_ca_variables_removed():
                return io.ClientTlsContext(options)
        except Exception as error:  # awscrt raises RuntimeError / AwsCrtError, names neither file
            raise CertificateError(
                f"awscrt cannot use this certificate, key or CA: {error}",
                file=spec.certificate_file,
            ) from None

    def _ca(self, path: Path) -> bytes:
        data = self._ca_cache.get(path)
        if data is None:
            data = self._ca_cache[path] = _read(path, "CA file")
        return data
