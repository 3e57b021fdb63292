"""Who is on the other end of a TLS connection: the outcome of client authentication.

The gateway asks an :class:`Authenticator` once per handshake, with the client's leaf
certificate (DER) and the SNI name. The answer is either a principal for the broker (whose
certificate may still be refused at CONNECT, which is how AWS answers an inactive certificate)
or a drop: the connection is closed without a CONNACK (unknown certificate, JITP/JITR first
connect, missing SNI for an SNI_ONLY certificate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleet_sim.emulator.broker.access import Principal


@dataclass(frozen=True, slots=True)
class Accepted:
    """Hand the connection to the broker as ``principal``."""

    principal: Principal


@dataclass(frozen=True, slots=True)
class Dropped:
    """Close the connection now, without a CONNACK; ``reason`` is for logs and counters."""

    reason: str


class Authenticator(Protocol):
    """Decides what happens to a TLS connection once its handshake is done."""

    def authenticate(
        self, certificate_der: bytes, *, server_name: str | None, source_ip: str | None = None
    ) -> Accepted | Dropped:
        """Look the client certificate up and decide (``source_ip``: the client's address,
        for the JITR event's ``sourceIp``)."""
        ...
