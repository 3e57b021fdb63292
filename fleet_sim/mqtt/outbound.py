"""The outbound QoS 1 window shared by the client and server sessions.

A sender may have at most ``quota`` QoS 1 PUBLISH packets unacknowledged (MQTT 5 Receive
Maximum, AWS IoT's 100 in-flight messages). :class:`OutboundWindow` holds those in flight and
queues the rest in order until PUBACKs free slots. Packet ids are reserved when a publish is
accepted, queued or not, so the caller can correlate the PUBACK at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from fleet_sim.mqtt.packet_ids import PacketIdAllocator
from fleet_sim.mqtt.packets import Publish


class OutboundWindow:
    """QoS 1 publishes in flight, and those waiting for room in the peer's receive window.

    Args:
        ids: the connection's packet id allocator (ids are released here on acknowledgement).
        quota: how many may be in flight at once.
    """

    __slots__ = ("ids", "inflight", "queued", "quota")

    def __init__(self, ids: PacketIdAllocator, quota: int = 65535) -> None:
        self.ids = ids
        self.quota = quota
        self.inflight: dict[int, Publish] = {}
        self.queued: deque[Publish] = deque()

    def __len__(self) -> int:
        """In flight plus queued."""
        return len(self.inflight) + len(self.queued)

    def has_room(self) -> bool:
        """Whether one more publish may go out now."""
        return len(self.inflight) < self.quota

    @property
    def packet_ids(self) -> tuple[int, ...]:
        """Ids in flight (oldest first), then queued ones."""
        return (*self.inflight, *(publish.packet_id or 0 for publish in self.queued))

    def sent(self, publish: Publish) -> None:
        """Record a publish that went out."""
        assert publish.packet_id is not None
        self.inflight[publish.packet_id] = publish

    def wait(self, publish: Publish) -> None:
        """Queue a publish until there is room."""
        self.queued.append(publish)

    def acknowledge(self, packet_id: int) -> bool:
        """Remove an in-flight publish and free its id.

        Returns:
            ``False`` if nothing with that id was in flight.
        """
        if self.inflight.pop(packet_id, None) is None:
            return False
        self.ids.release(packet_id)
        return True

    def discard(self, packet_id: int) -> None:
        """Forget an in-flight publish that could not be sent, freeing its id."""
        self.inflight.pop(packet_id, None)
        self.ids.release(packet_id)

    def ready(self) -> Iterator[Publish]:
        """Move queued publishes into flight while there is room, yielding each to send."""
        queued = self.queued
        inflight = self.inflight
        while queued and len(inflight) < self.quota:
            publish = queued.popleft()
            assert publish.packet_id is not None
            inflight[publish.packet_id] = publish
            yield publish

    def clear(self) -> tuple[int, ...]:
        """Drop everything, freeing the ids.

        Returns:
            The dropped ids.
        """
        dropped = self.packet_ids
        for packet_id in dropped:
            self.ids.release(packet_id)
        self.inflight.clear()
        self.queued.clear()
        return dropped
