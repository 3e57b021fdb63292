"""One client connection as the broker sees it: its session, identity, policy and quotas.

:class:`BrokerConnection` turns the events of a :class:`~fleet_sim.mqtt.server.ServerSession`
into AWS IoT Core's answers (§6.6, §7 of the reference): which CONNECTs are accepted, which
publishes and subscriptions are refused and how, and why a connection ends. Routing between
connections belongs to :class:`~fleet_sim.emulator.broker.broker.Broker`. No I/O here: bytes go
out through a :class:`ClientLink` the gateway provides.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from fleet_sim.emulator.broker import reserved
from fleet_sim.emulator.broker.access import Authorizer, Principal
from fleet_sim.emulator.broker.lifecycle import DisconnectReason
from fleet_sim.emulator.broker.rate import TokenBucket
from fleet_sim.emulator.broker.sessions import StoredSession, SubscriptionOptions
from fleet_sim.emulator.config import PublishDenial, SubscribeDenial
from fleet_sim.mqtt import events as ev
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    SUBACK_FAILURE,
    Connect,
    Properties,
    ProtocolVersion,
    Publish,
    QoS,
    ReasonCode,
    Subscribe,
    Unsubscribe,
)
from fleet_sim.mqtt.server import ServerSession, ServerState
from fleet_sim.mqtt.topics import aws_topic_limit_error, topic_filter_error, topic_name_error

if TYPE_CHECKING:
    from fleet_sim.emulator.broker.broker import Broker

logger = logging.getLogger(__name__)

#: Outbound bytes queued on a link above which QoS 0 deliveries to it are dropped.
BACKLOG_DROP_QOS0 = 1024 * 1024


class ClientLink(Protocol):
    """The gateway's side of a connection: where the broker's bytes go."""

    def send(self, data: bytes) -> None:
        """Queue bytes for the client."""
        ...

    def close(self) -> None:
        """Flush what was sent and close the connection."""
        ...

    def backlog(self) -> int:
        """Bytes queued for the client and not yet written to the socket."""
        ...


class BrokerConnection:
    """The broker's handling of one client connection."""

    def __init__(
        self,
        broker: Broker,
        link: ClientLink,
        principal: Principal,
        *,
        source_ip: str,
        max_packet_size: int,
    ) -> None:
        self.broker = broker
        self.link = link
        self.principal = principal
        self.source_ip = source_ip
        self.session = ServerSession(
            max_packet_size=max_packet_size,
            aws_keep_alive=True,
            keep_alive_bounds=(broker.limits.min_keep_alive_s, broker.limits.max_keep_alive_s),
            max_inflight=broker.limits.max_inflight_outbound,
        )
        self.client_id = ""
        self.session_id = ""
        self.version_number = 0
        self.version = ProtocolVersion.MQTT_3_1_1
        self.authorizer: Authorizer | None = None
        self.stored: StoredSession | None = None
        self.connected = False
        self.closed = False
        self.will: Publish | None = None
        self._rate: TokenBucket | None = None
        limit = broker.limits.publishes_per_second_per_connection
        if limit is not None:
            self._rate = TokenBucket(limit, now=broker.clock.now())
        self._drain_due: float | None = None
        self._valid_topics: dict[str, None] = {}

    # ------------------------------------------------------------------ driver entry points

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: run them through the session and act on its events."""
        if self.closed:
            return
        self.session.receive_data(data, self.broker.clock.now())
        self._process_events()
        self.broker.mark_dirty(self)
        self.broker.flush()

    def link_lost(self) -> None:
        """The transport closed under us."""
        if self.closed:
            return
        self.session.connection_lost(self.broker.clock.now())
        self._process_events()
        if not self.closed:
            self._end(DisconnectReason.CONNECTION_LOST)
        self.broker.flush()

    def next_deadline(self) -> float | None:
        """When :meth:`timer_fired` should next be called."""
        deadline = self.session.next_deadline()
        if self._drain_due is not None and (deadline is None or self._drain_due < deadline):
            return self._drain_due
        return deadline

    def timer_fired(self) -> None:
        """Run keep-alive checks and drain stored messages at AWS's pace."""
        if self.closed:
            return
        now = self.broker.clock.now()
        self.session.handle_timer(now)
        self._process_events()
        if self._drain_due is not None and now >= self._drain_due and not self.closed:
            self._drain_stored(now)
        self.broker.mark_dirty(self)
        self.broker.flush()

    # ------------------------------------------------------------------ used by the broker

    def deliver(self, message: Publish) -> bool:
        """Send a routed message to this client; False when it was dropped."""
        if self.closed or self.session.state is ServerState.CLOSED:
            # Events of a session that closed in the same batch (PUBLISH then DISCONNECT in
            # one TLS record) may still route to it: nothing can be sent any more.
            return False
        if message.qos == QoS.AT_MOST_ONCE and self.link.backlog() > BACKLOG_DROP_QOS0:
            self.broker.stats.dropped_backpressure += 1
            return False
        if self._rate is not None and not self._rate.take(self.broker.clock.now()):
            self.broker.stats.dropped_rate += 1
            return False
        if self.session.queued >= self.broker.limits.max_queued_messages_per_session:
            # The client's in-flight window is full and the queue behind it too.
            self.broker.stats.dropped_backpressure += 1
            return False
        self.session.send_publish(
            message.topic,
            message.payload,
            qos=message.qos,
            retain=message.retain,
            properties=message.properties,
        )
        self.broker.mark_dirty(self)
        return True

    def kick(self, reason: DisconnectReason, reason_code: int) -> None:
        """Disconnect this client from the server side (takeover, revoked certificate …)."""
        if self.closed:
            return
        if self.connected:
            self.session.disconnect(reason_code, now=self.broker.clock.now())
        self._end(reason)

    def flush(self) -> None:
        """Hand queued bytes to the link (and close it once the session is over)."""
        data = self.session.data_to_send()
        if data:
            self.link.send(data)

    # ------------------------------------------------------------------ event handling

    def _process_events(self) -> None:
        session = self.session
        while not self.closed:
            event = session.next_event()
            if event is None:
                return
            try:
                self._handle(event)
            except Exception:  # one client's problem must never take the broker down
                logger.exception("error handling %r for client %r", event, self.client_id)
                self._end(DisconnectReason.SERVER_ERROR)

    def _handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.PublishReceived):
            self._on_publish(event.publish)
        elif isinstance(event, ev.DeliveryAcknowledged):
            return
        elif isinstance(event, ev.ConnectReceived):
            self._on_connect(event.connect)
        elif isinstance(event, ev.SubscribeReceived):
            self._on_subscribe(event.subscribe)
        elif isinstance(event, ev.UnsubscribeReceived):
            self._on_unsubscribe(event.unsubscribe)
        elif isinstance(event, ev.ClientDisconnected):
            if event.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
                self._end(DisconnectReason.CLIENT_INITIATED_DISCONNECT, send_will=True)
            else:
                expiry = event.properties.session_expiry_interval
                if expiry is not None and self.stored is not None and self.stored.expiry_s > 0:
                    self.stored.expiry_s = min(expiry, self.broker.limits.max_session_expiry_s)
                self._end(DisconnectReason.CLIENT_INITIATED_DISCONNECT)
        elif isinstance(event, ev.KeepAliveExpired):
            self._end(DisconnectReason.MQTT_KEEP_ALIVE_TIMEOUT)
        elif isinstance(event, ev.ProtocolViolation):
            logger.debug("client %r protocol violation: %s", self.client_id, event.message)
            self._end(DisconnectReason.CLIENT_ERROR)
        elif isinstance(event, ev.ConnectionClosed):
            self._end(DisconnectReason.CONNECTION_LOST)

    # -- CONNECT

    def _refuse(self, reason_code: int, *, failure: str | None) -> None:
        now = self.broker.clock.now()
        mqtt5 = self.version == ProtocolVersion.MQTT_5
        # AWS closes MQTT 3.1.1 refusals without a CONNACK (§6.6); MQTT 5 gets the reason code.
        self.session.refuse(reason_code, send_connack=mqtt5, now=now)
        if failure is not None:
            self.broker.lifecycle.connect_failed(self, failure)
        self.closed = True
        self.broker.connection_closed(self)
        self.flush()
        self.link.close()

    def _on_connect(self, connect: Connect) -> None:
        broker = self.broker
        limits = broker.limits
        self.version = connect.protocol_version
        self.client_id = connect.client_id
        self.session_id = broker.new_session_id()
        client_id = connect.client_id
        if (
            not client_id
            or len(client_id.encode()) > 128
            or client_id.startswith("$")
            or topic_name_error(client_id) is not None
        ):
            self._refuse(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, failure=None)
            return
        if not broker.admit_connect(client_id):
            broker.stats.throttled_connects += 1
            # AWS answers a throttled MQTT 5 CONNECT with 0x97 Quota exceeded (§6.6).
            self._refuse(ReasonCode.QUOTA_EXCEEDED, failure=None)
            return
        if not self.principal.active:
            self._refuse(ReasonCode.NOT_AUTHORIZED, failure="AUTHORIZATION_FAILED")
            return
        will = connect.will
        persistent = not connect.clean_start or (
            connect.protocol_version == ProtocolVersion.MQTT_5
            and bool(connect.properties.session_expiry_interval)
        )
        authorizer = broker.access.authorizer(
            self.principal,
            client_id=client_id,
            source_ip=self.source_ip,
            persistent=persistent,
            will_topic=will.topic if will is not None else None,
        )
        if not authorizer.can_connect():
            self._refuse(ReasonCode.NOT_AUTHORIZED, failure="AUTHORIZATION_FAILED")
            return
        if will is not None and (
            not reserved.may_publish(will.topic)
            or not authorizer.can_publish(will.topic)
            or (will.retain and not authorizer.can_retain_publish(will.topic))
        ):
            self._refuse(ReasonCode.NOT_AUTHORIZED, failure="AUTHORIZATION_FAILED")
            return
        if (
            will is not None
            and limits.max_payload_bytes is not None
            and len(will.payload) > limits.max_payload_bytes
        ):
            self._refuse(ReasonCode.PACKET_TOO_LARGE, failure=None)
            return
        self.authorizer = authorizer
        if will is not None:
            self.will = Publish(
                topic=will.topic, payload=will.payload, qos=will.qos, retain=will.retain
            )
        # Session expiry: MQTT 3.1.1 persistent sessions get the account's expiry (1 h);
        # MQTT 5 asks for its own, capped at the account maximum (reported back if capped).
        connack_properties = NO_PROPERTIES
        if connect.protocol_version == ProtocolVersion.MQTT_5:
            asked = connect.properties.session_expiry_interval or 0
            expiry = min(asked, limits.max_session_expiry_s)
            connack_properties = Properties(
                maximum_qos=1,
                retain_available=1,
                shared_subscription_available=0,
                subscription_identifier_available=0,
                wildcard_subscription_available=1,
                topic_alias_maximum=8,  # AWS IoT's default (§7.1); inbound aliases resolved
                receive_maximum=100,  # unacknowledged inbound QoS 1 publishes per client
                maximum_packet_size=limits.max_payload_bytes + 64 * 1024
                if limits.max_payload_bytes is not None
                else None,
                session_expiry_interval=expiry if expiry != asked else None,
            )
        else:
            expiry = limits.session_expiry_s if not connect.clean_start else 0
        broker.take_over(self)
        self.stored, session_present = broker.open_session(
            client_id, clean=connect.clean_start, expiry_s=float(expiry)
        )
        self.version_number = broker.lifecycle.next_version(client_id)
        self.session.accept(
            session_present=session_present,
            properties=connack_properties,
            now=broker.clock.now(),
        )
        self.connected = True
        broker.lifecycle.connected(self)
        if self.stored.queue:
            self._drain_stored(broker.clock.now())

    # -- PUBLISH

    def _on_publish(self, message: Publish) -> None:
        broker = self.broker
        limits = broker.limits
        mqtt5 = self.version == ProtocolVersion.MQTT_5
        if message.qos == QoS.EXACTLY_ONCE:
            # AWS IoT has no QoS 2: no PUBACK (3.1.1); MQTT 5 gets DISCONNECT 0x9B (§6.6).
            if mqtt5:
                self.kick(DisconnectReason.CLIENT_ERROR, ReasonCode.QOS_NOT_SUPPORTED)
            return
        if limits.max_payload_bytes is not None and len(message.payload) > limits.max_payload_bytes:
            self.kick(DisconnectReason.CLIENT_ERROR, ReasonCode.PACKET_TOO_LARGE)
            return
        topic = message.topic
        valid = self._valid_topics
        problem = (
            None
            if topic in valid
            else topic_name_error(topic)
            or aws_topic_limit_error(
                topic,
                max_bytes=limits.max_topic_bytes or 1 << 30,
                max_slashes=limits.max_topic_slashes
                if limits.max_topic_slashes is not None
                else 1 << 30,
            )
        )
        if problem is not None:
            self._reject_publish(message, ReasonCode.TOPIC_NAME_INVALID)
            return
        if topic not in valid:
            if len(valid) >= 64:
                valid.clear()
            valid[topic] = None
        assert self.authorizer is not None
        allowed = (
            reserved.may_publish(topic)
            and not (message.retain and reserved.is_reserved(topic))
            and self.authorizer.can_publish(topic)
            and (not message.retain or self.authorizer.can_retain_publish(topic))
        )
        if not allowed:
            broker.stats.denied_publishes += 1
            self._deny_publish(message)
            return
        if self._rate is not None and not self._rate.take(broker.clock.now()):
            # Over 100 publishes/s per connection: AWS discards the excess (§7.1).
            broker.stats.dropped_rate += 1
            if message.qos == QoS.AT_LEAST_ONCE and mqtt5:
                assert message.packet_id is not None
                self.session.ack_publish(message.packet_id, ReasonCode.QUOTA_EXCEEDED)
            return
        if message.qos == QoS.AT_LEAST_ONCE:
            assert message.packet_id is not None
            self.session.ack_publish(message.packet_id, 0)
        broker.stats.publishes_in += 1
        if message.packet_id is not None or message.dup:
            message = Publish(
                topic=topic,
                payload=message.payload,
                qos=message.qos,
                retain=message.retain,
                properties=message.properties,
            )
        broker.route(message, sender=self)

    def _reject_publish(self, message: Publish, reason_code: int) -> None:
        if self.version == ProtocolVersion.MQTT_5 and message.qos == QoS.AT_LEAST_ONCE:
            assert message.packet_id is not None
            self.session.ack_publish(message.packet_id, reason_code)
        elif self.version == ProtocolVersion.MQTT_5:
            return
        else:
            self.kick(DisconnectReason.CLIENT_ERROR, reason_code)

    def _deny_publish(self, message: Publish) -> None:
        if self.version != ProtocolVersion.MQTT_5:
            # MQTT 3.1.1: AWS closes the connection on an unauthorized publish (§6.6).
            self.kick(DisconnectReason.AUTH_ERROR, ReasonCode.NOT_AUTHORIZED)
        elif message.qos == QoS.AT_LEAST_ONCE:
            assert message.packet_id is not None
            self.session.ack_publish(message.packet_id, ReasonCode.NOT_AUTHORIZED)
        elif self.broker.publish_denial is PublishDenial.DISCONNECT:
            self.kick(DisconnectReason.AUTH_ERROR, ReasonCode.NOT_AUTHORIZED)

    # -- SUBSCRIBE / UNSUBSCRIBE

    def _on_subscribe(self, subscribe: Subscribe) -> None:
        broker = self.broker
        limits = broker.limits
        assert self.authorizer is not None
        assert self.stored is not None
        mqtt5 = self.version == ProtocolVersion.MQTT_5
        if not mqtt5 and any(s.qos == QoS.EXACTLY_ONCE for s in subscribe.subscriptions):
            # AWS sends no SUBACK when QoS 2 is requested (§6.6); nothing is subscribed.
            return
        denied = ReasonCode.NOT_AUTHORIZED if mqtt5 else SUBACK_FAILURE
        quota = ReasonCode.QUOTA_EXCEEDED if mqtt5 else SUBACK_FAILURE
        invalid = ReasonCode.TOPIC_FILTER_INVALID if mqtt5 else SUBACK_FAILURE
        codes: list[int] = []
        granted: list[tuple[str, SubscriptionOptions, int]] = []
        disconnect = False
        subscriptions = self.stored.subscriptions
        for index, sub in enumerate(subscribe.subscriptions):
            topic_filter = sub.topic_filter
            if (
                limits.max_filters_per_subscribe is not None
                and index >= limits.max_filters_per_subscribe
            ):
                codes.append(quota)
                continue
            problem = topic_filter_error(topic_filter) or aws_topic_limit_error(
                topic_filter,
                max_bytes=limits.max_topic_bytes or 1 << 30,
                max_slashes=(
                    limits.max_topic_slashes if limits.max_topic_slashes is not None else 1 << 30
                ),
            )
            if problem is not None or topic_filter.startswith("$share/"):
                codes.append(
                    ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
                    if mqtt5 and problem is None
                    else invalid
                )
                continue
            if not reserved.may_subscribe(topic_filter) or not self.authorizer.can_subscribe(
                topic_filter
            ):
                broker.stats.denied_subscribes += 1
                codes.append(denied)
                if not mqtt5 and broker.subscribe_denial is SubscribeDenial.DISCONNECT:
                    disconnect = True
                continue
            if (
                limits.max_subscriptions_per_connection is not None
                and topic_filter not in subscriptions
                and len(subscriptions) + len(granted) >= limits.max_subscriptions_per_connection
            ):
                codes.append(quota)
                continue
            qos = min(int(sub.qos), 1)
            options = SubscriptionOptions(
                qos=qos, no_local=sub.no_local, retain_as_published=sub.retain_as_published
            )
            codes.append(qos)
            granted.append((topic_filter, options, sub.retain_handling))
        if disconnect:
            self.kick(DisconnectReason.AUTH_ERROR, ReasonCode.NOT_AUTHORIZED)
            return
        for topic_filter, options, _ in granted:
            broker.subscribe(self, topic_filter, options)
        self.session.ack_subscribe(subscribe.packet_id, tuple(codes))
        if granted:
            broker.lifecycle.subscription_change(self, "subscribed", [g[0] for g in granted])
        for topic_filter, options, retain_handling in granted:
            if retain_handling != 2:
                broker.send_retained(self, topic_filter, options)

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        assert self.stored is not None
        codes: list[int] = []
        removed: list[str] = []
        for topic_filter in unsubscribe.topic_filters:
            if self.broker.unsubscribe(self, topic_filter):
                codes.append(ReasonCode.SUCCESS)
                removed.append(topic_filter)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        self.session.ack_unsubscribe(
            unsubscribe.packet_id,
            tuple(codes) if self.version == ProtocolVersion.MQTT_5 else (),
        )
        if removed:
            self.broker.lifecycle.subscription_change(self, "unsubscribed", removed)

    # -- stored messages and the end

    def _drain_stored(self, now: float) -> None:
        assert self.stored is not None
        queue = self.stored.queue
        rate = self.broker.limits.queued_drain_per_second
        budget = len(queue) if rate is None else max(1, int(rate))
        while queue and budget > 0:
            self.session.send_publish(
                queue[0].topic, queue[0].payload, qos=queue[0].qos, retain=False
            )
            queue.popleft()
            budget -= 1
        self._drain_due = now + 1.0 if queue else None
        self.broker.mark_dirty(self)

    def _end(self, reason: DisconnectReason, *, send_will: bool | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        was_connected = self.connected
        self.connected = False
        broker = self.broker
        broker.connection_closed(self)
        if was_connected:
            broker.lifecycle.disconnected(self, reason)
            will = self.will
            if will is not None and (reason.sends_will if send_will is None else send_will):
                broker.route(will, sender=None)
        self.flush()
        self.link.close()
