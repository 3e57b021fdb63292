"""Argument checks for :class:`fleet_sim.mqtt.client.ClientSession` commands.

Each check raises :class:`~fleet_sim.errors.LocalProtocolError` before the session changes
anything, so a refused command leaves the session as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.packets import NO_PROPERTIES, Connect, Properties, ProtocolVersion, QoS
from fleet_sim.mqtt.packets import Subscription as SubscriptionPacket
from fleet_sim.mqtt.topics import topic_filter_error, topic_name_error


def _qos(qos: int, what: str) -> QoS:
    if qos == QoS.EXACTLY_ONCE:
        raise LocalProtocolError(f"{what} with QoS 2: AWS IoT supports QoS 0 and 1 only")
    if qos not in (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE):
        raise LocalProtocolError(f"{what} with QoS {qos!r}")
    return QoS(qos)


def _no_properties_in_3_1_1(properties: Properties, version: ProtocolVersion, what: str) -> None:
    if version is ProtocolVersion.MQTT_3_1_1 and properties != NO_PROPERTIES:
        raise LocalProtocolError(f"{what}: MQTT 3.1.1 has no properties")


def check_connect(packet: Connect) -> None:
    """Check what the CONNECT of a client session would carry."""
    version = packet.protocol_version
    if not 0 <= packet.keep_alive <= 65535:
        raise LocalProtocolError(f"keep_alive {packet.keep_alive} is outside 0..65535")
    _no_properties_in_3_1_1(packet.properties, version, "CONNECT")
    if version is ProtocolVersion.MQTT_3_1_1:
        if not packet.client_id and not packet.clean_start:
            raise LocalProtocolError("MQTT 3.1.1: an empty client id needs clean_start=True")
        if packet.password is not None and packet.username is None:
            raise LocalProtocolError("MQTT 3.1.1: a password needs a username")
    will = packet.will
    if will is not None:
        error = topic_name_error(will.topic)
        if error is not None:
            raise LocalProtocolError(f"Will: {error}")
        _qos(will.qos, "Will")
        _no_properties_in_3_1_1(will.properties, version, "Will")


def check_publish(
    topic: str,
    qos: int,
    retain: bool,
    properties: Properties,
    version: ProtocolVersion,
    server: Properties,
    aliases: Mapping[int, str],
) -> QoS:
    """Check a publish against MQTT and against what the server's CONNACK announced.

    Args:
        topic: the topic name ("" to reuse a topic alias, MQTT 5).
        qos: the requested QoS.
        retain: the RETAIN flag.
        properties: the PUBLISH properties.
        version: the connection's protocol version.
        server: the CONNACK properties (Maximum QoS, Retain Available, Topic Alias Maximum).
        aliases: topic aliases recorded on this connection.

    Returns:
        The QoS as an enum member.
    """
    checked = _qos(qos, "publish")
    _no_properties_in_3_1_1(properties, version, "PUBLISH")
    if server.maximum_qos is not None and checked > server.maximum_qos:
        raise LocalProtocolError(f"the server's Maximum QoS is {server.maximum_qos}")
    if retain and server.retain_available == 0:
        raise LocalProtocolError("the server does not support retained messages")
    alias = properties.topic_alias
    if alias is not None:
        maximum = server.topic_alias_maximum or 0
        if not 1 <= alias <= maximum:
            raise LocalProtocolError(f"topic alias {alias} outside the server's 1..{maximum}")
        if not topic and alias not in aliases:
            raise LocalProtocolError(f"topic alias {alias} has no topic on this connection")
    if topic or alias is None:
        error = topic_name_error(topic)
        if error is not None:
            raise LocalProtocolError(error)
    return checked


def check_subscribe(subscriptions: Sequence[SubscriptionPacket]) -> None:
    """Check the filters and QoS of a SUBSCRIBE."""
    if not subscriptions:
        raise LocalProtocolError("subscribe() needs at least one subscription")
    for subscription in subscriptions:
        if not isinstance(subscription, SubscriptionPacket):
            raise LocalProtocolError(f"not a Subscription: {subscription!r}")
        error = topic_filter_error(subscription.topic_filter)
        if error is not None:
            raise LocalProtocolError(error)
        _qos(subscription.qos, "subscribe")


def check_unsubscribe(topic_filters: Sequence[str]) -> None:
    """Check the filters of an UNSUBSCRIBE."""
    if not topic_filters or isinstance(topic_filters, str):
        raise LocalProtocolError("unsubscribe() needs a sequence of at least one filter")
    for topic_filter in topic_filters:
        error = topic_filter_error(topic_filter)
        if error is not None:
            raise LocalProtocolError(error)
