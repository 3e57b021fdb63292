"""Encode and decode MQTT 3.1.1 and MQTT 5 control packets (sans-IO).

* :func:`encode` turns a packet into bytes for a connection's protocol version and raises
  :class:`LocalProtocolError` for anything that version cannot carry.
* :func:`decode` reads one packet from the start of a buffer: ``(packet, consumed)``, or
  ``None`` when more bytes are needed. Malformed or illegal input raises
  :class:`RemoteProtocolError` (with the most precise MQTT 5 reason code) and nothing else.
* :class:`PacketDecoder` is the stream form for one connection.

The decoder checks what the specs ask of a receiver on the packet level: fixed-header flags,
QoS values, non-zero packet identifiers, CONNECT's protocol name, level and flags, UTF-8
strings, subscription options, reason codes, property identifiers and repetitions, and that
a packet has no bytes after its declared contents. Topic name and filter semantics (wildcard
placement, empty topics with aliases) belong to the topic and session modules.

PUBLISH and the PUBACK family take hand-tuned paths (see ``benchmarks/bench_codec.py``);
decoded packets of those types are built through a mutable twin class with the same slots
(see :func:`_mutable_twin`), which yields values equal to the constructor's for a fraction of
the cost of a frozen dataclass ``__init__``.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any, Final

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    Properties,
    ProtocolVersion,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    QoS,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
)
from fleet_sim.mqtt.properties import WILL_PROPERTIES, decode_properties, encode_properties
from fleet_sim.mqtt.wire import (
    MAX_VARIABLE_BYTE_INTEGER,
    U16,
    Buffer,
    encode_binary,
    encode_string,
    encode_u16,
    encode_vbi,
    frame,
    malformed,
    protocol_error,
    read_binary,
    read_remaining_length,
    read_string,
    read_u8,
    read_u16,
)
from fleet_sim.mqtt.wire import encode_utf8 as _encode_utf8

__all__ = ["PacketDecoder", "decode", "encode"]

_MAX_PACKET: Final = MAX_VARIABLE_BYTE_INTEGER
_QOS: Final = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)
_VERSIONS: Final = {4: ProtocolVersion.MQTT_3_1_1, 5: ProtocolVersion.MQTT_5}
_NAMES: Final = ("RESERVED", *(PacketType(t).name for t in range(1, 16)))
_UNSUPPORTED_PROTOCOL_VERSION: Final = 0x84
_PACKET_TOO_LARGE: Final = 0x95

# Valid reason codes per packet type (MQTT 5 §3.x.2.1; MQTT 3.1.1 §3.2.2.3 and §3.9.3).
_CONNACK_V4: Final = frozenset(range(6))
_CONNACK_V5: Final = frozenset(
    {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
     0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
)  # fmt: skip
_PUBACK_V5: Final = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
_PUBREL_V5: Final = frozenset({0x00, 0x92})
_SUBACK_V4: Final = frozenset({0x00, 0x01, 0x02, 0x80})
_SUBACK_V5: Final = frozenset(
    {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}
)
_UNSUBACK_V5: Final = frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})
_DISCONNECT_V5: Final = frozenset(
    {0x00, 0x04, *range(0x80, 0x84), 0x87, 0x89, *range(0x8B, 0x91), *range(0x93, 0xA3)}
)
#: Reason codes an MQTT 5 DISCONNECT may carry (§3.14.2.1).
DISCONNECT_REASON_CODES: Final = _DISCONNECT_V5
_AUTH_V5: Final = frozenset({0x00, 0x18, 0x19})

_ACK: Final = struct.Struct("!BBH")  # first byte, 2, packet id
_ACK_CODE: Final = struct.Struct("!BBHB")  # first byte, 3, packet id, reason code
# first byte, remaining length (one or two bytes), topic length
_HEAD1_TOPIC: Final = struct.Struct("!BBH")
_HEAD2_TOPIC: Final = struct.Struct("!BBBH")


def _first_bytes(v5: bool) -> frozenset[int]:
    valid: set[int] = set()
    for ptype in range(1, 16 if v5 else 15):
        if ptype == PacketType.PUBLISH:
            valid.update(
                0x30 | flags for flags in range(16) if (flags & 6) != 6 and flags & 0xE != 8
            )
        else:
            valid.add(ptype << 4 | (2 if ptype in (6, 8, 10) else 0))
    return frozenset(valid)


_FIRST_V4: Final = _first_bytes(False)
_FIRST_V5: Final = _first_bytes(True)


def _first_byte_error(first: int, version: int | None) -> RemoteProtocolError:
    ptype, flags = first >> 4, first & 0x0F
    name = _NAMES[ptype]
    if ptype == 0:
        return malformed("packet type 0 is reserved")
    if version is None and ptype != PacketType.CONNECT:
        return protocol_error(f"expected CONNECT as the first packet, got {name}")
    if ptype == PacketType.AUTH and version == 4:
        return malformed("packet type 15 (AUTH) does not exist in MQTT 3.1.1")
    if ptype == PacketType.PUBLISH:
        if flags & 6 == 6:
            return malformed("PUBLISH: QoS 3 is invalid")
        return malformed("PUBLISH: DUP flag set on a QoS 0 message")
    expected = 2 if ptype in (6, 8, 10) else 0
    return malformed(f"{name}: reserved flags must be {expected:04b}, got {flags:04b}")


def _checked_version(version: object) -> bool:
    """Return True for MQTT 5, False for MQTT 3.1.1; raise for anything else."""
    if version == 5:
        return True
    if version == 4:
        return False
    raise LocalProtocolError(f"unsupported protocol version {version!r} (use 4 or 5)")


# =========================================================================== encoding


def encode(packet: Packet, version: ProtocolVersion) -> bytes:
    """Encode one control packet.

    Args:
        packet: the packet.
        version: the connection's protocol version (a :class:`Connect` uses its own
            ``protocol_version`` instead).

    Raises:
        LocalProtocolError: the packet is invalid or cannot be expressed in ``version``.
    """
    if version == 5:
        v5 = True
    elif version == 4:
        v5 = False
    else:
        v5 = _checked_version(version)
    cls = packet.__class__
    if cls is Publish:
        return _encode_publish(packet, v5)  # type: ignore[arg-type]
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        raise LocalProtocolError(f"cannot encode {cls.__name__}: not an MQTT packet")
    return encoder(packet, v5)


def _no_properties(props: Properties, where: str) -> None:
    if props is not NO_PROPERTIES and props != NO_PROPERTIES:
        raise LocalProtocolError(f"{where}: MQTT 3.1.1 cannot carry properties")


def _packet_id(packet_id: int | None, where: str) -> bytes:
    if packet_id is None or not 0 < packet_id <= 0xFFFF:
        raise LocalProtocolError(f"{where}: packet identifier must be in 1..65535, got {packet_id}")
    return U16.pack(packet_id)


def _reason_code(code: int, valid: frozenset[int], where: str) -> int:
    if code not in valid:
        raise LocalProtocolError(f"{where}: reason code {code!r} is not valid here")
    return code


def _encode_publish(p: Publish, v5: bool) -> bytes:
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
    v5 = _checked_version(level)
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
    ]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.CONNECT))
    else:
        _no_properties(p.properties, "CONNECT")
    parts.append(encode_string(p.client_id, "CONNECT: client identifier"))
    if will is not None:
        if v5:
            parts.append(encode_properties(will.properties, WILL_PROPERTIES))
        else:
            _no_properties(will.properties, "CONNECT will")
        parts.append(encode_string(will.topic, "CONNECT: will topic"))
        parts.append(encode_binary(will.payload, "CONNECT: will payload"))
    if p.username is not None:
        parts.append(encode_string(p.username, "CONNECT: user name"))
    if p.password is not None:
        parts.append(encode_binary(p.password, "CONNECT: password"))
    return frame(0x10, b"".join(parts))


def _encode_connack(p: ConnAck, v5: bool) -> bytes:
    code = _reason_code(p.reason_code, _CONNACK_V5 if v5 else _CONNACK_V4, "CONNACK")
    head = bytes((1 if p.session_present else 0, code))
    if v5:
        return frame(0x20, head + encode_properties(p.properties, PacketType.CONNACK))
    _no_properties(p.properties, "CONNACK")
    return frame(0x20, head)


def _encode_subscribe(p: Subscribe, v5: bool) -> bytes:
    parts = [_packet_id(p.packet_id, "SUBSCRIBE")]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.SUBSCRIBE))
    else:
        _no_properties(p.properties, "SUBSCRIBE")
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
    parts = [_packet_id(p.packet_id, "SUBACK")]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.SUBACK))
    else:
        _no_properties(p.properties, "SUBACK")
    if not p.reason_codes:
        raise LocalProtocolError("SUBACK: at least one reason code is required")
    valid = _SUBACK_V5 if v5 else _SUBACK_V4
    parts.append(bytes(_reason_code(code, valid, "SUBACK") for code in p.reason_codes))
    return frame(0x90, b"".join(parts))


def _encode_unsubscribe(p: Unsubscribe, v5: bool) -> bytes:
    parts = [_packet_id(p.packet_id, "UNSUBSCRIBE")]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.UNSUBSCRIBE))
    else:
        _no_properties(p.properties, "UNSUBSCRIBE")
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
    codes = bytes(_reason_code(code, _UNSUBACK_V5, "UNSUBACK") for code in p.reason_codes)
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
    _reason_code(code, _AUTH_V5 if ptype == PacketType.AUTH else _DISCONNECT_V5, name)
    if p.properties == NO_PROPERTIES:
        return bytes((first, 0)) if code == 0 else bytes((first, 1, code))
    return frame(first, bytes((code,)) + encode_properties(p.properties, ptype))


_ENCODERS: Final[dict[type, Callable[[Any, bool], bytes]]] = {
    Publish: _encode_publish,
    PubAck: _ack_encoder(PacketType.PUBACK, _PUBACK_V5),
    PubRec: _ack_encoder(PacketType.PUBREC, _PUBACK_V5),
    PubRel: _ack_encoder(PacketType.PUBREL, _PUBREL_V5),
    PubComp: _ack_encoder(PacketType.PUBCOMP, _PUBREL_V5),
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


# =========================================================================== decoding

_Decoder = Callable[[Buffer, int, int, int, bool], Any]


def _mutable_twin(cls: type) -> type:
    """Return a plain class with the slot layout of the frozen packet class ``cls``.

    A twin instance is filled with ordinary attribute stores (several times cheaper than the
    frozen dataclass ``__init__``) and then becomes a genuine ``cls`` instance by
    ``__class__`` assignment, which CPython allows between classes with identical slots. The
    check below runs at import, so a change to the packet class fails loudly here.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} changed shape: update fleet_sim.mqtt.codec")
    twin = type(f"_Mutable{cls.__name__}", (), {"__slots__": names, "__module__": __name__})
    probe: Any = twin()
    probe.__class__ = cls  # raises TypeError if the layouts differ
    return twin


def _trailing(name: str, pos: int, end: int) -> None:
    if pos != end:
        raise malformed(f"{name}: {end - pos} unexpected bytes after the packet's contents")


def _read_packet_id(buf: Buffer, pos: int, end: int, name: str) -> tuple[int, int]:
    packet_id, pos = read_u16(buf, pos, end, f"{name}: packet identifier")
    if not packet_id:
        raise protocol_error(f"{name}: packet identifier must not be 0")
    return packet_id, pos


_PublishTwin: Final = _mutable_twin(Publish)


def _decode_publish(buf: Buffer, pos: int, end: int, flags: int, v5: bool) -> Publish:
    if pos + 2 > end:
        raise malformed("PUBLISH: topic name length extends past the end of the packet")
    stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise malformed("PUBLISH: topic name extends past the end of the packet")
    try:
        topic = buf[pos + 2 : stop].decode()
    except UnicodeDecodeError:
        raise malformed("PUBLISH: topic name is not valid UTF-8") from None
    if "\x00" in topic:
        raise malformed("PUBLISH: topic name contains U+0000")
    qos = flags >> 1 & 3
    packet_id = None
    if qos:
        if stop + 2 > end:
            raise malformed("PUBLISH: packet identifier extends past the end of the packet")
        packet_id = buf[stop] << 8 | buf[stop + 1]
        if not packet_id:
            raise protocol_error("PUBLISH: packet identifier must not be 0 when QoS > 0")
        stop += 2
    props = NO_PROPERTIES
    if v5:
        if stop < end and buf[stop] == 0:
            stop += 1
        else:
            props, stop = decode_properties(buf, stop, end, PacketType.PUBLISH)
    packet: Any = _PublishTwin()
    packet.topic = topic
    packet.payload = bytes(buf[stop:end])
    packet.qos = _QOS[qos]
    packet.retain = flags & 1 != 0
    packet.dup = flags & 8 != 0
    packet.packet_id = packet_id
    packet.properties = props
    packet.__class__ = Publish
    return packet  # type: ignore[no-any-return]


def _ack_decoder(cls: type, ptype: PacketType, valid: frozenset[int]) -> _Decoder:
    name = ptype.name
    twin = _mutable_twin(cls)

    def decode_ack(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> Any:
        size = end - pos
        if size < 2:
            raise malformed(f"{name}: packet identifier extends past the end of the packet")
        packet_id = buf[pos] << 8 | buf[pos + 1]
        if not packet_id:
            raise protocol_error(f"{name}: packet identifier must not be 0")
        code = 0
        props = NO_PROPERTIES
        if size > 2:
            if not v5:
                raise malformed(f"{name}: remaining length must be 2 in MQTT 3.1.1, got {size}")
            code = buf[pos + 2]
            if code not in valid:
                raise protocol_error(f"{name}: invalid reason code 0x{code:02X}")
            if size > 3:
                props, after = decode_properties(buf, pos + 3, end, ptype)
                _trailing(name, after, end)
        packet: Any = twin()
        packet.packet_id = packet_id
        packet.reason_code = code
        packet.properties = props
        packet.__class__ = cls
        return packet

    return decode_ack


def _decode_connect(buf: Buffer, pos: int, end: int, _flags: int, _v5: bool) -> Connect:
    if buf[pos : pos + 6] != b"\x00\x04MQTT":
        name, _ = read_string(buf, pos, end, "CONNECT: protocol name")
        raise RemoteProtocolError(
            f"CONNECT: unsupported protocol name {name!r}",
            reason_code=_UNSUPPORTED_PROTOCOL_VERSION,
        )
    level, pos = read_u8(buf, pos + 6, end, "CONNECT: protocol level")
    if level not in _VERSIONS:
        raise RemoteProtocolError(
            f"CONNECT: unsupported protocol level {level}",
            reason_code=_UNSUPPORTED_PROTOCOL_VERSION,
        )
    v5 = level == 5
    flags, pos = read_u8(buf, pos, end, "CONNECT: connect flags")
    if flags & 0x01:
        raise malformed("CONNECT: reserved connect flag must be 0")
    will_qos = flags >> 3 & 3
    if flags & 0x04:
        if will_qos == 3:
            raise malformed("CONNECT: will QoS 3 is invalid")
    elif flags & 0x38:
        raise malformed("CONNECT: will QoS and will retain must be 0 when the will flag is 0")
    if not v5 and flags & 0xC0 == 0x40:
        raise malformed("CONNECT: password flag set without the user name flag (MQTT 3.1.1)")
    keep_alive, pos = read_u16(buf, pos, end, "CONNECT: keep alive")
    props = NO_PROPERTIES
    if v5:
        props, pos = decode_properties(buf, pos, end, PacketType.CONNECT)
    client_id, pos = read_string(buf, pos, end, "CONNECT: client identifier")
    will = None
    if flags & 0x04:
        will_props = NO_PROPERTIES
        if v5:
            will_props, pos = decode_properties(buf, pos, end, WILL_PROPERTIES)
        will_topic, pos = read_string(buf, pos, end, "CONNECT: will topic")
        will_payload, pos = read_binary(buf, pos, end, "CONNECT: will payload")
        will = Will(
            topic=will_topic,
            payload=will_payload,
            qos=_QOS[will_qos],
            retain=flags & 0x20 != 0,
            properties=will_props,
        )
    username = password = None
    if flags & 0x80:
        username, pos = read_string(buf, pos, end, "CONNECT: user name")
    if flags & 0x40:
        password, pos = read_binary(buf, pos, end, "CONNECT: password")
    _trailing("CONNECT", pos, end)
    return Connect(
        client_id=client_id,
        protocol_version=_VERSIONS[level],
        clean_start=flags & 0x02 != 0,
        keep_alive=keep_alive,
        username=username,
        password=password,
        will=will,
        properties=props,
    )


def _decode_connack(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> ConnAck:
    if end - pos < 2 or (not v5 and end - pos != 2):
        raise malformed(f"CONNACK: remaining length {end - pos} is invalid")
    ack_flags, code = buf[pos], buf[pos + 1]
    if ack_flags & 0xFE:
        raise malformed("CONNACK: reserved acknowledge flags must be 0")
    if code not in (_CONNACK_V5 if v5 else _CONNACK_V4):
        raise protocol_error(f"CONNACK: invalid reason code 0x{code:02X}")
    props = NO_PROPERTIES
    if v5:
        props, pos = decode_properties(buf, pos + 2, end, PacketType.CONNACK)
        _trailing("CONNACK", pos, end)
    return ConnAck(session_present=ack_flags == 1, reason_code=code, properties=props)


def _decode_subscribe(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> Subscribe:
    packet_id, pos = _read_packet_id(buf, pos, end, "SUBSCRIBE")
    props = NO_PROPERTIES
    if v5:
        props, pos = decode_properties(buf, pos, end, PacketType.SUBSCRIBE)
    subscriptions = []
    while pos < end:
        topic_filter, pos = read_string(buf, pos, end, "SUBSCRIBE: topic filter")
        options, pos = read_u8(buf, pos, end, "SUBSCRIBE: subscription options")
        if options & (0xC0 if v5 else 0xFC):
            raise malformed(
                f"SUBSCRIBE: reserved subscription option bits must be 0, got 0x{options:02X}"
            )
        qos = options & 3
        if qos == 3:
            error = protocol_error if v5 else malformed
            raise error(f"SUBSCRIBE: QoS 3 is invalid (filter {topic_filter!r})")
        retain_handling = options >> 4
        if retain_handling == 3:
            raise protocol_error(
                f"SUBSCRIBE: retain handling 3 is invalid (filter {topic_filter!r})"
            )
        subscriptions.append(
            Subscription(
                topic_filter=topic_filter,
                qos=_QOS[qos],
                no_local=options & 0x04 != 0,
                retain_as_published=options & 0x08 != 0,
                retain_handling=retain_handling,
            )
        )
    if not subscriptions:
        raise protocol_error("SUBSCRIBE: no topic filter (at least one is required)")
    return Subscribe(packet_id=packet_id, subscriptions=tuple(subscriptions), properties=props)


def _decode_suback(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> SubAck:
    packet_id, pos = _read_packet_id(buf, pos, end, "SUBACK")
    props = NO_PROPERTIES
    if v5:
        props, pos = decode_properties(buf, pos, end, PacketType.SUBACK)
    codes = tuple(buf[pos:end])
    if not codes:
        raise malformed("SUBACK: no reason codes (at least one is required)")
    valid = _SUBACK_V5 if v5 else _SUBACK_V4
    for code in codes:
        if code not in valid:
            raise protocol_error(f"SUBACK: invalid reason code 0x{code:02X}")
    return SubAck(packet_id=packet_id, reason_codes=codes, properties=props)


def _decode_unsubscribe(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> Unsubscribe:
    packet_id, pos = _read_packet_id(buf, pos, end, "UNSUBSCRIBE")
    props = NO_PROPERTIES
    if v5:
        props, pos = decode_properties(buf, pos, end, PacketType.UNSUBSCRIBE)
    filters = []
    while pos < end:
        topic_filter, pos = read_string(buf, pos, end, "UNSUBSCRIBE: topic filter")
        filters.append(topic_filter)
    if not filters:
        raise protocol_error("UNSUBSCRIBE: no topic filter (at least one is required)")
    return Unsubscribe(packet_id=packet_id, topic_filters=tuple(filters), properties=props)


def _decode_unsuback(buf: Buffer, pos: int, end: int, _flags: int, v5: bool) -> UnsubAck:
    packet_id, after = _read_packet_id(buf, pos, end, "UNSUBACK")
    if not v5:
        _trailing("UNSUBACK", after, end)
        return UnsubAck(packet_id=packet_id)
    props, after = decode_properties(buf, after, end, PacketType.UNSUBACK)
    codes = tuple(buf[after:end])
    if not codes:
        raise malformed("UNSUBACK: no reason codes (at least one is required)")
    for code in codes:
        if code not in _UNSUBACK_V5:
            raise protocol_error(f"UNSUBACK: invalid reason code 0x{code:02X}")
    return UnsubAck(packet_id=packet_id, reason_codes=codes, properties=props)


def _ping_decoder(packet: PingReq | PingResp) -> _Decoder:
    name = packet.packet_type.name

    def decode_ping(_buf: Buffer, pos: int, end: int, _flags: int, _v5: bool) -> Any:
        if end != pos:
            raise malformed(f"{name}: remaining length must be 0, got {end - pos}")
        return packet

    return decode_ping


def _decode_disconnect(buf: Buffer, pos: int, end: int, flags: int, v5: bool) -> Disconnect:
    if not v5:
        if end != pos:
            raise malformed(f"DISCONNECT: remaining length must be 0, got {end - pos}")
        return Disconnect()
    code, props = _reason_and_properties(buf, pos, end, PacketType.DISCONNECT, _DISCONNECT_V5)
    return Disconnect(reason_code=code, properties=props)


def _decode_auth(buf: Buffer, pos: int, end: int, flags: int, v5: bool) -> Auth:
    code, props = _reason_and_properties(buf, pos, end, PacketType.AUTH, _AUTH_V5)
    return Auth(reason_code=code, properties=props)


def _reason_and_properties(
    buf: Buffer, pos: int, end: int, ptype: PacketType, valid: frozenset[int]
) -> tuple[int, Properties]:
    if pos == end:
        return 0, NO_PROPERTIES
    code = buf[pos]
    if code not in valid:
        raise protocol_error(f"{ptype.name}: invalid reason code 0x{code:02X}")
    if pos + 1 == end:
        return code, NO_PROPERTIES
    props, after = decode_properties(buf, pos + 1, end, ptype)
    _trailing(ptype.name, after, end)
    return code, props


def _decode_reserved(buf: Buffer, pos: int, end: int, flags: int, v5: bool) -> Any:
    raise malformed("packet type 0 is reserved")  # unreachable: the first byte is checked


_DECODERS: Final[tuple[_Decoder, ...]] = (
    _decode_reserved,
    _decode_connect,
    _decode_connack,
    _decode_publish,
    _ack_decoder(PubAck, PacketType.PUBACK, _PUBACK_V5),
    _ack_decoder(PubRec, PacketType.PUBREC, _PUBACK_V5),
    _ack_decoder(PubRel, PacketType.PUBREL, _PUBREL_V5),
    _ack_decoder(PubComp, PacketType.PUBCOMP, _PUBREL_V5),
    _decode_subscribe,
    _decode_suback,
    _decode_unsubscribe,
    _decode_unsuback,
    _ping_decoder(PingReq()),
    _ping_decoder(PingResp()),
    _decode_disconnect,
    _decode_auth,
)


def _decode_at(
    buf: Buffer, pos: int, size: int, version: ProtocolVersion | None, max_packet_size: int
) -> tuple[Packet, int] | None:
    """Decode the packet starting at ``buf[pos]``; return it and the index just after it."""
    if pos >= size:
        return None
    first = buf[pos]
    if version is None:
        if first != 0x10:
            raise _first_byte_error(first, None)
        v5 = False
    elif version == 5:
        if first not in _FIRST_V5:
            raise _first_byte_error(first, 5)
        v5 = True
    elif version == 4:
        if first not in _FIRST_V4:
            raise _first_byte_error(first, 4)
        v5 = False
    else:
        raise LocalProtocolError(f"unsupported protocol version {version!r} (use 4, 5 or None)")
    if pos + 1 >= size:
        return None
    remaining = buf[pos + 1]
    body = pos + 2
    if remaining > 127:
        if body < size and 0 < buf[body] < 128:  # two bytes, the common case
            remaining = remaining & 0x7F | buf[body] << 7
            body += 1
        else:
            header = read_remaining_length(buf, pos + 1, size)
            if header is None:
                return None
            remaining, body = header
    end = body + remaining
    if end - pos > max_packet_size:
        raise RemoteProtocolError(
            f"{_NAMES[first >> 4]}: packet of {end - pos} bytes exceeds the maximum packet "
            f"size of {max_packet_size} bytes",
            reason_code=_PACKET_TOO_LARGE,
        )
    if end > size:
        return None
    return _DECODERS[first >> 4](buf, body, end, first & 0x0F, v5), end


def decode(
    buffer: bytes | bytearray | memoryview,
    version: ProtocolVersion | None,
    *,
    max_packet_size: int = _MAX_PACKET,
) -> tuple[Packet, int] | None:
    """Decode one packet from the start of ``buffer``.

    Args:
        buffer: received bytes; may hold less or more than one packet.
        version: the connection's protocol version, or ``None`` before CONNECT (then only a
            CONNECT is accepted, decoded with its own protocol level).
        max_packet_size: the largest packet (fixed header included) to accept.

    Returns:
        ``(packet, bytes_consumed)``, or ``None`` when ``buffer`` holds an incomplete packet.

    Raises:
        RemoteProtocolError: the bytes are malformed or break a protocol rule; its
            ``reason_code`` is the MQTT 5 reason code to report (0x95 for a packet larger
            than ``max_packet_size``, raised as soon as the fixed header is complete).
    """
    if type(buffer) is memoryview:
        return _decode_view(buffer, version, max_packet_size)
    return _decode_at(buffer, 0, len(buffer), version, max_packet_size)


def _decode_view(
    view: memoryview, version: ProtocolVersion | None, max_packet_size: int
) -> tuple[Packet, int] | None:
    """Decode from a memoryview by copying only the first packet's bytes."""
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    head = bytes(view[:5])  # a fixed header is at most 5 bytes long
    result = _decode_at(head, 0, len(head), version, max_packet_size)
    if result is not None or len(head) < 2:
        return result
    length = read_remaining_length(head, 1, len(head))
    if length is None:
        return None
    end = length[0] + length[1]
    if end > len(view):
        return None
    return _decode_at(bytes(view[:end]), 0, end, version, max_packet_size)


_COMPACT_AT: Final = 16_384


class PacketDecoder:
    """Decode the packets of one connection from arbitrarily chunked bytes.

    Bytes are appended to one ``bytearray``; a read offset advances as packets are decoded,
    and consumed bytes are dropped when the buffer empties or the offset passes both 16 KiB
    and half the buffer, so the work per byte stays constant however the data is chunked.

    After a :class:`RemoteProtocolError` the stream is unusable: close the connection.
    """

    __slots__ = ("_buffer", "_max_packet_size", "_offset", "_version")

    def __init__(
        self, version: ProtocolVersion | None = None, *, max_packet_size: int = _MAX_PACKET
    ) -> None:
        """Create a decoder.

        Args:
            version: the protocol version, or ``None`` until a CONNECT has been decoded.
            max_packet_size: the largest packet to accept (see :func:`decode`).
        """
        self._buffer = bytearray()
        self._offset = 0
        self._version: ProtocolVersion | None = None
        self.version = version
        self._max_packet_size = max_packet_size

    @property
    def version(self) -> ProtocolVersion | None:
        """The protocol version; set from the first CONNECT when it was ``None``."""
        return self._version

    @version.setter
    def version(self, version: ProtocolVersion | None) -> None:
        if version is not None:
            version = _VERSIONS[4 if not _checked_version(version) else 5]
        self._version = version

    @property
    def buffered(self) -> int:
        """The number of received bytes not decoded yet."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_packet(self) -> Packet | None:
        """Decode the next complete packet, or return ``None`` when more bytes are needed.

        Raises:
            RemoteProtocolError: the peer sent a malformed or illegal packet.
        """
        buf = self._buffer
        result = _decode_at(buf, self._offset, len(buf), self._version, self._max_packet_size)
        if result is None:
            return None
        packet, end = result
        if end == len(buf):
            buf.clear()
            self._offset = 0
        elif end >= _COMPACT_AT and end * 2 >= len(buf):
            del buf[:end]
            self._offset = 0
        else:
            self._offset = end
        if self._version is None and type(packet) is Connect:
            self._version = packet.protocol_version
        return packet
