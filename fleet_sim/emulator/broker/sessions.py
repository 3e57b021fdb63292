"""Broker-side session state that outlives a connection (§7.3 of the reference).

A session holds a client's subscriptions and, while the client is offline with a persistent
session, the QoS 1 messages published to those subscriptions. It ends when its expiry passes
after a disconnect, or when the client connects with a clean session.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from fleet_sim.mqtt.packets import Publish


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """What a client asked for on one filter (QoS already capped to what the broker grants)."""

    qos: int
    no_local: bool = False
    retain_as_published: bool = False


@dataclass(slots=True)
class StoredSession:
    """One client id's session: subscriptions, offline queue and expiry."""

    client_id: str
    expiry_s: float = 0.0
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    queue: deque[Publish] = field(default_factory=deque)
    offline_since: float | None = None
    dropped: int = 0

    def expired(self, now: float) -> bool:
        """Whether an offline session has outlived its expiry."""
        return self.offline_since is not None and now - self.offline_since >= self.expiry_s

    def enqueue(self, message: Publish, limit: int) -> bool:
        """Store a QoS 1 message for later delivery; False (and counted) when the queue is full."""
        if len(self.queue) >= limit:
            self.dropped += 1
            return False
        self.queue.append(message)
        return True
