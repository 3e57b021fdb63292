"""In-memory harness: real ClientSessions talking to the real Broker, bytes moved by hand."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet_sim.clock import ManualClock
from fleet_sim.emulator.broker.access import AllowAll, Authorizer, Principal
from fleet_sim.emulator.broker.broker import Broker
from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.emulator.config import BrokerLimits, PublishDenial, SubscribeDenial
from fleet_sim.mqtt import events as ev
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, QoS, Subscription, Will


class FakeLink:
    """The gateway side of one connection: collects bytes, remembers a close."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.closed = False
        self.backlog_bytes = 0

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.pending.append(data)

    def close(self) -> None:
        self.closed = True

    def backlog(self) -> int:
        return self.backlog_bytes

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data


@dataclass
class Rules:
    """A tiny authorizer for tests: sets of denied topics/filters, or a deny-connect flag."""

    connect: bool = True
    deny_publish: set[str] = field(default_factory=set)
    deny_subscribe: set[str] = field(default_factory=set)
    deny_receive: set[str] = field(default_factory=set)
    deny_retain: set[str] = field(default_factory=set)

    def can_connect(self) -> bool:
        return self.connect

    def can_publish(self, topic: str) -> bool:
        return topic not in self.deny_publish

    def can_retain_publish(self, topic: str) -> bool:
        return topic not in self.deny_retain

    def can_subscribe(self, topic_filter: str) -> bool:
        return topic_filter not in self.deny_subscribe

    def can_receive(self, topic: str) -> bool:
        return topic not in self.deny_receive


class RulesAccess:
    """Per-client-id authorizers; AllowAll for everyone not listed."""

    def __init__(self) -> None:
        self.rules: dict[str, Rules] = {}

    def authorizer(
        self,
        principal: Principal,
        *,
        client_id: str,
        source_ip: str,
        persistent: bool,
        will_topic: str | None,
    ) -> Authorizer:
        return self.rules.get(client_id) or AllowAll()


class Device:
    """One client session wired to one broker connection."""

    def __init__(
        self, world: World, session: ClientSession, conn: BrokerConnection, link: FakeLink
    ):
        self.world = world
        self.session = session
        self.conn = conn
        self.link = link
        self.events: list[ev.Event] = []
        self.quiet = False  # True: the client's own timers (pings) never run

    def pump(self) -> None:
        self.world.pump()

    def drain(self) -> bool:
        """Move bytes both ways once; True if anything moved."""
        now = self.world.clock.now()
        moved = False
        out = self.session.data_to_send()
        if out and not self.conn.closed:
            self.conn.data_received(out)
            moved = True
        data = self.link.take()
        if data:
            self.session.receive_data(data, now)
            moved = True
        if self.link.closed and not self.session_closed:
            self.session.connection_lost(now)
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
            moved = True
        return moved

    @property
    def session_closed(self) -> bool:
        return self.session.state.value == "closed"

    def of(self, kind: type[ev.Event]) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def messages(self) -> list[ev.MessageReceived]:
        return [e for e in self.events if isinstance(e, ev.MessageReceived)]

    def topics(self) -> list[str]:
        return [m.publish.topic for m in self.messages()]

    def publish(
        self, topic: str, payload: bytes = b"x", *, qos: int = 0, retain: bool = False
    ) -> int | None:
        pid = self.session.publish(
            topic, payload, qos=qos, retain=retain, now=self.world.clock.now()
        )
        self.pump()
        return pid

    def subscribe(self, *filters: str, qos: int = 1) -> tuple[int, ...]:
        pid = self.session.subscribe(
            [Subscription(topic_filter=f, qos=QoS(qos)) for f in filters],
            now=self.world.clock.now(),
        )
        self.pump()
        acks = [e for e in self.events if isinstance(e, ev.Subscribed) and e.packet_id == pid]
        return acks[-1].reason_codes if acks else ()

    def disconnect(self) -> None:
        self.session.disconnect(now=self.world.clock.now())
        self.pump()

    def drop(self) -> None:
        """The TCP connection dies under both sides."""
        self.conn.link_lost()
        self.session.connection_lost(self.world.clock.now())
        self.pump()


class World:
    """A broker with a manual clock and any number of devices."""

    def __init__(self, *, limits: BrokerLimits | None = None, **kwargs: object) -> None:
        self.clock = ManualClock(start=1000.0)
        self.access = RulesAccess()
        ids = itertools.count(1)
        self.broker = Broker(
            access=self.access,
            clock=self.clock,
            new_session_id=lambda: f"session-{next(ids)}",
            limits=limits if limits is not None else BrokerLimits(),
            subscribe_denial=kwargs.get("subscribe_denial", SubscribeDenial.SUBACK_FAILURE),  # type: ignore[arg-type]
            publish_denial=kwargs.get("publish_denial", PublishDenial.DROP),  # type: ignore[arg-type]
        )
        self.devices: list[Device] = []

    def device(
        self,
        client_id: str,
        *,
        version: ProtocolVersion = ProtocolVersion.MQTT_3_1_1,
        clean: bool = True,
        keep_alive: int = 60,
        will: Will | None = None,
        principal: Principal | None = None,
        connect: bool = True,
        **session_kwargs: object,
    ) -> Device:
        link = FakeLink()
        conn = self.broker.attach(
            link, principal or Principal(f"cert-{client_id}"), source_ip="127.0.0.1"
        )
        session = ClientSession(
            client_id,
            version=version,
            keep_alive=keep_alive,
            clean_start=clean,
            will=will,
            **session_kwargs,  # type: ignore[arg-type]
        )
        device = Device(self, session, conn, link)
        self.devices.append(device)
        if connect:
            session.connect(self.clock.now())
            self.pump()
        return device

    def pump(self) -> None:
        for _ in range(50):
            moved = [device.drain() for device in list(self.devices)]
            if not any(moved):
                return

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move time forward, firing every connection's timers and the clients' too."""
        target = self.clock.now() + seconds
        while self.clock.now() < target:
            self.clock.advance(min(step, target - self.clock.now()))
            now = self.clock.now()
            for device in self.devices:
                deadline = device.conn.next_deadline()
                if deadline is not None and deadline <= now and not device.conn.closed:
                    device.conn.timer_fired()
                client_deadline = device.session.next_deadline()
                if client_deadline is not None and client_deadline <= now and not device.quiet:
                    device.session.handle_timer(now)
            self.pump()


def event_payloads(device: Device, prefix: str) -> list[dict[str, object]]:
    """JSON payloads of messages a device received on topics starting with ``prefix``."""
    return [
        json.loads(m.publish.payload)
        for m in device.messages()
        if m.publish.topic.startswith(prefix)
    ]


Check = Callable[[Device], bool]
