"""The encoders of the MQTT control packets, one per packet type (the bodies of ``encode``).

Each encoder takes ``(packet, v5)`` and returns the packet's bytes, fixed header included; it
raises :class:`LocalProtocolError` for anything the protocol version cannot carry. PUBLISH and
the PUBACK family take hand-tuned paths (see ``benchmarks/bench_codec.py``). The public entry
point is :func:`fleet_sim.mqtt.codec.encode`, which picks the encoder from :data:`ENCODERS`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    PacketType,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
)
from fleet_sim.mqtt.properties import WILL_PROPERTIES, encode_properties
from fleet_sim.mqtt.reason_codes import (
    AUTH_V5,
    CONNACK_V4,
    CONNACK_V5,
    DISCONNECT_REASON_CODES,
    PUBACK_V5,
    PUBREL_V5,
    SUBACK_V4,
    SUBACK_V5,
    UNSUBACK_V5,
)
from fleet_sim.mqtt.wire import (
    MAX_VARIABLE_BYTE_INTEGER,
    U16,
    encode_binary,
    encode_string,
    encode_u16,
    encode_vbi,
    frame,
)
from fleet_sim.mqtt.wire import encode_utf8 as _encode_utf8

__all__ = ["ENCODERS", "checked_version", "encode_publish"]

_ACK: Final = struct.Struct("!BBH")  # first byte, 2, packet id
_ACK_CODE: Final = struct.Struct("!BBHB")  # first byte, 3, packet id, reason code
# first byte, remaining length (one or two bytes), topic length
_HEAD1_TOPIC: Final = struct.Struct("!BBH")
_HEAD2_TOPIC: Final = struct.Struct("!BBBH")


def checked_version(version: object) -> bool:
    """Return True for MQTT 5, False for MQTT 3.1.1; raise for anything else."""
    if version == 5:
        return True
    if version == 4:
        return False
    raise LocalProtocolError(f"unsupported protocol version {version!r} (use 4 or 5)")


def _no_properties(props: Properties, where: str) -> None:
    if props is not NO_PROPERTIES and props != NO_PROPERTIES:
        raise LocalProtocolError(f"{where}: MQTT 3.1.1 cannot carry properties")


def _properties_field(props: Properties, target: int, v5: bool, where: str) -> bytes:
    """MQTT 5: the encoded property list; MQTT 3.1.1: nothing (and no properties allowed)."""
    if v5:
        return encode_properties(props, target)
    _no_properties(props, where)
    return b""


def _packet_id(packet_id: int | None, where: str) -> bytes:
    if packet_id is None or not 0 < packet_id <= 0xFFFF:
        raise LocalProtocolError(f"{where}: packet identifier must be in 1..65535, got {packet_id}")
    return U16.pack(packet_id)


def _reason_code(code: int, valid: frozenset[int], where: str) -> int:
    if code not in valid:
        raise LocalProtocolError(f"{where}: reason code {code!r} is not valid here")
    return code


def encode_publish(p: Publish, v5: bool) -> bytes:
    """Encode a PUBLISH (the hot path: checks inlined, header packed in one step)."""
    try:
        topic = p.topic.encode()
    except UnicodeEncodeError:
        topic = b"\x00"  # rejected with the precise message below
    topic_length = len(topic)
    if topic_length > 0xFFFF or b"\x00" in topic:
        _encode_utf8(p.topic, "PUBLISH: topic name")
    props = p.properties
    if props is NO_PROPERTIES:
        packed_props = b"\x00" if v5 else b""
    elif v5:
        packed_props = encode_properties(props, PacketType.PUBLISH)
    else:
        _no_properties(props, "PUBLISH")
        packed_props = b""
    payload = p.payload
    qos = p.qos
    if qos == 1 or qos == 2:
        packet_id = p.packet_id
        if packet_id is None or not 0 < packet_id <= 0xFFFF:
            _packet_id(packet_id, "PUBLISH")
        tail = U16.pack(packet_id) + packed_props
    elif qos == 0:
        if p.packet_id is not None:
            raise LocalProtocolError("PUBLISH: a QoS 0 message must not have a packet identifier")
        if p.dup:
            raise LocalProtocolError("PUBLISH: a QoS 0 message must not have the DUP flag")
        tail = packed_props
    else:
        raise LocalProtocolError(f"PUBLISH: QoS must be 0, 1 or 2, got {qos!r}")
    remaining = 2 + topic_length + len(tail) + len(payload)
    first = 0x30 | qos << 1 | (0x08 if p.dup else 0) | (0x01 if p.retain else 0)
    if remaining < 128:
        head = _HEAD1_TOPIC.pack(first, remaining, topic_length)
    elif remaining < 16384:
        head = _HEAD2_TOPIC.pack(first, remaining & 0x7F | 0x80, remaining >> 7, topic_length)
    else:
        if remaining > MAX_VARIABLE_BYTE_INTEGER:
            raise LocalProtocolError(f"PUBLISH: packet of {remaining} bytes is too large")
        head = bytes((first,)) + encode_vbi(remaining) + U16.pack(topic_length)
    return b"".join((head, topic, tail, payload))


_AckPacket = PubAck | PubRec | PubRel | PubComp


def _ack_encoder(ptype: PacketType, valid: frozenset[int]) -> Callable[[Any, bool], bytes]:
    first = ptype << 4 | (2 if ptype == PacketType.PUBREL else 0)
    name = ptype.name

    def encode_ack(p: _AckPacket, v5: bool) -> bytes:
        packet_id = p.packet_id
        if packet_id is None or not 0 < packet_id <= 0xFFFF:
            raise LocalProtocolError(
                f"{name}: packet identifier must be in 1..65535, got {packet_id}"
            )
        code = p.reason_code
        props = p.properties
        if code == 0 and (props is NO_PROPERTIES or props == NO_PROPERTIES):
            return _ACK.pack(first, 2, packet_id)
        if not v5:
            raise LocalProtocolError(
                f"{name}: MQTT 3.1.1 cannot carry a reason code ({code}) or properties"
            )
        _reason_code(code, valid, name)
        if props == NO_PROPERTIES:
            return _ACK_CODE.pack(first, 3, packet_id, code)
        return frame(first, U16.pack(packet_id) + bytes((code,)) + encode_properties(props, ptype))

    return encode_ack


def _encode_connect(p: Connect, _v5: bool) -> bytes:
    level = p.protocol_version
    v5 = checked_version(level)
    flags = 0x02 if p.clean_start else 0
    will = p.will
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise LocalProtocolError(f"CONNECT: will QoS must be 0, 1 or 2, got {will.qos!r}")
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
    if p.username is not None:
        flags |= 0x80
    if p.password is not None:
        if not v5 and p.username is None:
            raise LocalProtocolError("CONNECT: MQTT 3.1.1 forbids a password without a username")
        flags |= 0x40
    parts = [
        b"\x00\x04MQTT",
        bytes((level, flags)),
        encode_u16(p.keep_alive, "CONNECT: keep alive"),
        _properties_field(p.properties, PacketType.CONNECT, v5, "CONNECT"),
        encode_string(p.client_id, "CONNECT: client identifier"),
    ]
    if will is not None:
        parts.append(_properties_field(will.properties, WILL_PROPERTIES, v5, "CONNECT will"))
        parts.append(encode_string(will.topic, "CONNECT: will topic"))
        parts.append(encode_binary(will.payload, "CONNECT: will payload"))
    if p.username is not None:
        parts.append(encode_string(p.username, "CONNECT: user name"))
    if p.password is not None:
        parts.append(encode_binary(p.password, "CONNECT: password"))
    return frame(0x10, b"".join(parts))


def _encode_connack(p: ConnAck, v5: bool) -> bytes:
    code = _reason_code(p.reason_code, CONNACK_V5 if v5 else CONNACK_V4, "CONNACK")
    head = bytes((1 if p.session_present else 0, code))
    return frame(0x20, head + _properties_field(p.properties, PacketType.CONNACK, v5, "CONNACK"))


def _encode_subscribe(p: Subscribe, v5: bool) -> bytes:
    parts = [
        _packet_id(p.packet_id, "SUBSCRIBE"),
        _properties_field(p.properties, PacketType.SUBSCRIBE, v5, "SUBSCRIBE"),
    ]
    if not p.subscriptions:
        raise LocalProtocolError("SUBSCRIBE: at least one subscription is required")
    for sub in p.subscriptions:
        parts.append(encode_string(sub.topic_filter, "SUBSCRIBE: topic filter"))
        if sub.qos not in (0, 1, 2):
            raise LocalProtocolError(f"SUBSCRIBE: QoS must be 0, 1 or 2, got {sub.qos!r}")
        options = int(sub.qos)
        if v5:
            if sub.retain_handling not in (0, 1, 2):
                raise LocalProtocolError(
                    f"SUBSCRIBE: retain handling must be 0, 1 or 2, got {sub.retain_handling!r}"
                )
            options |= (
                (0x04 if sub.no_local else 0)
                | (0x08 if sub.retain_as_published else 0)
                | sub.retain_handling << 4
            )
        elif sub.no_local or sub.retain_as_published or sub.retain_handling:
            raise LocalProtocolError(
                "SUBSCRIBE: MQTT 3.1.1 cannot carry no_local, retain_as_published or "
                "retain_handling"
            )
        parts.append(bytes((options,)))
    return frame(0x82, b"".join(parts))


def _encode_suback(p: SubAck, v5: bool) -> bytes:
    parts = [
        _packet_id(p.packet_id, "SUBACK"),
        _properties_field(p.properties, PacketType.SUBACK, v5, "SUBACK"),
    ]
    if not p.reason_codes:
        raise LocalProtocolError("SUBACK: at least one reason code is required")
    valid = SUBACK_V5 if v5 else SUBACK_V4
    parts.append(bytes(_reason_code(code, valid, "SUBACK") for code in p.reason_codes))
    return frame(0x90, b"".join(parts))


def _encode_unsubscribe(p: Unsubscribe, v5: bool) -> bytes:
    parts = [
        _packet_id(p.packet_id, "UNSUBSCRIBE"),
        _properties_field(p.properties, PacketType.UNSUBSCRIBE, v5, "UNSUBSCRIBE"),
    ]
    if not p.topic_filters:
        raise LocalProtocolError("UNSUBSCRIBE: at least one topic filter is required")
    parts.extend(encode_string(f, "UNSUBSCRIBE: topic filter") for f in p.topic_filters)
    return frame(0xA2, b"".join(parts))


def _encode_unsuback(p: UnsubAck, v5: bool) -> bytes:
    packet_id = _packet_id(p.packet_id, "UNSUBACK")
    if not v5:
        _no_properties(p.properties, "UNSUBACK")
        if p.reason_codes:
            raise LocalProtocolError("UNSUBACK: MQTT 3.1.1 cannot carry reason codes")
        return b"\xb0\x02" + packet_id
    if not p.reason_codes:
        raise LocalProtocolError("UNSUBACK: MQTT 5 requires at least one reason code")
    codes = bytes(_reason_code(code, UNSUBACK_V5, "UNSUBACK") for code in p.reason_codes)
    return frame(0xB0, packet_id + encode_properties(p.properties, PacketType.UNSUBACK) + codes)


def _encode_ping(first: bytes) -> Callable[[Any, bool], bytes]:
    return lambda _packet, _v5: first


def _encode_disconnect(p: Disconnect | Auth, v5: bool) -> bytes:
    ptype = p.packet_type
    name = ptype.name
    code = p.reason_code
    if not v5:
        if ptype == PacketType.AUTH:
            raise LocalProtocolError("AUTH does not exist in MQTT 3.1.1")
        _no_properties(p.properties, name)
        if code:
            raise LocalProtocolError(f"DISCONNECT: MQTT 3.1.1 cannot carry reason code {code}")
        return b"\xe0\x00"
    first = ptype << 4
    _reason_code(code, AUTH_V5 if ptype == PacketType.AUTH else DISCONNECT_REASON_CODES, name)
    if p.properties == NO_PROPERTIES:
        return bytes((first, 0)) if code == 0 else bytes((first, 1, code))
    return frame(first, bytes((code,)) + encode_properties(p.properties, ptype))


#: The encoder of each packet class.
ENCODERS: Final[dict[type, Callable[[Any, bool], bytes]]] = {
    Publish: encode_publish,
    PubAck: _ack_encoder(PacketType.PUBACK, PUBACK_V5),
    PubRec: _ack_encoder(PacketType.PUBREC, PUBACK_V5),
    PubRel: _ack_encoder(PacketType.PUBREL, PUBREL_V5),
    PubComp: _ack_encoder(PacketType.PUBCOMP, PUBREL_V5),
    Connect: _encode_connect,
    ConnAck: _encode_connack,
    Subscribe: _encode_subscribe,
    SubAck: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    UnsubAck: _encode_unsuback,
    PingReq: _encode_ping(b"\xc0\x00"),
    PingResp: _encode_ping(b"\xd0\x00"),
    Disconnect: _encode_disconnect,
    Auth: _encode_disconnect,
}
