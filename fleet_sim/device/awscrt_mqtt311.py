"""The awscrt engine's MQTT 3.1.1 link: one ``awscrt.mqtt.Connection``, connected once.

Each link is a new connection of the device's ``awscrt.mqtt.Client`` (which holds its TLS
context). awscrt reconnects an interrupted 3.1.1 connection by itself; the link disconnects it
as soon as it is interrupted (and its reconnect timer is a day), so retrying stays the
scenario's job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from awscrt import mqtt

from fleet_sim.device.awscrt_bridge import LoopBridge
from fleet_sim.device.awscrt_failures import crt_error_name
from fleet_sim.device.awscrt_links import (
    NEVER_MS,
    CrtDeviceSettings,
    CrtLink,
    OnMessage,
    crt_result,
    socket_options,
)
from fleet_sim.errors import ConnectionLost
from fleet_sim.mqtt.packets import Publish, QoS

__all__ = ["Mqtt311Link"]

#: Keep-alive sent for 0 (AWS turns 0 into its maximum, 1200 s; awscrt needs a value).
MAX_KEEP_ALIVE_S = 1200

_PUBLISH_RESULT = crt_result("publish")
_SUBSCRIBE_RESULT = crt_result("subscribe")


def _granted_qos(crt_future: Future[Any]) -> int:
    error = crt_future.exception()
    if isinstance(error, mqtt.SubscribeError):
        return 0x80  # SUBACK failure code (awscrt raises instead of returning it)
    return int(_SUBSCRIBE_RESULT(crt_future)["qos"])


class Mqtt311Link(CrtLink):
    """One ``awscrt.mqtt.Connection`` of the device's MQTT 3.1.1 client, connected once.

    awscrt's 3.1.1 API subscribes one filter per SUBSCRIBE (``subscribe`` sends one packet per
    filter and gathers the SUBACKs) and has no way to drop a connection without DISCONNECT, so
    :meth:`abort` disconnects cleanly.
    """

    __slots__ = ("_connection",)

    def __init__(
        self, settings: CrtDeviceSettings, bridge: LoopBridge, on_message: OnMessage | None
    ) -> None:
        super().__init__(settings, bridge, on_message)
        self._connection: Any = None

    def _start(self, timeout_s: float) -> None:
        settings = self._settings
        keep_alive = settings.keep_alive_s or MAX_KEEP_ALIVE_S
        connection = self._connection = mqtt.Connection(
            client=settings.mqtt3_client,
            host_name=settings.host,
            port=settings.port,
            client_id=settings.client_id,
            clean_session=settings.clean_session,
            on_connection_interrupted=self._on_interrupted,
            reconnect_min_timeout_secs=NEVER_MS // 1000,
            reconnect_max_timeout_secs=NEVER_MS // 1000,
            keep_alive_secs=keep_alive,
            ping_timeout_ms=min(3000, keep_alive * 500),
            socket_options=socket_options(timeout_s),
        )
        if self._on_message is not None:
            connection.on_message(self._on_publish)
        self._started = time.monotonic()
        connection.connect().add_done_callback(self._on_connect_done)

    def _stop(self, *, graceful: bool) -> None:
        # Disconnecting a connection that is not connected fails its (ignored) future.
        if self._connection is not None:
            self._connection.disconnect()

    # awscrt threads ----------------------------------------------------

    def _on_connect_done(self, crt_future: Future[Any]) -> None:
        acked_at = time.monotonic()
        error = crt_future.exception()
        if error is None:
            self._bridge.post(self._acked, acked_at)
            return
        code = error.args[0] if error.args else None
        return_code = int(code) if isinstance(code, mqtt.ConnectReturnCode) else None
        self._bridge.post(
            self._refused, crt_error_name(error), return_code, getattr(error, "message", "")
        )

    def _on_interrupted(self, connection: Any, error: BaseException, **kwargs: Any) -> None:
        self._bridge.post(self._went_down, crt_error_name(error), None)

    def _on_publish(
        self, topic: str, payload: bytes, dup: bool, qos: Any, retain: bool, **kwargs: Any
    ) -> None:
        message = Publish(
            topic=topic, payload=bytes(payload), qos=QoS(int(qos)), retain=retain, dup=dup
        )
        self._bridge.post(self._message, message)

    # operations ----------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool = False, timeout_s: float
    ) -> None:
        """Publish; for QoS 1 wait for the PUBACK (3.1.1 PUBACKs carry no code).

        Raises:
            OperationTimeout: no PUBACK in time (``publish_timeout``).
            ConnectionLost: the connection ended first (AWS closes it on a denied publish).
        """
        self._require_open()
        crt_future, _ = self._connection.publish(topic, payload, mqtt.QoS(qos), retain)
        if qos == 0:
            return
        await self._wait(self._track(crt_future, _PUBLISH_RESULT), timeout_s, "publish")

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], *, timeout_s: float
    ) -> tuple[int, ...]:
        """Subscribe (one SUBSCRIBE per filter); returns the granted QoS or 0x80 per filter.

        Raises:
            OperationTimeout: some SUBACK did not come in time (``subscribe_timeout``).
            ConnectionLost: the connection ended first.
        """
        self._require_open()
        connection = self._connection
        futures = [
            self._track(connection.subscribe(f, mqtt.QoS(q))[0], _granted_qos) for f, q in filters
        ]
        gathered = asyncio.gather(*futures)
        codes: list[int] = await self._wait(gathered, timeout_s, "subscribe")
        return tuple(codes)

    async def disconnect(self) -> None:
        """Send DISCONNECT and wait (briefly) for the connection to close."""
        if self._closed.done():
            return
        was_connected = self._connected
        self._finish(None)
        if self._connection is None:
            return
        crt_future = self._connection.disconnect()
        if was_connected:
            down = self._down = self._loop.create_future()
            crt_future.add_done_callback(lambda _: self._bridge.post(_resolve, down))
            await self._wait_down()

    def abort(self) -> None:
        """Drop the connection (awscrt's 3.1.1 connection can only close with DISCONNECT)."""
        self._finish(ConnectionLost("aborted by the simulator", failure="aborted"))
        self._stop(graceful=False)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
