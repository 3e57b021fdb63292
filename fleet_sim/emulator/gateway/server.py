"""The gateway's listeners: mutual-TLS MQTT on 8883 and, optionally, on an ALPN port (443).

Each accepted TCP connection gets a :class:`TlsProtocol` driven by a
:class:`GatewayConnection`. All connections of the loop share one plaintext read buffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from fleet_sim.emulator.broker.broker import Broker
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.gateway.authenticate import Authenticator
from fleet_sim.emulator.gateway.connection import GatewayConnection
from fleet_sim.emulator.gateway.tls_context import GatewayTls
from fleet_sim.transport.tls_protocol import ReadBuffer, TlsProtocol

logger = logging.getLogger(__name__)

#: Pending TCP connections the kernel may queue per listener (handshake bursts in load tests).
BACKLOG = 4096


class Gateway:
    """TLS listeners that feed authenticated connections to the broker."""

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        tls: GatewayTls,
        broker: Broker,
        authenticator: Authenticator,
    ) -> None:
        self.config = config
        self.tls = tls
        self.broker = broker
        self.authenticator = authenticator
        self.dropped: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        self._connections: set[GatewayConnection] = set()
        self._read_buffer = ReadBuffer()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the listeners run on."""
        assert self._loop is not None, "the gateway has not been started"
        return self._loop

    async def start(self) -> list[tuple[str, int]]:
        """Open the listeners; returns the bound (host, port) of each (MQTT port first)."""
        self._loop = asyncio.get_running_loop()
        bound = [await self._listen(self.config.port, require_alpn=False)]
        if self.config.alpn_port is not None:
            bound.append(await self._listen(self.config.alpn_port, require_alpn=True))
        return bound

    async def _listen(self, port: int, *, require_alpn: bool) -> tuple[str, int]:
        def factory() -> TlsProtocol:
            connection = GatewayConnection(self, require_alpn=require_alpn)
            protocol = TlsProtocol(
                self.tls.context, connection, server_side=True, read_buffer=self._read_buffer
            )
            connection.start(protocol)
            self._connections.add(connection)
            return protocol

        server = await self.loop.create_server(
            factory, self.config.host, port, backlog=BACKLOG, reuse_address=True
        )
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def forget(self, connection: GatewayConnection) -> None:
        """A connection ended."""
        self._connections.discard(connection)

    def stats_dropped(self, reason: str) -> None:
        """Count a connection dropped after its handshake."""
        self.dropped[reason] += 1

    @property
    def open_connections(self) -> int:
        """TCP connections currently open (handshaking, connected or closing)."""
        return len(self._connections)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            if connection.tls is not None:
                connection.tls.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
