"""ServerSession against hand-fed client packets."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.codec import decode, encode
from fleet_sim.mqtt.events import (
    ClientDisconnected,
    ConnectionClosed,
    ConnectReceived,
    DeliveryAcknowledged,
    KeepAliveExpired,
    ProtocolViolation,
    PublishReceived,
    SubscribeReceived,
    UnexpectedAckReceived,
    UnsubscribeReceived,
)
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
)
from fleet_sim.mqtt.server import ServerSession, ServerState, aws_keep_alive

V3 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
BOTH = pytest.mark.parametrize("version", [V3, V5], ids=["3.1.1", "5"])


def packets_of(data: bytes, version: ProtocolVersion | None) -> list[Any]:
    out = []
    while data:
        result = decode(data, version)
        assert result is not None
        packet, used = result
        out.append(packet)
        data = data[used:]
    return out


def sent(server: ServerSession, version: ProtocolVersion | None = None) -> list[Any]:
    return packets_of(server.data_to_send(), version or server.version)


def drain(server: ServerSession) -> list[Any]:
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
    return events


def feed(
    server: ServerSession, *packets: Any, version: ProtocolVersion | None = None, now: float = 0.0
) -> list[Any]:
    version = version or server.version
    assert version is not None
    server.receive_data(b"".join(encode(p, version) for p in packets), now)
    return drain(server)


def connect_packet(version: ProtocolVersion = V3, **kwargs: Any) -> Connect:
    return Connect(client_id="dev-1", protocol_version=version, **kwargs)


def accepted(
    version: ProtocolVersion = V3,
    *,
    connect: Connect | None = None,
    now: float = 0.0,
    properties: Properties | None = None,
    **kwargs: Any,
) -> ServerSession:
    server = ServerSession(**kwargs)
    feed(server, connect or connect_packet(version), version=version, now=now)
    server.accept(now=now, properties=properties or Properties())
    server.data_to_send()
    return server


# --------------------------------------------------------------------------- connect


@BOTH
def test_connect_then_accept(version):
    server = ServerSession()
    assert server.state.name == "AWAITING_CONNECT"
    assert server.version is None
    connect = connect_packet(version, keep_alive=100)
    assert feed(server, connect, version=version) == [ConnectReceived(connect)]
    assert server.state.name == "CONNECT_RECEIVED"
    assert (server.client_id, server.version, server.keep_alive) == ("dev-1", version, 100)
    assert server.connect == connect
    assert server.next_deadline() is None  # the timer starts at accept
    server.accept(session_present=False, now=5.0)
    assert sent(server) == [ConnAck()]
    assert server.state is ServerState.CONNECTED
    assert server.next_deadline() == 155.0


def test_pipelined_packets_wait_for_the_decision():
    server = ServerSession()
    data = encode(connect_packet(), V3) + encode(PingReq(), V3) + encode(Publish(topic="a"), V3)
    server.receive_data(data, 0.0)
    assert [type(e) for e in drain(server)] == [ConnectReceived]
    assert server.data_to_send() == b""
    server.accept(now=1.0)
    assert drain(server) == [PublishReceived(Publish(topic="a"))]
    assert sent(server) == [ConnAck(), PingResp()]


@pytest.mark.parametrize(("version", "code"), [(V3, 5), (V5, 0x87)])
def test_refuse_with_connack(version, code):
    server = ServerSession()
    feed(server, connect_packet(version), version=version)
    server.refuse(code, send_connack=True, now=0.0)
    assert sent(server) == [ConnAck(reason_code=code)]
    assert server.state is ServerState.CLOSED
    assert drain(server) == []


def test_refuse_without_connack_just_closes():
    server = ServerSession()
    feed(server, connect_packet(), version=V3)
    server.refuse(5, send_connack=False, now=0.0)
    assert server.data_to_send() == b""
    assert server.state is ServerState.CLOSED


def test_accept_and_refuse_misuse():
    server = ServerSession()
    with pytest.raises(LocalProtocolError):
        server.accept(now=0.0)
    with pytest.raises(LocalProtocolError):
        server.refuse(5, send_connack=True, now=0.0)
    feed(server, connect_packet(clean_start=True), version=V3)
    with pytest.raises(LocalProtocolError):
        server.refuse(0, send_connack=True, now=0.0)
    with pytest.raises(LocalProtocolError):
        server.accept(session_present=True, now=0.0)  # Clean Start forbids it
    with pytest.raises(LocalProtocolError):
        server.accept(properties=Properties(receive_maximum=5), now=0.0)  # 3.1.1
    assert server.state is ServerState.CONNECT_RECEIVED
    assert server.data_to_send() == b""


def test_session_present_on_resume():
    server = ServerSession()
    feed(server, connect_packet(clean_start=False), version=V3)
    server.accept(session_present=True, now=0.0)
    assert sent(server) == [ConnAck(session_present=True)]


@BOTH
def test_first_packet_not_connect(version):
    server = ServerSession()
    server.receive_data(encode(PingReq(), version), 0.0)
    (event,) = drain(server)
    assert isinstance(event, ProtocolViolation)
    assert server.state is ServerState.CLOSED
    assert server.data_to_send() == b""


@pytest.mark.parametrize(("version", "expected"), [(V3, []), (V5, [Disconnect(reason_code=0x82)])])
def test_second_connect(version, expected):
    server = accepted(version)
    (event,) = feed(server, connect_packet(version))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x82
    assert sent(server) == expected
    assert server.state is ServerState.CLOSED


def test_garbage():
    server = ServerSession()
    server.receive_data(b"\xff\xff\xff\xff", 0.0)
    (event,) = drain(server)
    assert isinstance(event, ProtocolViolation)
    server.receive_data(encode(connect_packet(), V3), 0.0)
    assert drain(server) == []


def test_unsupported_protocol_level_gets_connack_1():
    server = ServerSession()
    data = bytearray(encode(connect_packet(), V3))
    data[8] = 3  # protocol level byte of "\x10 len \x00\x04MQTT <level>"
    server.receive_data(bytes(data), 0.0)
    (event,) = drain(server)
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x84
    assert sent(server, V3) == [ConnAck(reason_code=1)]


def test_oversized_packet():
    server = ServerSession(max_packet_size=64)
    feed(server, connect_packet(), version=V3)
    server.accept(now=0.0)
    (event,) = feed(server, Publish(topic="a", payload=b"x" * 100))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x95


def test_assigned_client_identifier():
    server = ServerSession()
    feed(server, Connect(client_id="", protocol_version=V5), version=V5)
    server.accept(properties=Properties(assigned_client_identifier="auto-1"), now=0.0)
    assert server.client_id == "auto-1"


# --------------------------------------------------------------------------- keep-alive


@pytest.mark.parametrize(
    ("requested", "effective"),
    [(0, 1200), (1, 30), (10, 30), (29, 30), (30, 30), (300, 300), (1200, 1200), (1201, 1200)],
)
def test_aws_keep_alive_clamping(requested, effective):
    assert aws_keep_alive(requested) == effective
    server = ServerSession()
    feed(server, connect_packet(keep_alive=requested), version=V3)
    assert server.keep_alive == effective


@pytest.mark.parametrize("requested", [0, 10, 5000])
def test_spec_keep_alive_is_not_clamped(requested):
    server = ServerSession(aws_keep_alive=False)
    feed(server, connect_packet(keep_alive=requested), version=V3)
    server.accept(now=0.0)
    assert server.keep_alive == requested
    assert server.next_deadline() == (1.5 * requested if requested else None)


@BOTH
def test_keep_alive_expiry(version):
    server = accepted(version, connect=connect_packet(version, keep_alive=60), now=100.0)
    assert server.next_deadline() == 190.0
    feed(server, PingReq(), now=150.0)
    assert sent(server) == [PingResp()]
    assert server.pings_received == 1
    assert server.next_deadline() == 240.0
    server.handle_timer(239.9)
    assert drain(server) == []
    server.handle_timer(240.0)
    assert drain(server) == [KeepAliveExpired()]
    assert server.state is ServerState.CLOSED
    expected = [Disconnect(reason_code=0x8D)] if version is V5 else []
    assert sent(server) == expected
    assert server.next_deadline() is None


def test_any_packet_restarts_the_timer():
    server = accepted(connect=connect_packet(keep_alive=100))
    feed(server, Publish(topic="a"), now=100.0)
    assert server.next_deadline() == 250.0


def test_v5_accept_announces_clamped_keep_alive():
    server = ServerSession()
    feed(server, connect_packet(V5, keep_alive=10), version=V5)
    server.accept(now=0.0)
    assert sent(server) == [ConnAck(properties=Properties(server_keep_alive=30))]
    assert server.next_deadline() == 45.0


def test_v5_accept_leaves_unclamped_keep_alive_alone():
    server = ServerSession()
    feed(server, connect_packet(V5, keep_alive=60), version=V5)
    server.accept(now=0.0)
    assert sent(server) == [ConnAck()]


def test_broker_server_keep_alive_wins():
    server = ServerSession()
    feed(server, connect_packet(V5, keep_alive=60), version=V5)
    server.accept(properties=Properties(server_keep_alive=100), now=0.0)
    assert sent(server) == [ConnAck(properties=Properties(server_keep_alive=100))]
    assert server.keep_alive == 100
    assert server.next_deadline() == 150.0


# --------------------------------------------------------------------------- inbound publish


@BOTH
def test_publish_qos1_waits_for_broker_ack(version):
    server = accepted(version)
    publish = Publish(topic="a/b", payload=b"x", qos=QoS.AT_LEAST_ONCE, packet_id=3)
    assert feed(server, publish) == [PublishReceived(publish)]
    assert server.data_to_send() == b""
    server.ack_publish(3)
    assert sent(server) == [PubAck(packet_id=3)]
    with pytest.raises(LocalProtocolError):
        server.ack_publish(3)
    with pytest.raises(LocalProtocolError):
        server.ack_publish(4)


def test_ack_publish_reason_code():
    server = accepted(V5)
    feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=1))
    server.ack_publish(1, 0x87, properties=Properties(reason_string="denied"))
    assert sent(server) == [
        PubAck(packet_id=1, reason_code=0x87, properties=Properties(reason_string="denied"))
    ]
    server = accepted(V3)
    feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=1))
    with pytest.raises(LocalProtocolError):
        server.ack_publish(1, 0x87)


def test_qos2_is_reported_and_not_ackable():
    server = accepted(V3)
    publish = Publish(topic="a", qos=QoS.EXACTLY_ONCE, packet_id=1)
    assert feed(server, publish) == [PublishReceived(publish)]
    with pytest.raises(LocalProtocolError):
        server.ack_publish(1)
    assert server.data_to_send() == b""


def test_qos_above_announced_maximum_is_a_violation():
    server = accepted(V5, properties=Properties(maximum_qos=1))
    (event,) = feed(server, Publish(topic="a", qos=QoS.EXACTLY_ONCE, packet_id=1))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x9B
    assert sent(server) == [Disconnect(reason_code=0x9B)]


def test_inbound_receive_maximum():
    server = accepted(V5, properties=Properties(receive_maximum=1))
    feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=1))
    server.ack_publish(1)
    feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=2))
    events = feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=3))
    assert isinstance(events[-1], ProtocolViolation)
    assert events[-1].reason_code == 0x93


def test_inbound_topic_aliases():
    server = accepted(V5, properties=Properties(topic_alias_maximum=2))
    alias = Properties(topic_alias=2)
    feed(server, Publish(topic="t/x", payload=b"1", properties=alias))
    assert feed(server, Publish(topic="", payload=b"2", properties=alias)) == [
        PublishReceived(Publish(topic="t/x", payload=b"2", properties=alias))
    ]
    (event,) = feed(server, Publish(topic="t", properties=Properties(topic_alias=3)))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x94


def test_unknown_alias_is_a_protocol_error():
    server = accepted(V5, properties=Properties(topic_alias_maximum=2))
    (event,) = feed(server, Publish(topic="", properties=Properties(topic_alias=1)))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x82


# --------------------------------------------------------------------------- subscribe


@pytest.mark.parametrize(("version", "codes"), [(V3, (0, 1, 0x80)), (V5, (0, 0x87, 0x8F))])
def test_subscribe_and_ack(version, codes):
    server = accepted(version)
    subscribe = Subscribe(
        packet_id=5, subscriptions=tuple(Subscription(topic_filter=f) for f in "abc")
    )
    assert feed(server, subscribe) == [SubscribeReceived(subscribe)]
    server.ack_subscribe(5, codes)
    assert sent(server) == [SubAck(packet_id=5, reason_codes=codes)]
    with pytest.raises(LocalProtocolError):
        server.ack_subscribe(5, codes)


def test_ack_subscribe_misuse():
    server = accepted(V3)
    feed(server, Subscribe(packet_id=5, subscriptions=(Subscription(topic_filter="a"),)))
    with pytest.raises(LocalProtocolError):
        server.ack_subscribe(5, (0, 0))
    with pytest.raises(LocalProtocolError):
        server.ack_subscribe(5, (0x87,))  # not a 3.1.1 return code
    with pytest.raises(LocalProtocolError):
        server.ack_subscribe(6, (0,))
    server.ack_subscribe(5, (0x80,))


@pytest.mark.parametrize(("version", "codes"), [(V3, ()), (V5, (0, 0))])
def test_unsubscribe_and_ack(version, codes):
    server = accepted(version)
    unsubscribe = Unsubscribe(packet_id=2, topic_filters=("a", "b"))
    assert feed(server, unsubscribe) == [UnsubscribeReceived(unsubscribe)]
    server.ack_unsubscribe(2)
    assert sent(server) == [UnsubAck(packet_id=2, reason_codes=codes)]


def test_ack_unsubscribe_v5_codes():
    server = accepted(V5)
    feed(server, Unsubscribe(packet_id=2, topic_filters=("a", "b")))
    with pytest.raises(LocalProtocolError):
        server.ack_unsubscribe(2, (0,))
    server.ack_unsubscribe(2, (0, 0x11))
    assert sent(server) == [UnsubAck(packet_id=2, reason_codes=(0, 0x11))]


# --------------------------------------------------------------------------- outbound publish


@BOTH
def test_send_publish_and_delivery_ack(version):
    server = accepted(version)
    assert server.send_publish("a", b"0") is None
    packet_id = server.send_publish("a", b"1", qos=1, retain=True)
    assert packet_id is not None
    assert sent(server) == [
        Publish(topic="a", payload=b"0"),
        Publish(topic="a", payload=b"1", qos=QoS.AT_LEAST_ONCE, retain=True, packet_id=packet_id),
    ]
    assert feed(server, PubAck(packet_id=packet_id)) == [DeliveryAcknowledged(packet_id, 0)]
    assert feed(server, PubAck(packet_id=packet_id)) == [
        UnexpectedAckReceived(PubAck.packet_type, packet_id)
    ]


def test_outbound_window_max_inflight():
    server = accepted(max_inflight=2)
    ids = [server.send_publish("a", bytes([i]), qos=1) for i in range(3)]
    assert ids == [1, 2, 3]
    assert [p.packet_id for p in sent(server)] == [1, 2]
    assert server.queued == 1
    assert [p.packet_id for p in server.unacknowledged] == [1, 2, 3]
    feed(server, PubAck(packet_id=1))
    assert [p.packet_id for p in sent(server)] == [3]
    assert server.queued == 0


def test_outbound_window_is_client_receive_maximum():
    connect = connect_packet(V5, properties=Properties(receive_maximum=1))
    server = accepted(V5, connect=connect)
    server.send_publish("a", qos=1)
    server.send_publish("a", qos=1)
    assert len(sent(server)) == 1


def test_aws_default_window_is_100():
    server = accepted()
    for _ in range(150):
        server.send_publish("a", qos=1)
    assert len(sent(server)) == 100
    assert server.queued == 50


def test_oversized_outbound_is_dropped():
    connect = connect_packet(V5, properties=Properties(maximum_packet_size=50))
    server = accepted(V5, connect=connect)
    assert server.send_publish("a", b"x" * 100, qos=1) is None
    assert server.send_publish("a", b"x" * 100) is None
    assert server.dropped_oversize == 2
    assert server.data_to_send() == b""
    assert server.send_publish("a", b"x", qos=1) is not None


def test_send_publish_misuse():
    server = ServerSession()
    with pytest.raises(LocalProtocolError):
        server.send_publish("a")
    server = accepted()
    with pytest.raises(LocalProtocolError):
        server.send_publish("a", qos=2)


# --------------------------------------------------------------------------- closing


@pytest.mark.parametrize(("version", "code"), [(V3, 0), (V5, 0x04)])
def test_client_disconnect(version, code):
    server = accepted(version)
    assert feed(server, Disconnect(reason_code=code)) == [ClientDisconnected(code)]
    assert server.state is ServerState.CLOSED


def test_disconnect_cannot_raise_session_expiry_from_zero():
    server = accepted(V5)
    events = feed(server, Disconnect(properties=Properties(session_expiry_interval=60)))
    assert isinstance(events[-1], ProtocolViolation)


@pytest.mark.parametrize(("version", "expected"), [(V3, []), (V5, [Disconnect(reason_code=0x8E)])])
def test_broker_disconnect(version, expected):
    server = accepted(version)
    server.disconnect(0x8E, now=1.0)
    assert sent(server) == expected
    assert server.state is ServerState.CLOSED
    assert drain(server) == []
    server.disconnect(now=2.0)
    assert server.data_to_send() == b""


def test_connection_lost():
    server = accepted()
    server.connection_lost(1.0)
    server.connection_lost(1.0)
    assert drain(server) == [ConnectionClosed()]


def test_nothing_after_close():
    server = accepted()
    feed(server, Publish(topic="a", qos=QoS.AT_LEAST_ONCE, packet_id=1))
    server.connection_lost(1.0)
    drain(server)
    server.receive_data(encode(PingReq(), V3), 2.0)
    server.handle_timer(1e9)
    server.ack_publish(1)
    assert drain(server) == []
    assert server.data_to_send() == b""
