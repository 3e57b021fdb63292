"""The decoders of the MQTT control packets, one per packet type (the bodies of ``decode``).

Each decoder takes ``(buf, pos, end, flags, v5)``: the packet's variable header and payload lie
in ``buf[pos:end]`` and ``flags`` is the low nibble of its first byte, already checked by the
caller. It returns the frozen packet, or raises :class:`RemoteProtocolError` (with the most
precise MQTT 5 reason code) for anything malformed or illegal: QoS values, non-zero packet
identifiers, CONNECT's protocol name, level and flags, UTF-8 strings, subscription options,
reason codes, and bytes after the packet's declared contents. :mod:`fleet_sim.mqtt.codec`
reads the fixed header and picks the decoder from :data:`DECODERS`.

PUBLISH and the PUBACK family are built through a mutable twin class with the same slots (see
:func:`_mutable_twin`), which yields values equal to the constructor's for a fraction of the
cost of a frozen dataclass ``__init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

from fleet_sim.errors import RemoteProtocolError
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
from fleet_sim.mqtt.properties import WILL_PROPERTIES, decode_properties
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
    Buffer,
    malformed,
    protocol_error,
    read_binary,
    read_string,
    read_u8,
    read_u16,
)

__all__ = ["DECODERS", "Decoder"]

#: ``(buf, pos, end, flags, v5) -> packet``.
Decoder = Callable[[Buffer, int, int, int, bool], Any]

_QOS: Final = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)
_VERSIONS: Final = {4: ProtocolVersion.MQTT_3_1_1, 5: ProtocolVersion.MQTT_5}
_UNSUPPORTED_PROTOCOL_VERSION: Final = 0x84


def _mutable_twin(cls: type) -> type:
    """Return a plain class with the slot layout of the frozen packet class ``cls``.

    A twin instance is filled with ordinary attribute stores (several times cheaper than the
    frozen dataclass ``__init__``) and then becomes a genuine ``cls`` instance by
    ``__class__`` assignment, which CPython allows between classes with identical slots. The
    check below runs at import, so a change to the packet class fails loudly here.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} changed shape: update fleet_sim.mqtt.decoding")
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


def make_publish(
    topic: str,
    payload: bytes,
    qos: QoS,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties,
) -> Publish:
    """A :class:`Publish` built without the frozen dataclass's ``__init__`` (hot paths).

    The values are trusted: callers have checked them (the decoder, the server session).
    """
    packet: Any = _PublishTwin()
    packet.topic = topic
    packet.payload = payload
    packet.qos = qos
    packet.retain = retain
    packet.dup = dup
    packet.packet_id = packet_id
    packet.properties = properties
    packet.__class__ = Publish
    return packet  # type: ignore[no-any-return]


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
    return make_publish(
        topic, bytes(buf[stop:end]), _QOS[qos], flags & 1 != 0, flags & 8 != 0, packet_id, props
    )


def _ack_decoder(cls: type, ptype: PacketType, valid: frozenset[int]) -> Decoder:
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
    if code not in (CONNACK_V5 if v5 else CONNACK_V4):
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
    valid = SUBACK_V5 if v5 else SUBACK_V4
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
        if code not in UNSUBACK_V5:
            raise protocol_error(f"UNSUBACK: invalid reason code 0x{code:02X}")
    return UnsubAck(packet_id=packet_id, reason_codes=codes, properties=props)


def _ping_decoder(packet: PingReq | PingResp) -> Decoder:
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
    code, props = _reason_and_properties(
        buf, pos, end, PacketType.DISCONNECT, DISCONNECT_REASON_CODES
    )
    return Disconnect(reason_code=code, properties=props)


def _decode_auth(buf: Buffer, pos: int, end: int, flags: int, v5: bool) -> Auth:
    code, props = _reason_and_properties(buf, pos, end, PacketType.AUTH, AUTH_V5)
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


#: The decoder of each packet type, indexed by its number (0 is reserved).
DECODERS: Final[tuple[Decoder, ...]] = (
    _decode_reserved,
    _decode_connect,
    _decode_connack,
    _decode_publish,
    _ack_decoder(PubAck, PacketType.PUBACK, PUBACK_V5),
    _ack_decoder(PubRec, PacketType.PUBREC, PUBACK_V5),
    _ack_decoder(PubRel, PacketType.PUBREL, PUBREL_V5),
    _ack_decoder(PubComp, PacketType.PUBCOMP, PUBREL_V5),
    _decode_subscribe,
    _decode_suback,
    _decode_unsubscribe,
    _decode_unsuback,
    _ping_decoder(PingReq()),
    _ping_decoder(PingResp()),
    _decode_disconnect,
    _decode_auth,
)
