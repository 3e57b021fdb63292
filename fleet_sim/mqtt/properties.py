"""The MQTT 5 property codec (§2.2.2) and which properties each packet type may carry.

A property list is a variable byte integer length followed by ``(identifier, value)`` pairs.
Each identifier has a data type and a set of packet types that may carry it (MQTT 5 table
2-4); the Will Properties of CONNECT are a target of their own, :data:`WILL_PROPERTIES`.
Only User Property and (except in SUBSCRIBE) Subscription Identifier may be repeated.

Decoding violations raise :class:`RemoteProtocolError`: 0x81 Malformed Packet for unknown
identifiers, identifiers not valid for the packet type and truncated values (§2.2.2.2), 0x82
Protocol Error for repeated single-valued properties and forbidden values (a Receive Maximum
of 0, a Maximum QoS of 2, …). Encoding the same mistakes raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final, NamedTuple

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.packets import NO_PROPERTIES, PacketType, Properties
from fleet_sim.mqtt.wire import (
    U16,
    U32,
    Buffer,
    encode_binary,
    encode_string,
    encode_vbi,
    malformed,
    protocol_error,
    read_binary,
    read_string,
    read_vbi,
)

#: The pseudo packet type of the Will Properties inside CONNECT.
WILL_PROPERTIES: Final = 0


class DataType(IntEnum):
    """The data types of property values (§1.5)."""

    BYTE = 0
    TWO_BYTE_INTEGER = 1
    FOUR_BYTE_INTEGER = 2
    VARIABLE_BYTE_INTEGER = 3
    UTF8_STRING = 4
    BINARY_DATA = 5
    UTF8_STRING_PAIR = 6


_BYTE: Final = DataType.BYTE
_U16: Final = DataType.TWO_BYTE_INTEGER
_U32: Final = DataType.FOUR_BYTE_INTEGER
_VBI: Final = DataType.VARIABLE_BYTE_INTEGER
_STRING: Final = DataType.UTF8_STRING
_BINARY: Final = DataType.BINARY_DATA
_PAIR: Final = DataType.UTF8_STRING_PAIR

_TYPE_RANGES: Final = {
    _BYTE: (0, 0xFF),
    _U16: (0, 0xFFFF),
    _U32: (0, 0xFFFFFFFF),
    _VBI: (0, 268_435_455),
}

_P = PacketType
_W = WILL_PROPERTIES
_ALL_WITH_PROPERTIES: Final = (
    _P.CONNECT, _P.CONNACK, _P.PUBLISH, _W, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP,
    _P.SUBSCRIBE, _P.SUBACK, _P.UNSUBSCRIBE, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH,
)  # fmt: skip
_ACKS_AND_MORE: Final = (
    _P.CONNACK, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP, _P.SUBACK, _P.UNSUBACK,
    _P.DISCONNECT, _P.AUTH,
)  # fmt: skip


class PropertySpec(NamedTuple):
    """One row of MQTT 5 table 2-4."""

    identifier: int
    name: str  # the field of :class:`Properties`
    data_type: DataType
    targets: frozenset[int]  # packet types (and WILL_PROPERTIES) that may carry it
    minimum: int  # for numbers: values outside minimum..maximum are a Protocol Error
    maximum: int


def _spec(identifier: int, name: str, data_type: DataType, targets: tuple[int, ...], lo: int = -1,
          hi: int = -1) -> PropertySpec:  # fmt: skip
    type_lo, type_hi = _TYPE_RANGES.get(data_type, (0, 0))
    return PropertySpec(
        identifier,
        name,
        data_type,
        frozenset(int(t) for t in targets),
        type_lo if lo < 0 else lo,
        type_hi if hi < 0 else hi,
    )


#: Every MQTT 5 property, in identifier order (the order the encoder writes them in).
PROPERTY_SPECS: Final = (
    _spec(0x01, "payload_format_indicator", _BYTE, (_P.PUBLISH, _W), 0, 1),
    _spec(0x02, "message_expiry_interval", _U32, (_P.PUBLISH, _W)),
    _spec(0x03, "content_type", _STRING, (_P.PUBLISH, _W)),
    _spec(0x08, "response_topic", _STRING, (_P.PUBLISH, _W)),
    _spec(0x09, "correlation_data", _BINARY, (_P.PUBLISH, _W)),
    _spec(0x0B, "subscription_identifiers", _VBI, (_P.PUBLISH, _P.SUBSCRIBE), 1),
    _spec(0x11, "session_expiry_interval", _U32, (_P.CONNECT, _P.CONNACK, _P.DISCONNECT)),
    _spec(0x12, "assigned_client_identifier", _STRING, (_P.CONNACK,)),
    _spec(0x13, "server_keep_alive", _U16, (_P.CONNACK,)),
    _spec(0x15, "authentication_method", _STRING, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    _spec(0x16, "authentication_data", _BINARY, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    _spec(0x17, "request_problem_information", _BYTE, (_P.CONNECT,), 0, 1),
    _spec(0x18, "will_delay_interval", _U32, (_W,)),
    _spec(0x19, "request_response_information", _BYTE, (_P.CONNECT,), 0, 1),
    _spec(0x1A, "response_information", _STRING, (_P.CONNACK,)),
    _spec(0x1C, "server_reference", _STRING, (_P.CONNACK, _P.DISCONNECT)),
    _spec(0x1F, "reason_string", _STRING, _ACKS_AND_MORE),
    _spec(0x21, "receive_maximum", _U16, (_P.CONNECT, _P.CONNACK), 1),
    _spec(0x22, "topic_alias_maximum", _U16, (_P.CONNECT, _P.CONNACK)),
    _spec(0x23, "topic_alias", _U16, (_P.PUBLISH,), 1),
    _spec(0x24, "maximum_qos", _BYTE, (_P.CONNACK,), 0, 1),
    _spec(0x25, "retain_available", _BYTE, (_P.CONNACK,), 0, 1),
    _spec(0x26, "user_properties", _PAIR, _ALL_WITH_PROPERTIES),
    _spec(0x27, "maximum_packet_size", _U32, (_P.CONNECT, _P.CONNACK), 1),
    _spec(0x28, "wildcard_subscription_available", _BYTE, (_P.CONNACK,), 0, 1),
    _spec(0x29, "subscription_identifier_available", _BYTE, (_P.CONNACK,), 0, 1),
    _spec(0x2A, "shared_subscription_available", _BYTE, (_P.CONNACK,), 0, 1),
)

_BY_ID: Final = tuple(
    next((s for s in PROPERTY_SPECS if s.identifier == i), None) for i in range(128)
)
_SUBSCRIPTION_IDENTIFIER: Final = 0x0B
_REPEATABLE: Final = frozenset({"subscription_identifiers", "user_properties"})


def allowed_properties(target: int) -> frozenset[str]:
    """Return the :class:`Properties` fields a packet type may carry.

    Args:
        target: a :class:`PacketType`, or :data:`WILL_PROPERTIES` for a Will.
    """
    return frozenset(s.name for s in PROPERTY_SPECS if target in s.targets)


def _target_name(target: int) -> str:
    return "CONNECT will" if target == WILL_PROPERTIES else PacketType(target).name


# --------------------------------------------------------------------------- encoding


def encode_properties(props: Properties, target: int) -> bytes:
    """Encode a property list with its length prefix for the packet type ``target``.

    Raises:
        LocalProtocolError: a property the packet type may not carry, a value out of range,
            or a repeated Subscription Identifier in SUBSCRIBE.
    """
    if props is NO_PROPERTIES:
        return b"\x00"
    where = _target_name(target)
    parts: list[bytes] = []
    for spec in PROPERTY_SPECS:
        value = getattr(props, spec.name)
        if value is None or value == ():
            continue
        if target not in spec.targets:
            raise LocalProtocolError(f"{where}: property {spec.name} is not allowed here")
        if spec.name in _REPEATABLE:
            if (
                spec.identifier == _SUBSCRIPTION_IDENTIFIER
                and target == PacketType.SUBSCRIBE
                and len(value) > 1
            ):
                raise LocalProtocolError(f"{where}: only one subscription identifier is allowed")
            parts.extend(_encode_value(spec, item, where) for item in value)
        else:
            parts.append(_encode_value(spec, value, where))
    body = b"".join(parts)
    return encode_vbi(len(body)) + body


def _encode_value(spec: PropertySpec, value: Any, where: str) -> bytes:
    what = f"{where}: property {spec.name}"
    head = bytes((spec.identifier,))
    kind = spec.data_type
    if kind == _STRING:
        return head + encode_string(value, what)
    if kind == _BINARY:
        return head + encode_binary(value, what)
    if kind == _PAIR:
        key, val = value
        return head + encode_string(key, f"{what} name") + encode_string(val, f"{what} value")
    if not spec.minimum <= value <= spec.maximum:
        raise LocalProtocolError(
            f"{what} must be in {spec.minimum}..{spec.maximum}, got {value}"
        )
    if kind == _BYTE:
        return head + bytes((value,))
    if kind == _U16:
        return head + U16.pack(value)
    if kind == _U32:
        return head + U32.pack(value)
    return head + encode_vbi(value)


# --------------------------------------------------------------------------- decoding


def decode_properties(buf: Buffer, pos: int, end: int, target: int) -> tuple[Properties, int]:
    """Read a property list (length prefix included) that must lie within ``buf[pos:end]``.

    Returns:
        ``(properties, position_after_them)``; :data:`NO_PROPERTIES` when the list is empty.
    """
    if pos < end and buf[pos] == 0:
        return NO_PROPERTIES, pos + 1
    where = _target_name(target)
    length, pos = read_vbi(buf, pos, end, f"{where}: property length")
    stop = pos + length
    if stop > end:
        raise malformed(f"{where}: property length {length} exceeds the packet")
    values: dict[str, Any] = {}
    sub_ids: list[int] = []
    user: list[tuple[str, str]] = []
    while pos < stop:
        identifier = buf[pos]
        spec = _BY_ID[identifier] if identifier < 128 else None
        if spec is None:
            raise malformed(f"{where}: unknown property identifier 0x{identifier:02X}")
        if target not in spec.targets:
            raise malformed(
                f"{where}: property {spec.name} (0x{identifier:02X}) is not valid in this packet"
            )
        what = f"{where}: property {spec.name}"
        pos += 1
        kind = spec.data_type
        value: Any
        if kind == _BYTE:
            if pos >= stop:
                raise malformed(f"{what} extends past the property list")
            value = buf[pos]
            pos += 1
        elif kind == _U16:
            if pos + 2 > stop:
                raise malformed(f"{what} extends past the property list")
            value = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        elif kind == _U32:
            if pos + 4 > stop:
                raise malformed(f"{what} extends past the property list")
            value = U32.unpack_from(buf, pos)[0]
            pos += 4
        elif kind == _VBI:
            value, pos = read_vbi(buf, pos, stop, what)
        elif kind == _STRING:
            value, pos = read_string(buf, pos, stop, what)
        elif kind == _BINARY:
            value, pos = read_binary(buf, pos, stop, what)
        else:
            key, pos = read_string(buf, pos, stop, f"{what} name")
            text, pos = read_string(buf, pos, stop, f"{what} value")
            user.append((key, text))
            continue
        if kind <= _VBI and not spec.minimum <= value <= spec.maximum:
            raise protocol_error(
                f"{what} must be in {spec.minimum}..{spec.maximum}, got {value}"
            )
        if identifier == _SUBSCRIPTION_IDENTIFIER:
            if sub_ids and target == PacketType.SUBSCRIBE:
                raise protocol_error(f"{where}: subscription identifier appears more than once")
            sub_ids.append(value)
        elif spec.name in values:
            raise protocol_error(f"{what} appears more than once")
        else:
            values[spec.name] = value
    if sub_ids:
        values["subscription_identifiers"] = tuple(sub_ids)
    if user:
        values["user_properties"] = tuple(user)
    if not values:
        return NO_PROPERTIES, pos
    return Properties(**values), pos
