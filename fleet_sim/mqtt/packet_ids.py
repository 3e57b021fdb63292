"""Packet identifier allocation (MQTT 3.1.1 §2.3.1, MQTT 5 §2.2.1): 1..65535, none reused."""

from __future__ import annotations

from fleet_sim.errors import LocalProtocolError

#: The largest packet identifier.
MAX_PACKET_ID = 65535


class PacketIdAllocator:
    """Hands out packet ids round-robin, skipping ids still in flight.

    Round-robin (rather than "lowest free") keeps a just-released id out of use for as long as
    possible, so a late or duplicate acknowledgement is less likely to hit a new packet.
    """

    __slots__ = ("_in_use", "_next")

    def __init__(self) -> None:
        self._in_use: set[int] = set()
        self._next = 1

    def __len__(self) -> int:
        """How many ids are in use."""
        return len(self._in_use)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._in_use

    def allocate(self) -> int:
        """Reserve and return a free id.

        Raises:
            LocalProtocolError: all 65535 ids are in use.
        """
        in_use = self._in_use
        if len(in_use) >= MAX_PACKET_ID:
            raise LocalProtocolError("all 65535 packet identifiers are in use")
        candidate = self._next
        while candidate in in_use:
            candidate = candidate % MAX_PACKET_ID + 1
        in_use.add(candidate)
        self._next = candidate % MAX_PACKET_ID + 1
        return candidate

    def release(self, packet_id: int) -> None:
        """Free an id (no-op if it was not in use)."""
        self._in_use.discard(packet_id)

    def clear(self) -> None:
        """Free every id."""
        self._in_use.clear()
