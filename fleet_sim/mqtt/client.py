"""The sans-IO MQTT client session (3.1.1 and 5), as AWS IoT Core expects a device to behave.

:class:`ClientSession` takes bytes and the current time in (``receive_data``, ``handle_timer``)
and hands events, bytes and the next timer deadline out (``next_event``, ``data_to_send``,
``next_deadline``); it never reads a clock or touches a socket. Commands (``connect``,
``publish`` …) queue packets. The server's misbehaviour is reported as a terminal event; our
own misuse raises :class:`~fleet_sim.errors.LocalProtocolError` and leaves the session as it
was.

Decisions worth knowing:

* QoS 2 does not exist here (AWS IoT has none): publishing or subscribing with it raises, and an
  inbound QoS 2 PUBLISH is a protocol violation.
* Commands other than ``connect`` need the CONNACK first (AWS IoT requires it).
* A PUBACK/SUBACK/UNSUBACK for an id with nothing in flight is reported as
  :class:`~fleet_sim.mqtt.events.UnexpectedAckReceived` and otherwise ignored (AWS IoT may
  acknowledge twice); it does not close the session.
* The server's Receive Maximum (MQTT 5 CONNACK) is respected by queueing: ``publish`` returns
  the packet id at once and the PUBLISH goes out when a PUBACK frees a slot.
* Outbound topic aliases (MQTT 5): ``publish(topic, properties=Properties(topic_alias=n))``
  records the alias for this connection and ``publish("", properties=…topic_alias=n)`` reuses
  it; on the wire the session sends the full topic only while the server does not know the
  alias yet, so queueing and resending never reference an alias the server has not seen.
* Persistent sessions: our QoS 1 publishes not yet acknowledged (sent or queued) survive a
  close. When the same object ``connect()``s again and the CONNACK says Session Present, the
  sent ones are re-sent with DUP=1 in their original order and the queued ones follow as the
  window allows; otherwise they are discarded and reported by
  :class:`~fleet_sim.mqtt.events.PublishesDropped` just before
  :class:`~fleet_sim.mqtt.events.Connected`. Pending SUBSCRIBE/UNSUBSCRIBE never survive a
  close (the terminal event tells the caller they failed).
* Keep-alive: a PINGREQ goes out when nothing was sent for the keep-alive interval (the Server
  Keep Alive wins in MQTT 5); if no packet at all arrives within ``ping_timeout`` (default: half
  the interval) the session ends with :class:`~fleet_sim.mqtt.events.KeepAliveTimeout`. No
  CONNACK timeout lives here: the driver times the connect.
* A server DISCONNECT is reported as ``Disconnected(by_server=True)`` in 3.1.1 too (where only
  clients may send it), rather than as a violation.
* Every close reports exactly one terminal event, including our own ``disconnect()``
  (``Disconnected(by_server=False)``), so a reader loop can stop on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.client_checks import (
    check_connect,
    check_publish,
    check_subscribe,
    check_unsubscribe,
)
from fleet_sim.mqtt.client_core import ClientCore, ClientState
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.events import ConnectionClosed, Disconnected
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    Disconnect,
    Packet,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    Subscribe,
    Subscription,
    Unsubscribe,
)

__all__ = ["ClientSession", "ClientState"]


class ClientSession(ClientCore):
    """One device's MQTT session, sans-IO.

    Args:
        client_id: the MQTT client id.
        version: MQTT 3.1.1 or 5.
        keep_alive: the keep-alive interval in seconds sent in CONNECT (0 disables pings).
        clean_start: Clean Session (3.1.1) / Clean Start (5); ``connect()`` may override it.
        will: the Last Will, if any.
        username: the user name, if any.
        password: the password, if any.
        properties: MQTT 5 CONNECT properties (must be empty for 3.1.1). Receive Maximum and
            Topic Alias Maximum set here are enforced on inbound publishes.
        auto_ack: PUBACK inbound QoS 1 messages at once; else call :meth:`ack`.
        ping_timeout: seconds to wait for any packet after a PINGREQ (default: half the
            effective keep-alive).
        max_packet_size: the largest inbound packet accepted (default: the MQTT 5 Maximum
            Packet Size property if set, else the codec's default).

    Raises:
        LocalProtocolError: the arguments cannot make a valid CONNECT.
    """

    __slots__ = ()

    def connect(self, now: float, *, clean_start: bool | None = None) -> None:
        """Queue CONNECT; ``Connected`` or ``ConnectRefused`` follows.

        Allowed when idle or closed (a reconnect, which may resume the session).

        Args:
            now: the current time.
            clean_start: overrides the constructor's value for this and later connects.

        Raises:
            LocalProtocolError: the session is connecting or connected.
        """
        if self._state in (ClientState.CONNECTING, ClientState.CONNECTED):
            raise LocalProtocolError(f"connect() while {self._state.value}")
        previous = self._clean_start
        if clean_start is not None:
            self._clean_start = clean_start
        try:
            packet = self._connect_packet()
            check_connect(packet)
            data = encode(packet, self.version)
        except LocalProtocolError:
            self._clean_start = previous
            raise
        self._decoder = self._new_decoder()
        self._out.clear()
        self._server = NO_PROPERTIES
        self._window.quota = 65535
        self._keep_alive = self._configured_keep_alive
        self._aliases_out.clear()
        self._state = ClientState.CONNECTING
        self._write(data, now)

    def publish(
        self,
        topic: str,
        payload: bytes = b"",
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties = NO_PROPERTIES,
        now: float,
    ) -> int | None:
        """Publish a message.

        Args:
            topic: the topic name ("" to use a topic alias set up earlier, MQTT 5).
            payload: the message.
            qos: 0 or 1.
            retain: the RETAIN flag.
            properties: MQTT 5 PUBLISH properties.
            now: the current time.

        Returns:
            The packet id of a QoS 1 publish (its PUBACK is reported as
            :class:`~fleet_sim.mqtt.events.PublishAcknowledged`), ``None`` for QoS 0.

        Raises:
            LocalProtocolError: not connected, QoS 2, an invalid topic or alias, or something
                the server's CONNACK said it does not support.
        """
        self._require_connected("publish")
        checked_qos = check_publish(
            topic, qos, retain, properties, self.version, self._server, self._aliases_out
        )
        alias = properties.topic_alias
        full_topic = topic or self._aliases_out[alias or 0]
        packet_id = None if checked_qos == QoS.AT_MOST_ONCE else self._ids.allocate()
        packet = Publish(
            topic=full_topic,
            payload=payload,
            qos=checked_qos,
            retain=retain,
            packet_id=packet_id,
            properties=properties,
        )
        try:
            if packet_id is None or self._window.has_room():
                self._transmit(packet, now)
                if packet_id is not None:
                    self._window.sent(packet)
            else:
                self._check_size(encode(packet, self.version))
                self._window.wait(packet)
        except LocalProtocolError:
            if packet_id is not None:
                self._ids.release(packet_id)
            raise
        if alias is not None:
            self._aliases_out[alias] = full_topic
        return packet_id

    def subscribe(
        self,
        subscriptions: Sequence[Subscription],
        *,
        properties: Properties = NO_PROPERTIES,
        now: float,
    ) -> int:
        """Queue SUBSCRIBE; :class:`~fleet_sim.mqtt.events.Subscribed` follows.

        Returns:
            The packet id.

        Raises:
            LocalProtocolError: not connected, no or invalid filters, or QoS 2.
        """
        self._require_connected("subscribe")
        check_subscribe(subscriptions)
        packet_id = self._ids.allocate()
        packet = Subscribe(
            packet_id=packet_id, subscriptions=tuple(subscriptions), properties=properties
        )
        self._send_or_release(packet, packet_id, now)
        self._pending_subscribes[packet_id] = len(subscriptions)
        return packet_id

    def unsubscribe(
        self, topic_filters: Sequence[str], *, properties: Properties = NO_PROPERTIES, now: float
    ) -> int:
        """Queue UNSUBSCRIBE; :class:`~fleet_sim.mqtt.events.Unsubscribed` follows.

        Returns:
            The packet id.

        Raises:
            LocalProtocolError: not connected, or no or invalid filters.
        """
        self._require_connected("unsubscribe")
        check_unsubscribe(topic_filters)
        packet_id = self._ids.allocate()
        packet = Unsubscribe(
            packet_id=packet_id, topic_filters=tuple(topic_filters), properties=properties
        )
        self._send_or_release(packet, packet_id, now)
        self._pending_unsubscribes[packet_id] = len(topic_filters)
        return packet_id

    def ack(
        self,
        packet_id: int,
        reason_code: int = 0,
        *,
        properties: Properties = NO_PROPERTIES,
        now: float,
    ) -> None:
        """PUBACK an inbound QoS 1 message (with ``auto_ack=False``). No-op once closed.

        Raises:
            LocalProtocolError: no unacknowledged inbound message has that id, or a reason
                code or properties in MQTT 3.1.1.
        """
        if self._state is ClientState.CLOSED:
            return
        if packet_id not in self._inbound_unacked:
            raise LocalProtocolError(f"no inbound QoS 1 message {packet_id} awaits a PUBACK")
        self._check_no_code_in_3_1_1(reason_code, properties, "PUBACK")
        packet = PubAck(packet_id=packet_id, reason_code=reason_code, properties=properties)
        data = encode(packet, self.version)
        self._inbound_unacked.discard(packet_id)
        self._write(data, now)

    def disconnect(
        self, reason_code: int = 0, *, properties: Properties = NO_PROPERTIES, now: float
    ) -> None:
        """Close the session, reporting ``Disconnected(by_server=False)``.

        DISCONNECT is queued when connected; while waiting for the CONNACK the session just
        closes (AWS IoT accepts nothing before its CONNACK). No-op when idle or closed.

        Raises:
            LocalProtocolError: a reason code or properties in MQTT 3.1.1.
        """
        if self._state not in (ClientState.CONNECTING, ClientState.CONNECTED):
            return
        self._check_no_code_in_3_1_1(reason_code, properties, "DISCONNECT")
        if self._state is ClientState.CONNECTED:
            packet = Disconnect(reason_code=reason_code, properties=properties)
            self._write(encode(packet, self.version), now)
        self._close(Disconnected(reason_code, by_server=False, properties=properties))

    def connection_lost(self, now: float) -> None:
        """The driver saw the transport end: report ``ConnectionClosed`` unless closed."""
        if self._state in (ClientState.CONNECTING, ClientState.CONNECTED):
            self._close(ConnectionClosed())

    # ----------------------------------------------------------------- helpers

    def _require_connected(self, what: str) -> None:
        if self._state is not ClientState.CONNECTED:
            raise LocalProtocolError(f"{what}() while {self._state.value}")

    def _check_no_code_in_3_1_1(self, reason_code: int, properties: Properties, what: str) -> None:
        if self.version is ProtocolVersion.MQTT_3_1_1 and (
            reason_code or properties != NO_PROPERTIES
        ):
            raise LocalProtocolError(f"MQTT 3.1.1 {what} carries no reason code or properties")

    def _send_or_release(self, packet: Packet, packet_id: int, now: float) -> None:
        try:
            data = encode(packet, self.version)
            self._check_size(data)
        except LocalProtocolError:
            self._ids.release(packet_id)
            raise
        self._write(data, now)
