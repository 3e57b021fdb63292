"""A ClientSession and a ServerSession talking in memory: whole conversations, both versions."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_sim.mqtt.client import ClientSession, ClientState
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.events import (
    ClientDisconnected,
    Connected,
    ConnectionClosed,
    ConnectReceived,
    ConnectRefused,
    DeliveryAcknowledged,
    Disconnected,
    KeepAliveExpired,
    KeepAliveTimeout,
    MessageReceived,
    ProtocolViolation,
    PublishAcknowledged,
    PublishReceived,
    Subscribed,
    SubscribeReceived,
    Unsubscribed,
    UnsubscribeReceived,
)
from fleet_sim.mqtt.packets import (
    Connect,
    Properties,
    ProtocolVersion,
    Publish,
    QoS,
    Subscription,
)
from fleet_sim.mqtt.server import ServerSession, ServerState

V3 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
BOTH = pytest.mark.parametrize("version", [V3, V5], ids=["3.1.1", "5"])


def must(packet_id: int | None) -> int:
    """A QoS 1 packet id (never None)."""
    assert packet_id is not None
    return packet_id


def drain(session: Any) -> list[Any]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


class Pair:
    """Moves bytes between the two sessions by hand, with a fake clock."""

    def __init__(self, version, client_kwargs=None, server_kwargs=None) -> None:
        self.version = version
        self.now = 0.0
        self.client = ClientSession("dev-1", version=version, **(client_kwargs or {}))
        self.server = ServerSession(**(server_kwargs or {}))

    def to_server(self) -> list[Any]:
        self.server.receive_data(self.client.data_to_send(), self.now)
        return drain(self.server)

    def to_client(self) -> list[Any]:
        self.client.receive_data(self.server.data_to_send(), self.now)
        return drain(self.client)

    def connect(self, **accept) -> None:
        self.client.connect(self.now)
        (event,) = self.to_server()
        assert isinstance(event, ConnectReceived)
        self.server.accept(now=self.now, **accept)
        events = self.to_client()
        assert isinstance(events[-1], Connected)

    def new_connection(self) -> None:
        """The transport broke: both sides learn it; the client keeps its session object."""
        self.client.connection_lost(self.now)
        self.server.connection_lost(self.now)
        drain(self.client)
        self.server = ServerSession()


@BOTH
def test_connect_accept(version):
    pair = Pair(version, {"keep_alive": 60})
    pair.client.connect(0.0)
    (event,) = pair.to_server()
    assert event == ConnectReceived(
        Connect(client_id="dev-1", protocol_version=version, keep_alive=60)
    )
    pair.server.accept(now=0.0)
    (connected,) = pair.to_client()
    assert isinstance(connected, Connected)
    assert connected.connack.session_present is False
    assert pair.client.state is ClientState.CONNECTED
    assert pair.server.state is ServerState.CONNECTED


@pytest.mark.parametrize(("version", "code"), [(V3, 5), (V5, 0x87)])
def test_refuse_with_connack(version, code):
    pair = Pair(version)
    pair.client.connect(0.0)
    pair.to_server()
    pair.server.refuse(code, send_connack=True, now=0.0)
    (event,) = pair.to_client()
    assert isinstance(event, ConnectRefused)
    assert event.reason_code == code
    assert pair.client.state is ClientState.CLOSED


@BOTH
def test_refuse_without_connack_like_aws_3_1_1(version):
    pair = Pair(version)
    pair.client.connect(0.0)
    pair.to_server()
    pair.server.refuse(5, send_connack=False, now=0.0)
    assert pair.to_client() == []  # no bytes at all: the driver then sees EOF
    pair.client.connection_lost(0.0)
    assert drain(pair.client) == [ConnectionClosed()]


@pytest.mark.parametrize(("version", "failure"), [(V3, 0x80), (V5, 0x87)])
def test_subscribe_with_a_failed_filter(version, failure):
    pair = Pair(version)
    pair.connect()
    subs = [
        Subscription(topic_filter="cmd/dev-1/#", qos=QoS.AT_LEAST_ONCE),
        Subscription(topic_filter="other/#"),
    ]
    packet_id = pair.client.subscribe(subs, now=0.0)
    (event,) = pair.to_server()
    assert isinstance(event, SubscribeReceived)
    assert event.subscribe.subscriptions == tuple(subs)
    pair.server.ack_subscribe(event.subscribe.packet_id, (1, failure))
    assert pair.to_client() == [Subscribed(packet_id, (1, failure))]


@BOTH
def test_unsubscribe(version):
    pair = Pair(version)
    pair.connect()
    packet_id = pair.client.unsubscribe(["a/#"], now=0.0)
    (event,) = pair.to_server()
    assert isinstance(event, UnsubscribeReceived)
    pair.server.ack_unsubscribe(packet_id)
    expected = () if version is V3 else (0,)
    assert pair.to_client() == [Unsubscribed(packet_id, expected)]


@BOTH
def test_publish_both_directions(version):
    pair = Pair(version)
    pair.connect()
    # client -> server, QoS 0 and QoS 1
    assert pair.client.publish("tele/dev-1", b"t0", now=1.0) is None
    packet_id = must(pair.client.publish("tele/dev-1", b"t1", qos=1, now=1.0))
    received = pair.to_server()
    assert [type(e) for e in received] == [PublishReceived, PublishReceived]
    assert [e.publish.payload for e in received] == [b"t0", b"t1"]
    assert pair.to_client() == []  # the broker has not acked yet
    pair.server.ack_publish(received[1].publish.packet_id)
    assert pair.to_client() == [PublishAcknowledged(packet_id, 0)]
    # server -> client, QoS 0 and QoS 1 (auto-acked by the client)
    pair.server.send_publish("cmd/dev-1", b"c0")
    out_id = must(pair.server.send_publish("cmd/dev-1", b"c1", qos=1))
    delivered = pair.to_client()
    assert [e.publish.payload for e in delivered if isinstance(e, MessageReceived)] == [
        b"c0",
        b"c1",
    ]
    assert pair.to_server() == [DeliveryAcknowledged(out_id, 0)]


def test_v5_puback_not_authorized():
    pair = Pair(V5)
    pair.connect()
    packet_id = must(pair.client.publish("forbidden", qos=1, now=0.0))
    (event,) = pair.to_server()
    pair.server.ack_publish(event.publish.packet_id, 0x87)
    assert pair.to_client() == [PublishAcknowledged(packet_id, 0x87)]


def test_client_respects_server_receive_maximum():
    pair = Pair(V5)
    pair.connect(properties=Properties(receive_maximum=2))
    ids = [must(pair.client.publish("t", bytes([i]), qos=1, now=0.0)) for i in range(5)]
    first = pair.to_server()
    assert [e.publish.packet_id for e in first] == ids[:2]
    pair.server.ack_publish(ids[0])
    assert pair.to_client() == [PublishAcknowledged(ids[0], 0)]
    assert [e.publish.packet_id for e in pair.to_server()] == [ids[2]]
    pair.server.ack_publish(ids[1])
    pair.server.ack_publish(ids[2])
    pair.to_client()
    assert [e.publish.packet_id for e in pair.to_server()] == ids[3:]


def test_server_respects_client_receive_maximum():
    pair = Pair(V5, {"properties": Properties(receive_maximum=2), "auto_ack": False})
    pair.connect()
    for i in range(4):
        pair.server.send_publish("t", bytes([i]), qos=1)
    got = pair.to_client()
    assert [e.publish.payload for e in got] == [b"\x00", b"\x01"]
    pair.client.ack(got[0].publish.packet_id, now=0.0)
    pair.to_server()
    assert [e.publish.payload for e in pair.to_client()] == [b"\x02"]


@BOTH
def test_keep_alive_ping_cycle(version):
    pair = Pair(version, {"keep_alive": 60})
    pair.connect()
    assert pair.client.next_deadline() == 60.0
    assert pair.server.next_deadline() == 90.0
    pair.now = 60.0
    pair.client.handle_timer(pair.now)
    assert pair.to_server() == []  # PINGREQ handled silently
    assert pair.server.pings_received == 1
    assert pair.server.next_deadline() == 150.0
    assert pair.to_client() == []  # PINGRESP
    assert pair.client.next_deadline() == 120.0
    pair.now = 120.0
    pair.client.handle_timer(pair.now)
    pair.to_server()
    pair.to_client()
    assert pair.server.pings_received == 2
    assert pair.client.state is ClientState.CONNECTED


@BOTH
def test_server_expires_silent_client_aws_clamped(version):
    pair = Pair(version, {"keep_alive": 10})
    pair.connect()
    assert pair.server.keep_alive == 30  # AWS: 1-29 s means 30 s
    assert pair.server.next_deadline() == 45.0  # 1.5 x
    if version is V5:
        assert pair.client.keep_alive == 30  # told through Server Keep Alive
    pair.now = 20.0
    pair.client.publish("t", now=pair.now)
    pair.to_server()
    assert pair.server.next_deadline() == 65.0
    pair.now = 65.0
    pair.server.handle_timer(pair.now)
    assert drain(pair.server) == [KeepAliveExpired()]
    events = pair.to_client()
    if version is V5:
        assert events == [Disconnected(0x8D, by_server=True)]
    else:
        assert events == []  # 3.1.1: the socket just closes


@BOTH
def test_client_keep_alive_timeout(version):
    pair = Pair(version, {"keep_alive": 60, "ping_timeout": 10})
    pair.connect()
    pair.now = 60.0
    pair.client.handle_timer(pair.now)
    pair.client.data_to_send()  # the PINGREQ is lost
    pair.now = 70.0
    pair.client.handle_timer(pair.now)
    assert drain(pair.client) == [KeepAliveTimeout()]
    assert pair.client.state is ClientState.CLOSED


@BOTH
def test_second_connect_is_a_violation(version):
    pair = Pair(version)
    pair.connect()
    pair.server.receive_data(
        encode(Connect(client_id="dev-1", protocol_version=version), version), 0
    )
    (event,) = drain(pair.server)
    assert isinstance(event, ProtocolViolation)
    assert pair.server.state is ServerState.CLOSED
    events = pair.to_client()
    if version is V5:
        assert events == [Disconnected(0x82, by_server=True)]
    else:
        assert events == []


@BOTH
def test_garbage_bytes(version):
    pair = Pair(version)
    pair.connect()
    pair.server.receive_data(b"\x00\x01\x02\x03", 0.0)
    (event,) = drain(pair.server)
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == 0x81
    pair.client.receive_data(b"\xf0\x00", 0.0)
    (event,) = drain(pair.client)
    assert isinstance(event, ProtocolViolation)


@BOTH
def test_client_disconnect_skips_will(version):
    pair = Pair(version)
    pair.connect()
    pair.client.disconnect(now=1.0)
    assert drain(pair.client) == [Disconnected(0, by_server=False)]
    assert pair.to_server() == [ClientDisconnected(0)]


def test_session_taken_over():
    pair = Pair(V5)
    pair.connect()
    pair.server.disconnect(0x8E, now=1.0)
    assert pair.to_client() == [Disconnected(0x8E, by_server=True)]


@BOTH
def test_persistent_session_resend_with_dup(version):
    pair = Pair(version, {"clean_start": False})
    pair.connect()
    packet_id = must(pair.client.publish("tele", b"important", qos=1, now=0.0))
    (first,) = pair.to_server()
    assert first.publish.dup is False
    pair.new_connection()  # the PUBACK never came
    pair.client.connect(1.0)
    (event,) = pair.to_server()
    assert event.connect.clean_start is False
    pair.server.accept(session_present=True, now=1.0)
    pair.to_client()
    (resent,) = pair.to_server()
    assert resent.publish == Publish(
        topic="tele", payload=b"important", qos=QoS.AT_LEAST_ONCE, packet_id=packet_id, dup=True
    )
    pair.server.ack_publish(packet_id)
    assert pair.to_client() == [PublishAcknowledged(packet_id, 0)]
    assert pair.client.in_flight == ()
