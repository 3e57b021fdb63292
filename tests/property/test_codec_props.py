"""Property tests of the MQTT codec: round trips, chunked streams, hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_sim.errors import RemoteProtocolError
from fleet_sim.mqtt.codec import PacketDecoder, decode, encode
from fleet_sim.mqtt.packets import Connect, Packet, ProtocolVersion
from tests.strategies import VERSIONS, connects, packets, versioned_packets

# Example counts are modest so the file runs in a few seconds; raise them locally when
# changing the codec (e.g. HYPOTHESIS_PROFILE or a temporary edit).
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
FEW = settings(max_examples=80, **_COMMON)  # type: ignore[arg-type]
SOME = settings(max_examples=250, **_COMMON)  # type: ignore[arg-type]
MANY = settings(max_examples=500, **_COMMON)  # type: ignore[arg-type]


def _decode_all(decoder: PacketDecoder) -> list[Packet]:
    out = []
    while (packet := decoder.next_packet()) is not None:
        out.append(packet)
    return out


@SOME
@given(versioned_packets())
def test_decode_inverts_encode(version_and_packet: tuple[ProtocolVersion, Packet]) -> None:
    version, packet = version_and_packet
    data = encode(packet, version)
    assert decode(data, version) == (packet, len(data))


@FEW
@given(st.data())
def test_any_chunking_of_a_stream_yields_the_same_packets(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(VERSIONS), label="version")
    known = data.draw(st.booleans(), label="version known up front")
    sent = data.draw(st.lists(packets(version), max_size=6), label="packets")
    if not known:  # a server before CONNECT: the stream must start with one
        sent.insert(0, data.draw(connects(version), label="connect"))
    stream = b"".join(encode(p, version) for p in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    decoder = PacketDecoder(version if known else None)
    received = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        decoder.feed(stream[start:cut])
        start = cut
        received.extend(_decode_all(decoder))
    assert received == sent
    assert decoder.buffered == 0
    assert decoder.version == version


def _check_decodes_or_rejects(data: bytes, version: ProtocolVersion | None) -> None:
    """``data`` decodes (to something that re-encodes), needs more, or is rejected."""
    error: RemoteProtocolError | None = None
    try:
        result = decode(data, version)
    except RemoteProtocolError as caught:
        error = caught
    if error is not None:
        assert str(error)
        assert 0x80 <= error.reason_code <= 0xA2
        return
    if result is None:
        return
    packet, consumed = result
    assert 2 <= consumed <= len(data)
    # anything the decoder accepts, the encoder can write back
    if isinstance(packet, Connect):
        version = packet.protocol_version
    assert version is not None
    again = encode(packet, version)
    assert decode(again, version) == (packet, len(again))


_MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), st.integers(0)),
    min_size=1,
    max_size=3,
)


@SOME
@given(versioned_packets(), _MUTATIONS, st.integers(0, 255))
def test_mutated_encodings_decode_or_raise_remote_protocol_error(
    version_and_packet: tuple[ProtocolVersion, Packet],
    mutations: list[tuple[str, int]],
    byte: int,
) -> None:
    version, packet = version_and_packet
    data = bytearray(encode(packet, version))
    for kind, where in mutations:
        if not data:
            break
        index = where % len(data)
        if kind == "flip":
            data[index] ^= 1 << (where % 8)
        elif kind == "set":
            data[index] = byte
        elif kind == "insert":
            data.insert(index, byte)
        elif kind == "delete":
            del data[index]
        else:
            del data[index:]
    _check_decodes_or_rejects(bytes(data), version)


@MANY
@given(st.binary(max_size=64), st.sampled_from([None, *VERSIONS]))
def test_random_bytes_decode_or_raise_remote_protocol_error(
    data: bytes, version: ProtocolVersion | None
) -> None:
    _check_decodes_or_rejects(data, version)
    decoder = PacketDecoder(version)
    decoder.feed(data)
    with contextlib.suppress(RemoteProtocolError):
        _decode_all(decoder)


@MANY
@given(st.integers(0, 255), st.binary(max_size=60), st.sampled_from(VERSIONS))
def test_well_framed_random_bodies_decode_or_raise_remote_protocol_error(
    first: int, body: bytes, version: ProtocolVersion
) -> None:
    # a correct fixed header gets random bodies past the framing into every body decoder
    _check_decodes_or_rejects(bytes((first, len(body))) + body, version)


@SOME
@given(
    st.lists(
        st.tuples(st.sampled_from([*range(0x01, 0x2B), 0x7F, 0x80]), st.binary(max_size=6)),
        max_size=5,
    ),
    st.sampled_from([0x30, 0x40, 0x82, 0xE0]),
)
def test_random_property_lists_decode_or_raise_remote_protocol_error(
    items: list[tuple[int, bytes]], first: int
) -> None:
    # identifier bytes followed by random value bytes, in a PUBLISH, PUBACK, SUBSCRIBE or
    # DISCONNECT whose other fields are valid
    props = b"".join(bytes((identifier,)) + value for identifier, value in items)
    before, after = {
        0x30: (b"\x00\x01a", b"payload"),
        0x40: (b"\x00\x01\x00", b""),
        0x82: (b"\x00\x01", b"\x00\x01a\x01"),
        0xE0: (b"\x00", b""),
    }[first]
    body = before + bytes((len(props),)) + props + after
    _check_decodes_or_rejects(bytes((first, len(body))) + body, ProtocolVersion.MQTT_5)


@pytest.mark.parametrize("version", VERSIONS)
def test_truncations_of_every_packet_type_need_more_data(version: ProtocolVersion) -> None:
    @FEW
    @given(packets(version))
    def check(packet: Packet) -> None:
        data = encode(packet, version)
        for end in range(len(data)):
            assert decode(data[:end], version) is None

    check()
