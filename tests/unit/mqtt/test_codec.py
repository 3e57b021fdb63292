"""Unit tests of the MQTT wire codec: round trips, spec byte vectors, malformed input."""

from __future__ import annotations

import array
import dataclasses
import re
from typing import Any

import pytest

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
from fleet_sim.mqtt.codec import PacketDecoder, decode, encode
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
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
from fleet_sim.mqtt.properties import PROPERTY_SPECS, allowed_properties
from fleet_sim.mqtt.wire import (
    encode_binary,
    encode_string,
    encode_u16,
    encode_u32,
    encode_vbi,
    read_binary,
    read_remaining_length,
    read_string,
    read_u32,
    read_vbi,
)


def _decoded(data: bytes, version: ProtocolVersion | None) -> Any:
    result = decode(data, version)
    assert result is not None
    assert result[1] == len(data)
    return result[0]


V4 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
Q0, Q1, Q2 = QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE

# --------------------------------------------------------------------------- examples

USER = (("region", "eu-west-1"), ("k", "v"), ("k", "v2"), ("ü", ""))
CONNECT_PROPS = Properties(
    session_expiry_interval=3600,
    receive_maximum=20,
    maximum_packet_size=65_536,
    topic_alias_maximum=10,
    request_response_information=1,
    request_problem_information=0,
    user_properties=USER,
    authentication_method="SCRAM-SHA-1",
    authentication_data=b"\x01\x02",
)
WILL_PROPS = Properties(
    will_delay_interval=30,
    payload_format_indicator=1,
    message_expiry_interval=600,
    content_type="text/plain",
    response_topic="replies/x",
    correlation_data=b"corr",
    user_properties=USER,
)
CONNACK_PROPS = Properties(
    session_expiry_interval=0,
    receive_maximum=100,
    maximum_qos=1,
    retain_available=0,
    maximum_packet_size=128_000,
    assigned_client_identifier="auto-123",
    topic_alias_maximum=8,
    reason_string="welcome",
    user_properties=USER,
    wildcard_subscription_available=1,
    subscription_identifier_available=0,
    shared_subscription_available=0,
    server_keep_alive=30,
    response_information="resp/",
    server_reference="other:1883",
    authentication_method="SCRAM",
    authentication_data=b"server-first",
)
PUBLISH_PROPS = Properties(
    payload_format_indicator=1,
    message_expiry_interval=60,
    topic_alias=3,
    response_topic="r/t",
    correlation_data=b"\x00\xff",
    user_properties=USER,
    subscription_identifiers=(1, 127, 128, 268_435_455),
    content_type="application/json",
)
ACK_PROPS = Properties(reason_string="ok", user_properties=USER)
SUBSCRIBE_PROPS = Properties(subscription_identifiers=(42,), user_properties=USER)
DISCONNECT_PROPS = Properties(
    session_expiry_interval=10, reason_string="bye", server_reference="s2", user_properties=USER
)
AUTH_PROPS = Properties(
    authentication_method="SCRAM",
    authentication_data=b"x",
    reason_string="more",
    user_properties=USER,
)
ALL_PROPERTY_SETS = (
    CONNECT_PROPS, WILL_PROPS, CONNACK_PROPS, PUBLISH_PROPS, ACK_PROPS, SUBSCRIBE_PROPS,
    DISCONNECT_PROPS, AUTH_PROPS,
)  # fmt: skip


def _plain_examples(version: ProtocolVersion) -> list[object]:
    return [
        Connect(client_id="device-1", protocol_version=version),
        Connect(
            client_id="",
            protocol_version=version,
            clean_start=False,
            keep_alive=0,
            username="user",
            password=b"\x00secret",
            will=Will(topic="devices/1/status", payload=b"offline", qos=Q2, retain=True),
        ),
        Connect(client_id="x", protocol_version=version, username="only-user"),
        ConnAck(),
        ConnAck(session_present=True),
        ConnAck(reason_code=5 if version == V4 else 0x87),
        Publish(topic="a/b", payload=b"hello"),
        Publish(topic="a/b", payload=b"", qos=Q1, packet_id=1, retain=True, dup=True),
        Publish(topic="ünïcødé/☃/𝄞", payload=bytes(range(256)), qos=Q2, packet_id=65535),
        Publish(topic="t", payload=b"x" * 121),  # remaining length 126: one byte
        Publish(topic="t", payload=b"x" * 125),  # remaining length 128: two bytes
        Publish(topic="t", payload=b"x" * 20_000, qos=Q1, packet_id=9),  # three bytes
        PubAck(packet_id=1),
        PubRec(packet_id=2),
        PubRel(packet_id=3),
        PubComp(packet_id=65535),
        Subscribe(packet_id=10, subscriptions=(Subscription(topic_filter="a/#"),)),
        Subscribe(
            packet_id=11,
            subscriptions=(
                Subscription(topic_filter="a/+/c", qos=Q1),
                Subscription(topic_filter="$aws/things/x/shadow/#", qos=Q2),
            ),
        ),
        SubAck(packet_id=10, reason_codes=(0, 1, 2, 0x80)),
        Unsubscribe(packet_id=12, topic_filters=("a/#", "b")),
        UnsubAck(packet_id=12) if version == V4 else UnsubAck(packet_id=12, reason_codes=(0,)),
        PingReq(),
        PingResp(),
        Disconnect(),
    ]


def _v5_examples() -> list[object]:
    will = Will(topic="w", payload=b"gone", qos=Q1, properties=WILL_PROPS)
    return [
        Connect(client_id="c", protocol_version=V5, properties=CONNECT_PROPS, will=will),
        Connect(client_id="c", protocol_version=V5, password=b"no-user"),
        ConnAck(session_present=True, properties=CONNACK_PROPS),
        Publish(topic="a", payload=b"p", qos=Q1, packet_id=7, properties=PUBLISH_PROPS),
        Publish(topic="", payload=b"alias only", properties=Properties(topic_alias=1)),
        PubAck(packet_id=1, reason_code=0x10),
        PubAck(packet_id=1, reason_code=0x97, properties=ACK_PROPS),
        PubAck(packet_id=1, properties=ACK_PROPS),
        PubRec(packet_id=2, reason_code=0x80, properties=ACK_PROPS),
        PubRel(packet_id=3, reason_code=0x92),
        PubComp(packet_id=4, reason_code=0x92, properties=ACK_PROPS),
        Subscribe(
            packet_id=5,
            subscriptions=(
                Subscription(
                    topic_filter="a/#",
                    qos=Q1,
                    no_local=True,
                    retain_as_published=True,
                    retain_handling=2,
                ),
                Subscription(topic_filter="b", retain_handling=1),
            ),
            properties=SUBSCRIBE_PROPS,
        ),
        SubAck(packet_id=5, reason_codes=(0x01, 0x97, 0xA2), properties=ACK_PROPS),
        Unsubscribe(
            packet_id=6, topic_filters=("a/#",), properties=Properties(user_properties=USER)
        ),
        UnsubAck(packet_id=6, reason_codes=(0x00, 0x11), properties=ACK_PROPS),
        Disconnect(reason_code=0x04),
        Disconnect(reason_code=0x8E, properties=DISCONNECT_PROPS),
        Auth(),
        Auth(reason_code=0x18),
        Auth(reason_code=0x19, properties=AUTH_PROPS),
    ]


EXAMPLES = [(V4, p) for p in _plain_examples(V4)] + [
    (V5, p) for p in _plain_examples(V5) + _v5_examples()
]
EXAMPLE_IDS = [f"{v.name}-{type(p).__name__}-{i}" for i, (v, p) in enumerate(EXAMPLES)]


def test_examples_cover_every_property_and_packet_type() -> None:
    used = {
        spec.name
        for props in ALL_PROPERTY_SETS
        for spec in PROPERTY_SPECS
        if getattr(props, spec.name) not in (None, ())
    }
    assert used == {spec.name for spec in PROPERTY_SPECS}
    for version in (V4, V5):
        types = {type(p) for v, p in EXAMPLES if v == version}
        assert len(types) == (15 if version == V5 else 14)


@pytest.mark.parametrize(("version", "packet"), EXAMPLES, ids=EXAMPLE_IDS)
def test_round_trip(version, packet) -> None:
    data = encode(packet, version)
    assert decode(data, version) == (packet, len(data))
    # any buffer type, with the next packet's bytes behind it
    for buffer in (bytearray(data + b"\xc0\x00"), memoryview(data + b"\xd0")):
        assert decode(buffer, version) == (packet, len(data))


@pytest.mark.parametrize(("version", "packet"), EXAMPLES, ids=EXAMPLE_IDS)
def test_every_strict_prefix_needs_more_data(version, packet) -> None:
    data = encode(packet, version)
    step = max(1, len(data) // 300)  # the 20 kB PUBLISH: sample its prefixes
    for end in [*range(0, len(data), step), len(data) - 1]:
        assert decode(data[:end], version) is None, end
        assert decode(memoryview(data)[:end], version) is None, end


def test_decoded_fast_path_packets_are_real_frozen_values() -> None:
    for version in (V4, V5):
        for original in (
            Publish(topic="a", payload=b"b", qos=Q1, packet_id=3),
            PubAck(packet_id=3),
        ):
            decoded: Any = _decoded(encode(original, version), version)
            assert type(decoded) is type(original)
            assert decoded == original
            assert hash(decoded) == hash(original)
            with pytest.raises(dataclasses.FrozenInstanceError):
                decoded.packet_id = 4  # type: ignore[misc]


def test_connect_version_comes_from_the_packet() -> None:
    connect = Connect(client_id="c", protocol_version=V5, properties=CONNECT_PROPS)
    assert encode(connect, V4) == encode(connect, V5)
    for version in (None, V4, V5):
        assert decode(encode(connect, V5), version) == (connect, len(encode(connect, V5)))


def test_3_1_1_drops_nothing_silently_equal_properties_are_fine() -> None:
    # a fresh empty Properties equals NO_PROPERTIES and is accepted in 3.1.1
    assert encode(Publish(topic="a", properties=Properties()), V4) == b"\x30\x03\x00\x01a"
    assert encode(PubAck(packet_id=1, properties=Properties()), V5) == b"\x40\x02\x00\x01"


# --------------------------------------------------------------------------- byte vectors

BYTE_VECTORS = [
    # MQTT 3.1.1 §3.1: CONNECT "abc", clean session, keep alive 60
    (V4, Connect(client_id="abc"), "100f 00044d515454 04 02 003c 0003616263"),
    # CONNECT with will (QoS 1, retain), user name and password: flags 0xEE
    (
        V4,
        Connect(
            client_id="c1",
            keep_alive=30,
            username="u",
            password=b"pw",
            will=Will(topic="w", payload=b"x", qos=Q1, retain=True),
        ),
        "101b 00044d515454 04 ee 001e 00026331 000177 000178 000175 00027077",
    ),
    # MQTT 5 §3.1.2.11 example: keep alive 10, Session Expiry Interval 10, empty client id
    (
        V5,
        Connect(
            client_id="",
            protocol_version=V5,
            clean_start=False,
            keep_alive=10,
            properties=Properties(session_expiry_interval=10),
        ),
        "1012 00044d515454 05 00 000a 05 110000000a 0000",
    ),
    (V4, ConnAck(session_present=True, reason_code=0), "2002 0100"),
    (V5, ConnAck(reason_code=0x86), "2003 0086 00"),
    (V4, Publish(topic="a/b", payload=b"hi", qos=Q1, packet_id=10), "3209 0003612f62 000a 6869"),
    (
        V5,
        Publish(
            topic="a/b",
            payload=b"hi",
            retain=True,
            properties=Properties(topic_alias=5, user_properties=(("k", "v"),)),
        ),
        "3112 0003612f62 0a 230005 2600016b000176 6869",
    ),
    (
        V5,
        Publish(topic="a/b", payload=b"hi", qos=Q2, dup=True, packet_id=1),
        "3c0a 0003612f62 0001 00 6869",
    ),
    (V4, Publish(topic="t", payload=b"x" * 321), "30c402 000174" + "78" * 321),
    (V4, PubAck(packet_id=5), "4002 0005"),
    (V5, PubAck(packet_id=5), "4002 0005"),
    (V5, PubAck(packet_id=5, reason_code=0x10), "4003 0005 10"),
    (V5, PubRec(packet_id=5, properties=Properties(reason_string="r")), "5008 0005 00 04 1f000172"),
    (V4, PubRel(packet_id=5), "6202 0005"),
    (
        V5,
        Subscribe(
            packet_id=1,
            subscriptions=(
                Subscription(
                    topic_filter="a/#",
                    qos=Q1,
                    no_local=True,
                    retain_as_published=True,
                    retain_handling=2,
                ),
            ),
            properties=Properties(subscription_identifiers=(7,)),
        ),
        "820b 0001 02 0b07 0003612f23 2d",
    ),
    (V4, SubAck(packet_id=1, reason_codes=(1, 0x80)), "9004 0001 0180"),
    (V4, Unsubscribe(packet_id=2, topic_filters=("a",)), "a205 0002 000161"),
    (V4, UnsubAck(packet_id=2), "b002 0002"),
    (V5, UnsubAck(packet_id=2, reason_codes=(0x11,)), "b004 0002 00 11"),
    (V4, PingReq(), "c000"),
    (V5, PingResp(), "d000"),
    (V4, Disconnect(), "e000"),
    (V5, Disconnect(reason_code=0x8E), "e001 8e"),
    (V5, Auth(), "f000"),
    (
        V5,
        Auth(reason_code=0x18, properties=Properties(authentication_method="m")),
        "f006 18 04 1500016d",
    ),
]


@pytest.mark.parametrize(("version", "packet", "hex_bytes"), BYTE_VECTORS)
def test_byte_vectors(version, packet, hex_bytes) -> None:
    data = bytes.fromhex(hex_bytes.replace(" ", ""))
    assert encode(packet, version) == data
    assert decode(data, version) == (packet, len(data))


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_variable_byte_integer_spec_table(value, hex_bytes) -> None:
    data = bytes.fromhex(hex_bytes)
    assert encode_vbi(value) == data
    assert read_vbi(data, 0, len(data), "x") == (value, len(data))
    assert read_remaining_length(data, 0, len(data)) == (value, len(data))
    assert read_remaining_length(data, 0, len(data) - 1) is None


def test_wire_primitives() -> None:
    assert encode_u16(0xFFFF, "x") == b"\xff\xff"
    assert encode_u32(0x01020304, "x") == b"\x01\x02\x03\x04"
    assert read_u32(b"\x00\x01\x02\x03\x04", 1, 5, "x") == (0x01020304, 5)
    assert encode_string("é", "x") == b"\x00\x02\xc3\xa9"
    assert read_string(b"\x00\x02\xc3\xa9", 0, 4, "x") == ("é", 4)
    assert encode_binary(b"\x00\x01", "x") == b"\x00\x02\x00\x01"
    assert read_binary(bytearray(b"\x00\x02\x00\x01"), 0, 4, "x") == (b"\x00\x01", 4)
    with pytest.raises(
        LocalProtocolError, match=re.escape("keep alive must be in 0..65535, got -1")
    ):
        encode_u16(-1, "keep alive")
    with pytest.raises(LocalProtocolError, match=re.escape("x must be in 0..4294967295")):
        encode_u32(2**32, "x")
    with pytest.raises(RemoteProtocolError, match="x extends past the end of the packet"):
        read_u32(b"\x00\x01\x02", 0, 3, "x")
    # a reader never looks past ``end``, even when the buffer goes on
    with pytest.raises(RemoteProtocolError, match="x extends past the end of the packet"):
        read_string(b"\x00\x02ab", 0, 3, "x")


def test_variable_byte_integer_limits() -> None:
    for bad in (-1, 268_435_456):
        with pytest.raises(LocalProtocolError, match="outside"):
            encode_vbi(bad)


# --------------------------------------------------------------------------- malformed input


def _frame(first: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes((first, len(body))) + body


def _connect(
    level: int = 4, flags: int = 0x02, name: bytes = b"MQTT", rest: bytes = b"\x00\x01c"
) -> bytes:
    head = len(name).to_bytes(2, "big") + name + bytes((level, flags)) + b"\x00\x3c"
    return _frame(0x10, head + rest)


def _prop(identifier: int, value: bytes) -> bytes:
    return bytes((identifier,)) + value


def _props(*items: bytes) -> bytes:
    body = b"".join(items)
    return bytes((len(body),)) + body


MALFORMED = [
    # fixed header
    (V4, b"\x00\x00", "packet type 0 is reserved", 0x81),
    (V4, b"\xf0\x00", "AUTH) does not exist in MQTT 3.1.1", 0x81),
    (V4, b"\x80", "SUBSCRIBE: reserved flags must be 0010, got 0000", 0x81),
    (V5, b"\xa0\x03\x00\x01\x00", "UNSUBSCRIBE: reserved flags must be 0010", 0x81),
    (V4, b"\x60\x02\x00\x01", "PUBREL: reserved flags must be 0010, got 0000", 0x81),
    (V4, b"\x41\x02\x00\x01", "PUBACK: reserved flags must be 0000, got 0001", 0x81),
    (V5, b"\xc8\x00", "PINGREQ: reserved flags must be 0000, got 1000", 0x81),
    (V4, b"\x36", "PUBLISH: QoS 3 is invalid", 0x81),
    (V4, b"\x38\x04\x00\x01ab", "PUBLISH: DUP flag set on a QoS 0 message", 0x81),
    (V4, b"\x30\xff\xff\xff\xff\x01", "remaining length uses more than 4 bytes", 0x81),
    (V4, b"\x30\xff\xff\xff\xff", "remaining length uses more than 4 bytes", 0x81),
    (V4, b"\xc0\x80\x00", "remaining length is not encoded in the minimum number of bytes", 0x81),
    (None, b"\x30\x03\x00\x01a", "expected CONNECT as the first packet, got PUBLISH", 0x82),
    (None, b"\xc0", "expected CONNECT as the first packet, got PINGREQ", 0x82),
    (None, b"\x11", "CONNECT: reserved flags must be 0000, got 0001", 0x81),
    (V5, b"\x12", "CONNECT: reserved flags must be 0000, got 0010", 0x81),
    # PUBLISH
    (V4, _frame(0x30, b"\x00\x02\xff\xfe"), "PUBLISH: topic name is not valid UTF-8", 0x81),
    (V4, _frame(0x30, b"\x00\x03\xed\xa0\x80"), "PUBLISH: topic name is not valid UTF-8", 0x81),
    (V4, _frame(0x30, b"\x00\x02\xc0\x80"), "PUBLISH: topic name is not valid UTF-8", 0x81),
    (V4, _frame(0x30, b"\x00\x03a\x00b"), "PUBLISH: topic name contains U+0000", 0x81),
    (
        V4,
        _frame(0x30, b"\x00\x05a"),
        "PUBLISH: topic name extends past the end of the packet",
        0x81,
    ),
    (V4, _frame(0x30, b"\x00"), "PUBLISH: topic name length extends past the end", 0x81),
    (V4, _frame(0x32, b"\x00\x01a\x00\x00"), "PUBLISH: packet identifier must not be 0", 0x82),
    (V4, _frame(0x32, b"\x00\x01a\x00"), "PUBLISH: packet identifier extends past the end", 0x81),
    (V5, _frame(0x30, b"\x00\x01a"), "PUBLISH: property length extends past the end", 0x81),
    # PUBACK family
    (
        V4,
        _frame(0x40, b"\x00\x01\x00"),
        "PUBACK: remaining length must be 2 in MQTT 3.1.1, got 3",
        0x81,
    ),
    (V4, _frame(0x40, b"\x00\x00"), "PUBACK: packet identifier must not be 0", 0x82),
    (V5, _frame(0x50, b"\x00"), "PUBREC: packet identifier extends past the end", 0x81),
    (V5, _frame(0x40, b"\x00\x01\x05"), "PUBACK: invalid reason code 0x05", 0x82),
    (V5, _frame(0x62, b"\x00\x01\x10"), "PUBREL: invalid reason code 0x10", 0x82),
    (
        V5,
        _frame(0x70, b"\x00\x01\x00\x00\x99"),
        "PUBCOMP: 1 unexpected bytes after the packet's contents",
        0x81,
    ),
    # CONNECT
    (V4, _connect(level=3), "CONNECT: unsupported protocol level 3", 0x84),
    (None, _connect(level=6), "CONNECT: unsupported protocol level 6", 0x84),
    (None, _connect(level=3, name=b"MQIsdp"), "CONNECT: unsupported protocol name 'MQIsdp'", 0x84),
    (None, _connect(name=b"MQTT\xff"), "CONNECT: protocol name is not valid UTF-8", 0x81),
    (None, _frame(0x10, b"\x00\x04MQTT"), "CONNECT: protocol level is missing", 0x81),
    (None, _connect(flags=0x03), "CONNECT: reserved connect flag must be 0", 0x81),
    (
        None,
        _connect(flags=0x0A),
        "CONNECT: will QoS and will retain must be 0 when the will flag is 0",
        0x81,
    ),
    (None, _connect(flags=0x22), "CONNECT: will QoS and will retain must be 0", 0x81),
    (None, _connect(flags=0x1E), "CONNECT: will QoS 3 is invalid", 0x81),
    (
        None,
        _connect(flags=0x42, rest=b"\x00\x01c\x00\x01p"),
        "CONNECT: password flag set without the user name flag",
        0x81,
    ),
    (
        None,
        _connect(rest=b"\x00\x01cX"),
        "CONNECT: 1 unexpected bytes after the packet's contents",
        0x81,
    ),
    (None, _connect(rest=b""), "CONNECT: client identifier length extends past the end", 0x81),
    (None, _connect(rest=b"\x00\x02c"), "CONNECT: client identifier extends past the end", 0x81),
    (
        None,
        _connect(flags=0x06, rest=b"\x00\x01c\x00\x01w"),
        "CONNECT: will payload length extends past",
        0x81,
    ),
    (
        None,
        _connect(flags=0x82, rest=b"\x00\x01c\x00\x02\xc3"),
        "CONNECT: user name extends past",
        0x81,
    ),
    (None, _connect(level=5, rest=b"\x00\x00\x01cX"), "CONNECT: 1 unexpected bytes", 0x81),
    (
        None,
        _connect(level=5, rest=_props(_prop(0x23, b"\x00\x01")) + b"\x00\x00"),
        "CONNECT: property topic_alias (0x23) is not valid in this packet",
        0x81,
    ),
    (
        None,
        _connect(
            level=5,
            flags=0x06,
            rest=b"\x00\x00\x01c" + _props(_prop(0x11, b"\x00\x00\x00\x01")) + b"\x00\x01w\x00\x00",
        ),
        "CONNECT will: property session_expiry_interval (0x11) is not valid in this packet",
        0x81,
    ),
    # CONNACK
    (V4, _frame(0x20, b"\x00\x00\x00"), "CONNACK: remaining length 3 is invalid", 0x81),
    (V4, _frame(0x20, b"\x00"), "CONNACK: remaining length 1 is invalid", 0x81),
    (V4, _frame(0x20, b"\x02\x00"), "CONNACK: reserved acknowledge flags must be 0", 0x81),
    (V4, _frame(0x20, b"\x00\x06"), "CONNACK: invalid reason code 0x06", 0x82),
    (V5, _frame(0x20, b"\x00\x01\x00"), "CONNACK: invalid reason code 0x01", 0x82),
    (
        V5,
        _frame(0x20, b"\x00\x00"),
        "CONNACK: property length extends past the end of the packet",
        0x81,
    ),
    (
        V5,
        _frame(0x20, b"\x00\x00" + _props(_prop(0x21, b"\x00\x00"))),
        "CONNACK: property receive_maximum must be in 1..65535, got 0",
        0x82,
    ),
    (
        V5,
        _frame(0x20, b"\x00\x00" + _props(_prop(0x24, b"\x02"))),
        "CONNACK: property maximum_qos must be in 0..1, got 2",
        0x82,
    ),
    (
        V5,
        _frame(0x20, b"\x00\x00" + _props(_prop(0x27, b"\x00\x00\x00\x00"))),
        "maximum_packet_size must be in 1..",
        0x82,
    ),
    (
        V5,
        _frame(0x20, b"\x00\x00" + _props(_prop(0x28, b"\x05"))),
        "wildcard_subscription_available must be in 0..1",
        0x82,
    ),
    # SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK
    (V4, _frame(0x82, b"\x00\x01"), "SUBSCRIBE: no topic filter (at least one is required)", 0x82),
    (V5, _frame(0x82, b"\x00\x01\x00"), "SUBSCRIBE: no topic filter", 0x82),
    (
        V4,
        _frame(0x82, b"\x00\x00\x00\x01a\x00"),
        "SUBSCRIBE: packet identifier must not be 0",
        0x82,
    ),
    (
        V4,
        _frame(0x82, b"\x00\x01\x00\x01a\x04"),
        "SUBSCRIBE: reserved subscription option bits must be 0, got 0x04",
        0x81,
    ),
    (
        V5,
        _frame(0x82, b"\x00\x01\x00\x00\x01a\x40"),
        "SUBSCRIBE: reserved subscription option bits must be 0, got 0x40",
        0x81,
    ),
    (V4, _frame(0x82, b"\x00\x01\x00\x01a\x03"), "SUBSCRIBE: QoS 3 is invalid (filter 'a')", 0x81),
    (V5, _frame(0x82, b"\x00\x01\x00\x00\x01a\x03"), "SUBSCRIBE: QoS 3 is invalid", 0x82),
    (
        V5,
        _frame(0x82, b"\x00\x01\x00\x00\x01a\x30"),
        "SUBSCRIBE: retain handling 3 is invalid",
        0x82,
    ),
    (V4, _frame(0x82, b"\x00\x01\x00\x01a"), "SUBSCRIBE: subscription options is missing", 0x81),
    (
        V4,
        _frame(0x82, b"\x00\x01\x00\x01\xff\x00"),
        "SUBSCRIBE: topic filter is not valid UTF-8",
        0x81,
    ),
    (
        V5,
        _frame(
            0x82,
            b"\x00\x01" + _props(_prop(0x0B, b"\x01"), _prop(0x0B, b"\x02")) + b"\x00\x01a\x00",
        ),
        "SUBSCRIBE: subscription identifier appears more than once",
        0x82,
    ),
    (
        V5,
        _frame(0x82, b"\x00\x01" + _props(_prop(0x0B, b"\x00")) + b"\x00\x01a\x00"),
        "SUBSCRIBE: property subscription_identifiers must be in 1..268435455, got 0",
        0x82,
    ),
    (V4, _frame(0x90, b"\x00\x01\x03"), "SUBACK: invalid reason code 0x03", 0x82),
    (V5, _frame(0x90, b"\x00\x01\x00\x03"), "SUBACK: invalid reason code 0x03", 0x82),
    (V4, _frame(0x90, b"\x00\x01"), "SUBACK: no reason codes", 0x81),
    (
        V4,
        _frame(0xA2, b"\x00\x01"),
        "UNSUBSCRIBE: no topic filter (at least one is required)",
        0x82,
    ),
    (
        V4,
        _frame(0xA2, b"\x00\x01\x00\x02a"),
        "UNSUBSCRIBE: topic filter extends past the end",
        0x81,
    ),
    (V4, _frame(0xB0, b"\x00\x01\x00"), "UNSUBACK: 1 unexpected bytes", 0x81),
    (V5, _frame(0xB0, b"\x00\x01\x00"), "UNSUBACK: no reason codes", 0x81),
    (V5, _frame(0xB0, b"\x00\x01\x00\x12"), "UNSUBACK: invalid reason code 0x12", 0x82),
    # PINGREQ / PINGRESP / DISCONNECT / AUTH
    (V4, _frame(0xC0, b"\x00"), "PINGREQ: remaining length must be 0, got 1", 0x81),
    (V5, _frame(0xD0, b"\x00\x00"), "PINGRESP: remaining length must be 0, got 2", 0x81),
    (V4, _frame(0xE0, b"\x00"), "DISCONNECT: remaining length must be 0, got 1", 0x81),
    (V5, _frame(0xE0, b"\x01"), "DISCONNECT: invalid reason code 0x01", 0x82),
    (V5, _frame(0xE0, b"\x00\x00\x00"), "DISCONNECT: 1 unexpected bytes", 0x81),
    (V5, _frame(0xF0, b"\x01"), "AUTH: invalid reason code 0x01", 0x82),
    # properties (MQTT 5)
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x05, b"\x00"))),
        "PUBLISH: unknown property identifier 0x05",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(b"\x80\x01")),
        "PUBLISH: unknown property identifier 0x80",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x11, b"\x00\x00\x00\x01"))),
        "PUBLISH: property session_expiry_interval (0x11) is not valid in this packet",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x23, b"\x00\x01"), _prop(0x23, b"\x00\x02"))),
        "PUBLISH: property topic_alias appears more than once",
        0x82,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x23, b"\x00\x00"))),
        "PUBLISH: property topic_alias must be in 1..65535, got 0",
        0x82,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x01, b"\x02"))),
        "payload_format_indicator must be in 0..1",
        0x82,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x09\x02\x00"),
        "PUBLISH: property length 9 exceeds the packet",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x03\x02\x00\x00"),
        "PUBLISH: property message_expiry_interval extends past the property list",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x02\x23\x00"),
        "PUBLISH: property topic_alias extends past the property list",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x01\x01"),
        "PUBLISH: property payload_format_indicator extends past",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x02\x0b\x80"),
        "PUBLISH: property subscription_identifiers extends past",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x03\x0b\x80\x00"),
        "subscription_identifiers is not encoded in the minimum",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a\x80\x00"),
        "PUBLISH: property length is not encoded in the minimum",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x26, b"\x00\x01k\x00\x01\xff"))),
        "PUBLISH: property user_properties value is not valid UTF-8",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x26, b"\x00\x01\x00\x00\x00"))),
        "PUBLISH: property user_properties name contains U+0000",
        0x81,
    ),
    (
        V5,
        _frame(0x30, b"\x00\x01a" + _props(_prop(0x09, b"\x00\x05ab"))),
        "PUBLISH: property correlation_data extends past",
        0x81,
    ),
    (
        V5,
        _frame(
            0x40, b"\x00\x01\x00" + _props(_prop(0x1F, b"\x00\x01r"), _prop(0x1F, b"\x00\x01s"))
        ),
        "PUBACK: property reason_string appears more than once",
        0x82,
    ),
]


@pytest.mark.parametrize(("version", "data", "message", "reason_code"), MALFORMED)
def test_malformed_input_raises_remote_protocol_error(version, data, message, reason_code) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode(data, version)
    assert message in str(caught.value)
    assert caught.value.reason_code == reason_code
    # the stream decoder reports the same error
    decoder = PacketDecoder(version)
    decoder.feed(data)
    with pytest.raises(RemoteProtocolError, match=re.escape(message)):
        decoder.next_packet()


def test_header_errors_are_raised_before_the_body_arrives() -> None:
    with pytest.raises(RemoteProtocolError, match="SUBSCRIBE: reserved flags"):
        decode(b"\x80", V4)
    with pytest.raises(RemoteProtocolError, match="more than 4 bytes"):
        decode(b"\x30\x80\x80\x80\x80", V5)


def test_a_packet_larger_than_max_packet_size_is_refused_from_its_fixed_header() -> None:
    header = b"\x30\x80\x80\x04"  # PUBLISH announcing 65,536 bytes; no body yet
    with pytest.raises(RemoteProtocolError, match="exceeds the maximum packet size") as caught:
        decode(header, V4, max_packet_size=65_539)
    assert caught.value.reason_code == 0x95
    assert decode(header, V4, max_packet_size=65_540) is None  # 4 + 65,536 fits
    decoder = PacketDecoder(V5, max_packet_size=1000)
    decoder.feed(header)
    with pytest.raises(RemoteProtocolError) as caught:
        decoder.next_packet()
    assert caught.value.reason_code == 0x95
    # the limit counts the whole packet, fixed header included
    data = encode(Publish(topic="t", payload=b"x" * 10), V4)
    assert decode(data, V4, max_packet_size=len(data)) == (_decoded(data, V4), len(data))
    with pytest.raises(RemoteProtocolError):
        decode(data, V4, max_packet_size=len(data) - 1)


# --------------------------------------------------------------------------- encode errors

LOCAL_ERRORS = [
    (
        V4,
        Publish(topic="a", properties=Properties(topic_alias=1)),
        "PUBLISH: MQTT 3.1.1 cannot carry properties",
    ),
    (V4, Auth(), "AUTH does not exist in MQTT 3.1.1"),
    (V4, Publish(topic="a", qos=Q1), "PUBLISH: packet identifier must be in 1..65535, got None"),
    (V5, Publish(topic="a", qos=Q2, packet_id=0), "packet identifier must be in 1..65535, got 0"),
    (V4, Publish(topic="a", qos=Q1, packet_id=65536), "got 65536"),
    (V4, Publish(topic="a", packet_id=3), "QoS 0 message must not have a packet identifier"),
    (V4, Publish(topic="a", dup=True), "QoS 0 message must not have the DUP flag"),
    (V4, Publish(topic="a", qos=3), "PUBLISH: QoS must be 0, 1 or 2, got 3"),  # type: ignore[arg-type]
    (V4, Publish(topic="a\x00b"), "PUBLISH: topic name must not contain U+0000"),
    (V4, Publish(topic="\ud800"), "PUBLISH: topic name contains a lone surrogate"),
    (V4, Publish(topic="x" * 65_536), "PUBLISH: topic name is 65536 bytes long"),
    (
        V5,
        Publish(topic="a", properties=Properties(session_expiry_interval=1)),
        "PUBLISH: property session_expiry_interval is not allowed here",
    ),
    (
        V5,
        Publish(topic="a", properties=Properties(topic_alias=0)),
        "PUBLISH: property topic_alias must be in 1..65535, got 0",
    ),
    (
        V5,
        Publish(topic="a", properties=Properties(message_expiry_interval=2**32)),
        "must be in 0..4294967295",
    ),
    (
        V5,
        Publish(topic="a", properties=Properties(content_type="\x00")),
        "property content_type must not contain U+0000",
    ),
    (
        V5,
        Publish(topic="a", properties=Properties(correlation_data=b"x" * 65_536)),
        "correlation_data is 65536 bytes long",
    ),
    (
        V5,
        Publish(topic="a", properties=Properties(user_properties=(("k", "\ud800"),))),
        "user_properties value contains a lone",
    ),
    (
        V5,
        ConnAck(properties=Properties(maximum_qos=2)),
        "CONNACK: property maximum_qos must be in 0..1, got 2",
    ),
    (
        V5,
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter="a"),),
            properties=Properties(subscription_identifiers=(1, 2)),
        ),
        "SUBSCRIBE: only one subscription identifier is allowed",
    ),
    (
        V5,
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter="a"),),
            properties=Properties(subscription_identifiers=(268_435_456,)),
        ),
        "subscription_identifiers must be in 1..268435455",
    ),
    (
        V4,
        Subscribe(packet_id=1, subscriptions=()),
        "SUBSCRIBE: at least one subscription is required",
    ),
    (
        V4,
        Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="a", no_local=True),)),
        "MQTT 3.1.1 cannot carry no_local",
    ),
    (
        V4,
        Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="a", retain_handling=1),)),
        "MQTT 3.1.1 cannot carry no_local, retain_as_published or retain_handling",
    ),
    (
        V5,
        Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="a", retain_handling=3),)),
        "SUBSCRIBE: retain handling must be 0, 1 or 2, got 3",
    ),
    (
        V5,
        Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="a", qos=3),)),  # type: ignore[arg-type]
        "SUBSCRIBE: QoS must be 0, 1 or 2, got 3",
    ),
    (
        V4,
        Subscribe(packet_id=0, subscriptions=(Subscription(topic_filter="a"),)),
        "SUBSCRIBE: packet identifier",
    ),
    (
        V4,
        Unsubscribe(packet_id=1, topic_filters=()),
        "UNSUBSCRIBE: at least one topic filter is required",
    ),
    (V4, SubAck(packet_id=1, reason_codes=()), "SUBACK: at least one reason code is required"),
    (V4, SubAck(packet_id=1, reason_codes=(0x97,)), "SUBACK: reason code 151 is not valid here"),
    (V5, SubAck(packet_id=1, reason_codes=(0x03,)), "SUBACK: reason code 3 is not valid here"),
    (
        V4,
        PubAck(packet_id=1, reason_code=0x10),
        "PUBACK: MQTT 3.1.1 cannot carry a reason code (16) or properties",
    ),
    (V4, PubRel(packet_id=1, properties=ACK_PROPS), "PUBREL: MQTT 3.1.1 cannot carry"),
    (V5, PubAck(packet_id=1, reason_code=0x92), "PUBACK: reason code 146 is not valid here"),
    (
        V5,
        PubComp(packet_id=1, reason_code=0x10, properties=ACK_PROPS),
        "PUBCOMP: reason code 16 is not valid",
    ),
    (V5, PubAck(packet_id=0), "PUBACK: packet identifier must be in 1..65535, got 0"),
    (
        V5,
        PubAck(packet_id=1, properties=Properties(topic_alias=1)),
        "PUBACK: property topic_alias is not allowed here",
    ),
    (
        V4,
        UnsubAck(packet_id=1, reason_codes=(0,)),
        "UNSUBACK: MQTT 3.1.1 cannot carry reason codes",
    ),
    (V5, UnsubAck(packet_id=1), "UNSUBACK: MQTT 5 requires at least one reason code"),
    (V5, UnsubAck(packet_id=1, reason_codes=(0x10,)), "UNSUBACK: reason code 16 is not valid"),
    (V4, ConnAck(reason_code=0x86), "CONNACK: reason code 134 is not valid here"),
    (V5, ConnAck(reason_code=1), "CONNACK: reason code 1 is not valid here"),
    (V4, ConnAck(properties=CONNACK_PROPS), "CONNACK: MQTT 3.1.1 cannot carry properties"),
    (V4, Disconnect(reason_code=0x8E), "DISCONNECT: MQTT 3.1.1 cannot carry reason code 142"),
    (V4, Disconnect(properties=DISCONNECT_PROPS), "DISCONNECT: MQTT 3.1.1 cannot carry properties"),
    (V5, Disconnect(reason_code=0x01), "DISCONNECT: reason code 1 is not valid here"),
    (V5, Auth(reason_code=0x04), "AUTH: reason code 4 is not valid here"),
    (
        V5,
        Disconnect(properties=Properties(topic_alias=2)),
        "DISCONNECT: property topic_alias is not allowed",
    ),
    (
        V4,
        Connect(client_id="c", password=b"p"),
        "CONNECT: MQTT 3.1.1 forbids a password without a username",
    ),
    (V4, Connect(client_id="c", keep_alive=65_536), "CONNECT: keep alive must be in 0..65535"),
    (V4, Connect(client_id="c", protocol_version=3), "unsupported protocol version 3"),  # type: ignore[arg-type]
    (
        V4,
        Connect(client_id="c", properties=CONNECT_PROPS),
        "CONNECT: MQTT 3.1.1 cannot carry properties",
    ),
    (
        V4,
        Connect(client_id="c", will=Will(topic="w", properties=WILL_PROPS)),
        "CONNECT will: MQTT 3.1.1 cannot carry properties",
    ),
    (
        V4,
        Connect(client_id="c", will=Will(topic="w", qos=3)),  # type: ignore[arg-type]
        "CONNECT: will QoS must be 0, 1 or 2",
    ),
    (
        V4,
        Connect(client_id="c", will=Will(topic="w", payload=b"x" * 65_536)),
        "CONNECT: will payload is 65536 bytes long",
    ),
    (
        V5,
        Connect(client_id="c", protocol_version=V5, will=Will(topic="w", properties=CONNECT_PROPS)),
        "CONNECT will: property session_expiry_interval is not allowed here",
    ),
    (
        V5,
        Connect(client_id="\x00", protocol_version=V5),
        "CONNECT: client identifier must not contain U+0000",
    ),
]


@pytest.mark.parametrize(("version", "packet", "message"), LOCAL_ERRORS)
def test_encode_refuses_what_the_version_cannot_carry(version, packet, message) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        encode(packet, version)
    assert message in str(caught.value)


def test_encode_refuses_non_packets_and_unknown_versions() -> None:
    with pytest.raises(LocalProtocolError, match="not an MQTT packet"):
        encode("PINGREQ", V4)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="unsupported protocol version 3"):
        encode(PingReq(), 3)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="unsupported protocol version"):
        decode(b"\xc0\x00", 3)  # type: ignore[arg-type]


def test_allowed_properties_follow_the_spec_table() -> None:
    from fleet_sim.mqtt.packets import PacketType
    from fleet_sim.mqtt.properties import WILL_PROPERTIES

    assert allowed_properties(PacketType.PUBACK) == {"reason_string", "user_properties"}
    assert allowed_properties(PacketType.SUBSCRIBE) == {
        "subscription_identifiers",
        "user_properties",
    }
    assert "will_delay_interval" in allowed_properties(WILL_PROPERTIES)
    assert "will_delay_interval" not in allowed_properties(PacketType.CONNECT)
    assert allowed_properties(PacketType.PINGREQ) == frozenset()


# --------------------------------------------------------------------------- PacketDecoder


def _stream(version: ProtocolVersion) -> tuple[list[object], bytes]:
    packets = [p for v, p in EXAMPLES if v == version and not isinstance(p, Connect)]
    return packets, b"".join(encode(p, version) for p in packets)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [V4, V5])
def test_decoder_one_byte_at_a_time(version) -> None:
    packets, data = _stream(version)
    decoder = PacketDecoder(version)
    out = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        while (packet := decoder.next_packet()) is not None:
            out.append(packet)
    assert out == packets
    assert decoder.buffered == 0


@pytest.mark.parametrize("version", [V4, V5])
def test_decoder_everything_at_once_and_buffered_count(version) -> None:
    packets, data = _stream(version)
    decoder = PacketDecoder(version)
    tail = encode(Publish(topic="a"), version)
    decoder.feed(data + tail[:1])  # plus the first byte of a next packet
    assert decoder.buffered == len(data) + 1
    out = []
    while (packet := decoder.next_packet()) is not None:
        out.append(packet)
    assert out == packets
    assert decoder.buffered == 1
    decoder.feed(tail[1:])
    assert decoder.next_packet() == Publish(topic="a")
    assert decoder.buffered == 0


def test_decoder_drops_consumed_bytes() -> None:
    publish = Publish(topic="t", payload=b"x" * 1000, qos=Q1, packet_id=1)
    data = encode(publish, V4)
    decoder = PacketDecoder(V4)
    decoder.feed(data * 100 + data[:10])
    for _ in range(100):
        assert decoder.next_packet() == publish
    assert decoder.next_packet() is None
    assert decoder.buffered == 10
    assert len(decoder._buffer) < 60 * len(data)  # compacted on the way, not kept whole


def test_decoder_handles_a_large_packet_in_tiny_chunks_in_linear_time() -> None:
    # 64 KiB one byte at a time: quadratic buffering would take minutes, this takes ~0.1 s
    publish = Publish(topic="big", payload=bytes(65_536), qos=Q1, packet_id=1)
    data = encode(publish, V5)
    decoder = PacketDecoder(V5)
    for i in range(len(data) - 1):
        decoder.feed(data[i : i + 1])
        assert decoder.next_packet() is None
    assert decoder.buffered == len(data) - 1
    decoder.feed(data[-1:])
    assert decoder.next_packet() == publish


def test_decoder_adopts_the_connect_version() -> None:
    assert PacketDecoder().version is None
    decoder = PacketDecoder()
    connect = Connect(client_id="c", protocol_version=V5)
    publish = Publish(topic="a", properties=Properties(topic_alias=2))
    decoder.feed(encode(connect, V5) + encode(publish, V5))
    assert decoder.next_packet() == connect
    assert decoder.version is V5
    assert decoder.next_packet() == publish


def test_decoder_without_version_refuses_anything_but_connect_at_the_first_byte() -> None:
    decoder = PacketDecoder()
    decoder.feed(b"\x82")
    with pytest.raises(RemoteProtocolError, match="expected CONNECT") as caught:
        decoder.next_packet()
    assert caught.value.reason_code == 0x82


def test_decoder_version_can_be_set_and_is_validated() -> None:
    decoder = PacketDecoder()
    decoder.version = V4
    assert decoder.version is V4
    decoder.version = 5  # type: ignore[assignment]
    assert decoder.version is V5
    with pytest.raises(LocalProtocolError):
        decoder.version = 3  # type: ignore[assignment]
    with pytest.raises(LocalProtocolError):
        PacketDecoder(6)  # type: ignore[arg-type]


def test_decode_reads_only_the_first_packet_of_a_buffer() -> None:
    a = encode(PubAck(packet_id=1), V4)
    b = encode(PingReq(), V4)
    assert decode(a + b, V4) == (PubAck(packet_id=1), len(a))
    assert decode(b"", V4) is None
    assert decode(memoryview(b"\x30"), V4) is None
    assert decode(memoryview(b"\x30\x80"), V4) is None
    assert decode(memoryview(bytearray(a + b)), V4) == (PubAck(packet_id=1), len(a))
    # a memoryview of another item format is read as its bytes
    words = array.array("H", [0x02C0, 0x0000])  # little-endian machine: c0 02 00 00
    if words.tobytes() == b"\xc0\x02\x00\x00":
        with pytest.raises(RemoteProtocolError, match="PINGREQ: remaining length must be 0"):
            decode(memoryview(words), V4)


def test_packets_keep_no_properties_identity() -> None:
    decoded = _decoded(encode(Publish(topic="a"), V5), V5)
    assert isinstance(decoded, Publish)
    assert decoded.properties is NO_PROPERTIES
