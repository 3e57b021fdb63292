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

import dataclasses
from collections.abc import Callable
from enum import IntEnum
from operator import attrgetter
from typing import Any, Final, NamedTuple

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
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
    head: bytes  # the identifier as encoded
    target_bits: int  # bit ``1 << t`` set for each target ``t``


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
        bytes((identifier,)),
        sum(1 << int(t) for t in targets),
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
_EMPTY: Final = ()  # the default of the repeatable properties (a singleton in CPython)
_TARGETS: Final = range(16)  # WILL_PROPERTIES (0) and the packet types 1..15
_WHERE: Final = ("CONNECT will", *(PacketType(t).name for t in range(1, 16)))


def allowed_properties(target: int) -> frozenset[str]:
    """Return the :class:`Properties` fields a packet type may carry.

    Args:
        target: a :class:`PacketType`, or :data:`WILL_PROPERTIES` for a Will.
    """
    return frozenset(s.name for s in PROPERTY_SPECS if target in s.targets)


# --------------------------------------------------------------------------- encoding


class _EncodePlan(NamedTuple):
    """What :func:`encode_properties` needs for one target, computed once."""

    allowed: tuple[PropertySpec, ...]
    read: Callable[[Properties], tuple[Any, ...]]  # values of ``allowed``, then of the others
    others_absent: tuple[Any, ...]  # the tail of ``read`` when no other property is set


def _encode_plan(target: int) -> _EncodePlan:
    allowed = tuple(s for s in PROPERTY_SPECS if target in s.targets)
    others = [s for s in PROPERTY_SPECS if target not in s.targets]
    absent = tuple(_EMPTY if s.data_type in (_PAIR, _VBI) else None for s in others)
    return _EncodePlan(allowed, attrgetter(*(s.name for s in (*allowed, *others))), absent)


_PLANS: Final = tuple(_encode_plan(target) for target in _TARGETS)


def encode_properties(props: Properties, target: int) -> bytes:
    """Encode a property list with its length prefix for the packet type ``target``.

    Raises:
        LocalProtocolError: a property the packet type may not carry, a value out of range,
            or a repeated Subscription Identifier in SUBSCRIBE.
    """
    if props is NO_PROPERTIES:
        return b"\x00"
    allowed, read, others_absent = _PLANS[target]
    values = read(props)
    count = len(allowed)
    if values[count:] != others_absent:
        _refuse_disallowed(props, target)
    parts: list[bytes] = []
    index = -1
    for value in values[:count]:
        index += 1
        if value is None or value is _EMPTY:
            continue
        spec = allowed[index]
        kind = spec.data_type
        if kind == _PAIR:
            for key, text in value:
                try:
                    raw_key = key.encode()
                    raw_text = text.encode()
                except UnicodeEncodeError:
                    raw_key = raw_text = b"\x00"
                if (
                    b"\x00" in raw_key
                    or b"\x00" in raw_text
                    or len(raw_key) > 0xFFFF
                    or len(raw_text) > 0xFFFF
                ):
                    _refuse_text(key, target, spec, " name")
                    _refuse_text(text, target, spec, " value")
                parts += (spec.head, U16.pack(len(raw_key)), raw_key)
                parts += (U16.pack(len(raw_text)), raw_text)
        elif kind == _STRING:
            try:
                raw = value.encode()
            except UnicodeEncodeError:
                raw = b"\x00"
            if b"\x00" in raw or len(raw) > 0xFFFF:
                _refuse_text(value, target, spec, "")
            parts += (spec.head, U16.pack(len(raw)), raw)
        elif kind == _BINARY:
            parts.append(spec.head)
            parts.append(encode_binary(value, f"{_WHERE[target]}: property {spec.name}"))
        elif kind == _VBI:  # subscription identifiers
            if len(value) > 1 and target == PacketType.SUBSCRIBE:
                raise LocalProtocolError("SUBSCRIBE: only one subscription identifier is allowed")
            for number in value:
                _check_range(number, target, spec)
                parts.append(spec.head)
                parts.append(encode_vbi(number))
        else:
            _check_range(value, target, spec)
            parts.append(spec.head)
            if kind == _BYTE:
                parts.append(bytes((value,)))
            elif kind == _U16:
                parts.append(U16.pack(value))
            else:
                parts.append(U32.pack(value))
    body = b"".join(parts)
    return encode_vbi(len(body)) + body


def _refuse_text(text: str, target: int, spec: PropertySpec, part: str) -> None:
    """Raise the precise LocalProtocolError if ``text`` cannot be an MQTT string."""
    encode_string(text, f"{_WHERE[target]}: property {spec.name}{part}")


def _check_range(value: int, target: int, spec: PropertySpec) -> None:
    if not spec.minimum <= value <= spec.maximum:
        raise LocalProtocolError(
            f"{_WHERE[target]}: property {spec.name} must be in "
            f"{spec.minimum}..{spec.maximum}, got {value}"
        )


def _refuse_disallowed(props: Properties, target: int) -> None:
    for spec in PROPERTY_SPECS:
        if target not in spec.targets and getattr(props, spec.name) not in (None, ()):
            raise LocalProtocolError(f"{_WHERE[target]}: property {spec.name} is not allowed here")


# --------------------------------------------------------------------------- decoding


class _MutableProperties:
    """The slot layout of :class:`Properties` without its frozen ``__setattr__``.

    Decoding fills one of these (all fields start at their defaults) and turns it into a
    genuine :class:`Properties` by ``__class__`` assignment, much cheaper than the 27-field
    frozen dataclass ``__init__``. Checked against :class:`Properties` at import.
    """

    __slots__ = tuple(f.name for f in dataclasses.fields(Properties))

    def __init__(self) -> None:
        self.payload_format_indicator = None
        self.message_expiry_interval = None
        self.content_type = None
        self.response_topic = None
        self.correlation_data = None
        self.subscription_identifiers = ()
        self.session_expiry_interval = None
        self.assigned_client_identifier = None
        self.server_keep_alive = None
        self.authentication_method = None
        self.authentication_data = None
        self.request_problem_information = None
        self.will_delay_interval = None
        self.request_response_information = None
        self.response_information = None
        self.server_reference = None
        self.reason_string = None
        self.receive_maximum = None
        self.topic_alias_maximum = None
        self.topic_alias = None
        self.maximum_qos = None
        self.retain_available = None
        self.user_properties = ()
        self.maximum_packet_size = None
        self.wildcard_subscription_available = None
        self.subscription_identifier_available = None
        self.shared_subscription_available = None


def _check_mutable_properties() -> None:
    probe: Any = _MutableProperties()
    probe.__class__ = Properties  # TypeError if the slot layouts differ
    if probe != NO_PROPERTIES or Properties.__slots__ != _MutableProperties.__slots__:
        raise RuntimeError("Properties changed: update _MutableProperties in properties.py")


_check_mutable_properties()


def decode_properties(buf: Buffer, pos: int, end: int, target: int) -> tuple[Properties, int]:
    """Read a property list (length prefix included) that must lie within ``buf[pos:end]``.

    Returns:
        ``(properties, position_after_them)``; :data:`NO_PROPERTIES` when the list is empty.
    """
    if pos < end and buf[pos] < 128:
        length = buf[pos]
        if not length:
            return NO_PROPERTIES, pos + 1
        pos += 1
    else:
        length, pos = read_vbi(buf, pos, end, f"{_WHERE[target]}: property length")
    stop = pos + length
    if stop > end:
        raise malformed(f"{_WHERE[target]}: property length {length} exceeds the packet")
    props: Any = _MutableProperties()
    seen = 0
    sub_ids: list[int] = []
    user: list[tuple[str, str]] = []
    target_bit = 1 << target
    while pos < stop:
        identifier = buf[pos]
        spec = _BY_ID[identifier] if identifier < 128 else None
        if spec is None or not spec.target_bits & target_bit:
            raise _invalid_identifier(identifier, target)
        pos += 1
        kind = spec.data_type
        value: Any
        if kind == _PAIR:
            key, pos = _read_text(buf, pos, stop, target, spec, " name")
            text, pos = _read_text(buf, pos, stop, target, spec, " value")
            user.append((key, text))
            continue
        if kind == _STRING:
            value, pos = _read_text(buf, pos, stop, target, spec, "")
        elif kind == _BINARY:
            value, pos = read_binary(buf, pos, stop, f"{_WHERE[target]}: property {spec.name}")
        else:
            value, pos = _read_number(buf, pos, stop, target, spec)
            if not spec.minimum <= value <= spec.maximum:
                raise protocol_error(
                    f"{_WHERE[target]}: property {spec.name} must be in "
                    f"{spec.minimum}..{spec.maximum}, got {value}"
                )
            if identifier == _SUBSCRIPTION_IDENTIFIER:
                if sub_ids and target == PacketType.SUBSCRIBE:
                    raise protocol_error(
                        "SUBSCRIBE: subscription identifier appears more than once"
                    )
                sub_ids.append(value)
                continue
        bit = 1 << identifier
        if seen & bit:
            raise protocol_error(f"{_WHERE[target]}: property {spec.name} appears more than once")
        seen |= bit
        setattr(props, spec.name, value)
    if sub_ids:
        props.subscription_identifiers = tuple(sub_ids)
    if user:
        props.user_properties = tuple(user)
    props.__class__ = Properties
    return props, pos


def _read_number(
    buf: Buffer, pos: int, stop: int, target: int, spec: PropertySpec
) -> tuple[int, int]:
    kind = spec.data_type
    if kind == _VBI:
        return read_vbi(buf, pos, stop, f"{_WHERE[target]}: property {spec.name}")
    size = 1 if kind == _BYTE else 2 if kind == _U16 else 4
    if pos + size > stop:
        raise malformed(f"{_WHERE[target]}: property {spec.name} extends past the property list")
    if size == 1:
        return buf[pos], pos + 1
    if size == 2:
        return buf[pos] << 8 | buf[pos + 1], pos + 2
    return U32.unpack_from(buf, pos)[0], pos + 4


def _invalid_identifier(identifier: int, target: int) -> RemoteProtocolError:
    spec = _BY_ID[identifier] if identifier < 128 else None
    if spec is None:
        return malformed(f"{_WHERE[target]}: unknown property identifier 0x{identifier:02X}")
    return malformed(
        f"{_WHERE[target]}: property {spec.name} (0x{identifier:02X}) is not valid in this packet"
    )


def _read_text(
    buf: Buffer, pos: int, stop: int, target: int, spec: PropertySpec, part: str
) -> tuple[str, int]:
    """Read a UTF-8 string; the error message is only built when there is an error."""
    end = pos + 2
    if end <= stop:
        end += buf[pos] << 8 | buf[pos + 1]
        if end <= stop:
            try:
                text = buf[pos + 2 : end].decode()
            except UnicodeDecodeError:
                text = "\x00"
            if "\x00" not in text:
                return text, end
    # not well formed: the precise reader raises the precise error
    return read_string(buf, pos, stop, f"{_WHERE[target]}: property {spec.name}{part}")
