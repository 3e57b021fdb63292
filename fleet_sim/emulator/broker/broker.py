"""The emulator's message broker: routing, sessions, retained messages, lifecycle events.

Pure (no asyncio, no sockets): the gateway hands it connections through
:meth:`Broker.attach` and moves bytes; time comes from an injected clock. Semantics follow AWS
IoT Core where it differs from the MQTT specs (§7 of the reference):

* ``a/#`` does not match ``a``; retained messages go only to exact-filter subscriptions and
  carry RETAIN=1 only then; a message matching several filters of one client is delivered once
  at the highest granted QoS.
* A second connection with the same client id takes over: the old one is dropped with
  ``DUPLICATE_CLIENTID`` (MQTT 5: DISCONNECT 0x8E) and its persistent session moves over.
* Persistent sessions keep subscriptions and queue QoS 1 messages while offline, delivered at
  10 messages/s on resume; they expire after the session expiry.
* ``iot:Receive`` is checked per delivery; a denied delivery is silently skipped.

Not emulated (yet): shared subscriptions (``$share/…`` is refused with 0x9E / 0x80), MQTT 5
topic aliases from the server (Topic Alias Maximum 0 is announced), Will Delay Interval (the
Will is published at once), message expiry, retained-message persistence across restarts, and
the per-account publish and subscription rate quotas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from fleet_sim.clock import Clock
from fleet_sim.emulator.broker import lifecycle as lc
from fleet_sim.emulator.broker import reserved
from fleet_sim.emulator.broker.access import AccessControl, Principal
from fleet_sim.emulator.broker.connection import BrokerConnection, ClientLink
from fleet_sim.emulator.broker.lifecycle import DisconnectReason
from fleet_sim.emulator.broker.rate import KeyedRateLimiter, TokenBucket
from fleet_sim.emulator.broker.sessions import StoredSession, SubscriptionOptions
from fleet_sim.emulator.config import BrokerLimits, PublishDenial, SubscribeDenial
from fleet_sim.mqtt.packets import Publish, QoS, ReasonCode
from fleet_sim.mqtt.topic_tree import TopicTree

logger = logging.getLogger(__name__)


class ReservedTopicService(Protocol):
    """A service that owns some reserved topics (shadows, fleet provisioning …)."""

    def handles(self, topic: str) -> bool:
        """Whether a publish to ``topic`` is a request for this service."""
        ...

    def handle(self, connection: BrokerConnection, message: Publish) -> bool | None:
        """Serve a request published by ``connection``.

        Returns True when the service consumed the request: it is then not routed to
        subscribers (fleet provisioning's requests carry ownership tokens and CSRs).
        None or False lets the broker route it as usual.
        """
        ...


MessageObserver = Callable[[Publish, BrokerConnection | None], None]
"""Sees every routed message, device-published (``sender`` set) or the service's own (None):
the local rules engine hooks in here. Called on the loop thread; must not block."""


@dataclass(slots=True)
class BrokerStats:
    """Counters the broker keeps (for reports and tests)."""

    connections_accepted: int = 0
    publishes_in: int = 0
    deliveries: int = 0
    denied_publishes: int = 0
    denied_subscribes: int = 0
    denied_receives: int = 0
    dropped_rate: int = 0
    dropped_backpressure: int = 0
    throttled_connects: int = 0
    takeovers: int = 0


class Lifecycle:
    """Publishes AWS's lifecycle events through the broker (§8 of the reference)."""

    def __init__(self, broker: Broker, *, enabled: bool) -> None:
        self._broker = broker
        self._enabled = enabled
        self._versions: dict[str, int] = {}

    def next_version(self, client_id: str) -> int:
        """The ``versionNumber`` for a new connection of ``client_id`` (increases per id)."""
        version = self._versions.get(client_id, -1) + 1
        self._versions[client_id] = version
        return version

    def _now_ms(self) -> int:
        return int(self._broker.clock.wall() * 1000)

    def _publish(self, topic: str, payload: bytes) -> None:
        self._broker.route(Publish(topic=topic, payload=payload, qos=QoS.AT_LEAST_ONCE), None)

    def _wanted(self, topic: str) -> bool:
        """Whether anyone (a subscriber or a local rule) would see an event on ``topic``.

        Building and routing the JSON of an event nobody receives costs ~30 µs per connect.
        """
        broker = self._broker
        return bool(broker.observers) or bool(broker._tree.match(topic))

    def connected(self, conn: BrokerConnection) -> None:
        """A client connected."""
        if not self._enabled or not lc.emits_events(conn.client_id):
            return
        if not self._wanted(lc.presence_topic("connected", conn.client_id)):
            return
        payload = lc.connected(
            client_id=conn.client_id,
            timestamp_ms=self._now_ms(),
            session_id=conn.session_id,
            principal=conn.principal.certificate_id,
            ip_address=conn.source_ip,
            version_number=conn.version_number,
        )
        self._publish(lc.presence_topic("connected", conn.client_id), payload)

    def disconnected(self, conn: BrokerConnection, reason: DisconnectReason) -> None:
        """A connected client went away."""
        if not self._enabled or not lc.emits_events(conn.client_id):
            return
        if not self._wanted(lc.presence_topic("disconnected", conn.client_id)):
            return
        payload = lc.disconnected(
            client_id=conn.client_id,
            timestamp_ms=self._now_ms(),
            session_id=conn.session_id,
            principal=conn.principal.certificate_id,
            version_number=conn.version_number,
            reason=reason,
        )
        self._publish(lc.presence_topic("disconnected", conn.client_id), payload)

    def connect_failed(self, conn: BrokerConnection, reason: str) -> None:
        """A CONNECT was refused for authorization."""
        if not self._enabled or not conn.client_id or not lc.emits_events(conn.client_id):
            return
        payload = lc.connect_failed(
            client_id=conn.client_id,
            timestamp_ms=self._now_ms(),
            session_id=conn.session_id,
            principal=conn.principal.certificate_id,
            ip_address=conn.source_ip,
            reason=reason,
        )
        self._publish(lc.presence_topic("connect_failed", conn.client_id), payload)

    def subscription_change(self, conn: BrokerConnection, kind: str, topics: list[str]) -> None:
        """Filters were subscribed or unsubscribed."""
        if not self._enabled or not lc.emits_events(conn.client_id):
            return
        payload = lc.subscription_change(
            event_type=kind,
            client_id=conn.client_id,
            timestamp_ms=self._now_ms(),
            session_id=conn.session_id,
            principal=conn.principal.certificate_id,
            topics=topics,
        )
        self._publish(lc.subscriptions_topic(kind, conn.client_id), payload)


class Broker:
    """AWS IoT Core's message broker over sans-IO server sessions."""

    def __init__(
        self,
        *,
        access: AccessControl,
        clock: Clock,
        new_session_id: Callable[[], str],
        limits: BrokerLimits | None = None,
        subscribe_denial: SubscribeDenial = SubscribeDenial.SUBACK_FAILURE,
        publish_denial: PublishDenial = PublishDenial.DROP,
        lifecycle_events: bool = True,
    ) -> None:
        self.access = access
        self.clock = clock
        self.new_session_id = new_session_id
        self.limits = limits if limits is not None else BrokerLimits()
        self.subscribe_denial = subscribe_denial
        self.publish_denial = publish_denial
        self.lifecycle = Lifecycle(self, enabled=lifecycle_events)
        self.stats = BrokerStats()
        self.services: list[ReservedTopicService] = []
        self.observers: list[MessageObserver] = []
        self._connections: dict[str, BrokerConnection] = {}
        self._by_certificate: dict[str, set[BrokerConnection]] = {}
        self._sessions: dict[str, StoredSession] = {}
        self._tree: TopicTree[str, SubscriptionOptions] = TopicTree(aws=True)
        self._retained: dict[str, Publish] = {}
        self._matches: dict[str, list[tuple[str, SubscriptionOptions]]] = {}
        self._dirty: dict[BrokerConnection, None] = {}
        limits_ = self.limits
        self._per_client = (
            KeyedRateLimiter(limits_.connects_per_second_per_client_id)
            if limits_.connects_per_second_per_client_id is not None
            else None
        )
        self._per_account = (
            TokenBucket(limits_.connects_per_second_per_account, now=clock.now())
            if limits_.connects_per_second_per_account is not None
            else None
        )

    # ------------------------------------------------------------------ connections

    def attach(self, link: ClientLink, principal: Principal, *, source_ip: str) -> BrokerConnection:
        """A TLS connection authenticated as ``principal`` is ready for MQTT."""
        max_packet = self.limits.max_payload_bytes
        # Room for the topic, properties and header around the largest allowed payload.
        max_packet_size = 268_435_455 if max_packet is None else max_packet + 64 * 1024
        return BrokerConnection(
            self, link, principal, source_ip=source_ip, max_packet_size=max_packet_size
        )

    @property
    def connection_count(self) -> int:
        """Clients currently connected (CONNACK sent and not yet gone)."""
        return len(self._connections)

    def connection(self, client_id: str) -> BrokerConnection | None:
        """The live connection of ``client_id``, if any."""
        return self._connections.get(client_id)

    def admit_connect(self, client_id: str) -> bool:
        """Apply the CONNECT rate quotas (per client id, per account)."""
        now = self.clock.now()
        if self._per_client is not None and not self._per_client.take(client_id, now):
            return False
        return self._per_account is None or self._per_account.take(now)

    def take_over(self, conn: BrokerConnection) -> None:
        """Register ``conn`` as its client id's connection, dropping an older one (§7.2)."""
        old = self._connections.get(conn.client_id)
        if old is not None and old is not conn:
            self.stats.takeovers += 1
            old.kick(DisconnectReason.DUPLICATE_CLIENTID, ReasonCode.SESSION_TAKEN_OVER)
        self._connections[conn.client_id] = conn
        self._by_certificate.setdefault(conn.principal.certificate_id, set()).add(conn)
        self.stats.connections_accepted += 1

    def open_session(
        self, client_id: str, *, clean: bool, expiry_s: float
    ) -> tuple[StoredSession, bool]:
        """Resume or start ``client_id``'s session; returns it and "session present"."""
        existing = self._sessions.get(client_id)
        if existing is not None and (clean or existing.expired(self.clock.now())):
            self._drop_session(existing)
            existing = None
        if existing is not None:
            existing.offline_since = None
            existing.expiry_s = expiry_s
            return existing, True
        session = StoredSession(client_id=client_id, expiry_s=expiry_s)
        self._sessions[client_id] = session
        return session, False

    def connection_closed(self, conn: BrokerConnection) -> None:
        """``conn`` is gone: unregister it and keep or drop its session."""
        self._dirty.pop(conn, None)
        if self._connections.get(conn.client_id) is conn:
            del self._connections[conn.client_id]
            stored = conn.stored
            if stored is not None and self._sessions.get(conn.client_id) is stored:
                if stored.expiry_s > 0:
                    stored.offline_since = self.clock.now()
                else:
                    self._drop_session(stored)
        peers = self._by_certificate.get(conn.principal.certificate_id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self._by_certificate[conn.principal.certificate_id]

    def disconnect_certificate(self, certificate_id: str) -> int:
        """Drop every connection authenticated by ``certificate_id`` (it is no longer ACTIVE)."""
        conns = list(self._by_certificate.get(certificate_id, ()))
        for conn in conns:
            conn.kick(DisconnectReason.AUTH_ERROR, ReasonCode.NOT_AUTHORIZED)
        self.flush()
        return len(conns)

    def expire_sessions(self) -> int:
        """Remove offline sessions whose expiry has passed; returns how many."""
        now = self.clock.now()
        expired = [s for s in self._sessions.values() if s.expired(now)]
        for session in expired:
            self._drop_session(session)
        return len(expired)

    def _drop_session(self, session: StoredSession) -> None:
        self._tree.remove_key(session.client_id)
        self._matches.clear()
        session.subscriptions.clear()
        session.queue.clear()
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]

    # ------------------------------------------------------------------ subscriptions

    def subscribe(
        self, conn: BrokerConnection, topic_filter: str, options: SubscriptionOptions
    ) -> None:
        """Record a granted subscription in ``conn``'s session."""
        assert conn.stored is not None
        conn.stored.subscriptions[topic_filter] = options
        self._tree.add(topic_filter, conn.client_id, options)
        self._matches.clear()

    def unsubscribe(self, conn: BrokerConnection, topic_filter: str) -> bool:
        """Remove a subscription; False if there was none."""
        assert conn.stored is not None
        if conn.stored.subscriptions.pop(topic_filter, None) is None:
            return False
        self._tree.remove(topic_filter, conn.client_id)
        self._matches.clear()
        return True

    def send_retained(
        self, conn: BrokerConnection, topic_filter: str, options: SubscriptionOptions
    ) -> None:
        """Deliver the retained message of an exact-filter subscription (AWS: no wildcards)."""
        if "+" in topic_filter or "#" in topic_filter:
            return
        message = self._retained.get(topic_filter)
        if message is None:
            return
        assert conn.authorizer is not None
        if not conn.authorizer.can_receive(topic_filter):
            self.stats.denied_receives += 1
            return
        qos = QoS(min(int(message.qos), options.qos))
        if conn.deliver(replace(message, qos=qos, retain=True)):
            self.stats.deliveries += 1

    @property
    def subscription_count(self) -> int:
        """(client id, filter) subscriptions across all sessions."""
        return len(self._tree)

    def retained(self, topic: str) -> Publish | None:
        """The retained message of ``topic``, if any."""
        return self._retained.get(topic)

    # ------------------------------------------------------------------ routing

    def route(self, message: Publish, sender: BrokerConnection | None) -> None:
        """Deliver a message to every matching subscription (and keep it if retained).

        ``sender`` is None for messages the service itself publishes (events, Wills).
        """
        topic = message.topic
        if self.observers:
            self._notify_observers(message, sender)
        if sender is not None:
            consumed = False
            for service in self.services:
                if service.handles(topic) and service.handle(sender, message):
                    consumed = True
            if consumed or reserved.is_basic_ingest(topic):
                return
        if message.retain:
            if message.payload:
                self._retained[topic] = replace(message, retain=False)
            else:
                self._retained.pop(topic, None)
        best_items = self._matches.get(topic)
        if best_items is None:
            # One delivery per client, at the highest QoS any of its matching filters granted.
            best: dict[str, SubscriptionOptions] = {}
            for client_id, _filter, options in self._tree.match(topic):
                current = best.get(client_id)
                if current is None or options.qos > current.qos:
                    best[client_id] = options
            best_items = list(best.items())
            if len(self._matches) >= 4096:
                self._matches.clear()
            self._matches[topic] = best_items
        if not best_items:
            return
        plain = message if not message.retain else replace(message, retain=False)
        sender_id = sender.client_id if sender is not None else None
        for client_id, options in best_items:
            conn = self._connections.get(client_id)
            if conn is None:
                self._store_offline(client_id, plain, options)
                continue
            if options.no_local and client_id == sender_id:
                continue
            authorizer = conn.authorizer
            if authorizer is not None and not authorizer.can_receive(topic):
                self.stats.denied_receives += 1
                continue
            qos = plain.qos if plain.qos <= options.qos else QoS(options.qos)
            out = plain
            if qos != plain.qos:
                out = replace(plain, qos=qos)
            if options.retain_as_published and message.retain:
                out = replace(out, retain=True)
            if conn.deliver(out):
                self.stats.deliveries += 1

    def _notify_observers(self, message: Publish, sender: BrokerConnection | None) -> None:
        for observer in self.observers:
            try:
                observer(message, sender)
            except Exception:  # an observer's bug must not stop routing
                logger.exception("message observer %r failed on %r", observer, message.topic)

    def _store_offline(
        self, client_id: str, message: Publish, options: SubscriptionOptions
    ) -> None:
        session = self._sessions.get(client_id)
        if session is None or session.offline_since is None:
            return
        if message.qos == QoS.AT_LEAST_ONCE and options.qos == 1:
            session.enqueue(message, self.limits.max_queued_messages_per_session)

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish as the service itself (events, service replies): no policy check on send."""
        self.route(Publish(topic=topic, payload=payload, qos=QoS(qos), retain=retain), None)
        self.flush()

    # ------------------------------------------------------------------ output batching

    def mark_dirty(self, conn: BrokerConnection) -> None:
        """``conn`` has bytes to send; they go out at the next :meth:`flush`."""
        self._dirty[conn] = None

    def flush(self) -> None:
        """Send what every touched connection has queued (one write per connection)."""
        while self._dirty:
            dirty = self._dirty
            self._dirty = {}
            for conn in dirty:
                conn.flush()
