"""Hand-encoded MQTT 5 packets for the benchmark's minimal raw asyncio client.

Only what the raw client sends and reads: CONNECT (clean start, no properties), PUBLISH QoS 1
with a fixed topic and payload, DISCONNECT, and counting PUBACKs in a byte stream. Deliberately
not :mod:`fleet_sim.mqtt`: the raw client is the baseline any codec is measured against.
"""

from __future__ import annotations

DISCONNECT = b"\xe0\x00"
_CONNACK = 0x20
_PUBACK = 0x40


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        digit, value = value % 128, value // 128
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str, keep_alive_s: int = 60) -> bytes:
    """MQTT 5 CONNECT: clean start, no properties, no will, no credentials."""
    body = (
        _string("MQTT")
        + b"\x05\x02"
        + keep_alive_s.to_bytes(2, "big")
        + b"\x00"  # properties
        + _string(client_id)
    )
    return b"\x10" + _varint(len(body)) + body


def connack_ok(packet: bytes) -> bool:
    """Whether a whole CONNACK packet (fixed header included) says success."""
    return len(packet) >= 4 and packet[0] == _CONNACK and packet[3] == 0


class PublishEncoder:
    """QoS 1 PUBLISH packets of one topic and payload, by packet id (1…65535, wrapping)."""

    __slots__ = ("_next", "_prefix", "_suffix")

    def __init__(self, topic: str, payload: bytes) -> None:
        topic_bytes = _string(topic)
        remaining = len(topic_bytes) + 2 + 1 + len(payload)
        self._prefix = b"\x32" + _varint(remaining) + topic_bytes
        self._suffix = b"\x00" + payload  # no properties, then the payload
        self._next = 1

    def batch(self, count: int) -> bytes:
        """``count`` consecutive PUBLISH packets in one buffer."""
        parts = []
        packet_id = self._next
        prefix, suffix = self._prefix, self._suffix
        for _ in range(count):
            parts.append(prefix + packet_id.to_bytes(2, "big") + suffix)
            packet_id = packet_id + 1 if packet_id < 0xFFFF else 1
        self._next = packet_id
        return b"".join(parts)


def count_pubacks(buffer: bytearray) -> int:
    """Count and remove the whole packets at the front of ``buffer``; return the PUBACKs.

    Raises:
        ValueError: a packet other than PUBACK (the raw client expects nothing else).
    """
    position, count, size = 0, 0, len(buffer)
    while position + 2 <= size:
        first = buffer[position]
        remaining, shift, cursor = 0, 0, position + 1
        while True:
            if cursor >= size:
                del buffer[:position]
                return count
            byte = buffer[cursor]
            cursor += 1
            remaining |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        end = cursor + remaining
        if end > size:
            break
        if first & 0xF0 != _PUBACK:
            raise ValueError(f"raw client: unexpected packet type 0x{first:02x}")
        count += 1
        position = end
    del buffer[:position]
    return count
