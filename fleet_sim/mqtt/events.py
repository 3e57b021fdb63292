"""Events: the past-tense facts the sans-IO sessions report through ``next_event()``.

Every event is a frozen value. Peer misbehaviour is reported as an event
(:class:`ProtocolViolation`), never raised. Each session reports exactly one *terminal* event
when it closes and nothing after it (until a client reconnects):

* client: :class:`ConnectRefused`, :class:`Disconnected`, :class:`KeepAliveTimeout`,
  :class:`ProtocolViolation`, :class:`ConnectionClosed`;
* server: :class:`ClientDisconnected`, :class:`KeepAliveExpired`, :class:`ProtocolViolation`,
  :class:`ConnectionClosed` (the broker's own ``refuse()``/``disconnect()`` report nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    PacketType,
    Properties,
    Publish,
    Subscribe,
    Unsubscribe,
)


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every session event."""


# --------------------------------------------------------------------------- both sides


@dataclass(frozen=True, slots=True)
class ProtocolViolation(Event):
    """The peer broke the protocol; the session is closed (terminal).

    Attributes:
        reason_code: the MQTT 5 reason code naming the problem (0x81 malformed, 0x82 protocol
            error, 0x93, 0x94, 0x95, 0x9B …), also used in 3.1.1 for reporting.
        message: what went wrong, for logs.
    """

    reason_code: int
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The transport ended (the driver called ``connection_lost``) while open (terminal)."""


@dataclass(frozen=True, slots=True)
class UnexpectedAckReceived(Event):
    """The peer acknowledged a packet id that has nothing in flight; it was ignored.

    Attributes:
        packet_type: PUBACK, SUBACK or UNSUBACK.
        packet_id: the unknown packet id.
    """

    packet_type: PacketType
    packet_id: int


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """The server accepted our CONNECT."""

    connack: ConnAck


@dataclass(frozen=True, slots=True)
class ConnectRefused(Event):
    """The server answered CONNECT with a failure code (terminal)."""

    reason_code: int
    connack: ConnAck


@dataclass(frozen=True, slots=True)
class PublishAcknowledged(Event):
    """A QoS 1 publish of ours got its PUBACK (``reason_code`` >= 0x80 is a refusal)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class PublishesDropped(Event):
    """QoS 1 publishes still unacknowledged were discarded with the session state.

    Reported before :class:`Connected` when a reconnect finds no session on the server
    (Session Present 0): these messages will never be acknowledged.
    """

    packet_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Subscribed(Event):
    """SUBACK: one return/reason code per requested filter (>= 0x80 is a refusal)."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribed(Event):
    """UNSUBACK (3.1.1: ``reason_codes`` is empty)."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """The server delivered a PUBLISH (topic aliases already resolved)."""

    publish: Publish


@dataclass(frozen=True, slots=True)
class KeepAliveTimeout(Event):
    """No answer to our PINGREQ within the response window (terminal)."""


@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    """The connection ended with a DISCONNECT (terminal).

    Attributes:
        reason_code: the DISCONNECT reason code (always 0 in MQTT 3.1.1).
        by_server: ``True`` if the server sent it, ``False`` if we called ``disconnect()``.
        properties: the DISCONNECT properties (reason string, server reference…).
    """

    reason_code: int = 0
    by_server: bool = True
    properties: Properties = NO_PROPERTIES


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True, slots=True)
class ConnectReceived(Event):
    """A client sent CONNECT; the broker must call ``accept()`` or ``refuse()``."""

    connect: Connect


@dataclass(frozen=True, slots=True)
class PublishReceived(Event):
    """A client published (topic aliases resolved); QoS 1 waits for ``ack_publish()``."""

    publish: Publish


@dataclass(frozen=True, slots=True)
class SubscribeReceived(Event):
    """A client subscribed; the broker answers with ``ack_subscribe()``."""

    subscribe: Subscribe


@dataclass(frozen=True, slots=True)
class UnsubscribeReceived(Event):
    """A client unsubscribed; the broker answers with ``ack_unsubscribe()``."""

    unsubscribe: Unsubscribe


@dataclass(frozen=True, slots=True)
class DeliveryAcknowledged(Event):
    """A client PUBACKed a QoS 1 message the broker sent."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class ClientDisconnected(Event):
    """The client sent DISCONNECT (terminal).

    The broker publishes no Will, except in MQTT 5 with reason 0x04 (Disconnect with Will).
    """

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class KeepAliveExpired(Event):
    """Nothing arrived for 1.5 × the keep-alive interval (terminal)."""
