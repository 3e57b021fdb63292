"""One device connection on the gateway: TLS in, authentication, then bytes to the broker.

:class:`GatewayConnection` is the thin asyncio driver between a :class:`TlsProtocol` and a
:class:`~fleet_sim.emulator.broker.connection.BrokerConnection`. It owns the connection's one
timer (keep-alive and paced deliveries), rescheduled lazily: it fires at the earliest deadline
the broker asked for and re-arms itself, so per-packet activity costs no timer operations.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.emulator.gateway.authenticate import Accepted, Dropped
from fleet_sim.emulator.gateway.tls_context import ALPN_MQTT_CA
from fleet_sim.transport.tls_protocol import TlsProtocol

if TYPE_CHECKING:
    from fleet_sim.emulator.gateway.server import Gateway

logger = logging.getLogger(__name__)


class GatewayConnection:
    """Driver of one client connection (implements ``TlsHandler`` and ``ClientLink``)."""

    __slots__ = ("_deadline", "_gateway", "_require_alpn", "_timer", "broker_connection", "tls")

    def __init__(self, gateway: Gateway, *, require_alpn: bool) -> None:
        self._gateway = gateway
        self._require_alpn = require_alpn
        self.tls: TlsProtocol | None = None
        self.broker_connection: BrokerConnection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    def start(self, tls: TlsProtocol) -> None:
        """Remember the TLS protocol and arm the handshake-and-CONNECT timeout."""
        self.tls = tls
        self._arm(self._gateway.loop.time() + self._gateway.config.handshake_timeout_s)

    # ------------------------------------------------------------------ TlsHandler

    def tls_established(self, tls: TlsProtocol) -> None:
        """Authenticate the client certificate and hand the connection to the broker."""
        gateway = self._gateway
        if self._require_alpn and tls.alpn_protocol() != ALPN_MQTT_CA:
            logger.debug("refusing %s: ALPN %r on the ALPN port", tls.peer_address(), ALPN_MQTT_CA)
            tls.close()
            return
        der = tls.peer_certificate_der()
        server_name = gateway.tls.server_name(tls.ssl_object)
        if der is None:
            tls.close()
            return
        peer = tls.peer_address()
        source_ip = peer[0] if peer else None
        outcome = gateway.authenticator.authenticate(
            der, server_name=server_name, source_ip=source_ip
        )
        if isinstance(outcome, Dropped):
            logger.debug("dropping %s: %s", tls.peer_address(), outcome.reason)
            gateway.stats_dropped(outcome.reason)
            tls.close()
            return
        assert isinstance(outcome, Accepted)
        self.broker_connection = gateway.broker.attach(
            self,
            outcome.principal,
            source_ip=source_ip or "0.0.0.0",  # noqa: S104
        )

    def tls_data(self, data: bytes) -> None:
        """Decrypted bytes: to the broker, then re-arm the timer if it moved earlier."""
        conn = self.broker_connection
        if conn is None:
            return
        conn.data_received(data)
        self._rearm(conn)

    def tls_closed(self, error: BaseException | None) -> None:
        """The connection is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._gateway.forget(self)
        conn = self.broker_connection
        if conn is not None:
            conn.link_lost()

    def tls_pause_writing(self) -> None:
        """The client reads slower than we write: the broker sees it through ``backlog``."""

    def tls_resume_writing(self) -> None:
        """The client caught up."""

    # ------------------------------------------------------------------ ClientLink

    def send(self, data: bytes) -> None:
        """Encrypt and send bytes from the broker."""
        if self.tls is not None:
            self.tls.write(data)

    def close(self) -> None:
        """Flush and close."""
        if self.tls is not None:
            self.tls.close()

    def backlog(self) -> int:
        """Bytes waiting in the transport."""
        return 0 if self.tls is None else self.tls.write_buffer_size()

    # ------------------------------------------------------------------ the timer

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        self._timer = self._gateway.loop.call_at(deadline, self._fire)

    def _rearm(self, conn: BrokerConnection) -> None:
        deadline = conn.next_deadline()
        if deadline is None:
            return
        if self._deadline is None or deadline < self._deadline:
            self._arm(deadline)

    def _fire(self) -> None:
        self._timer = None
        self._deadline = None
        conn = self.broker_connection
        if conn is None or (not conn.connected and conn.session.connect is None):
            # No TLS handshake, authentication and CONNECT within the timeout.
            if self.tls is not None:
                self.tls.abort()
            return
        if conn.closed:
            return
        conn.timer_fired()
        if not conn.closed:
            deadline = conn.next_deadline()
            if deadline is not None:
                self._arm(deadline)
