"""MQTT 3.1.1 and MQTT 5 control packets as frozen values.

One frozen dataclass per packet type, shared by the client and the server side. Packets carry
no protocol version (only :class:`Connect` names it): the codec is told the version of the
connection when it encodes or decodes.

Conventions:

* Reason codes are plain ``int`` so a packet can hold any code a peer sent; :class:`ReasonCode`
  names the MQTT 5 codes and :class:`ConnectReturnCode` the MQTT 3.1.1 CONNACK codes. In MQTT
  3.1.1, PUBACK/UNSUBACK/DISCONNECT carry no reason code: the field is then 0 and not encoded.
* MQTT 5 properties live in :class:`Properties`; ``None`` means "absent". Fields a packet type
  may not carry are rejected by the codec.
* Payloads are ``bytes``; topics, filters and client ids are ``str`` (UTF-8 on the wire).

References: MQTT 3.1.1 (OASIS, 2014) §2–§3 and MQTT 5.0 (OASIS, 2019) §2–§3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ProtocolVersion(IntEnum):
    """The protocol level byte of CONNECT."""

    MQTT_3_1_1 = 4
    MQTT_5 = 5


class PacketType(IntEnum):
    """The control packet type (high nibble of the fixed header's first byte)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class QoS(IntEnum):
    """Quality of service levels."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


class ConnectReturnCode(IntEnum):
    """MQTT 3.1.1 CONNACK return codes (§3.2.2.3)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


class ReasonCode(IntEnum):
    """MQTT 5 reason codes (§2.4). Several names share a value, as in the spec."""

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2


#: MQTT 3.1.1 SUBACK return code for a refused subscription (§3.9.3).
SUBACK_FAILURE = 0x80


@dataclass(frozen=True, slots=True, kw_only=True)
class Properties:
    """MQTT 5 properties (§2.2.2.2). ``None`` (or an empty tuple) means absent.

    The same class serves every packet type; the codec checks which properties a packet type
    may carry. MQTT 3.1.1 packets always have :data:`NO_PROPERTIES`.
    """

    payload_format_indicator: int | None = None  # 0x01, byte
    message_expiry_interval: int | None = None  # 0x02, four-byte integer (seconds)
    content_type: str | None = None  # 0x03
    response_topic: str | None = None  # 0x08
    correlation_data: bytes | None = None  # 0x09
    subscription_identifiers: tuple[int, ...] = ()  # 0x0B, variable byte integer, repeatable
    session_expiry_interval: int | None = None  # 0x11, four-byte integer (seconds)
    assigned_client_identifier: str | None = None  # 0x12
    server_keep_alive: int | None = None  # 0x13, two-byte integer (seconds)
    authentication_method: str | None = None  # 0x15
    authentication_data: bytes | None = None  # 0x16
    request_problem_information: int | None = None  # 0x17, byte
    will_delay_interval: int | None = None  # 0x18, four-byte integer (seconds)
    request_response_information: int | None = None  # 0x19, byte
    response_information: str | None = None  # 0x1A
    server_reference: str | None = None  # 0x1C
    reason_string: str | None = None  # 0x1F
    receive_maximum: int | None = None  # 0x21, two-byte integer
    topic_alias_maximum: int | None = None  # 0x22, two-byte integer
    topic_alias: int | None = None  # 0x23, two-byte integer
    maximum_qos: int | None = None  # 0x24, byte
    retain_available: int | None = None  # 0x25, byte
    user_properties: tuple[tuple[str, str], ...] = ()  # 0x26, string pair, repeatable
    maximum_packet_size: int | None = None  # 0x27, four-byte integer
    wildcard_subscription_available: int | None = None  # 0x28, byte
    subscription_identifier_available: int | None = None  # 0x29, byte
    shared_subscription_available: int | None = None  # 0x2A, byte


#: The shared "no properties" value (every MQTT 3.1.1 packet, most MQTT 5 packets).
NO_PROPERTIES = Properties()


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    """The Will message carried in CONNECT."""

    topic: str
    payload: bytes = b""
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    """CONNECT (§3.1). ``clean_start`` is MQTT 3.1.1's Clean Session flag."""

    client_id: str
    protocol_version: ProtocolVersion = ProtocolVersion.MQTT_3_1_1
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.CONNECT


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnAck:
    """CONNACK (§3.2). ``reason_code`` is the 3.1.1 return code or the MQTT 5 reason code."""

    session_present: bool = False
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.CONNACK


@dataclass(frozen=True, slots=True, kw_only=True)
class Publish:
    """PUBLISH (§3.3). ``packet_id`` is ``None`` for QoS 0 and set otherwise."""

    topic: str
    payload: bytes = b""
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.PUBLISH


@dataclass(frozen=True, slots=True, kw_only=True)
class PubAck:
    """PUBACK (§3.4)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.PUBACK


@dataclass(frozen=True, slots=True, kw_only=True)
class PubRec:
    """PUBREC (§3.5)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.PUBREC


@dataclass(frozen=True, slots=True, kw_only=True)
class PubRel:
    """PUBREL (§3.6)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.PUBREL


@dataclass(frozen=True, slots=True, kw_only=True)
class PubComp:
    """PUBCOMP (§3.7)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.PUBCOMP


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One topic filter of a SUBSCRIBE with its options (§3.8.3.1).

    ``no_local``, ``retain_as_published`` and ``retain_handling`` exist only in MQTT 5: in
    3.1.1 they must keep their defaults (the codec raises ``LocalProtocolError`` otherwise
    rather than drop them silently).
    """

    topic_filter: str
    qos: QoS = QoS.AT_MOST_ONCE
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    """SUBSCRIBE (§3.8)."""

    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.SUBSCRIBE


@dataclass(frozen=True, slots=True, kw_only=True)
class SubAck:
    """SUBACK (§3.9): one return/reason code per requested filter, in order."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.SUBACK


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    """UNSUBSCRIBE (§3.10)."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.UNSUBSCRIBE


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubAck:
    """UNSUBACK (§3.11). MQTT 3.1.1 carries no reason codes: ``reason_codes`` is then empty."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.UNSUBACK


@dataclass(frozen=True, slots=True)
class PingReq:
    """PINGREQ (§3.12)."""

    packet_type = PacketType.PINGREQ


@dataclass(frozen=True, slots=True)
class PingResp:
    """PINGRESP (§3.13)."""

    packet_type = PacketType.PINGRESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    """DISCONNECT (§3.14). 3.1.1 has no reason code: ``reason_code`` is then 0."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    packet_type = PacketType.DISCONNECT


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """AUTH (§3.15, MQTT 5 only)."""

    reason_code: int = 0
    properties: Properties = field(default=NO_PROPERTIES)

    packet_type = PacketType.AUTH


#: Any control packet.
Packet = (
    Connect
    | ConnAck
    | Publish
    | PubAck
    | PubRec
    | PubRel
    | PubComp
    | Subscribe
    | SubAck
    | Unsubscribe
    | UnsubAck
    | PingReq
    | PingResp
    | Disconnect
    | Auth
)
