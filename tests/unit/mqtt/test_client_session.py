"""ClientSession against hand-fed server packets."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.client import ClientSession, ClientState
from fleet_sim.mqtt.codec import decode, encode
from fleet_sim.mqtt.events import (
    Connected,
    ConnectionClosed,
    ConnectRefused,
    Disconnected,
    KeepAliveTimeout,
    MessageReceived,
    ProtocolViolation,
    PublishAcknowledged,
    PublishesDropped,
    Subscribed,
    UnexpectedAckReceived,
    Unsubscribed,
)
from fleet_sim.mqtt.outbound import OutboundWindow
from fleet_sim.mqtt.packet_ids import PacketIdAllocator
from fleet_sim.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
)

V3 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
BOTH = pytest.mark.parametrize("version", [V3, V5], ids=["3.1.1", "5"])


def packets_of(data: bytes, version: ProtocolVersion) -> list[Any]:
    out = []
    while data:
        result = decode(data, version)
        assert result is not None, "incomplete packet in output"
        packet, used = result
        out.append(packet)
        data = data[used:]
    return out


def sent(client: ClientSession) -> list[Any]:
    return packets_of(client.data_to_send(), client.version)


def feed(client: ClientSession, *packets: Any, now: float = 0.0) -> list[Any]:
    client.receive_data(b"".join(encode(p, client.version) for p in packets), now)
    return drain(client)


def drain(client: ClientSession) -> list[Any]:
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    return events


def connected(
    version: ProtocolVersion = V3, connack: ConnAck | None = None, **kwargs: Any
) -> ClientSession:
    client = ClientSession("dev-1", version=version, **kwargs)
    client.connect(0.0)
    client.data_to_send()
    events = feed(client, connack or ConnAck())
    assert isinstance(events[-1], Connected)
    return client


# --------------------------------------------------------------------------- connect


@BOTH
def test_connect_sends_connect(version):
    will = Will(topic="dev/status", payload=b"gone", qos=QoS.AT_LEAST_ONCE)
    client = ClientSession(
        "dev-1", version=version, keep_alive=45, will=will, username="u", password=b"p"
    )
    assert client.state.name == "IDLE"
    client.connect(0.0)
    assert client.state is ClientState.CONNECTING
    (packet,) = sent(client)
    assert packet == Connect(
        client_id="dev-1",
        protocol_version=version,
        keep_alive=45,
        will=will,
        username="u",
        password=b"p",
    )


@BOTH
def test_connack_success(version):
    client = ClientSession("dev-1", version=version)
    client.connect(0.0)
    connack = ConnAck()
    assert feed(client, connack) == [Connected(connack)]
    assert client.state is ClientState.CONNECTED


@pytest.mark.parametrize(("version", "code"), [(V3, 5), (V5, 0x87)])
def test_connack_refused(version, code):
    client = ClientSession("dev-1", version=version)
    client.connect(0.0)
    connack = ConnAck(reason_code=code)
    assert feed(client, connack) == [ConnectRefused(code, connack)]
    assert client.state is ClientState.CLOSED
    assert client.next_deadline() is None


@BOTH
def test_packet_before_connack_is_a_violation(version):
    client = ClientSession("dev-1", version=version)
    client.connect(0.0)
    client.data_to_send()
    (event,) = feed(client, PingResp())
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x82
    assert client.state is ClientState.CLOSED
    assert client.data_to_send() == b""  # nothing sent before a CONNACK


def test_garbage_is_a_violation():
    client = ClientSession("dev-1")
    client.connect(0.0)
    client.receive_data(b"\x00\x00\x00", 0.0)
    (event,) = drain(client)
    assert isinstance(event, ProtocolViolation)
    assert client.state is ClientState.CLOSED


def test_second_connack_is_a_violation():
    client = connected()
    (event,) = feed(client, ConnAck())
    assert isinstance(event, ProtocolViolation)


def test_session_present_after_clean_start_is_a_violation():
    client = ClientSession("dev-1")
    client.connect(0.0)
    (event,) = feed(client, ConnAck(session_present=True))
    assert isinstance(event, ProtocolViolation)


def test_misuse_raises_and_leaves_state():
    client = ClientSession("dev-1")
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"\x20\x02\x00\x00", 0.0)
    with pytest.raises(LocalProtocolError):
        client.publish("a", now=0.0)
    client.connect(0.0)
    with pytest.raises(LocalProtocolError):
        client.connect(0.0)
    with pytest.raises(LocalProtocolError):
        client.subscribe([Subscription(topic_filter="a")], now=0.0)
    assert client.state is ClientState.CONNECTING


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keep_alive": 70000},
        {"keep_alive": -1},
        {"properties": Properties(session_expiry_interval=10)},
        {"will": Will(topic="a/+")},
        {"will": Will(topic="a", qos=QoS.EXACTLY_ONCE)},
        {"password": b"p"},
        {"ping_timeout": 0},
    ],
)
def test_invalid_constructor_arguments(kwargs):
    with pytest.raises(LocalProtocolError):
        ClientSession("dev-1", **kwargs)


def test_empty_client_id_needs_clean_start_in_3_1_1():
    with pytest.raises(LocalProtocolError):
        ClientSession("", clean_start=False)
    ClientSession("", clean_start=False, version=V5)


def test_connack_properties_apply():
    connack = ConnAck(
        properties=Properties(
            assigned_client_identifier="auto-7", server_keep_alive=25, receive_maximum=5
        )
    )
    client = connected(V5, connack, keep_alive=60)
    assert client.client_id == "auto-7"
    assert client.keep_alive == 25
    assert client.server_properties == connack.properties


# --------------------------------------------------------------------------- publish


@BOTH
def test_publish_qos0(version):
    client = connected(version)
    assert client.publish("a/b", b"hi", retain=True, now=1.0) is None
    assert sent(client) == [Publish(topic="a/b", payload=b"hi", retain=True)]


@BOTH
def test_publish_qos1_and_puback(version):
    client = connected(version)
    first = client.publish("a/b", b"1", qos=1, now=1.0)
    second = client.publish("a/b", b"2", qos=1, now=1.0)
    assert (first, second) == (1, 2)
    assert [p.packet_id for p in sent(client)] == [1, 2]
    assert list(client.in_flight) == [1, 2]
    assert feed(client, PubAck(packet_id=2)) == [PublishAcknowledged(2, 0)]
    assert list(client.in_flight) == [1]


def test_puback_reason_code_is_reported():
    client = connected(V5)
    client.publish("a", qos=1, now=0.0)
    assert feed(client, PubAck(packet_id=1, reason_code=0x87)) == [PublishAcknowledged(1, 0x87)]


def test_unknown_puback_is_reported_not_fatal():
    client = connected()
    assert feed(client, PubAck(packet_id=9)) == [UnexpectedAckReceived(PubAck.packet_type, 9)]
    assert client.state is ClientState.CONNECTED


@pytest.mark.parametrize(
    ("topic", "qos"), [("a/+", 0), ("", 0), ("a/#", 1), ("a", 2), ("a\x00", 0), ("a", 3)]
)
def test_publish_misuse(topic, qos):
    client = connected()
    with pytest.raises(LocalProtocolError):
        client.publish(topic, qos=qos, now=0.0)
    assert client.data_to_send() == b""
    assert client.in_flight == ()


def test_packet_ids_skip_those_in_flight():
    client = connected()
    client.publish("a", qos=1, now=0.0)  # id 1 stays in flight
    for _ in range(65534):
        packet_id = client.publish("a", qos=1, now=0.0)
        assert packet_id is not None
        feed(client, PubAck(packet_id=packet_id))
    assert client.publish("a", qos=1, now=0.0) == 2  # wrapped, skipping 1


def test_allocator_exhaustion():
    ids = PacketIdAllocator()
    allocated = {ids.allocate() for _ in range(65535)}
    assert allocated == set(range(1, 65536))
    with pytest.raises(LocalProtocolError):
        ids.allocate()
    ids.release(300)
    assert ids.allocate() == 300


def test_outbound_window_queue_order():
    ids = PacketIdAllocator()
    window = OutboundWindow(ids, quota=1)
    first = Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=ids.allocate())
    second = Publish(topic="b", qos=QoS.AT_LEAST_ONCE, packet_id=ids.allocate())
    window.sent(first)
    assert not window.has_room()
    window.wait(second)
    assert list(window.ready()) == []
    assert window.acknowledge(1)
    assert not window.acknowledge(1)
    assert list(window.ready()) == [second]
    assert window.packet_ids == (2,)
    assert window.clear() == (2,)
    assert len(ids) == 0


def test_receive_maximum_queues_publishes():
    client = connected(V5, ConnAck(properties=Properties(receive_maximum=2)))
    ids = [client.publish("a", str(i).encode(), qos=1, now=0.0) for i in range(4)]
    assert ids == [1, 2, 3, 4]
    assert [p.packet_id for p in sent(client)] == [1, 2]
    assert client.in_flight == (1, 2, 3, 4)
    client.publish("q0", now=0.0)  # QoS 0 is not windowed
    assert [p.topic for p in sent(client)] == ["q0"]
    feed(client, PubAck(packet_id=2))
    assert [p.packet_id for p in sent(client)] == [3]
    feed(client, PubAck(packet_id=1), PubAck(packet_id=3))
    assert [p.packet_id for p in sent(client)] == [4]


def test_server_limits_are_enforced_locally():
    props = Properties(maximum_qos=0, retain_available=0, maximum_packet_size=40)
    client = connected(V5, ConnAck(properties=props))
    with pytest.raises(LocalProtocolError, match="Maximum QoS"):
        client.publish("a", qos=1, now=0.0)
    with pytest.raises(LocalProtocolError, match="retain"):
        client.publish("a", retain=True, now=0.0)
    with pytest.raises(LocalProtocolError, match="Maximum Packet Size"):
        client.publish("a", b"x" * 100, now=0.0)
    client.publish("a", b"x" * 10, now=0.0)
    assert len(sent(client)) == 1


def test_outbound_topic_alias_compression():
    client = connected(V5, ConnAck(properties=Properties(topic_alias_maximum=2)))
    alias = Properties(topic_alias=1)
    client.publish("long/topic/name", b"1", properties=alias, now=0.0)
    client.publish("long/topic/name", b"2", properties=alias, now=0.0)
    client.publish("", b"3", properties=alias, now=0.0)
    packets = sent(client)
    assert [p.topic for p in packets] == ["long/topic/name", "", ""]
    assert all(p.properties.topic_alias == 1 for p in packets)
    with pytest.raises(LocalProtocolError):
        client.publish("", properties=Properties(topic_alias=2), now=0.0)  # never set
    with pytest.raises(LocalProtocolError):
        client.publish("x", properties=Properties(topic_alias=3), now=0.0)  # above maximum


def test_topic_alias_not_allowed_without_server_maximum():
    client = connected(V5)
    with pytest.raises(LocalProtocolError):
        client.publish("a", properties=Properties(topic_alias=1), now=0.0)


# --------------------------------------------------------------------------- subscribe


@BOTH
def test_subscribe_and_suback(version):
    client = connected(version)
    subs = [Subscription(topic_filter="a/#", qos=QoS.AT_LEAST_ONCE), Subscription(topic_filter="b")]
    packet_id = client.subscribe(subs, now=0.0)
    assert sent(client) == [Subscribe(packet_id=packet_id, subscriptions=tuple(subs))]
    assert feed(client, SubAck(packet_id=packet_id, reason_codes=(1, 0x80))) == [
        Subscribed(packet_id, (1, 0x80))
    ]


def test_suback_with_wrong_code_count_is_a_violation():
    client = connected()
    packet_id = client.subscribe([Subscription(topic_filter="a")], now=0.0)
    (event,) = feed(client, SubAck(packet_id=packet_id, reason_codes=(0, 0)))
    assert isinstance(event, ProtocolViolation)


@pytest.mark.parametrize(
    "subs",
    [
        [],
        [Subscription(topic_filter="a/#/b")],
        [Subscription(topic_filter="a", qos=QoS.EXACTLY_ONCE)],
        ["a"],
    ],
)
def test_subscribe_misuse(subs):
    client = connected()
    with pytest.raises(LocalProtocolError):
        client.subscribe(subs, now=0.0)
    assert client.data_to_send() == b""


@pytest.mark.parametrize(("version", "codes"), [(V3, ()), (V5, (0, 0x11))])
def test_unsubscribe(version, codes):
    client = connected(version)
    packet_id = client.unsubscribe(["a", "b/+"], now=0.0)
    assert sent(client) == [Unsubscribe(packet_id=packet_id, topic_filters=("a", "b/+"))]
    assert feed(client, UnsubAck(packet_id=packet_id, reason_codes=codes)) == [
        Unsubscribed(packet_id, codes)
    ]
    with pytest.raises(LocalProtocolError):
        client.unsubscribe("a", now=0.0)  # a str, not a sequence of filters


def test_unknown_suback_is_reported():
    client = connected()
    assert feed(client, SubAck(packet_id=4, reason_codes=(0,))) == [
        UnexpectedAckReceived(SubAck.packet_type, 4)
    ]


# --------------------------------------------------------------------------- inbound publish


@BOTH
def test_inbound_qos1_is_acked_automatically(version):
    client = connected(version)
    publish = Publish(topic="a", payload=b"x", qos=QoS.AT_LEAST_ONCE, packet_id=7)
    assert feed(client, publish) == [MessageReceived(publish)]
    assert sent(client) == [PubAck(packet_id=7)]


def test_inbound_qos0_is_not_acked():
    client = connected()
    publish = Publish(topic="a", payload=b"x")
    assert feed(client, publish) == [MessageReceived(publish)]
    assert client.data_to_send() == b""


def test_manual_ack():
    client = connected(auto_ack=False)
    feed(client, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=7))
    assert client.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        client.ack(8, now=0.0)
    with pytest.raises(LocalProtocolError):
        client.ack(7, 0x80, now=0.0)  # no reason codes in 3.1.1
    client.ack(7, now=0.0)
    assert sent(client) == [PubAck(packet_id=7)]
    with pytest.raises(LocalProtocolError):
        client.ack(7, now=0.0)


def test_manual_ack_with_reason_code_in_v5():
    client = connected(V5, auto_ack=False)
    feed(client, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=7))
    client.ack(7, 0x80, now=0.0)
    assert sent(client) == [PubAck(packet_id=7, reason_code=0x80)]


def test_our_receive_maximum_is_enforced():
    client = connected(V5, auto_ack=False, properties=Properties(receive_maximum=1))
    feed(client, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=1))
    events = feed(client, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=2))
    assert isinstance(events[-1], ProtocolViolation)
    assert events[-1].reason_code == 0x93
    assert sent(client) == [Disconnect(reason_code=0x93)]


@BOTH
def test_inbound_qos2_is_a_violation(version):
    client = connected(version)
    events = feed(client, Publish(topic="a", qos=QoS.EXACTLY_ONCE, packet_id=1))
    assert isinstance(events[-1], ProtocolViolation)
    expected = [Disconnect(reason_code=0x82)] if version is V5 else []
    assert sent(client) == expected


def test_inbound_topic_alias():
    client = connected(V5, properties=Properties(topic_alias_maximum=3))
    alias = Properties(topic_alias=2)
    feed(client, Publish(topic="x/y", payload=b"1", properties=alias))
    (event,) = feed(client, Publish(topic="", payload=b"2", properties=alias))
    assert event == MessageReceived(Publish(topic="x/y", payload=b"2", properties=alias))


@pytest.mark.parametrize(("alias", "topic", "code"), [(4, "a", 0x94), (1, "", 0x82)])
def test_bad_inbound_topic_alias(alias, topic, code):
    client = connected(V5, properties=Properties(topic_alias_maximum=3))
    (event,) = feed(client, Publish(topic=topic, properties=Properties(topic_alias=alias)))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == code


def test_inbound_packet_too_large():
    client = connected(max_packet_size=20)
    (event,) = feed(client, Publish(topic="a", payload=b"x" * 50))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x95


# --------------------------------------------------------------------------- keep-alive


def test_keep_alive_ping_cycle():
    client = connected(keep_alive=60)
    assert client.next_deadline() == 60.0
    client.publish("a", now=10.0)  # sending anything postpones the ping
    client.data_to_send()
    assert client.next_deadline() == 70.0
    client.handle_timer(69.9)
    assert client.data_to_send() == b""
    client.handle_timer(70.0)
    assert sent(client) == [PingReq()]
    assert client.next_deadline() == 100.0  # response window: half the keep-alive
    assert feed(client, PingResp(), now=75.0) == []
    assert client.next_deadline() == 130.0
    assert client.state is ClientState.CONNECTED


def test_keep_alive_timeout():
    client = connected(keep_alive=60, ping_timeout=5)
    client.handle_timer(60.0)
    assert sent(client) == [PingReq()]
    assert client.next_deadline() == 65.0
    client.handle_timer(64.0)
    assert drain(client) == []
    client.handle_timer(65.0)
    assert drain(client) == [KeepAliveTimeout()]
    assert client.state is ClientState.CLOSED
    assert client.next_deadline() is None


def test_any_packet_answers_a_ping():
    client = connected(keep_alive=60)
    client.handle_timer(60.0)
    feed(client, Publish(topic="a"), now=61.0)
    assert client.next_deadline() == 120.0


def test_keep_alive_zero_never_pings():
    client = connected(keep_alive=0)
    assert client.next_deadline() is None
    client.handle_timer(1e9)
    assert client.data_to_send() == b""


def test_server_keep_alive_overrides():
    client = connected(V5, ConnAck(properties=Properties(server_keep_alive=30)), keep_alive=600)
    assert client.next_deadline() == 30.0


# --------------------------------------------------------------------------- closing


def test_server_disconnect():
    client = connected(V5)
    props = Properties(reason_string="bye")
    assert feed(client, Disconnect(reason_code=0x8E, properties=props)) == [
        Disconnected(0x8E, by_server=True, properties=props)
    ]
    assert client.state is ClientState.CLOSED


@BOTH
def test_our_disconnect(version):
    client = connected(version)
    client.disconnect(now=1.0)
    assert sent(client) == [Disconnect()]
    assert drain(client) == [Disconnected(0, by_server=False)]
    assert client.state is ClientState.CLOSED
    client.disconnect(now=2.0)  # idempotent
    assert drain(client) == []


def test_disconnect_reason_code_needs_v5():
    client = connected(V3)
    with pytest.raises(LocalProtocolError):
        client.disconnect(0x04, now=0.0)
    client = connected(V5)
    client.disconnect(0x04, now=0.0)
    assert sent(client) == [Disconnect(reason_code=0x04)]


def test_disconnect_while_connecting_sends_nothing():
    client = ClientSession("dev-1")
    client.connect(0.0)
    client.data_to_send()
    client.disconnect(now=0.0)
    assert client.data_to_send() == b""
    assert drain(client) == [Disconnected(0, by_server=False)]


def test_connection_lost():
    client = connected()
    client.connection_lost(1.0)
    client.connection_lost(2.0)
    assert drain(client) == [ConnectionClosed()]
    assert client.state is ClientState.CLOSED


def test_nothing_happens_after_close():
    client = connected()
    client.connection_lost(1.0)
    drain(client)
    client.receive_data(encode(Publish(topic="a"), V3), 2.0)
    client.handle_timer(1e9)
    client.ack(1, now=3.0)
    assert drain(client) == []
    assert client.data_to_send() == b""


def test_pending_subscribe_ids_are_freed_on_close():
    client = connected()
    client.subscribe([Subscription(topic_filter="a")], now=0.0)
    client.connection_lost(1.0)
    client.connect(2.0)
    feed(client, ConnAck())
    assert client.subscribe([Subscription(topic_filter="a")], now=3.0) == 2
    assert feed(client, SubAck(packet_id=1, reason_codes=(0,))) == [
        UnexpectedAckReceived(SubAck.packet_type, 1)
    ]


# --------------------------------------------------------------------------- persistent session


@BOTH
def test_resume_resends_unacked_with_dup(version):
    client = connected(version, clean_start=False)
    client.publish("a", b"1", qos=1, now=0.0)
    client.publish("a", b"2", qos=1, now=0.0)
    client.publish("b", b"0", now=0.0)
    client.data_to_send()
    feed(client, PubAck(packet_id=1))
    client.connection_lost(1.0)
    drain(client)
    client.connect(2.0)
    (connect,) = sent(client)
    assert connect.clean_start is False
    assert feed(client, ConnAck(session_present=True)) == [Connected(ConnAck(session_present=True))]
    assert sent(client) == [
        Publish(topic="a", payload=b"2", qos=QoS.AT_LEAST_ONCE, packet_id=2, dup=True)
    ]
    assert feed(client, PubAck(packet_id=2)) == [PublishAcknowledged(2, 0)]


def test_resume_without_session_drops_unacked():
    client = connected(clean_start=False)
    client.publish("a", qos=1, now=0.0)
    client.connection_lost(1.0)
    drain(client)
    client.connect(2.0)
    client.data_to_send()
    assert feed(client, ConnAck(session_present=False)) == [
        PublishesDropped((1,)),
        Connected(ConnAck()),
    ]
    assert client.in_flight == ()
    assert client.data_to_send() == b""


def test_resume_sends_queued_after_resent():
    client = connected(V5, ConnAck(properties=Properties(receive_maximum=1)), clean_start=False)
    client.publish("a", b"1", qos=1, now=0.0)
    client.publish("a", b"2", qos=1, now=0.0)
    client.data_to_send()
    client.connection_lost(1.0)
    client.connect(2.0)
    client.data_to_send()
    feed(client, ConnAck(session_present=True, properties=Properties(receive_maximum=5)))
    packets = sent(client)
    assert [(p.packet_id, p.dup) for p in packets] == [(1, True), (2, False)]


def test_clean_start_override_on_reconnect():
    client = connected(clean_start=False)
    client.connection_lost(0.0)
    client.connect(1.0, clean_start=True)
    (connect,) = sent(client)
    assert connect.clean_start is True


def test_resent_alias_publish_carries_full_topic():
    alias_ok = ConnAck(properties=Properties(topic_alias_maximum=1))
    client = connected(V5, alias_ok, clean_start=False)
    client.publish("t/1", properties=Properties(topic_alias=1), now=0.0)
    client.publish("", qos=1, properties=Properties(topic_alias=1), now=0.0)
    assert [p.topic for p in sent(client)] == ["t/1", ""]
    client.connection_lost(1.0)
    client.connect(2.0)
    client.data_to_send()
    feed(client, ConnAck(session_present=True))  # no aliases allowed now
    (resent,) = sent(client)
    assert resent.topic == "t/1"
    assert resent.properties.topic_alias is None
