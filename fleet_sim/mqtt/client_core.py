"""The receiving half of the MQTT client session: state, inbound packets, keep-alive timer.

:class:`ClientCore` owns every attribute of a client session and the transition table keyed
``(state, packet type)``; :class:`fleet_sim.mqtt.client.ClientSession` adds the commands
(``connect``, ``publish`` …) on top. See that module for the behaviour as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from typing import Any, ClassVar

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
from fleet_sim.mqtt.client_checks import check_connect
from fleet_sim.mqtt.codec import PacketDecoder, encode
from fleet_sim.mqtt.events import (
    Connected,
    ConnectRefused,
    Disconnected,
    Event,
    KeepAliveTimeout,
    MessageReceived,
    ProtocolViolation,
    PublishAcknowledged,
    PublishesDropped,
    Subscribed,
    UnexpectedAckReceived,
    Unsubscribed,
)
from fleet_sim.mqtt.outbound import OutboundWindow
from fleet_sim.mqtt.packet_ids import PacketIdAllocator
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    ReasonCode,
    SubAck,
    UnsubAck,
    Will,
)
from fleet_sim.mqtt.session_core import SessionCore, resolve_inbound_alias

_PINGREQ = encode(PingReq(), ProtocolVersion.MQTT_3_1_1)


class ClientState(Enum):
    """Where a client session is."""

    IDLE = "idle"  # never connected
    CONNECTING = "connecting"  # CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"
    CLOSED = "closed"  # may connect() again


_Handler = Callable[["ClientCore", Any, float], None]


class ClientCore(SessionCore):
    """State, inbound packet handling and timers of a client session (see ``ClientSession``)."""

    __slots__ = (
        "_aliases_in",
        "_aliases_out",
        "_announced",
        "_clean_start",
        "_client_id",
        "_configured_keep_alive",
        "_decoder",
        "_ids",
        "_inbound_unacked",
        "_keep_alive",
        "_last_sent",
        "_max_packet_size",
        "_pending_subscribes",
        "_pending_unsubscribes",
        "_ping_sent_at",
        "_ping_timeout",
        "_server",
        "_state",
        "_window",
        "auto_ack",
        "password",
        "properties",
        "username",
        "version",
        "will",
    )

    _RULES: ClassVar[dict[ClientState, dict[PacketType, _Handler]]]

    def __init__(
        self,
        client_id: str,
        *,
        version: ProtocolVersion = ProtocolVersion.MQTT_3_1_1,
        keep_alive: int = 60,
        clean_start: bool = True,
        will: Will | None = None,
        username: str | None = None,
        password: bytes | None = None,
        properties: Properties = NO_PROPERTIES,
        auto_ack: bool = True,
        ping_timeout: float | None = None,
        max_packet_size: int | None = None,
    ) -> None:
        super().__init__()
        self.version = ProtocolVersion(version)
        self.will = will
        self.username = username
        self.password = password
        self.properties = properties
        self.auto_ack = auto_ack
        self._client_id = client_id
        self._configured_keep_alive = keep_alive
        self._keep_alive = keep_alive
        self._clean_start = clean_start
        self._state = ClientState.IDLE
        check_connect(self._connect_packet())
        if ping_timeout is not None and ping_timeout <= 0:
            raise LocalProtocolError("ping_timeout must be positive")
        self._ping_timeout = ping_timeout
        if max_packet_size is None and self.version is ProtocolVersion.MQTT_5:
            max_packet_size = properties.maximum_packet_size
        self._max_packet_size = max_packet_size
        self._decoder = self._new_decoder()
        self._ids = PacketIdAllocator()
        # Session state, kept across a close: our unacknowledged QoS 1 publishes.
        self._window = OutboundWindow(self._ids)
        # Connection state, reset by connect() or a close.
        self._aliases_out: dict[int, str] = {}  # topic aliases the user set up
        self._announced: dict[int, str] = {}  # topic aliases the server has seen
        self._aliases_in: dict[int, str] = {}
        self._pending_subscribes: dict[int, int] = {}  # packet id -> number of filters
        self._pending_unsubscribes: dict[int, int] = {}
        self._inbound_unacked: set[int] = set()
        self._server = NO_PROPERTIES  # the CONNACK properties
        self._last_sent = 0.0
        self._ping_sent_at: float | None = None

    # ----------------------------------------------------------------- properties

    @property
    def state(self) -> ClientState:
        """The session's state."""
        return self._state

    @property
    def client_id(self) -> str:
        """The client id (the server's Assigned Client Identifier once connected, if any)."""
        return self._client_id

    @property
    def keep_alive(self) -> int:
        """The effective keep-alive in seconds (the Server Keep Alive if the server set one)."""
        return self._keep_alive

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Packet ids of our QoS 1 publishes not yet acknowledged (sent first, then queued)."""
        return self._window.packet_ids

    @property
    def server_properties(self) -> Properties:
        """The properties of the last successful CONNACK (MQTT 5)."""
        return self._server

    # ----------------------------------------------------------------- input

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the server; events become available through ``next_event()``.

        Ignored once closed.

        Raises:
            LocalProtocolError: ``connect()`` was never called.
        """
        state = self._state
        if state is ClientState.CLOSED:
            return
        if state is ClientState.IDLE:
            raise LocalProtocolError("receive_data() before connect()")
        decoder = self._decoder
        decoder.feed(data)
        rules = self._RULES
        while self._state in rules:
            try:
                packet = decoder.next_packet()
            except RemoteProtocolError as exc:
                self._violation(exc.reason_code, str(exc), now)
                return
            if packet is None:
                return
            self._ping_sent_at = None
            handler = rules[self._state].get(packet.packet_type)
            if handler is None:
                message = f"unexpected {packet.packet_type.name} while {self._state.value}"
                self._violation(ReasonCode.PROTOCOL_ERROR, message, now)
                return
            handler(self, packet, now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or ``None``."""
        if self._state is not ClientState.CONNECTED or not self._keep_alive:
            return None
        if self._ping_sent_at is not None:
            window = self._ping_timeout
            return self._ping_sent_at + (self._keep_alive / 2 if window is None else window)
        return self._last_sent + self._keep_alive

    def handle_timer(self, now: float) -> None:
        """Send a PINGREQ, or end the session with ``KeepAliveTimeout``, as due at ``now``."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        if self._ping_sent_at is not None:
            self._close(KeepAliveTimeout())
            return
        self._write(_PINGREQ, now)
        self._ping_sent_at = now

    # ----------------------------------------------------------------- packet handlers

    def _on_connack(self, packet: ConnAck, now: float) -> None:
        if packet.reason_code != 0:
            self._close(ConnectRefused(packet.reason_code, packet))
            return
        if packet.session_present and self._clean_start:
            self._violation(ReasonCode.PROTOCOL_ERROR, "Session Present after Clean Start", now)
            return
        self._state = ClientState.CONNECTED
        props = packet.properties
        self._server = props
        self._window.quota = props.receive_maximum or 65535
        if props.server_keep_alive is not None:
            self._keep_alive = props.server_keep_alive
        if props.assigned_client_identifier is not None:
            self._client_id = props.assigned_client_identifier
        self._last_sent = now
        if packet.session_present:
            for publish in list(self._window.inflight.values()):
                self._transmit_stored(replace(publish, dup=True), now)
        else:
            dropped = self._window.clear()
            if dropped:
                self._events.append(PublishesDropped(dropped))
        self._events.append(Connected(packet))
        self._pump(now)

    def _on_publish(self, packet: Publish, now: float) -> None:
        if packet.qos == QoS.EXACTLY_ONCE:
            self._violation(ReasonCode.PROTOCOL_ERROR, "QoS 2 PUBLISH (AWS IoT has none)", now)
            return
        if packet.properties.topic_alias is not None:
            maximum = self.properties.topic_alias_maximum or 0
            try:
                packet = resolve_inbound_alias(packet, self._aliases_in, maximum)
            except RemoteProtocolError as exc:
                self._violation(exc.reason_code, str(exc), now)
                return
        elif not packet.topic:
            self._violation(ReasonCode.PROTOCOL_ERROR, "PUBLISH without a topic", now)
            return
        self._events.append(MessageReceived(packet))
        if packet.qos == QoS.AT_LEAST_ONCE:
            assert packet.packet_id is not None
            if self.auto_ack:
                self._write(encode(PubAck(packet_id=packet.packet_id), self.version), now)
                return
            self._inbound_unacked.add(packet.packet_id)
            if len(self._inbound_unacked) > (self.properties.receive_maximum or 65535):
                message = "more unacknowledged QoS 1 messages than our Receive Maximum"
                self._violation(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, message, now)

    def _on_puback(self, packet: PubAck, now: float) -> None:
        if not self._window.acknowledge(packet.packet_id):
            self._events.append(UnexpectedAckReceived(PacketType.PUBACK, packet.packet_id))
            return
        self._events.append(
            PublishAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        )
        self._pump(now)

    def _on_suback(self, packet: SubAck, now: float) -> None:
        count = self._pending_subscribes.pop(packet.packet_id, None)
        if count is None:
            self._events.append(UnexpectedAckReceived(PacketType.SUBACK, packet.packet_id))
            return
        self._ids.release(packet.packet_id)
        if len(packet.reason_codes) != count:
            message = f"SUBACK has {len(packet.reason_codes)} codes for {count} filters"
            self._violation(ReasonCode.PROTOCOL_ERROR, message, now)
            return
        self._events.append(Subscribed(packet.packet_id, packet.reason_codes, packet.properties))

    def _on_unsuback(self, packet: UnsubAck, now: float) -> None:
        count = self._pending_unsubscribes.pop(packet.packet_id, None)
        if count is None:
            self._events.append(UnexpectedAckReceived(PacketType.UNSUBACK, packet.packet_id))
            return
        self._ids.release(packet.packet_id)
        if self.version is ProtocolVersion.MQTT_5 and len(packet.reason_codes) != count:
            message = f"UNSUBACK has {len(packet.reason_codes)} codes for {count} filters"
            self._violation(ReasonCode.PROTOCOL_ERROR, message, now)
            return
        self._events.append(Unsubscribed(packet.packet_id, packet.reason_codes, packet.properties))

    def _on_pingresp(self, packet: Packet, now: float) -> None:
        """Nothing to do: receiving any packet already cleared the pending ping."""

    def _on_disconnect(self, packet: Disconnect, now: float) -> None:
        self._close(Disconnected(packet.reason_code, by_server=True, properties=packet.properties))

    # ----------------------------------------------------------------- internals

    def _connect_packet(self) -> Connect:
        return Connect(
            client_id=self._client_id,
            protocol_version=self.version,
            clean_start=self._clean_start,
            keep_alive=self._configured_keep_alive,
            username=self.username,
            password=self.password,
            will=self.will,
            properties=self.properties,
        )

    def _new_decoder(self) -> PacketDecoder:
        if self._max_packet_size is None:
            return PacketDecoder(self.version)
        return PacketDecoder(self.version, max_packet_size=self._max_packet_size)

    def _write(self, data: bytes, now: float) -> None:
        self._out.append(data)
        self._last_sent = now

    def _check_size(self, data: bytes) -> None:
        limit = self._server.maximum_packet_size
        if limit is not None and len(data) > limit:
            raise LocalProtocolError(
                f"packet of {len(data)} bytes exceeds the server's Maximum Packet Size {limit}"
            )

    def _transmit(self, packet: Publish, now: float) -> None:
        """Encode and queue a PUBLISH, compressing its topic to an alias the server knows."""
        alias = packet.properties.topic_alias
        wire = packet
        if alias is not None:
            if alias > (self._server.topic_alias_maximum or 0):
                # Stored before a reconnect to a server that allows fewer aliases.
                wire = replace(packet, properties=replace(packet.properties, topic_alias=None))
            elif self._announced.get(alias) == packet.topic:
                wire = replace(packet, topic="")
            else:
                self._announced[alias] = packet.topic
        data = encode(wire, self.version)
        self._check_size(data)
        self._write(data, now)

    def _transmit_stored(self, publish: Publish, now: float) -> None:
        """Send a publish accepted earlier; drop it if the server now finds it too large."""
        try:
            self._transmit(publish, now)
        except LocalProtocolError:
            assert publish.packet_id is not None
            self._window.discard(publish.packet_id)
            self._events.append(PublishesDropped((publish.packet_id,)))

    def _pump(self, now: float) -> None:
        """Send queued QoS 1 publishes while the server's receive window has room."""
        for publish in self._window.ready():
            self._transmit_stored(publish, now)

    def _violation(self, reason_code: int, message: str, now: float) -> None:
        if self._state is ClientState.CONNECTED and self.version is ProtocolVersion.MQTT_5:
            code = reason_code if reason_code >= 0x80 else ReasonCode.PROTOCOL_ERROR
            self._write(encode(Disconnect(reason_code=code), self.version), now)
        self._close(ProtocolViolation(reason_code, message))

    def _close(self, event: Event) -> None:
        self._state = ClientState.CLOSED
        self._events.append(event)
        for packet_id in (*self._pending_subscribes, *self._pending_unsubscribes):
            self._ids.release(packet_id)
        self._pending_subscribes.clear()
        self._pending_unsubscribes.clear()
        self._inbound_unacked.clear()
        self._aliases_in.clear()
        self._announced.clear()
        self._ping_sent_at = None


ClientCore._RULES = {
    ClientState.CONNECTING: {PacketType.CONNACK: ClientCore._on_connack},
    ClientState.CONNECTED: {
        PacketType.PUBLISH: ClientCore._on_publish,
        PacketType.PUBACK: ClientCore._on_puback,
        PacketType.SUBACK: ClientCore._on_suback,
        PacketType.UNSUBACK: ClientCore._on_unsuback,
        PacketType.PINGRESP: ClientCore._on_pingresp,
        PacketType.DISCONNECT: ClientCore._on_disconnect,
    },
}
