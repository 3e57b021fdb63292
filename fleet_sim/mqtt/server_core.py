"""The receiving half of the MQTT server session: state, inbound packets, keep-alive.

:class:`ServerCore` owns every attribute of a server session and the transition table keyed
``(state, packet type)``; :class:`fleet_sim.mqtt.server.ServerSession` adds the broker's
decisions (``accept``, ``ack_publish``, ``send_publish`` …) on top. See that module for the
behaviour as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
from fleet_sim.mqtt.codec import DISCONNECT_REASON_CODES, PacketDecoder, encode
from fleet_sim.mqtt.events import (
    ClientDisconnected,
    ConnectionClosed,
    ConnectReceived,
    DeliveryAcknowledged,
    Event,
    KeepAliveExpired,
    ProtocolViolation,
    PublishReceived,
    SubscribeReceived,
    UnexpectedAckReceived,
    UnsubscribeReceived,
)
from fleet_sim.mqtt.outbound import OutboundWindow
from fleet_sim.mqtt.packet_ids import PacketIdAllocator
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    ConnectReturnCode,
    Disconnect,
    PacketType,
    PingResp,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    ReasonCode,
    Subscribe,
    Unsubscribe,
)
from fleet_sim.mqtt.session_core import SessionCore, resolve_inbound_alias

_PINGRESP = encode(PingResp(), ProtocolVersion.MQTT_3_1_1)
#: AWS IoT's outbound in-flight QoS 1 limit per client (reference §7.1).
AWS_MAX_INFLIGHT = 100


def aws_keep_alive(requested: int, low: int = 30, high: int = 1200) -> int:
    """The keep-alive AWS IoT applies: 0 or above 1200 → 1200, 1–29 → 30 (reference §7.1).

    ``low`` and ``high`` move the bounds (an emulator configured for fast tests).
    """
    if requested == 0 or requested > high:
        return high
    return max(requested, low)


class ServerState(Enum):
    """Where a server session is."""

    AWAITING_CONNECT = "awaiting_connect"
    CONNECT_RECEIVED = "connect_received"  # waiting for accept() or refuse()
    CONNECTED = "connected"
    CLOSED = "closed"


_Handler = Callable[["ServerCore", Any], None]


class ServerCore(SessionCore):
    """State, inbound packet handling and keep-alive of a server session (see
    ``ServerSession``)."""

    __slots__ = (
        "_aliases_in",
        "_aws_keep_alive",
        "_client_id",
        "_connect",
        "_deadline",
        "_decoder",
        "_inbound_limit",
        "_inbound_unacked",
        "_keep_alive",
        "_keep_alive_bounds",
        "_last_received",
        "_max_client_packet",
        "_max_qos",
        "_pending_subscribes",
        "_pending_unsubscribes",
        "_state",
        "_topic_alias_maximum",
        "_version",
        "_window",
        "dropped_oversize",
        "max_inflight",
        "pings_received",
    )

    _RULES: ClassVar[dict[ServerState, dict[PacketType, _Handler]]]

    def __init__(
        self,
        *,
        max_packet_size: int | None = None,
        aws_keep_alive: bool = True,
        keep_alive_bounds: tuple[int, int] = (30, 1200),
        max_inflight: int = AWS_MAX_INFLIGHT,
    ) -> None:
        super().__init__()
        if max_packet_size is None:
            self._decoder = PacketDecoder()
        else:
            self._decoder = PacketDecoder(max_packet_size=max_packet_size)
        self._aws_keep_alive = aws_keep_alive
        self._keep_alive_bounds = keep_alive_bounds
        self.max_inflight = max_inflight
        self._state = ServerState.AWAITING_CONNECT
        self._connect: Connect | None = None
        self._version: ProtocolVersion | None = None
        self._client_id = ""
        self._keep_alive = 0
        self._deadline: float | None = None
        self._last_received = 0.0
        self._window = OutboundWindow(PacketIdAllocator())
        # Packet id → how many QoS 1 publishes with that id await a PUBACK (a client may reuse
        # an id it has not had acknowledged yet: each gets its own PUBACK).
        self._inbound_unacked: dict[int, int] = {}
        self._inbound_limit = 65535
        self._max_qos = 2
        self._topic_alias_maximum = 0
        self._aliases_in: dict[int, str] = {}
        self._max_client_packet: int | None = None
        # Packet id → filter counts of the SUBSCRIBEs/UNSUBSCRIBEs awaiting an answer, in order.
        self._pending_subscribes: dict[int, list[int]] = {}
        self._pending_unsubscribes: dict[int, list[int]] = {}
        #: PINGREQs answered so far.
        self.pings_received = 0
        #: Outbound messages dropped because they exceed the client's Maximum Packet Size.
        self.dropped_oversize = 0

    # ----------------------------------------------------------------- properties

    @property
    def state(self) -> ServerState:
        """The session's state."""
        return self._state

    @property
    def client_id(self) -> str:
        """The client id from CONNECT (or the one ``accept`` assigned); "" before CONNECT."""
        return self._client_id

    @property
    def version(self) -> ProtocolVersion | None:
        """The client's protocol version, once its CONNECT arrived."""
        return self._version

    @property
    def keep_alive(self) -> int:
        """The effective keep-alive in seconds (0: not enforced)."""
        return self._keep_alive

    @property
    def connect(self) -> Connect | None:
        """The client's CONNECT packet, once received."""
        return self._connect

    @property
    def unacknowledged(self) -> tuple[Publish, ...]:
        """Outbound QoS 1 messages not acknowledged yet: in flight (oldest first), then queued.

        What a broker keeps for a persistent session when the connection ends.
        """
        return (*self._window.inflight.values(), *self._window.queued)

    @property
    def queued(self) -> int:
        """Outbound QoS 1 messages waiting for room in the client's receive window."""
        return len(self._window.queued)

    # ----------------------------------------------------------------- input

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the client; events become available through ``next_event()``.

        Ignored once closed.
        """
        if self._state is ServerState.CLOSED:
            return
        self._decoder.feed(data)
        self._process(now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (keep-alive expiry), or ``None``."""
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """Expire the session if nothing arrived within 1.5 × the keep-alive."""
        deadline = self._deadline
        if deadline is None or now < deadline or self._state is not ServerState.CONNECTED:
            return
        if self._version is ProtocolVersion.MQTT_5:
            self._send(Disconnect(reason_code=ReasonCode.KEEP_ALIVE_TIMEOUT))
        self._close(KeepAliveExpired())

    def connection_lost(self, now: float) -> None:
        """The driver saw the transport end: report ``ConnectionClosed`` unless closed."""
        if self._state is not ServerState.CLOSED:
            self._close(ConnectionClosed())

    # ----------------------------------------------------------------- packet handlers

    def _on_connect(self, packet: Connect) -> None:
        self._connect = packet
        self._version = packet.protocol_version
        self._client_id = packet.client_id
        requested = packet.keep_alive
        self._keep_alive = (
            aws_keep_alive(requested, *self._keep_alive_bounds)
            if self._aws_keep_alive
            else requested
        )
        if packet.protocol_version is ProtocolVersion.MQTT_5:
            props = packet.properties
            self._window.quota = min(props.receive_maximum or 65535, self.max_inflight)
            self._max_client_packet = props.maximum_packet_size
        else:
            self._window.quota = self.max_inflight
        self._state = ServerState.CONNECT_RECEIVED
        self._events.append(ConnectReceived(packet))

    def _on_second_connect(self, packet: Connect) -> None:
        self._violation(ReasonCode.PROTOCOL_ERROR, "second CONNECT on the connection")

    def _on_publish(self, packet: Publish) -> None:
        qos = packet.qos
        if qos:
            if qos > self._max_qos:
                self._violation(ReasonCode.QOS_NOT_SUPPORTED, f"QoS {qos} above Maximum QoS")
                return
            if qos == QoS.AT_LEAST_ONCE:
                packet_id = packet.packet_id
                assert packet_id is not None
                unacked = self._inbound_unacked
                unacked[packet_id] = unacked.get(packet_id, 0) + 1
                if len(unacked) > self._inbound_limit:
                    message = "more unacknowledged QoS 1 publishes than the Receive Maximum"
                    self._violation(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, message)
                    return
        if packet.properties.topic_alias is not None:
            try:
                packet = resolve_inbound_alias(packet, self._aliases_in, self._topic_alias_maximum)
            except RemoteProtocolError as exc:
                self._violation(exc.reason_code, str(exc))
                return
        elif not packet.topic:
            self._violation(ReasonCode.PROTOCOL_ERROR, "PUBLISH without a topic")
            return
        self._events.append(PublishReceived(packet))

    def _on_puback(self, packet: PubAck) -> None:
        window = self._window
        if not window.acknowledge(packet.packet_id):
            self._events.append(UnexpectedAckReceived(PacketType.PUBACK, packet.packet_id))
            return
        self._events.append(
            DeliveryAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        )
        if window.queued:
            version = self._version
            assert version is not None
            for publish in window.ready():
                self._out.append(encode(publish, version))

    def _on_subscribe(self, packet: Subscribe) -> None:
        self._pending_subscribes.setdefault(packet.packet_id, []).append(
            len(packet.subscriptions)
        )
        self._events.append(SubscribeReceived(packet))

    def _on_unsubscribe(self, packet: Unsubscribe) -> None:
        self._pending_unsubscribes.setdefault(packet.packet_id, []).append(
            len(packet.topic_filters)
        )
        self._events.append(UnsubscribeReceived(packet))

    def _on_pingreq(self, packet: object) -> None:
        self.pings_received += 1
        self._out.append(_PINGRESP)

    def _on_disconnect(self, packet: Disconnect) -> None:
        connect = self._connect
        assert connect is not None
        if (
            packet.properties.session_expiry_interval
            and not connect.properties.session_expiry_interval
        ):
            message = "DISCONNECT raised the Session Expiry Interval from 0"
            self._violation(ReasonCode.PROTOCOL_ERROR, message)
            return
        self._close(ClientDisconnected(packet.reason_code, packet.properties))

    # ----------------------------------------------------------------- internals

    def _process(self, now: float) -> None:
        """Decode and handle buffered packets until more bytes or a broker decision are due."""
        decoder = self._decoder
        rules = self._RULES
        while True:
            table = rules.get(self._state)
            if table is None:
                return
            try:
                packet = decoder.next_packet()
            except RemoteProtocolError as exc:
                if (
                    exc.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
                    and self._state is ServerState.AWAITING_CONNECT
                ):
                    refusal = ConnAck(reason_code=ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION)
                    self._out.append(encode(refusal, ProtocolVersion.MQTT_3_1_1))
                self._violation(exc.reason_code, str(exc))
                return
            if packet is None:
                return
            handler = table.get(packet.packet_type)
            if handler is None:
                message = f"unexpected {packet.packet_type.name} while {self._state.value}"
                self._violation(ReasonCode.PROTOCOL_ERROR, message)
                return
            if self._deadline is not None:
                self._touch(now)
            handler(self, packet)

    def _touch(self, now: float) -> None:
        """Restart the keep-alive timer."""
        self._last_received = now
        if self._keep_alive:
            self._deadline = now + 1.5 * self._keep_alive

    def _fits(self, data: bytes) -> bool:
        limit = self._max_client_packet
        if limit is not None and len(data) > limit:
            self.dropped_oversize += 1
            return False
        return True

    def _send(self, packet: Any) -> None:
        assert self._version is not None
        self._out.append(encode(packet, self._version))

    def _require_connect_received(self, what: str) -> Connect:
        if self._state is not ServerState.CONNECT_RECEIVED or self._connect is None:
            raise LocalProtocolError(f"{what}() while {self._state.value}")
        return self._connect

    def _v5_only(self, reason_code: int, properties: Properties, what: str) -> None:
        if self._version is ProtocolVersion.MQTT_3_1_1 and (
            reason_code or properties != NO_PROPERTIES
        ):
            raise LocalProtocolError(f"MQTT 3.1.1 {what} carries no reason code or properties")

    def _violation(self, reason_code: int, message: str) -> None:
        if self._state is ServerState.CONNECTED and self._version is ProtocolVersion.MQTT_5:
            # Not every error code may travel in a DISCONNECT (0x84, for one, is CONNACK-only).
            valid = reason_code >= 0x80 and reason_code in DISCONNECT_REASON_CODES
            code = reason_code if valid else ReasonCode.PROTOCOL_ERROR
            self._send(Disconnect(reason_code=code))
        self._close(ProtocolViolation(reason_code, message))

    def _close(self, event: Event | None) -> None:
        self._state = ServerState.CLOSED
        if event is not None:
            self._events.append(event)
        self._deadline = None
        self._inbound_unacked.clear()
        self._pending_subscribes.clear()
        self._pending_unsubscribes.clear()
        self._aliases_in.clear()


ServerCore._RULES = {
    ServerState.AWAITING_CONNECT: {PacketType.CONNECT: ServerCore._on_connect},
    ServerState.CONNECTED: {
        PacketType.PUBLISH: ServerCore._on_publish,
        PacketType.PUBACK: ServerCore._on_puback,
        PacketType.SUBSCRIBE: ServerCore._on_subscribe,
        PacketType.UNSUBSCRIBE: ServerCore._on_unsubscribe,
        PacketType.PINGREQ: ServerCore._on_pingreq,
        PacketType.DISCONNECT: ServerCore._on_disconnect,
        PacketType.CONNECT: ServerCore._on_second_connect,
    },
}
