"""Replies of a reserved-topic service to the one connection that asked (fleet provisioning).

AWS answers fleet-provisioning requests "only on the same MQTT connection", and a client that
has not subscribed to the reply topic first "may miss the reply" (reference §3.1). The
emulator makes that deterministic: a reply is delivered only when the requesting connection
holds a subscription matching the reply topic when the reply is sent, at the highest QoS
those subscriptions granted, and only if its policy allows ``iot:Receive`` on the topic. It
never reaches any other subscriber.
"""

from __future__ import annotations

import enum

from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.mqtt.packets import Publish, QoS
from fleet_sim.mqtt.topics import matches


class ReplyOutcome(enum.Enum):
    """What became of a reply."""

    SENT = "sent"
    NOT_SUBSCRIBED = "not_subscribed"  # no subscription of the connection matches the topic
    RECEIVE_DENIED = "receive_denied"  # the policy denies iot:Receive on the topic
    DROPPED = "dropped"  # the connection is gone, or its quotas or backlog dropped it


def granted_qos(connection: BrokerConnection, topic: str) -> int | None:
    """The highest QoS among ``connection``'s subscriptions matching ``topic`` (None: none)."""
    stored = connection.stored
    if stored is None:
        return None
    best: int | None = None
    for topic_filter, options in stored.subscriptions.items():
        if (best is None or options.qos > best) and matches(topic_filter, topic, aws=True):
            best = options.qos
    return best


def reply_to(connection: BrokerConnection, topic: str, payload: bytes) -> ReplyOutcome:
    """Deliver ``payload`` on ``topic`` to ``connection`` alone (see the module docstring);
    counted in the broker's ``deliveries`` / ``denied_receives``."""
    qos = granted_qos(connection, topic)
    if qos is None:
        return ReplyOutcome.NOT_SUBSCRIBED
    stats = connection.broker.stats
    authorizer = connection.authorizer
    if authorizer is not None and not authorizer.can_receive(topic):
        stats.denied_receives += 1
        return ReplyOutcome.RECEIVE_DENIED
    if not connection.deliver(Publish(topic=topic, payload=payload, qos=QoS(qos))):
        return ReplyOutcome.DROPPED
    stats.deliveries += 1
    return ReplyOutcome.SENT
