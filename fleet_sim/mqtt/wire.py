"""MQTT wire primitives: the data representations of MQTT 3.1.1 §1.5 and MQTT 5 §1.5.

Encoders take a value and return ``bytes``; they raise :class:`LocalProtocolError` for values
MQTT cannot carry. Readers take ``(buf, pos, end, what)`` and return ``(value, new_pos)``;
``end`` is the end of the packet being read, so running past it means the packet is
malformed, never "need more data" (the codec only hands complete packets to readers). They
raise :class:`RemoteProtocolError` whose message starts with ``what`` (e.g.
``"PUBLISH: topic name"``). Only :func:`read_remaining_length` reads an incomplete stream
and returns ``None`` when it needs more bytes.

``buf`` is ``bytes`` or ``bytearray`` (the codec copies memoryviews first).
"""

from __future__ import annotations

import struct
from typing import Final

from fleet_sim.errors import LocalProtocolError, RemoteProtocolError

#: Any buffer the readers accept.
Buffer = bytes | bytearray

#: The largest value a variable byte integer can hold (four bytes, §1.5.5).
MAX_VARIABLE_BYTE_INTEGER: Final = 268_435_455

MALFORMED_PACKET: Final = 0x81
PROTOCOL_ERROR: Final = 0x82

U16: Final = struct.Struct("!H")
U32: Final = struct.Struct("!I")
#: A fixed header whose remaining length fits in one byte.
HEADER2: Final = struct.Struct("!BB")

_ONE_BYTE: Final = tuple(bytes((i,)) for i in range(128))


def malformed(message: str) -> RemoteProtocolError:
    """Return the error for a Malformed Packet (reason code 0x81)."""
    return RemoteProtocolError(message, reason_code=MALFORMED_PACKET)


def protocol_error(message: str) -> RemoteProtocolError:
    """Return the error for a Protocol Error (reason code 0x82)."""
    return RemoteProtocolError(message, reason_code=PROTOCOL_ERROR)


# --------------------------------------------------------------------------- encoding


def encode_vbi(value: int) -> bytes:
    """Encode a variable byte integer (§1.5.5) in the minimum number of bytes.

    Raises:
        LocalProtocolError: the value is negative or above 268,435,455.
    """
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    if not 0 <= value <= MAX_VARIABLE_BYTE_INTEGER:
        raise LocalProtocolError(
            f"variable byte integer {value} is outside 0..{MAX_VARIABLE_BYTE_INTEGER}"
        )
    out = bytearray()
    while True:
        digit = value & 0x7F
        value >>= 7
        if value:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def encode_u16(value: int, what: str) -> bytes:
    """Encode a two-byte integer; ``what`` names the field in the error message."""
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{what} must be in 0..65535, got {value}")
    return U16.pack(value)


def encode_u32(value: int, what: str) -> bytes:
    """Encode a four-byte integer; ``what`` names the field in the error message."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{what} must be in 0..4294967295, got {value}")
    return U32.pack(value)


def encode_utf8(text: str, what: str) -> bytes:
    """Return ``text`` as UTF-8 after checking MQTT's rules, without the length prefix.

    Raises:
        LocalProtocolError: lone surrogates, U+0000, or more than 65,535 bytes.
    """
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} contains a lone surrogate (not valid UTF-8)") from None
    if b"\x00" in raw:
        raise LocalProtocolError(f"{what} must not contain U+0000")
    if len(raw) > 0xFFFF:
        raise LocalProtocolError(f"{what} is {len(raw)} bytes long, the maximum is 65535")
    return raw


def encode_string(text: str, what: str) -> bytes:
    """Encode a UTF-8 encoded string (§1.5.4): two-byte length, then the UTF-8 bytes."""
    raw = encode_utf8(text, what)
    return U16.pack(len(raw)) + raw


def encode_binary(data: bytes, what: str) -> bytes:
    """Encode binary data (§1.5.6): two-byte length, then the bytes."""
    if len(data) > 0xFFFF:
        raise LocalProtocolError(f"{what} is {len(data)} bytes long, the maximum is 65535")
    return U16.pack(len(data)) + bytes(data)


def frame(first_byte: int, body: bytes) -> bytes:
    """Prefix ``body`` with a fixed header (first byte and remaining length)."""
    size = len(body)
    if size < 128:
        return HEADER2.pack(first_byte, size) + body
    if size > MAX_VARIABLE_BYTE_INTEGER:
        raise LocalProtocolError(
            f"packet body of {size} bytes exceeds the maximum remaining length "
            f"{MAX_VARIABLE_BYTE_INTEGER}"
        )
    return bytes((first_byte,)) + encode_vbi(size) + body


# --------------------------------------------------------------------------- decoding


def _read_vbi_or_none(buf: Buffer, pos: int, stop: int, what: str) -> tuple[int, int] | None:
    """Read a variable byte integer from ``buf[pos:stop]``; ``None`` if it runs past ``stop``."""
    value = 0
    shift = 0
    for index in range(pos, min(pos + 4, stop)):
        byte = buf[index]
        value |= (byte & 0x7F) << shift
        if byte < 128:
            if byte == 0 and index > pos:
                raise malformed(f"{what} is not encoded in the minimum number of bytes")
            return value, index + 1
        shift += 7
    if stop >= pos + 4:
        raise malformed(f"{what} uses more than 4 bytes")
    return None


def read_remaining_length(buf: Buffer, pos: int, size: int) -> tuple[int, int] | None:
    """Read the remaining length that starts at ``buf[pos]`` in a stream of ``size`` bytes.

    Returns:
        ``(remaining_length, position_after_it)``, or ``None`` when more bytes are needed.

    Raises:
        RemoteProtocolError: more than four bytes, or not in the minimum number of bytes.
    """
    return _read_vbi_or_none(buf, pos, size, "remaining length")


def read_vbi(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a variable byte integer that must lie within ``buf[pos:end]``."""
    result = _read_vbi_or_none(buf, pos, end, what)
    if result is None:
        raise malformed(f"{what} extends past the end of the packet")
    return result


def read_u8(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read one byte."""
    if pos >= end:
        raise malformed(f"{what} is missing (the packet ends early)")
    return buf[pos], pos + 1


def read_u16(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a two-byte big-endian integer."""
    if pos + 2 > end:
        raise malformed(f"{what} extends past the end of the packet")
    return (buf[pos] << 8) | buf[pos + 1], pos + 2


def read_u32(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a four-byte big-endian integer."""
    if pos + 4 > end:
        raise malformed(f"{what} extends past the end of the packet")
    return U32.unpack_from(buf, pos)[0], pos + 4


def read_binary(buf: Buffer, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """Read binary data (two-byte length, then the bytes)."""
    if pos + 2 > end:
        raise malformed(f"{what} length extends past the end of the packet")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise malformed(f"{what} extends past the end of the packet")
    return bytes(buf[pos + 2 : stop]), stop


def read_string(buf: Buffer, pos: int, end: int, what: str) -> tuple[str, int]:
    """Read a UTF-8 encoded string: well-formed UTF-8 (no surrogates) and no U+0000."""
    if pos + 2 > end:
        raise malformed(f"{what} length extends past the end of the packet")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise malformed(f"{what} extends past the end of the packet")
    return decode_utf8(buf, pos + 2, stop, what), stop


def decode_utf8(buf: Buffer, start: int, stop: int, what: str) -> str:
    """Decode ``buf[start:stop]`` as an MQTT UTF-8 string (no length prefix)."""
    try:
        text = buf[start:stop].decode()
    except UnicodeDecodeError:
        raise malformed(f"{what} is not valid UTF-8") from None
    if "\x00" in text:
        raise malformed(f"{what} contains U+0000")
    return text
