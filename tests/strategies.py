"""Hypothesis strategies for MQTT packets of both protocol versions, shared by tests.

``packets(version)`` draws any valid control packet for a version (``packet_types`` narrows
it); per-type strategies (``publishes``, ``connects`` …) and ``properties(target)`` are
exported too. Every packet drawn here is encodable in its version, so
``decode(encode(p)) == p`` must hold for all of them. Reason codes are listed from the specs
here, independently of the codec.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from fleet_sim.mqtt.packets import (
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
from fleet_sim.mqtt.properties import PROPERTY_SPECS, WILL_PROPERTIES, DataType

V4 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
VERSIONS = (V4, V5)

# MQTT 5 §3.x.2.1 and MQTT 3.1.1 §3.2.2.3 / §3.9.3.
CONNACK_CODES = {
    V4: (0, 1, 2, 3, 4, 5),
    V5: (0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
         0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F),
}  # fmt: skip
PUBACK_CODES = (0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)  # also PUBREC
PUBREL_CODES = (0x00, 0x92)  # also PUBCOMP
SUBACK_CODES = {
    V4: (0x00, 0x01, 0x02, 0x80),
    V5: (0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2),
}
UNSUBACK_CODES = (0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
DISCONNECT_CODES = (
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
    0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
)  # fmt: skip
AUTH_CODES = (0x00, 0x18, 0x19)


def mqtt_strings(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings MQTT can carry: any Unicode scalar value except U+0000."""
    return st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=min_size,
        max_size=max_size,
    )


binaries = st.binary(max_size=24)
packet_ids = st.integers(1, 0xFFFF)
qos_levels = st.sampled_from(list(QoS))
topics = mqtt_strings(1, 16)


def _value_strategy(spec: Any, target: int) -> st.SearchStrategy[Any]:
    kind = spec.data_type
    if kind == DataType.UTF8_STRING:
        return mqtt_strings()
    if kind == DataType.BINARY_DATA:
        return binaries
    if kind == DataType.UTF8_STRING_PAIR:
        return st.lists(st.tuples(mqtt_strings(), mqtt_strings()), max_size=3).map(tuple)
    numbers = st.integers(spec.minimum, spec.maximum)
    if spec.name == "subscription_identifiers":
        most = 1 if target == PacketType.SUBSCRIBE else 3
        return st.lists(numbers, min_size=1, max_size=most).map(tuple)
    return numbers


@functools.cache
def properties(target: int) -> st.SearchStrategy[Properties]:
    """Any MQTT 5 property set valid for a packet type (or WILL_PROPERTIES)."""
    optional = {
        spec.name: _value_strategy(spec, target)
        for spec in PROPERTY_SPECS
        if target in spec.targets
    }
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: Properties(**values))


def _props(version: ProtocolVersion, target: int) -> st.SearchStrategy[Properties]:
    return properties(target) if version == V5 else st.just(Properties())


def wills(version: ProtocolVersion) -> st.SearchStrategy[Will]:
    """Any Will message."""
    return st.builds(
        Will,
        topic=topics,
        payload=binaries,
        qos=qos_levels,
        retain=st.booleans(),
        properties=_props(version, WILL_PROPERTIES),
    )


@st.composite
def connects(draw: st.DrawFn, version: ProtocolVersion) -> Connect:
    """Any CONNECT of ``version``."""
    username = draw(st.none() | mqtt_strings())
    password_allowed = version == V5 or username is not None
    return Connect(
        client_id=draw(mqtt_strings(0, 23)),
        protocol_version=version,
        clean_start=draw(st.booleans()),
        keep_alive=draw(st.integers(0, 0xFFFF)),
        username=username,
        password=draw(st.none() | binaries) if password_allowed else None,
        will=draw(st.none() | wills(version)),
        properties=draw(_props(version, PacketType.CONNECT)),
    )


def connacks(version: ProtocolVersion) -> st.SearchStrategy[ConnAck]:
    """Any CONNACK of ``version``."""
    return st.builds(
        ConnAck,
        session_present=st.booleans(),
        reason_code=st.sampled_from(CONNACK_CODES[version]),
        properties=_props(version, PacketType.CONNACK),
    )


@st.composite
def publishes(draw: st.DrawFn, version: ProtocolVersion) -> Publish:
    """Any PUBLISH of ``version``."""
    qos = draw(qos_levels)
    return Publish(
        topic=draw(topics),
        payload=draw(st.binary(max_size=300)),
        qos=qos,
        retain=draw(st.booleans()),
        dup=draw(st.booleans()) if qos else False,
        packet_id=draw(packet_ids) if qos else None,
        properties=draw(_props(version, PacketType.PUBLISH)),
    )


def _acks(cls: Callable[..., Packet], ptype: PacketType, codes: tuple[int, ...],
          version: ProtocolVersion) -> st.SearchStrategy[Packet]:  # fmt: skip
    return st.builds(
        cls,
        packet_id=packet_ids,
        reason_code=st.sampled_from(codes) if version == V5 else st.just(0),
        properties=_props(version, ptype),
    )


def pubacks(version: ProtocolVersion) -> st.SearchStrategy[Packet]:
    """Any PUBACK, PUBREC, PUBREL or PUBCOMP of ``version``."""
    return st.one_of(
        _acks(PubAck, PacketType.PUBACK, PUBACK_CODES, version),
        _acks(PubRec, PacketType.PUBREC, PUBACK_CODES, version),
        _acks(PubRel, PacketType.PUBREL, PUBREL_CODES, version),
        _acks(PubComp, PacketType.PUBCOMP, PUBREL_CODES, version),
    )


def subscriptions(version: ProtocolVersion) -> st.SearchStrategy[Subscription]:
    """Any subscription (MQTT 5 options only in MQTT 5)."""
    if version == V4:
        return st.builds(Subscription, topic_filter=topics, qos=qos_levels)
    return st.builds(
        Subscription,
        topic_filter=topics,
        qos=qos_levels,
        no_local=st.booleans(),
        retain_as_published=st.booleans(),
        retain_handling=st.integers(0, 2),
    )


def subscribes(version: ProtocolVersion) -> st.SearchStrategy[Subscribe]:
    """Any SUBSCRIBE of ``version``."""
    return st.builds(
        Subscribe,
        packet_id=packet_ids,
        subscriptions=st.lists(subscriptions(version), min_size=1, max_size=4).map(tuple),
        properties=_props(version, PacketType.SUBSCRIBE),
    )


def subacks(version: ProtocolVersion) -> st.SearchStrategy[SubAck]:
    """Any SUBACK of ``version``."""
    codes = st.lists(st.sampled_from(SUBACK_CODES[version]), min_size=1, max_size=4)
    return st.builds(
        SubAck,
        packet_id=packet_ids,
        reason_codes=codes.map(tuple),
        properties=_props(version, PacketType.SUBACK),
    )


def unsubscribes(version: ProtocolVersion) -> st.SearchStrategy[Unsubscribe]:
    """Any UNSUBSCRIBE of ``version``."""
    return st.builds(
        Unsubscribe,
        packet_id=packet_ids,
        topic_filters=st.lists(topics, min_size=1, max_size=4).map(tuple),
        properties=_props(version, PacketType.UNSUBSCRIBE),
    )


def unsubacks(version: ProtocolVersion) -> st.SearchStrategy[UnsubAck]:
    """Any UNSUBACK of ``version`` (reason codes only in MQTT 5)."""
    if version == V4:
        return st.builds(UnsubAck, packet_id=packet_ids)
    codes = st.lists(st.sampled_from(UNSUBACK_CODES), min_size=1, max_size=4)
    return st.builds(
        UnsubAck,
        packet_id=packet_ids,
        reason_codes=codes.map(tuple),
        properties=properties(PacketType.UNSUBACK),
    )


def disconnects(version: ProtocolVersion) -> st.SearchStrategy[Disconnect]:
    """Any DISCONNECT of ``version``."""
    if version == V4:
        return st.just(Disconnect())
    return st.builds(
        Disconnect,
        reason_code=st.sampled_from(DISCONNECT_CODES),
        properties=properties(PacketType.DISCONNECT),
    )


def auths() -> st.SearchStrategy[Auth]:
    """Any AUTH (MQTT 5 only)."""
    return st.builds(
        Auth,
        reason_code=st.sampled_from(AUTH_CODES),
        properties=properties(PacketType.AUTH),
    )


@functools.cache  # strategies are immutable: build (and validate) each one once
def packets(version: ProtocolVersion) -> st.SearchStrategy[Packet]:
    """Any valid control packet of ``version``, every type included."""
    choices: list[st.SearchStrategy[Any]] = [
        connects(version),
        connacks(version),
        publishes(version),
        pubacks(version),
        subscribes(version),
        subacks(version),
        unsubscribes(version),
        unsubacks(version),
        st.just(PingReq()),
        st.just(PingResp()),
        disconnects(version),
    ]
    if version == V5:
        choices.append(auths())
    return st.one_of(choices)


def versioned_packets() -> st.SearchStrategy[tuple[ProtocolVersion, Packet]]:
    """``(version, packet)`` pairs over both versions."""
    return st.one_of(
        packets(V4).map(lambda p: (V4, p)),
        packets(V5).map(lambda p: (V5, p)),
    )
