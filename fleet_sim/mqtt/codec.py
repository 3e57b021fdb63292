"""Encode and decode MQTT 3.1.1 and MQTT 5 control packets (sans-IO): the codec's public API.

* :func:`encode` turns a packet into bytes for a connection's protocol version and raises
  :class:`LocalProtocolError` for anything that version cannot carry.
* :func:`decode` reads one packet from the start of a buffer: ``(packet, consumed)``, or
  ``None`` when more bytes are needed. Malformed or illegal input raises
  :class:`RemoteProtocolError` (with the most precise MQTT 5 reason code) and nothing else.
* :class:`PacketDecoder` is the stream form for one connection.

This module owns the fixed header (first byte, remaining length, maximum packet size) and the
stream. The per-packet bodies are in :mod:`fleet_sim.mqtt.encoding` and
:mod:`fleet_sim.mqtt.decoding`, the reason codes each packet type may carry in
:mod:`fleet_sim.mqtt.reason_codes`. The decoder checks what the specs ask of a receiver on the
packet level; topic name and filter semantics (wildcard placement, empty topics with aliases)
belong to the topic and session modules. PUBLISH and the PUBACK family take hand-tuned paths
(see ``benchmarks/bench_codec.py``).
"""

from __future__ import annotations

from typing import Final

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError
from fleet_sim.mqtt.decoding import DECODERS
from fleet_sim.mqtt.encoding import ENCODERS, checked_version, encode_publish
from fleet_sim.mqtt.packets import Connect, Packet, PacketType, ProtocolVersion, Publish
from fleet_sim.mqtt.reason_codes import DISCONNECT_REASON_CODES
from fleet_sim.mqtt.wire import (
    MAX_VARIABLE_BYTE_INTEGER,
    Buffer,
    malformed,
    protocol_error,
    read_remaining_length,
)

__all__ = ["DISCONNECT_REASON_CODES", "PacketDecoder", "decode", "encode"]

_MAX_PACKET: Final = MAX_VARIABLE_BYTE_INTEGER
_NAMES: Final = ("RESERVED", *(PacketType(t).name for t in range(1, 16)))
_PACKET_TOO_LARGE: Final = 0x95
# Bound here, not imported: CPython 3.11 compiles ``imported_name.get(x)`` as an attribute
# load that builds a bound method on every call (the name might be a module), which would
# slow :func:`encode` down by a fifth for the acknowledgements.
_encoder_for: Final = ENCODERS.get


def _first_bytes(v5: bool) -> frozenset[int]:
    valid: set[int] = set()
    for ptype in range(1, 16 if v5 else 15):
        if ptype == PacketType.PUBLISH:
            valid.update(
                0x30 | flags for flags in range(16) if (flags & 6) != 6 and flags & 0xE != 8
            )
        else:
            valid.add(ptype << 4 | (2 if ptype in (6, 8, 10) else 0))
    return frozenset(valid)


_FIRST_V4: Final = _first_bytes(False)
_FIRST_V5: Final = _first_bytes(True)


def _first_byte_error(first: int, version: int | None) -> RemoteProtocolError:
    ptype, flags = first >> 4, first & 0x0F
    name = _NAMES[ptype]
    if ptype == 0:
        return malformed("packet type 0 is reserved")
    if version is None and ptype != PacketType.CONNECT:
        return protocol_error(f"expected CONNECT as the first packet, got {name}")
    if ptype == PacketType.AUTH and version == 4:
        return malformed("packet type 15 (AUTH) does not exist in MQTT 3.1.1")
    if ptype == PacketType.PUBLISH:
        if flags & 6 == 6:
            return malformed("PUBLISH: QoS 3 is invalid")
        return malformed("PUBLISH: DUP flag set on a QoS 0 message")
    expected = 2 if ptype in (6, 8, 10) else 0
    return malformed(f"{name}: reserved flags must be {expected:04b}, got {flags:04b}")


def encode(packet: Packet, version: ProtocolVersion) -> bytes:
    """Encode one control packet.

    Args:
        packet: the packet.
        version: the connection's protocol version (a :class:`Connect` uses its own
            ``protocol_version`` instead).

    Raises:
        LocalProtocolError: the packet is invalid or cannot be expressed in ``version``.
    """
    if version == 5:
        v5 = True
    elif version == 4:
        v5 = False
    else:
        v5 = checked_version(version)
    cls = packet.__class__
    if cls is Publish:
        return encode_publish(packet, v5)  # type: ignore[arg-type]
    encoder = _encoder_for(cls)
    if encoder is None:
        raise LocalProtocolError(f"cannot encode {cls.__name__}: not an MQTT packet")
    return encoder(packet, v5)


def _decode_at(
    buf: Buffer, pos: int, size: int, version: ProtocolVersion | None, max_packet_size: int
) -> tuple[Packet, int] | None:
    """Decode the packet starting at ``buf[pos]``; return it and the index just after it."""
    if pos >= size:
        return None
    first = buf[pos]
    if version is None:
        if first != 0x10:
            raise _first_byte_error(first, None)
        v5 = False
    elif version == 5:
        if first not in _FIRST_V5:
            raise _first_byte_error(first, 5)
        v5 = True
    elif version == 4:
        if first not in _FIRST_V4:
            raise _first_byte_error(first, 4)
        v5 = False
    else:
        raise LocalProtocolError(f"unsupported protocol version {version!r} (use 4, 5 or None)")
    if pos + 1 >= size:
        return None
    remaining = buf[pos + 1]
    body = pos + 2
    if remaining > 127:
        if body < size and 0 < buf[body] < 128:  # two bytes, the common case
            remaining = remaining & 0x7F | buf[body] << 7
            body += 1
        else:
            header = read_remaining_length(buf, pos + 1, size)
            if header is None:
                return None
            remaining, body = header
    end = body + remaining
    if end - pos > max_packet_size:
        raise RemoteProtocolError(
            f"{_NAMES[first >> 4]}: packet of {end - pos} bytes exceeds the maximum packet "
            f"size of {max_packet_size} bytes",
            reason_code=_PACKET_TOO_LARGE,
        )
    if end > size:
        return None
    return DECODERS[first >> 4](buf, body, end, first & 0x0F, v5), end


def decode(
    buffer: bytes | bytearray | memoryview,
    version: ProtocolVersion | None,
    *,
    max_packet_size: int = _MAX_PACKET,
) -> tuple[Packet, int] | None:
    """Decode one packet from the start of ``buffer``.

    Args:
        buffer: received bytes; may hold less or more than one packet.
        version: the connection's protocol version, or ``None`` before CONNECT (then only a
            CONNECT is accepted, decoded with its own protocol level).
        max_packet_size: the largest packet (fixed header included) to accept.

    Returns:
        ``(packet, bytes_consumed)``, or ``None`` when ``buffer`` holds an incomplete packet.

    Raises:
        RemoteProtocolError: the bytes are malformed or break a protocol rule; its
            ``reason_code`` is the MQTT 5 reason code to report (0x95 for a packet larger
            than ``max_packet_size``, raised as soon as the fixed header is complete).
    """
    if type(buffer) is memoryview:
        return _decode_view(buffer, version, max_packet_size)
    return _decode_at(buffer, 0, len(buffer), version, max_packet_size)


def _decode_view(
    view: memoryview, version: ProtocolVersion | None, max_packet_size: int
) -> tuple[Packet, int] | None:
    """Decode from a memoryview by copying only the first packet's bytes."""
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    head = bytes(view[:5])  # a fixed header is at most 5 bytes long
    result = _decode_at(head, 0, len(head), version, max_packet_size)
    if result is not None or len(head) < 2:
        return result
    length = read_remaining_length(head, 1, len(head))
    if length is None:
        return None
    end = length[0] + length[1]
    if end > len(view):
        return None
    return _decode_at(bytes(view[:end]), 0, end, version, max_packet_size)


_COMPACT_AT: Final = 16_384


class PacketDecoder:
    """Decode the packets of one connection from arbitrarily chunked bytes.

    Bytes are appended to one ``bytearray``; a read offset advances as packets are decoded,
    and consumed bytes are dropped when the buffer empties or the offset passes both 16 KiB
    and half the buffer, so the work per byte stays constant however the data is chunked.

    After a :class:`RemoteProtocolError` the stream is unusable: close the connection.
    """

    __slots__ = ("_buffer", "_max_packet_size", "_offset", "_version")

    def __init__(
        self, version: ProtocolVersion | None = None, *, max_packet_size: int = _MAX_PACKET
    ) -> None:
        """Create a decoder.

        Args:
            version: the protocol version, or ``None`` until a CONNECT has been decoded.
            max_packet_size: the largest packet to accept (see :func:`decode`).
        """
        self._buffer = bytearray()
        self._offset = 0
        self._version: ProtocolVersion | None = None
        self.version = version
        self._max_packet_size = max_packet_size

    @property
    def version(self) -> ProtocolVersion | None:
        """The protocol version; set from the first CONNECT when it was ``None``."""
        return self._version

    @version.setter
    def version(self, version: ProtocolVersion | None) -> None:
        if version is not None:
            version = (
                ProtocolVersion.MQTT_5 if checked_version(version) else ProtocolVersion.MQTT_3_1_1
            )
        self._version = version

    @property
    def buffered(self) -> int:
        """The number of received bytes not decoded yet."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_packet(self) -> Packet | None:
        """Decode the next complete packet, or return ``None`` when more bytes are needed.

        Raises:
            RemoteProtocolError: the peer sent a malformed or illegal packet.
        """
        buf = self._buffer
        result = _decode_at(buf, self._offset, len(buf), self._version, self._max_packet_size)
        if result is None:
            return None
        packet, end = result
        if end == len(buf):
            buf.clear()
            self._offset = 0
        elif end >= _COMPACT_AT and end * 2 >= len(buf):
            del buf[:end]
            self._offset = 0
        else:
            self._offset = end
        if self._version is None and type(packet) is Connect:
            self._version = packet.protocol_version
        return packet
