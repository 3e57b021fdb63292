"""Property tests: random API calls and random inbound bytes against both session machines.

Invariants checked after every step:

* our own calls raise nothing but LocalProtocolError; receiving bytes raises nothing (except
  LocalProtocolError for a client that never connected);
* every byte a session emits decodes as valid packets of its protocol version;
* a close reports exactly one terminal event, last; after it nothing is reported (until a
  client reconnects);
* the state is CLOSED exactly when the last terminal event has not been followed by a connect.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.client import ClientSession, ClientState
from fleet_sim.mqtt.codec import PacketDecoder, encode
from fleet_sim.mqtt.events import (
    ClientDisconnected,
    ConnectionClosed,
    ConnectRefused,
    Disconnected,
    KeepAliveExpired,
    KeepAliveTimeout,
    MessageReceived,
    ProtocolViolation,
    PublishAcknowledged,
    PublishReceived,
    SubscribeReceived,
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
from fleet_sim.mqtt.server import ServerSession, ServerState

CLIENT_TERMINAL = (
    ConnectRefused,
    Disconnected,
    KeepAliveTimeout,
    ProtocolViolation,
    ConnectionClosed,
)
SERVER_TERMINAL = (ClientDisconnected, KeepAliveExpired, ProtocolViolation, ConnectionClosed)

versions = st.sampled_from([ProtocolVersion.MQTT_3_1_1, ProtocolVersion.MQTT_5])
topics = st.sampled_from(["a", "a/b", "$aws/x", "", "a/+", "#", "x" * 40])
filters = st.sampled_from(["a", "a/#", "+/b", "#", "", "a/#/b", "$share/g/a"])
packet_ids = st.integers(1, 6)
small_props = st.sampled_from(
    [
        Properties(),
        Properties(receive_maximum=2),
        Properties(topic_alias=1),
        Properties(topic_alias_maximum=2),
        Properties(maximum_qos=1),
        Properties(server_keep_alive=5),
        Properties(maximum_packet_size=60),
        Properties(session_expiry_interval=30),
    ]
)
garbage = st.binary(max_size=12)
steps = st.floats(0, 50, allow_nan=False)

# Packets a server may (or may wrongly) send to a client.
server_packets = st.one_of(
    st.builds(
        ConnAck,
        session_present=st.booleans(),
        reason_code=st.sampled_from([0, 0, 0, 5, 0x87]),
        properties=small_props,
    ),
    st.builds(
        Publish,
        topic=topics,
        payload=st.binary(max_size=4),
        qos=st.sampled_from(QoS),
        packet_id=packet_ids,
        properties=small_props,
    ),
    st.builds(PubAck, packet_id=packet_ids, reason_code=st.sampled_from([0, 0x87])),
    st.builds(
        SubAck,
        packet_id=packet_ids,
        reason_codes=st.lists(st.sampled_from([0, 1, 0x80]), min_size=1, max_size=2).map(tuple),
    ),
    st.builds(UnsubAck, packet_id=packet_ids, reason_codes=st.just(())),
    st.just(PingResp()),
    st.builds(Disconnect, reason_code=st.sampled_from([0, 0x8E])),
)

# Packets a client may (or may wrongly) send to a server.
client_packets = st.one_of(
    st.builds(
        Connect,
        client_id=st.sampled_from(["dev", ""]),
        keep_alive=st.sampled_from([0, 10, 60]),
        clean_start=st.booleans(),
        properties=st.sampled_from([Properties(), Properties(receive_maximum=1)]),
    ),
    st.builds(
        Publish,
        topic=topics,
        payload=st.binary(max_size=4),
        qos=st.sampled_from(QoS),
        packet_id=packet_ids,
        properties=small_props,
    ),
    st.builds(PubAck, packet_id=packet_ids),
    st.builds(
        Subscribe,
        packet_id=packet_ids,
        subscriptions=st.lists(
            st.builds(Subscription, topic_filter=filters), min_size=1, max_size=2
        ).map(tuple),
    ),
    st.builds(Unsubscribe, packet_id=packet_ids, topic_filters=st.just(("a",))),
    st.just(PingReq()),
    st.builds(Disconnect, reason_code=st.sampled_from([0, 4]), properties=small_props),
)


def encoded(packet, version: ProtocolVersion) -> bytes:
    """Encode a packet for the wire, or return b"" if this version cannot carry it."""
    if isinstance(packet, Connect):
        packet = Connect(
            client_id=packet.client_id,
            protocol_version=version,
            keep_alive=packet.keep_alive,
            clean_start=packet.clean_start,
            properties=packet.properties,
        )
    try:
        return encode(packet, version)
    except LocalProtocolError:
        return b""


def check_output(decoder: PacketDecoder, data: bytes) -> None:
    """Everything a session sends must decode cleanly."""
    decoder.feed(data)
    while decoder.next_packet() is not None:
        pass


client_ops = st.one_of(
    st.tuples(st.just("connect"), st.sampled_from([None, True, False])),
    st.tuples(st.just("publish"), topics, st.integers(0, 3), st.booleans(), small_props),
    st.tuples(st.just("subscribe"), st.lists(filters, max_size=2), st.integers(0, 2)),
    st.tuples(st.just("unsubscribe"), st.lists(filters, max_size=2)),
    st.tuples(st.just("ack"), packet_ids, st.sampled_from([0, 0x80])),
    st.tuples(st.just("disconnect"), st.sampled_from([0, 4])),
    st.tuples(st.just("lost")),
    st.tuples(st.just("timer"), steps),
    st.tuples(st.just("garbage"), garbage),
    st.tuples(st.just("packet"), server_packets),
)


def run_client_op(client: ClientSession, op: tuple[Any, ...], now: float) -> None:
    kind = op[0]
    if kind == "connect":
        client.connect(now, clean_start=op[1])
    elif kind == "publish":
        client.publish(op[1], b"p", qos=op[2], retain=op[3], properties=op[4], now=now)
    elif kind == "subscribe":
        client.subscribe([Subscription(topic_filter=f, qos=QoS(op[2])) for f in op[1]], now=now)
    elif kind == "unsubscribe":
        client.unsubscribe(op[1], now=now)
    elif kind == "ack":
        client.ack(op[1], op[2], now=now)
    elif kind == "disconnect":
        client.disconnect(op[1], now=now)
    elif kind == "lost":
        client.connection_lost(now)
    elif kind == "timer":
        client.handle_timer(now)
    elif kind == "garbage":
        client.receive_data(op[1], now)
    else:
        client.receive_data(encoded(op[1], client.version), now)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    versions,
    st.booleans(),
    st.sampled_from([Properties(), Properties(receive_maximum=2, topic_alias_maximum=2)]),
    st.lists(client_ops, min_size=5, max_size=40),
)
def test_client_survives_anything(version, auto_ack, properties, ops):
    if version is ProtocolVersion.MQTT_3_1_1:
        properties = Properties()
    client = ClientSession("dev", version=version, auto_ack=auto_ack, properties=properties)
    output = PacketDecoder(version)
    now = 0.0
    closed = False
    for op in ops:
        if op[0] == "timer":
            now += op[1]
        before = client.state
        try:
            run_client_op(client, op, now)
        except LocalProtocolError:
            assert client.state is before, "a refused command changed the state"
        if op[0] == "connect" and client.state is ClientState.CONNECTING:
            closed = False
            output = PacketDecoder(version)  # a new connection
        events = []
        while (event := client.next_event()) is not None:
            events.append(event)
        terminal = [e for e in events if isinstance(e, CLIENT_TERMINAL)]
        if closed:
            assert events == [], f"events after close: {events}"
        elif terminal:
            assert len(terminal) == 1, events
            assert events[-1] is terminal[0], events
            closed = True
        if before is not ClientState.IDLE:
            assert (client.state is ClientState.CLOSED) == closed
        check_output(output, client.data_to_send())
        deadline = client.next_deadline()
        assert deadline is None or client.state is ClientState.CONNECTED


server_ops = st.one_of(
    st.tuples(st.just("accept"), st.booleans(), small_props),
    st.tuples(st.just("refuse"), st.sampled_from([5, 0x87]), st.booleans()),
    st.tuples(st.just("ack_publish"), packet_ids, st.sampled_from([0, 0x87])),
    st.tuples(
        st.just("ack_subscribe"),
        packet_ids,
        st.lists(st.sampled_from([0, 1, 0x80, 0x87]), max_size=2),
    ),
    st.tuples(st.just("ack_unsubscribe"), packet_ids),
    st.tuples(st.just("send"), topics, st.integers(0, 2), small_props),
    st.tuples(st.just("disconnect"), st.sampled_from([0, 0x8E])),
    st.tuples(st.just("lost")),
    st.tuples(st.just("timer"), steps),
    st.tuples(st.just("garbage"), garbage),
    st.tuples(st.just("packet"), client_packets),
)


def run_server_op(
    server: ServerSession, op: tuple[Any, ...], version: ProtocolVersion, now: float
) -> None:
    kind = op[0]
    if kind == "accept":
        server.accept(session_present=op[1], properties=op[2], now=now)
    elif kind == "refuse":
        server.refuse(op[1], send_connack=op[2], now=now)
    elif kind == "ack_publish":
        server.ack_publish(op[1], op[2])
    elif kind == "ack_subscribe":
        server.ack_subscribe(op[1], op[2])
    elif kind == "ack_unsubscribe":
        server.ack_unsubscribe(op[1])
    elif kind == "send":
        server.send_publish(op[1], b"m", qos=op[2], properties=op[3])
    elif kind == "disconnect":
        server.disconnect(op[1], now=now)
    elif kind == "lost":
        server.connection_lost(now)
    elif kind == "timer":
        server.handle_timer(now)
    elif kind == "garbage":
        server.receive_data(op[1], now)
    else:
        server.receive_data(encoded(op[1], version), now)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions, st.lists(server_ops, min_size=5, max_size=40))
def test_server_survives_anything(version, ops):
    server = ServerSession(max_packet_size=200)
    output = PacketDecoder(version)
    now = 0.0
    closed = False
    for op in ops:
        if op[0] == "timer":
            now += op[1]
        before = server.state
        try:
            run_server_op(server, op, version, now)
        except LocalProtocolError:
            assert server.state is before, "a refused command changed the state"
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        terminal = [e for e in events if isinstance(e, SERVER_TERMINAL)]
        if closed:
            assert events == [], f"events after close: {events}"
        elif terminal:
            assert len(terminal) == 1, events
            assert events[-1] is terminal[0], events
        if server.state is ServerState.CLOSED:
            closed = True
        data = server.data_to_send()
        if server.version is not None and server.version is version:
            check_output(output, data)
        assert server.next_deadline() is None or server.state is ServerState.CONNECTED


good_topics = st.sampled_from(["a", "a/b", "t/x"])
good_filters = st.lists(st.sampled_from(["a", "a/#", "+/b"]), min_size=1, max_size=2)
pair_ops = st.one_of(
    st.tuples(
        st.just("publish"),
        st.tuples(good_topics, st.integers(0, 1), st.booleans(), st.sampled_from([None, None, 1])),
    ),
    st.tuples(st.just("subscribe"), st.tuples(good_filters, st.integers(0, 1))),
    st.tuples(st.just("unsubscribe"), good_filters),
    st.tuples(st.just("server_send"), st.tuples(good_topics, st.integers(0, 1))),
    st.tuples(st.just("broker_answers"), st.sampled_from([0, 0x80, 0x87])),
    st.tuples(st.just("device_acks"), st.none()),
    st.tuples(st.just("to_server"), st.integers(0, 100)),
    st.tuples(st.just("to_client"), st.integers(0, 100)),
    st.tuples(st.just("to_server"), st.just(10_000)),
    st.tuples(st.just("to_client"), st.just(10_000)),
    st.tuples(st.just("advance"), st.floats(0, 20, allow_nan=False)),
    st.tuples(st.just("client_disconnect"), st.integers(0, 9)),  # acts on 0 only
)


class _Conversation:
    """A client and a server joined by two byte pipes, plus what each side owes the other."""

    def __init__(self, version: ProtocolVersion, accept_props: Properties) -> None:
        self.version = version
        self.client = ClientSession("dev", version=version, keep_alive=30, auto_ack=False)
        self.server = ServerSession()
        self.to_server = b""
        self.to_client = b""
        self.now = 0.0
        self.broker_owes: list[Any] = []  # events the broker must answer
        self.device_owes: list[int] = []  # inbound QoS 1 ids the device must ack
        self.seen: list[Any] = []
        self.published = 0  # QoS 1 publishes the client accepted
        self.client.connect(self.now)
        self.flush()
        self.server.receive_data(self.take_to_server(), self.now)
        self.collect()
        self.server.accept(properties=accept_props, now=self.now)
        self.flush()
        self.client.receive_data(self.take_to_client(), self.now)
        self.collect()

    def flush(self) -> None:
        self.to_server += self.client.data_to_send()
        self.to_client += self.server.data_to_send()

    def take_to_server(self, size: int | None = None) -> bytes:
        size = len(self.to_server) if size is None else size
        chunk, self.to_server = self.to_server[:size], self.to_server[size:]
        return chunk

    def take_to_client(self, size: int | None = None) -> bytes:
        size = len(self.to_client) if size is None else size
        chunk, self.to_client = self.to_client[:size], self.to_client[size:]
        return chunk

    def collect(self) -> None:
        while (event := self.server.next_event()) is not None:
            self.seen.append(event)
            if isinstance(event, (PublishReceived, SubscribeReceived, UnsubscribeReceived)):
                self.broker_owes.append(event)
        while (event := self.client.next_event()) is not None:
            self.seen.append(event)
            if isinstance(event, MessageReceived) and event.publish.qos == QoS.AT_LEAST_ONCE:
                self.device_owes.append(event.publish.packet_id or 0)

    def broker_answers(self, code: int) -> None:
        v5 = self.version is ProtocolVersion.MQTT_5
        for event in self.broker_owes:
            if isinstance(event, PublishReceived):
                if event.publish.qos == QoS.AT_LEAST_ONCE:
                    self.server.ack_publish(event.publish.packet_id or 0, code if v5 else 0)
            elif isinstance(event, SubscribeReceived):
                count = len(event.subscribe.subscriptions)
                granted = code if v5 or code != 0x87 else 0x80
                self.server.ack_subscribe(event.subscribe.packet_id, (granted,) * count)
            else:
                self.server.ack_unsubscribe(event.unsubscribe.packet_id)
        self.broker_owes.clear()

    def step(self, kind: str, arg) -> None:
        client, server, now = self.client, self.server, self.now
        try:
            if kind == "advance":
                self.now = now = now + arg
                client.handle_timer(now)
                server.handle_timer(now)
            elif kind == "publish":
                topic, qos, retain, alias = arg
                props = Properties(topic_alias=alias) if alias else Properties()
                packet_id = client.publish(
                    topic, b"p", qos=qos, retain=retain, properties=props, now=now
                )
                if packet_id is not None:
                    self.published += 1
            elif kind == "subscribe":
                subs = [Subscription(topic_filter=f, qos=QoS(arg[1])) for f in arg[0]]
                client.subscribe(subs, now=now)
            elif kind == "unsubscribe":
                client.unsubscribe(arg, now=now)
            elif kind == "server_send":
                server.send_publish(arg[0], b"m", qos=arg[1])
            elif kind == "broker_answers":
                self.broker_answers(arg)
            elif kind == "device_acks":
                self.device_acks()
            elif kind == "client_disconnect" and arg == 0:
                client.disconnect(now=now)
        except LocalProtocolError:
            # Only refusals a closed session or a missing server feature explain.
            closed = client.state is ClientState.CLOSED or server.state is ServerState.CLOSED
            assert closed or kind == "publish", kind
        self.flush()
        if kind == "to_server":
            server.receive_data(self.take_to_server(arg), now)
        elif kind == "to_client":
            client.receive_data(self.take_to_client(arg), now)
        self.collect()

    def device_acks(self) -> None:
        for packet_id in self.device_owes:
            self.client.ack(packet_id, now=self.now)
        self.device_owes.clear()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    versions,
    st.sampled_from([Properties(), Properties(receive_maximum=2, topic_alias_maximum=2)]),
    st.lists(pair_ops, min_size=20, max_size=80),
)
def test_pair_conversation_never_breaks(version, accept_props, ops):
    """Random commands on both ends, bytes moved in random chunk sizes, acks given late: a
    well-behaved client and server never accuse each other of a protocol violation."""
    if version is ProtocolVersion.MQTT_3_1_1:
        accept_props = Properties()
    talk = _Conversation(version, accept_props)
    assert talk.client.state is ClientState.CONNECTED
    for kind, arg in ops:
        talk.step(kind, arg)
    violations = [e for e in talk.seen if isinstance(e, ProtocolViolation)]
    assert violations == []
    # Let the conversation settle without time passing: nothing may be lost or stuck.
    for _ in range(5):
        talk.step("broker_answers", 0)
        talk.step("device_acks", None)
        talk.step("to_server", 1 << 30)
        talk.step("to_client", 1 << 30)
    assert [e for e in talk.seen if isinstance(e, ProtocolViolation)] == []
    if talk.client.state is ClientState.CONNECTED and talk.server.state is ServerState.CONNECTED:
        assert talk.client.in_flight == ()
        assert talk.server.unacknowledged == ()
        acked = [e for e in talk.seen if isinstance(e, PublishAcknowledged)]
        assert len(acked) == talk.published
