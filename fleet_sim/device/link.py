"""The device-engine interface: one device's MQTT connection, whichever engine drives it.

Two engines implement it: ``native`` (:mod:`fleet_sim.device.native_engine`, our sans-IO client
over our TLS protocol, every connect phase timed) and ``awscrt`` (AWS's device SDK; connect is
timed as one phase). The fleet runner only talks to these protocols.

Preparation (TLS context, identity files) happens in :meth:`Engine.prepare`, outside the
measured connect window, and a prepared device is reused across reconnects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleet_sim.errors import FleetSimError
from fleet_sim.mqtt.packets import Publish


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a device connects: address, port and the SNI / certificate host name."""

    host: str
    port: int
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectTimings:
    """Seconds spent in each phase of one successful connect.

    ``tcp_s``, ``tls_s`` and ``mqtt_s`` are None for engines that time the connect as a whole.
    """

    total_s: float
    tcp_s: float | None = None
    tls_s: float | None = None
    mqtt_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """Everything an engine needs to connect one device."""

    client_id: str
    endpoint: Endpoint
    certificate_file: Path
    """The device certificate, optionally followed by its chain (and the key if no key_file)."""
    key_file: Path | None
    ca_file: Path
    """The root CA that signs the server certificate."""
    mqtt5: bool = True
    keep_alive_s: int = 60
    clean_session: bool = True
    alpn: tuple[str, ...] = ()
    max_tls_version: ssl.TLSVersion | None = None


class DeviceLink(Protocol):
    """One connection of one device (a new link per connect attempt)."""

    @property
    def closed(self) -> asyncio.Future[FleetSimError | None]:
        """Resolves when the connection ends: None for our own disconnect, else the error."""
        ...

    async def connect(self, *, timeout_s: float) -> ConnectTimings:
        """Connect up to CONNACK; raises :class:`~fleet_sim.errors.ConnectionFailed`."""
        ...

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool = False, timeout_s: float
    ) -> None:
        """Publish (QoS 1: wait for PUBACK); raises OperationRejected/Timeout, ConnectionLost."""
        ...

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], *, timeout_s: float
    ) -> tuple[int, ...]:
        """Subscribe; returns the SUBACK codes (>= 0x80 is a refusal)."""
        ...

    async def disconnect(self) -> None:
        """Disconnect cleanly (MQTT DISCONNECT)."""
        ...

    def abort(self) -> None:
        """Drop the connection at once."""
        ...


class PreparedDevice(Protocol):
    """A device ready to connect: its TLS material loaded once."""

    def new_link(self, on_message: Callable[[Publish], None] | None) -> DeviceLink:
        """A fresh, unconnected link (call :meth:`DeviceLink.connect` next)."""
        ...


class Engine(Protocol):
    """A device engine."""

    name: str
    """``native`` or ``awscrt``."""

    phases: tuple[str, ...]
    """The connect phases it times, e.g. ``("tcp", "tls", "connack")`` or ``("connect",)``."""

    def prepare(self, spec: LinkSpec) -> PreparedDevice:
        """Load one device's TLS material (outside the measured connect window).

        Raises:
            CertificateError: unreadable or mismatched certificate/key files.
        """
        ...
