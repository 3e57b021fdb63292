"""The awscrt engine's MQTT 5 link: one ``awscrt.mqtt5.Client``, started once, never reconnecting.

The client is configured as the AWS IoT SDK's ``mqtt5_client_builder`` does (AWS IoT Core
limits checked client-side), except that its reconnect delay is a day and the link stops it
on its first connection failure or disconnection: retrying is the scenario's job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from awscrt import mqtt5

from fleet_sim.device.awscrt_bridge import LoopBridge
from fleet_sim.device.awscrt_failures import crt_error_name, operation_failure
from fleet_sim.device.awscrt_links import (
    NEVER_MS,
    CrtDeviceSettings,
    CrtLink,
    OnMessage,
    crt_result,
    socket_options,
)
from fleet_sim.errors import ConnectionLost, OperationRejected
from fleet_sim.mqtt.packets import Publish, QoS

__all__ = ["Mqtt5Link"]

_PUBLISH_RESULT = crt_result("publish")
_SUBSCRIBE_RESULT = crt_result("subscribe")


def _puback_code(crt_future: Future[Any]) -> int:
    completion = _PUBLISH_RESULT(crt_future)
    puback = completion.puback
    code = None if puback is None else puback.reason_code
    return 0 if code is None else int(code)


def _suback_codes(crt_future: Future[Any]) -> tuple[int, ...]:
    suback = _SUBSCRIBE_RESULT(crt_future)
    return tuple(0x80 if code is None else int(code) for code in suback.reason_codes)


class Mqtt5Link(CrtLink):
    """One connection of an ``awscrt.mqtt5.Client`` (AWS IoT SDK defaults, no reconnects)."""

    __slots__ = ("_client",)

    def __init__(
        self, settings: CrtDeviceSettings, bridge: LoopBridge, on_message: OnMessage | None
    ) -> None:
        super().__init__(settings, bridge, on_message)
        self._client: Any = None

    def _start(self, timeout_s: float) -> None:
        settings = self._settings
        options = mqtt5.ClientOptions(
            host_name=settings.host,
            port=settings.port,
            bootstrap=settings.bootstrap,
            socket_options=socket_options(timeout_s),
            tls_ctx=settings.tls_context,
            connect_options=settings.connect_packet,
            session_behavior=(
                mqtt5.ClientSessionBehaviorType.CLEAN
                if settings.clean_session
                else mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS
            ),
            # The SDK builder's default (AWS IoT Core flow control). awscrt 0.36 still sends
            # what the service refuses (9 filters, 300-byte topics): the server decides.
            extended_validation_and_flow_control_options=(
                mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS
            ),
            offline_queue_behavior=mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT,
            retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.NONE,
            min_reconnect_delay_ms=NEVER_MS,
            max_reconnect_delay_ms=NEVER_MS,
            connack_timeout_ms=max(1, int(timeout_s * 1000)),
            on_publish_callback_fn=None if self._on_message is None else self._on_publish,
            on_lifecycle_event_connection_success_fn=self._on_success,
            on_lifecycle_event_connection_failure_fn=self._on_failure,
            on_lifecycle_event_disconnection_fn=self._on_disconnection,
        )
        client = self._client = mqtt5.Client(options)
        self._started = time.monotonic()
        client.start()

    def _stop(self, *, graceful: bool) -> None:
        client = self._client
        if client is None:
            return
        if graceful:
            client.stop(mqtt5.DisconnectPacket())  # let go of it once it is down
            return
        client.stop(None)
        # awscrt keeps our callbacks (hence this link, hence the client) alive until the
        # client object is released: without this, every MQTT 5 link would leak ~30 KB.
        self._client = None

    # awscrt threads ----------------------------------------------------

    def _on_success(self, data: Any) -> None:
        self._bridge.post(self._acked, time.monotonic())

    def _on_failure(self, data: Any) -> None:
        packet = data.connack_packet
        code = None if packet is None or packet.reason_code is None else int(packet.reason_code)
        error = data.exception
        self._bridge.post(self._refused, crt_error_name(error), code, getattr(error, "message", ""))

    def _on_disconnection(self, data: Any) -> None:
        packet = data.disconnect_packet
        code = None if packet is None or packet.reason_code is None else int(packet.reason_code)
        self._bridge.post(self._went_down, crt_error_name(data.exception), code)

    def _on_publish(self, data: Any) -> None:
        packet = data.publish_packet
        message = Publish(
            topic=packet.topic,
            payload=bytes(packet.payload or b""),
            qos=QoS(int(packet.qos)),
            retain=bool(packet.retain),
        )
        self._bridge.post(self._message, message)

    # operations ----------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool = False, timeout_s: float
    ) -> None:
        """Publish; for QoS 1 wait for the PUBACK.

        Raises:
            OperationRejected: PUBACK with a failure code (``puback_failure:<code>``).
            OperationTimeout: no PUBACK in time (``publish_timeout``).
            ConnectionLost: the connection ended first.
            LocalProtocolError: awscrt's AWS IoT checks refused the message before sending.
        """
        self._require_open()
        packet = mqtt5.PublishPacket(
            payload=payload, qos=mqtt5.QoS(qos), retain=retain, topic=topic
        )
        try:
            crt_future = self._client.publish(packet)
        except Exception as error:  # awscrt validates synchronously (wildcards, sizes …)
            raise operation_failure(crt_error_name(error), operation="publish") from None
        if qos == 0:
            return
        code = await self._wait(self._track(crt_future, _puback_code), timeout_s, "publish")
        if code >= 0x80:
            raise OperationRejected(
                f"PUBACK reason 0x{code:02x} for {topic}", operation="puback", reason_code=code
            )

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], *, timeout_s: float
    ) -> tuple[int, ...]:
        """Subscribe (one SUBSCRIBE); returns the SUBACK codes (>= 0x80 is a refusal).

        Raises:
            OperationTimeout: no SUBACK in time (``subscribe_timeout``).
            ConnectionLost: the connection ended first.
        """
        self._require_open()
        packet = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=f, qos=mqtt5.QoS(q)) for f, q in filters]
        )
        try:
            crt_future = self._client.subscribe(packet)
        except Exception as error:  # awscrt validates synchronously (wildcards, sizes …)
            raise operation_failure(crt_error_name(error), operation="subscribe") from None
        codes: tuple[int, ...] = await self._wait(
            self._track(crt_future, _suback_codes), timeout_s, "subscribe"
        )
        return codes

    async def disconnect(self) -> None:
        """Send DISCONNECT (reason 0), stop the client and wait (briefly) for the close."""
        if self._closed.done():
            return
        was_connected = self._connected
        self._finish(None)
        if self._client is None:
            return
        if was_connected:
            self._down = self._loop.create_future()
        self._stop(graceful=was_connected)
        await self._wait_down()
        self._stop(graceful=False)

    def abort(self) -> None:
        """Drop the connection at once: stop the client without DISCONNECT."""
        self._finish(ConnectionLost("aborted by the simulator", failure="aborted"))
        self._stop(graceful=False)
