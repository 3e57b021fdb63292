"""The sans-IO MQTT server session: the broker's view of one client connection.

:class:`ServerSession` decodes what a client sends, answers PINGREQ, enforces keep-alive and
the outbound QoS 1 window, and reports everything else as events for the broker to decide on.
It never reads a clock or touches a socket, and it is called for every packet of every client,
so the per-packet path is kept short.

Decisions worth knowing:

* The broker decides: after :class:`~fleet_sim.mqtt.events.ConnectReceived` it calls
  :meth:`ServerSession.accept` or :meth:`ServerSession.refuse`; packets the client pipelines
  behind its CONNECT stay buffered (undecoded) until then. QoS 1 PUBLISH is not acknowledged
  automatically: the broker authorises it, then calls :meth:`ServerSession.ack_publish`.
* QoS 2 from the client: if the broker announced Maximum QoS in an MQTT 5 CONNACK (AWS IoT
  announces 1) a higher QoS is a violation (DISCONNECT 0x9B); otherwise it is reported as
  :class:`~fleet_sim.mqtt.events.PublishReceived` like any publish and the broker applies AWS
  IoT's "no acknowledgement" rule (QoS 2 ids are not tracked: ``ack_publish`` refuses them).
* Inbound topic aliases are resolved against the Topic Alias Maximum the broker put in the
  CONNACK; the events carry full topics.
* Keep-alive: with ``aws_keep_alive`` the client's value is clamped as AWS IoT does (0 or above
  1200 → 1200, 1–29 → 30); the session expires 1.5 × that after the last received packet (the
  timer starts at ``accept``). In MQTT 5 ``accept`` adds Server Keep Alive to the CONNACK when
  the clamped value differs from the client's.
* Outbound QoS 1: at most min(client's Receive Maximum, ``max_inflight``) in flight; the rest
  wait in order (``queued`` tells how many, so the broker can apply its own limits; each
  waiting message holds a packet id, so past 65535 ``send_publish`` raises). A message larger
  than the client's Maximum Packet Size is dropped, as MQTT 5 §3.1.2.11.4 says.
* The broker's own ``refuse()`` and ``disconnect()`` report no event; every other close
  reports exactly one terminal event, and nothing is reported after it.
* Violations before the CONNACK just close; after it, MQTT 5 sends DISCONNECT with the reason
  code. A CONNECT with an unsupported protocol level gets the 3.1.1 CONNACK 0x01 (§3.1.2.2).
* Validating topics, filters, client ids, Will topics and authorisation is the broker's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.decoding import make_publish
from fleet_sim.mqtt.encoding import encode_publish
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    SUBACK_FAILURE,
    ConnAck,
    Disconnect,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    SubAck,
    UnsubAck,
)
from fleet_sim.mqtt.server_core import AWS_MAX_INFLIGHT, ServerCore, ServerState, aws_keep_alive

__all__ = ["AWS_MAX_INFLIGHT", "ServerSession", "ServerState", "aws_keep_alive"]

_PUBACK_HEAD = b"\x40\x02"  # PUBACK, remaining length 2: success without properties
_V311_SUBACK_CODES = frozenset({0, 1, 2, SUBACK_FAILURE})


class ServerSession(ServerCore):
    """One client connection as the broker sees it, sans-IO.

    Args:
        max_packet_size: the largest packet accepted from the client (default: the codec's);
            a larger one is a violation with reason 0x95.
        aws_keep_alive: clamp the keep-alive as AWS IoT does; ``False`` for the spec's rule.
        keep_alive_bounds: the (low, high) clamp with ``aws_keep_alive``: AWS's (30, 1200).
        max_inflight: the broker's own cap on unacknowledged outbound QoS 1 messages.
    """

    __slots__ = ()

    # ----------------------------------------------------------------- broker decisions

    def accept(
        self,
        *,
        session_present: bool = False,
        properties: Properties = NO_PROPERTIES,
        now: float,
    ) -> None:
        """Send a successful CONNACK and start serving the client.

        MQTT 5 properties the broker sets here are honoured: Receive Maximum (inbound QoS 1
        limit), Maximum QoS, Topic Alias Maximum, Assigned Client Identifier and Server Keep
        Alive (added automatically when AWS keep-alive clamping changed the client's value).

        Raises:
            LocalProtocolError: no CONNECT is waiting, properties in MQTT 3.1.1, or Session
                Present with Clean Start.
        """
        connect = self._require_connect_received("accept")
        if session_present and connect.clean_start:
            raise LocalProtocolError("Session Present must be 0 after Clean Start")
        v5 = self._version is ProtocolVersion.MQTT_5
        keep_alive = self._keep_alive
        if v5:
            if properties.server_keep_alive is not None:
                keep_alive = properties.server_keep_alive
            elif keep_alive != connect.keep_alive:
                properties = replace(properties, server_keep_alive=keep_alive)
        assert self._version is not None
        self._out.append(
            encode(ConnAck(session_present=session_present, properties=properties), self._version)
        )
        if v5:
            self._inbound_limit = properties.receive_maximum or 65535
            if properties.maximum_qos is not None:
                self._max_qos = properties.maximum_qos
            self._topic_alias_maximum = properties.topic_alias_maximum or 0
            if properties.assigned_client_identifier is not None:
                self._client_id = properties.assigned_client_identifier
        self._keep_alive = keep_alive
        self._state = ServerState.CONNECTED
        self._touch(now)
        self._process(now)

    def refuse(
        self,
        reason_code: int,
        *,
        send_connack: bool,
        properties: Properties = NO_PROPERTIES,
        now: float,
    ) -> None:
        """Refuse the CONNECT and close.

        Args:
            reason_code: the 3.1.1 return code or MQTT 5 reason code (non-zero).
            send_connack: send a CONNACK with the code; ``False`` just closes, as AWS IoT does
                for refused MQTT 3.1.1 connections.
            properties: MQTT 5 CONNACK properties (a reason string …).
            now: the current time.

        Raises:
            LocalProtocolError: no CONNECT is waiting, or a zero reason code.
        """
        self._require_connect_received("refuse")
        if not reason_code:
            raise LocalProtocolError("refuse() needs a non-zero reason code")
        if send_connack:
            assert self._version is not None
            packet = ConnAck(reason_code=reason_code, properties=properties)
            self._out.append(encode(packet, self._version))
        self._close(None)

    def disconnect(
        self, reason_code: int = 0, *, properties: Properties = NO_PROPERTIES, now: float
    ) -> None:
        """Close the connection; MQTT 5 sends DISCONNECT first if a CONNACK went out.

        No event is reported, and nothing happens if already closed.
        """
        if self._state is ServerState.CLOSED:
            return
        if self._state is ServerState.CONNECTED and self._version is ProtocolVersion.MQTT_5:
            self._send(Disconnect(reason_code=reason_code, properties=properties))
        self._close(None)

    def ack_publish(
        self, packet_id: int, reason_code: int = 0, *, properties: Properties = NO_PROPERTIES
    ) -> None:
        """PUBACK a client's QoS 1 publish. No-op once closed.

        Raises:
            LocalProtocolError: no QoS 1 publish with that id awaits its PUBACK, or a reason
                code in MQTT 3.1.1.
        """
        if self._state is ServerState.CLOSED:
            return
        unacked = self._inbound_unacked
        waiting = unacked.get(packet_id)
        if waiting is None:
            raise LocalProtocolError(f"no QoS 1 publish {packet_id} awaits a PUBACK")
        if waiting > 1:
            unacked[packet_id] = waiting - 1
        else:
            del unacked[packet_id]
        if not reason_code and properties is NO_PROPERTIES:
            self._out.append(_PUBACK_HEAD + packet_id.to_bytes(2, "big"))
            return
        self._v5_only(reason_code, properties, "PUBACK")
        self._send(PubAck(packet_id=packet_id, reason_code=reason_code, properties=properties))

    def ack_subscribe(
        self,
        packet_id: int,
        reason_codes: Sequence[int],
        *,
        properties: Properties = NO_PROPERTIES,
    ) -> None:
        """SUBACK with one code per filter (3.1.1: 0, 1, 2 or 0x80). No-op once closed.

        Raises:
            LocalProtocolError: no SUBSCRIBE with that id is pending, or the codes do not fit.
        """
        if self._state is ServerState.CLOSED:
            return
        waiting = self._pending_subscribes.get(packet_id)
        if not waiting:
            raise LocalProtocolError(f"no SUBSCRIBE {packet_id} awaits a SUBACK")
        count = waiting[0]
        codes = tuple(reason_codes)
        if len(codes) != count:
            raise LocalProtocolError(f"SUBACK needs {count} codes, got {len(codes)}")
        if self._version is ProtocolVersion.MQTT_3_1_1 and not _V311_SUBACK_CODES.issuperset(codes):
            raise LocalProtocolError(f"MQTT 3.1.1 SUBACK codes must be 0, 1, 2 or 0x80: {codes}")
        self._send(SubAck(packet_id=packet_id, reason_codes=codes, properties=properties))
        del waiting[0]
        if not waiting:
            del self._pending_subscribes[packet_id]

    def ack_unsubscribe(
        self,
        packet_id: int,
        reason_codes: Sequence[int] = (),
        *,
        properties: Properties = NO_PROPERTIES,
    ) -> None:
        """UNSUBACK. MQTT 5 wants one code per filter (none given: all 0x00 Success); 3.1.1
        carries none and ignores any given. No-op once closed.

        Raises:
            LocalProtocolError: no UNSUBSCRIBE with that id is pending, or the codes do not fit.
        """
        if self._state is ServerState.CLOSED:
            return
        waiting = self._pending_unsubscribes.get(packet_id)
        if not waiting:
            raise LocalProtocolError(f"no UNSUBSCRIBE {packet_id} awaits an UNSUBACK")
        count = waiting[0]
        codes: tuple[int, ...] = ()
        if self._version is ProtocolVersion.MQTT_5:
            codes = tuple(reason_codes) or (0,) * count
            if len(codes) != count:
                raise LocalProtocolError(f"UNSUBACK needs {count} codes, got {len(codes)}")
        self._send(UnsubAck(packet_id=packet_id, reason_codes=codes, properties=properties))
        del waiting[0]
        if not waiting:
            del self._pending_unsubscribes[packet_id]

    def send_publish(
        self,
        topic: str,
        payload: bytes = b"",
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties = NO_PROPERTIES,
    ) -> int | None:
        """Deliver a message to the client.

        Returns:
            The packet id of a QoS 1 message (its PUBACK is reported as
            :class:`~fleet_sim.mqtt.events.DeliveryAcknowledged`); ``None`` for QoS 0 or a
            message dropped for exceeding the client's Maximum Packet Size.

        Raises:
            LocalProtocolError: not connected, QoS 2, or a packet the codec cannot encode.
        """
        if self._state is not ServerState.CONNECTED:
            raise LocalProtocolError(f"send_publish() while {self._state.value}")
        version = self._version
        assert version is not None
        if not qos:
            message = make_publish(
                topic, payload, QoS.AT_MOST_ONCE, retain, False, None, properties
            )
            data = encode_publish(message, version == 5)
            if self._fits(data):
                self._out.append(data)
            return None
        if qos != QoS.AT_LEAST_ONCE:
            raise LocalProtocolError(f"send_publish() with QoS {qos}: AWS IoT has no QoS 2")
        window = self._window
        packet_id = window.ids.allocate()
        packet = Publish(
            topic=topic,
            payload=payload,
            qos=QoS.AT_LEAST_ONCE,
            retain=retain,
            packet_id=packet_id,
            properties=properties,
        )
        try:
            data = encode(packet, version)
        except LocalProtocolError:
            window.ids.release(packet_id)
            raise
        if not self._fits(data):
            window.ids.release(packet_id)
            return None
        if window.has_room():
            self._out.append(data)
            window.sent(packet)
        else:
            window.wait(packet)
        return packet_id
