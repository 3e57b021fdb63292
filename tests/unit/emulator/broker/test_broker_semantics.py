"""AWS IoT Core's broker semantics, with real client sessions paired with the broker in memory."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.broker.access import Principal
from fleet_sim.emulator.config import BrokerLimits, PublishDenial, SubscribeDenial
from fleet_sim.mqtt import events as ev
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import ProtocolVersion, Publish, QoS, Will
from tests.unit.emulator.broker.harness import Device, Rules, World, event_payloads

V311 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5


def connected(device: Device) -> bool:
    return bool(device.of(ev.Connected))


# --------------------------------------------------------------------------- connect


@pytest.mark.parametrize("version", [V311, V5])
def test_connect_is_accepted_and_announced(version: ProtocolVersion) -> None:
    world = World()
    watcher = world.device("watcher")
    assert watcher.subscribe("$aws/events/presence/connected/+") == (1,)
    device = world.device("dev-1", version=version)
    assert connected(device)
    [event] = event_payloads(watcher, "$aws/events/presence/connected/dev-1")
    assert event["clientId"] == "dev-1"
    assert event["eventType"] == "connected"
    assert event["principalIdentifier"] == "cert-dev-1"
    assert event["ipAddress"] == "127.0.0.1"
    assert event["versionNumber"] == 0
    assert isinstance(event["timestamp"], int)
    assert event["timestamp"] > 1_700_000_000_000  # epoch milliseconds
    assert event["sessionIdentifier"]


def test_mqtt5_connack_advertises_aws_capabilities() -> None:
    world = World()
    device = world.device("dev", version=V5)
    [connack] = device.of(ev.Connected)
    props = connack.connack.properties  # type: ignore[attr-defined]
    assert props.maximum_qos == 1
    assert props.retain_available == 1
    assert props.shared_subscription_available == 0


def test_connect_denied_mqtt311_closes_without_connack() -> None:
    world = World()
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/presence/connect_failed/+")
    world.access.rules["bad"] = Rules(connect=False)
    device = world.device("bad", version=V311)
    assert not device.of(ev.Connected)
    assert not device.of(ev.ConnectRefused)
    assert device.link.closed
    [event] = event_payloads(watcher, "$aws/events/presence/connect_failed/bad")
    assert event["connectFailureReason"] == "AUTHORIZATION_FAILED"
    assert event["eventType"] == "connect_failed"


def test_connect_denied_mqtt5_gets_connack_0x87() -> None:
    world = World()
    world.access.rules["bad"] = Rules(connect=False)
    device = world.device("bad", version=V5)
    [refused] = device.of(ev.ConnectRefused)
    assert refused.reason_code == 0x87  # type: ignore[attr-defined]
    assert device.link.closed


@pytest.mark.parametrize("version", [V311, V5])
def test_inactive_certificate_is_refused_like_a_denied_connect(version: ProtocolVersion) -> None:
    world = World()
    device = world.device("dev", version=version, principal=Principal("c", active=False))
    assert not connected(device)
    assert device.link.closed
    refused = device.of(ev.ConnectRefused)
    assert [r.reason_code for r in refused] == ([0x87] if version == V5 else [])  # type: ignore[attr-defined]


def test_will_topic_not_allowed_refuses_connect() -> None:
    world = World()
    world.access.rules["dev"] = Rules(deny_publish={"wills/dev"})
    device = world.device("dev", will=Will(topic="wills/dev", payload=b"gone"))
    assert not connected(device)
    assert device.link.closed


@pytest.mark.parametrize("client_id", ["$reserved", "x" * 129])
def test_invalid_client_ids_are_refused(client_id: str) -> None:
    world = World()
    device = world.device(client_id, version=V5)
    [refused] = device.of(ev.ConnectRefused)
    assert refused.reason_code == 0x85  # type: ignore[attr-defined]


def test_connect_rate_per_client_id_is_one_per_second() -> None:
    world = World()
    first = world.device("dev")
    assert connected(first)
    first.disconnect()
    second = world.device("dev", version=V5)
    [refused] = second.of(ev.ConnectRefused)
    assert refused.reason_code == 0x97  # type: ignore[attr-defined]
    world.clock.advance(1.0)
    third = world.device("dev")
    assert connected(third)
    assert world.broker.stats.throttled_connects == 1


def test_duplicate_client_id_takes_over_mqtt5() -> None:
    world = World()
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/presence/+/dup")
    old = world.device("dup", version=V5)
    world.clock.advance(1.0)
    new = world.device("dup", version=V5)
    assert connected(new)
    [gone] = old.of(ev.Disconnected)
    assert gone.reason_code == 0x8E  # type: ignore[attr-defined]
    assert old.link.closed
    events = event_payloads(watcher, "$aws/events/presence/")
    kinds = [(e["eventType"], e.get("disconnectReason")) for e in events]
    assert kinds == [
        ("connected", None),
        ("disconnected", "DUPLICATE_CLIENTID"),
        ("connected", None),
    ]
    assert [e["versionNumber"] for e in events] == [0, 0, 1]
    assert world.broker.connection_count == 2


def test_duplicate_client_id_mqtt311_old_connection_just_closes() -> None:
    world = World()
    old = world.device("dup")
    world.clock.advance(1.0)
    new = world.device("dup")
    assert connected(new)
    assert old.link.closed
    assert not old.of(ev.Disconnected)  # 3.1.1 has no server DISCONNECT


# --------------------------------------------------------------------------- routing


def test_publish_routes_to_matching_subscribers_with_aws_hash_rule() -> None:
    world = World()
    sub = world.device("sub")
    assert sub.subscribe("a/#", "b/+", qos=1) == (1, 1)
    pub = world.device("pub")
    for topic in ["a", "a/", "a/x/y", "b/1", "b", "c"]:
        pub.publish(topic, topic.encode(), qos=1)
    assert sub.topics() == ["a/", "a/x/y", "b/1"]  # AWS: a/# does not match "a"
    assert len(pub.of(ev.PublishAcknowledged)) == 6


def test_overlapping_filters_deliver_once_at_highest_qos() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("t/#", qos=0)
    sub.subscribe("t/x", qos=1)
    world.device("pub").publish("t/x", qos=1)
    [message] = sub.messages()
    assert message.publish.qos == QoS.AT_LEAST_ONCE


def test_dollar_topics_are_not_matched_by_leading_wildcards() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("#", "+/events/#")
    world.device("other")  # its connected event goes to $aws/events/...
    assert not [t for t in sub.topics() if t.startswith("$")]


def test_retained_message_only_for_exact_filters_and_flagged_on_subscribe() -> None:
    world = World()
    pub = world.device("pub")
    pub.publish("status/lamp", b"on", qos=1, retain=True)
    exact = world.device("exact")
    exact.subscribe("status/lamp")
    wild = world.device("wild")
    wild.subscribe("status/+")
    [message] = exact.messages()
    assert message.publish.payload == b"on"
    assert message.publish.retain is True
    assert wild.messages() == []
    pub.publish("status/lamp", b"off", qos=1, retain=True)
    live = exact.messages()[-1].publish
    assert live.payload == b"off"
    assert live.retain is False  # RETAIN=1 only when sent because of a subscribe


def test_empty_retained_publish_deletes_and_is_still_delivered() -> None:
    world = World()
    pub = world.device("pub")
    pub.publish("s", b"on", retain=True)
    sub = world.device("sub")
    sub.subscribe("s")
    pub.publish("s", b"", retain=True)
    assert [m.publish.payload for m in sub.messages()] == [b"on", b""]
    assert world.broker.retained("s") is None
    late = world.device("late")
    late.subscribe("s")
    assert late.messages() == []


# --------------------------------------------------------------------------- policy violations


def test_denied_publish_mqtt311_disconnects() -> None:
    world = World()
    world.access.rules["dev"] = Rules(deny_publish={"secret"})
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/presence/disconnected/dev")
    device = world.device("dev")
    device.publish("secret", qos=1)
    assert device.link.closed
    [event] = event_payloads(watcher, "$aws/events/presence/disconnected/dev")
    assert event["disconnectReason"] == "AUTH_ERROR"
    assert event["clientInitiatedDisconnect"] is False


def test_denied_publish_mqtt5_qos1_gets_puback_0x87_and_stays() -> None:
    world = World()
    world.access.rules["dev"] = Rules(deny_publish={"secret"})
    device = world.device("dev", version=V5)
    pid = device.publish("secret", qos=1)
    [ack] = device.of(ev.PublishAcknowledged)
    assert (ack.packet_id, ack.reason_code) == (pid, 0x87)  # type: ignore[attr-defined]
    assert not device.link.closed
    device.publish("secret", qos=0)  # dropped silently
    assert not device.link.closed


def test_denied_qos0_publish_mqtt5_strict_mode_disconnects() -> None:
    world = World(publish_denial=PublishDenial.DISCONNECT)
    world.access.rules["dev"] = Rules(deny_publish={"secret"})
    device = world.device("dev", version=V5)
    device.publish("secret", qos=0)
    [gone] = device.of(ev.Disconnected)
    assert gone.reason_code == 0x87  # type: ignore[attr-defined]


@pytest.mark.parametrize(("version", "code"), [(V311, 0x80), (V5, 0x87)])
def test_denied_subscribe_gets_failure_code(version: ProtocolVersion, code: int) -> None:
    world = World()
    world.access.rules["dev"] = Rules(deny_subscribe={"secret/#"})
    device = world.device("dev", version=version)
    assert device.subscribe("ok/#", "secret/#") == (1, code)
    assert not device.link.closed


def test_denied_subscribe_legacy_mode_disconnects() -> None:
    world = World(subscribe_denial=SubscribeDenial.DISCONNECT)
    world.access.rules["dev"] = Rules(deny_subscribe={"secret/#"})
    device = world.device("dev")
    device.subscribe("secret/#")
    assert device.link.closed


def test_denied_receive_is_silently_not_delivered() -> None:
    world = World()
    world.access.rules["sub"] = Rules(deny_receive={"t/hidden"})
    sub = world.device("sub")
    sub.subscribe("t/#")
    pub = world.device("pub")
    pub.publish("t/hidden")
    pub.publish("t/visible")
    assert sub.topics() == ["t/visible"]
    assert world.broker.stats.denied_receives == 1


def test_retain_needs_retain_publish_permission() -> None:
    world = World()
    world.access.rules["dev"] = Rules(deny_retain={"s"})
    device = world.device("dev", version=V5)
    device.publish("s", b"x", qos=1, retain=True)
    [ack] = device.of(ev.PublishAcknowledged)
    assert ack.reason_code == 0x87  # type: ignore[attr-defined]
    assert world.broker.retained("s") is None


@pytest.mark.parametrize("topic", ["$aws/events/presence/connected/x", "$SYS/x", "$aws/unknown"])
def test_reserved_topics_cannot_be_published(topic: str) -> None:
    world = World()
    device = world.device("dev", version=V5)
    device.publish(topic, qos=1)
    [ack] = device.of(ev.PublishAcknowledged)
    assert ack.reason_code == 0x87  # type: ignore[attr-defined]


def test_retained_publish_to_reserved_topic_is_refused() -> None:
    world = World()
    device = world.device("dev", version=V5)
    device.publish("$aws/things/t/shadow/update", b"{}", qos=1, retain=True)
    [ack] = device.of(ev.PublishAcknowledged)
    assert ack.reason_code == 0x87  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- QoS 2 and quotas


def test_qos2_publish_mqtt311_gets_no_ack_and_is_not_routed() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("t")
    pub = world.device("pub")
    # Our own client refuses QoS 2, so the raw packet is fed in.
    pub.conn.data_received(
        encode(Publish(topic="t", payload=b"x", qos=QoS.EXACTLY_ONCE, packet_id=7), V311)
    )
    world.pump()
    assert pub.link.take() == b""
    assert sub.messages() == []
    assert not pub.link.closed


def test_qos2_publish_mqtt5_disconnects_with_0x9b() -> None:
    world = World()
    pub = world.device("pub", version=V5)
    pub.conn.data_received(
        encode(Publish(topic="t", payload=b"x", qos=QoS.EXACTLY_ONCE, packet_id=7), V5)
    )
    world.pump()
    [gone] = pub.of(ev.Disconnected)
    assert gone.reason_code == 0x9B  # type: ignore[attr-defined]


def test_payload_over_128kb_disconnects_with_client_error() -> None:
    world = World()
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/presence/disconnected/big")
    device = world.device("big")
    device.publish("t", b"x" * (128 * 1024 + 1))
    assert device.link.closed
    [event] = event_payloads(watcher, "$aws/events/presence/disconnected/big")
    assert event["disconnectReason"] == "CLIENT_ERROR"


def test_topic_with_more_than_seven_slashes_is_refused() -> None:
    world = World()
    device = world.device("dev", version=V5)
    device.publish("a/b/c/d/e/f/g/h/i", qos=1)
    [ack] = device.of(ev.PublishAcknowledged)
    assert ack.reason_code == 0x90  # type: ignore[attr-defined]


def test_at_most_eight_filters_per_subscribe() -> None:
    world = World()
    device = world.device("dev")
    codes = device.subscribe(*[f"f/{i}" for i in range(9)])
    assert codes == (1,) * 8 + (0x80,)


def test_at_most_fifty_subscriptions_per_connection() -> None:
    world = World()
    device = world.device("dev", version=V5)
    for batch in range(7):
        device.subscribe(*[f"f/{batch}/{i}" for i in range(8)])
    codes = [c for e in device.of(ev.Subscribed) for c in e.reason_codes]  # type: ignore[attr-defined]
    assert codes.count(1) == 50
    assert codes[50:] == [0x97] * 6


def test_publish_rate_per_connection_discards_the_excess() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("t")
    world.clock.advance(2.0)  # let sub's bucket refill after its own traffic
    pub = world.device("pub", version=V5)
    for _ in range(120):
        pub.session.publish("t", b"x", qos=0, now=world.clock.now())
    world.pump()
    assert len(sub.messages()) == 100
    assert world.broker.stats.dropped_rate == 20


def test_unlimited_limits_switch_quotas_off() -> None:
    world = World(limits=BrokerLimits.unlimited())
    sub = world.device("sub")
    sub.subscribe("t")
    pub = world.device("pub")
    for _ in range(300):
        pub.session.publish("t", b"x", qos=0, now=world.clock.now())
    world.pump()
    assert len(sub.messages()) == 300


# --------------------------------------------------------------------------- sessions, wills


def test_will_is_published_on_connection_loss_not_on_disconnect() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("wills/#")
    polite = world.device("polite", will=Will(topic="wills/polite", payload=b"bye"))
    polite.disconnect()
    rude = world.device("rude", will=Will(topic="wills/rude", payload=b"bye"))
    rude.drop()
    assert sub.topics() == ["wills/rude"]


def test_mqtt5_disconnect_with_will_reason_publishes_will() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("wills/#")
    device = world.device("dev", version=V5, will=Will(topic="wills/dev", payload=b"bye"))
    device.session.disconnect(0x04, now=world.clock.now())
    world.pump()
    assert sub.topics() == ["wills/dev"]


def test_keep_alive_is_clamped_to_30s_and_enforced_at_1_5x() -> None:
    world = World()
    watcher = world.device("watcher", keep_alive=1200)
    watcher.subscribe("$aws/events/presence/disconnected/+", "wills/#")
    device = world.device("sleepy", keep_alive=10, will=Will(topic="wills/sleepy", payload=b"z"))
    # The client would ping every 10 s; silence it to see the server's timer.
    device.quiet = True
    world.advance(44.0)
    assert world.broker.connection("sleepy") is not None
    world.advance(2.0)
    assert world.broker.connection("sleepy") is None
    assert device.link.closed
    [event] = event_payloads(watcher, "$aws/events/presence/disconnected/sleepy")
    assert event["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
    assert "wills/sleepy" in watcher.topics()


def test_persistent_session_queues_qos1_while_offline() -> None:
    world = World()
    device = world.device("dev", clean=False)
    device.subscribe("cmd/dev", qos=1)
    device.disconnect()
    pub = world.device("pub")
    pub.publish("cmd/dev", b"one", qos=1)
    pub.publish("cmd/dev", b"zero", qos=0)  # QoS 0 is not stored
    world.clock.advance(1.0)
    back = world.device("dev", clean=False)
    [connack] = back.of(ev.Connected)
    assert connack.connack.session_present is True  # type: ignore[attr-defined]
    assert [m.publish.payload for m in back.messages()] == [b"one"]
    back.disconnect()
    world.clock.advance(1.0)
    fresh = world.device("dev", clean=True)
    [connack] = fresh.of(ev.Connected)
    assert connack.connack.session_present is False  # type: ignore[attr-defined]


def test_stored_messages_drain_at_ten_per_second() -> None:
    world = World()
    device = world.device("dev", clean=False)
    device.subscribe("cmd", qos=1)
    device.disconnect()
    pub = world.device("pub", version=V5)
    world.clock.advance(1.0)
    for i in range(25):
        pub.session.publish("cmd", str(i).encode(), qos=1, now=world.clock.now())
    world.pump()
    back = world.device("dev", clean=False)
    assert len(back.messages()) == 10
    world.advance(1.0)
    assert len(back.messages()) == 20
    world.advance(1.0)
    assert [m.publish.payload for m in back.messages()] == [str(i).encode() for i in range(25)]


def test_persistent_session_expires() -> None:
    world = World(limits=BrokerLimits(session_expiry_s=60))
    device = world.device("dev", clean=False)
    device.subscribe("cmd")
    device.disconnect()
    world.clock.advance(61.0)
    assert world.broker.expire_sessions() == 1
    assert world.broker.subscription_count == 0


def test_certificate_deactivation_disconnects_its_connections() -> None:
    world = World()
    a = world.device("a", version=V5, principal=Principal("shared"))
    b = world.device("b", principal=Principal("shared"))
    other = world.device("c", principal=Principal("other"))
    assert world.broker.disconnect_certificate("shared") == 2
    world.pump()
    assert a.link.closed
    assert b.link.closed
    assert not other.link.closed
    [gone] = a.of(ev.Disconnected)
    assert gone.reason_code == 0x87  # type: ignore[attr-defined]


def test_subscription_lifecycle_events() -> None:
    world = World()
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/subscriptions/+/dev")
    device = world.device("dev")
    device.subscribe("a/b", "c/#")
    device.session.unsubscribe(["a/b"], now=world.clock.now())
    world.pump()
    events = event_payloads(watcher, "$aws/events/subscriptions/")
    assert [(e["eventType"], e["topics"]) for e in events] == [
        ("subscribed", ["a/b", "c/#"]),
        ("unsubscribed", ["a/b"]),
    ]
    assert events[0]["principalIdentifier"] == "cert-dev"


def test_client_ids_with_wildcards_get_no_lifecycle_events() -> None:
    world = World()
    watcher = world.device("watcher")
    watcher.subscribe("$aws/events/presence/connected/#")
    world.device("odd+id")
    assert event_payloads(watcher, "$aws/events/presence/connected/") == []


def test_garbage_closes_only_that_client() -> None:
    world = World()
    sub = world.device("sub")
    sub.subscribe("t")
    bad = world.device("bad")
    bad.conn.data_received(b"\xff\xff\xff\xff\xff garbage")
    world.pump()
    assert bad.link.closed
    world.device("pub").publish("t")
    assert sub.topics() == ["t"]
