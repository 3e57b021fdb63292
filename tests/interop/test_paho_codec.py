"""Our codec against paho-mqtt 2.x, over a real loopback TCP socket (no TLS).

The test thread plays a broker: it accepts paho's connection, decodes what paho sends with
our :class:`PacketDecoder` and answers with bytes from our :func:`encode`; paho's callbacks
(run in paho's network thread) report what paho understood. Every wait is bounded.
"""

from __future__ import annotations

import queue
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fleet_sim.mqtt.codec import PacketDecoder, encode
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
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

mqtt = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties as PahoProperties  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCode  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

V4 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
TIMEOUT = 5.0


class Peer:
    """The broker side of one paho connection, driven by the test thread."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.decoder = PacketDecoder()  # version unknown until the CONNECT

    def receive(self) -> Packet:
        deadline = time.monotonic() + TIMEOUT
        while (packet := self.decoder.next_packet()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no packet from paho in time")
            self.conn.settimeout(left)
            data = self.conn.recv(65_536)
            if not data:
                raise AssertionError("paho closed the connection")
            self.decoder.feed(data)
        return packet

    def send(self, packet: Packet) -> None:
        assert self.decoder.version is not None
        self.conn.sendall(encode(packet, self.decoder.version))

    def at_eof(self) -> bool:
        self.conn.settimeout(TIMEOUT)
        return self.conn.recv(1) == b""


class Callbacks:
    """Queues of what paho's callbacks saw (they run in paho's network thread)."""

    def __init__(self, client: Any) -> None:
        self.connect: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.subscribe: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.publish: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.unsubscribe: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.message: queue.Queue[Any] = queue.Queue()
        self.disconnect: queue.Queue[tuple[Any, ...]] = queue.Queue()
        client.on_connect = lambda _c, _u, *args: self.connect.put(args)
        client.on_subscribe = lambda _c, _u, *args: self.subscribe.put(args)
        client.on_publish = lambda _c, _u, *args: self.publish.put(args)
        client.on_unsubscribe = lambda _c, _u, *args: self.unsubscribe.put(args)
        client.on_message = lambda _c, _u, message: self.message.put(message)
        client.on_disconnect = lambda _c, _u, *args: self.disconnect.put(args)


def _paho_props(packet_type: int, **values: Any) -> Any:
    props = PahoProperties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TIMEOUT)
    yield server
    server.close()


def _start(listener: socket.socket, version: ProtocolVersion) -> tuple[Any, Callbacks, Peer]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="paho-device-1",
        protocol=mqtt.MQTTv5 if version == V5 else mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    callbacks = Callbacks(client)
    client.username_pw_set("alice", "s3cret")
    will_props = None
    connect_props = None
    if version == V5:
        will_props = _paho_props(
            PacketTypes.WILLMESSAGE,
            WillDelayInterval=5,
            ContentType="text/plain",
            UserProperty=("w", "1"),
        )
        connect_props = _paho_props(
            PacketTypes.CONNECT,
            SessionExpiryInterval=120,
            ReceiveMaximum=16,
            UserProperty=[("app", "fleetsim"), ("app", "twice")],
        )
    client.will_set("devices/1/status", b"offline", qos=1, retain=True, properties=will_props)
    client.connect("127.0.0.1", listener.getsockname()[1], keepalive=45, properties=connect_props)
    client.loop_start()
    conn, _ = listener.accept()
    return client, callbacks, Peer(conn)


@pytest.mark.parametrize("version", [V4, V5], ids=["mqtt311", "mqtt5"])
def test_paho_session_both_ways(listener: socket.socket, version: ProtocolVersion) -> None:
    v5 = version == V5
    client, seen, peer = _start(listener, version)
    try:
        # ---- CONNECT from paho, CONNACK from us
        connect = peer.receive()
        assert isinstance(connect, Connect)
        assert peer.decoder.version == version
        assert connect.protocol_version == version
        assert connect.client_id == "paho-device-1"
        assert (connect.username, connect.password) == ("alice", b"s3cret")
        assert connect.keep_alive == 45
        assert connect.clean_start is True
        assert connect.will == Will(
            topic="devices/1/status",
            payload=b"offline",
            qos=QoS.AT_LEAST_ONCE,
            retain=True,
            properties=Properties(
                will_delay_interval=5, content_type="text/plain", user_properties=(("w", "1"),)
            )
            if v5
            else NO_PROPERTIES,
        )
        if v5:
            assert connect.properties == Properties(
                session_expiry_interval=120,
                receive_maximum=16,
                user_properties=(("app", "fleetsim"), ("app", "twice")),
            )
        connack_props = (
            Properties(
                receive_maximum=10,
                maximum_qos=1,
                retain_available=1,
                maximum_packet_size=100_000,
                topic_alias_maximum=4,
                reason_string="welcome",
                user_properties=(("srv", "emu"),),
                wildcard_subscription_available=1,
                shared_subscription_available=0,
            )
            if v5
            else NO_PROPERTIES
        )
        peer.send(ConnAck(session_present=False, properties=connack_props))
        flags, reason, props = seen.connect.get(timeout=TIMEOUT)
        assert reason == 0
        assert flags.session_present is False
        if v5:
            assert props.ReceiveMaximum == 10
            assert props.MaximumQoS == 1
            assert props.MaximumPacketSize == 100_000
            assert props.TopicAliasMaximum == 4
            assert props.ReasonString == "welcome"
            assert props.UserProperty == [("srv", "emu")]
            assert props.SharedSubscriptionAvailable == 0

        # ---- SUBSCRIBE from paho, SUBACK from us
        if v5:
            options = SubscribeOptions(
                qos=1, noLocal=True, retainAsPublished=True, retainHandling=2
            )
            sub_props = _paho_props(
                PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7, UserProperty=("s", "1")
            )
            _, mid = client.subscribe(
                [("devices/+/cmd", options), ("fleet/#", SubscribeOptions(qos=0))],
                properties=sub_props,
            )
            expected_subs = (
                Subscription(
                    topic_filter="devices/+/cmd",
                    qos=QoS.AT_LEAST_ONCE,
                    no_local=True,
                    retain_as_published=True,
                    retain_handling=2,
                ),
                Subscription(topic_filter="fleet/#"),
            )
            expected_props = Properties(
                subscription_identifiers=(7,), user_properties=(("s", "1"),)
            )
        else:
            _, mid = client.subscribe([("devices/+/cmd", 1), ("fleet/#", 0)])
            expected_subs = (
                Subscription(topic_filter="devices/+/cmd", qos=QoS.AT_LEAST_ONCE),
                Subscription(topic_filter="fleet/#"),
            )
            expected_props = NO_PROPERTIES
        assert peer.receive() == Subscribe(
            packet_id=mid, subscriptions=expected_subs, properties=expected_props
        )
        codes = (0x01, 0x97) if v5 else (0x01, 0x80)
        peer.send(
            SubAck(
                packet_id=mid,
                reason_codes=codes,
                properties=Properties(reason_string="partly") if v5 else NO_PROPERTIES,
            )
        )
        sub_mid, sub_codes, sub_props_seen = seen.subscribe.get(timeout=TIMEOUT)
        assert sub_mid == mid
        assert [code.value for code in sub_codes] == list(codes)
        if v5:
            assert sub_props_seen.ReasonString == "partly"

        # ---- PUBLISH QoS 0 and 1 from paho (user properties in MQTT 5), PUBACK from us
        pub_props = None
        expected_pub_props = NO_PROPERTIES
        if v5:
            pub_props = _paho_props(
                PacketTypes.PUBLISH,
                UserProperty=[("trace", "abc"), ("seq", "1")],
                ContentType="application/json",
                MessageExpiryInterval=60,
                ResponseTopic="replies/1",
                CorrelationData=b"\x00c1",
                PayloadFormatIndicator=1,
            )
            expected_pub_props = Properties(
                user_properties=(("trace", "abc"), ("seq", "1")),
                content_type="application/json",
                message_expiry_interval=60,
                response_topic="replies/1",
                correlation_data=b"\x00c1",
                payload_format_indicator=1,
            )
        client.publish("devices/1/telemetry", b'{"t": 21.5}', qos=0, properties=pub_props)
        assert peer.receive() == Publish(
            topic="devices/1/telemetry", payload=b'{"t": 21.5}', properties=expected_pub_props
        )
        big = bytes(range(256)) * 80  # 20 kB: a three-byte remaining length
        info = client.publish("devices/1/blob", big, qos=1, retain=True, properties=pub_props)
        assert peer.receive() == Publish(
            topic="devices/1/blob",
            payload=big,
            qos=QoS.AT_LEAST_ONCE,
            retain=True,
            packet_id=info.mid,
            properties=expected_pub_props,
        )
        ack_code = 0x10 if v5 else 0
        peer.send(
            PubAck(
                packet_id=info.mid,
                reason_code=ack_code,
                properties=Properties(reason_string="nobody") if v5 else NO_PROPERTIES,
            )
        )
        while True:  # the QoS 0 publish reports first
            pub_mid, pub_code, pub_props_seen = seen.publish.get(timeout=TIMEOUT)
            if pub_mid == info.mid:
                break
        assert pub_code == ack_code
        assert info.is_published()
        if v5:
            assert pub_props_seen.ReasonString == "nobody"

        # ---- PUBLISH from us to paho (QoS 1 with properties, QoS 0 retained), PUBACK from paho
        down_props = (
            Properties(
                user_properties=(("origin", "emu"),),
                subscription_identifiers=(7,),
                content_type="text/plain",
                message_expiry_interval=30,
            )
            if v5
            else NO_PROPERTIES
        )
        peer.send(
            Publish(
                topic="devices/1/cmd",
                payload=b"reboot",
                qos=QoS.AT_LEAST_ONCE,
                packet_id=42,
                properties=down_props,
            )
        )
        message = seen.message.get(timeout=TIMEOUT)
        assert (message.topic, message.payload, message.qos, message.retain) == (
            "devices/1/cmd",
            b"reboot",
            1,
            False,
        )
        if v5:
            assert message.properties.UserProperty == [("origin", "emu")]
            assert message.properties.SubscriptionIdentifier == [7]
            assert message.properties.ContentType == "text/plain"
        assert peer.receive() == PubAck(packet_id=42)
        peer.send(Publish(topic="fleet/config", payload=big, retain=True))
        message = seen.message.get(timeout=TIMEOUT)
        assert (message.topic, message.payload, message.qos, message.retain) == (
            "fleet/config",
            big,
            0,
            True,
        )

        # ---- UNSUBSCRIBE from paho, UNSUBACK from us
        unsub_props = _paho_props(PacketTypes.UNSUBSCRIBE, UserProperty=("u", "2")) if v5 else None
        _, mid = client.unsubscribe(["devices/+/cmd", "fleet/#"], properties=unsub_props)
        assert peer.receive() == Unsubscribe(
            packet_id=mid,
            topic_filters=("devices/+/cmd", "fleet/#"),
            properties=Properties(user_properties=(("u", "2"),)) if v5 else NO_PROPERTIES,
        )
        peer.send(UnsubAck(packet_id=mid, reason_codes=(0x00, 0x11) if v5 else ()))
        unsub_mid, unsub_codes, _ = seen.unsubscribe.get(timeout=TIMEOUT)
        assert unsub_mid == mid
        if v5:
            assert [code.value for code in unsub_codes] == [0x00, 0x11]

        # ---- DISCONNECT from paho
        if v5:
            client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=0x04),
                properties=_paho_props(
                    PacketTypes.DISCONNECT, SessionExpiryInterval=0, ReasonString="bye"
                ),
            )
            expected = Disconnect(
                reason_code=0x04,
                properties=Properties(session_expiry_interval=0, reason_string="bye"),
            )
        else:
            client.disconnect()
            expected = Disconnect()
        assert peer.receive() == expected
        assert peer.decoder.buffered == 0
        assert peer.at_eof()
    finally:
        client.loop_stop()
        peer.conn.close()


def test_paho_understands_our_server_disconnect(listener: socket.socket) -> None:
    client, seen, peer = _start(listener, V5)
    try:
        assert isinstance(peer.receive(), Connect)
        peer.send(ConnAck(properties=Properties(assigned_client_identifier="assigned-9")))
        _, reason, props = seen.connect.get(timeout=TIMEOUT)
        assert reason == 0
        assert props.AssignedClientIdentifier == "assigned-9"
        peer.send(
            Disconnect(
                reason_code=0x8B,
                properties=Properties(reason_string="maintenance", server_reference="other:8883"),
            )
        )
        _, reason, props = seen.disconnect.get(timeout=TIMEOUT)
        assert reason == 0x8B
        assert props.ReasonString == "maintenance"
        assert props.ServerReference == "other:8883"
    finally:
        client.loop_stop()
        peer.conn.close()
