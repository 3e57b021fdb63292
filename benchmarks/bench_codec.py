"""Micro-benchmark of the MQTT codec's hot path, side by side with paho-mqtt's encoder.

Run: ``python benchmarks/bench_codec.py`` (about five seconds). Every figure is the best of
several repeats of a tight loop timed with ``time.perf_counter_ns``, in µs per call.

What is timed:

* ``ours enc``: ``encode(Publish(...), version)`` for a prebuilt packet (100-byte payload,
  27-byte topic, no properties), i.e. validation plus building the bytes.
* ``ours dec``: ``decode(data, version)`` on those bytes, i.e. validation plus building the
  frozen :class:`Publish`.
* ``paho enc``: paho's own PUBLISH builder, ``Client._send_publish(mid, topic, payload, qos)``,
  on a client that never connects: ``_sock`` is set to a placeholder and an external-loop
  ``on_socket_register_write`` hook is installed, so paho builds the packet (fixed header,
  remaining length, topic, packet id, MQTT 5 property length, payload) and appends it to its
  output queue without any socket I/O; the queue is cleared after each timed loop. This is the
  cheapest path through paho that produces PUBLISH bytes: its public ``publish()`` adds
  message bookkeeping on top. paho is given the topic already UTF-8 encoded (as its public
  ``publish()`` does before this call), ours gets a ``str``. paho's figure includes queueing a
  small dict on its deque, which is part of its packet path; that share is printed below the
  table. Before timing, the script checks that both produce identical bytes.
* One MQTT 5 row adds two user properties to the PUBLISH (paho gets the equivalent
  ``Properties`` object).
* ``PacketDecoder``: a stream of 2,000 QoS 1 PUBLISHes fed in 4 KiB chunks and decoded
  through :class:`PacketDecoder`, per packet.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from paho.mqtt import __version__ as paho_version
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from fleet_sim.mqtt.codec import PacketDecoder, decode, encode
from fleet_sim.mqtt.packets import Properties, ProtocolVersion, PubAck, Publish, QoS

TOPIC = "fleet/device-0001/telemetry"
PAYLOAD = bytes(range(100))
USER_PROPERTIES = (("trace-id", "4bf92f3577b34da6"), ("seq", "1"))
ROUNDS = 40  # rounds interleave all cases, so a noisy moment hurts no case more than another
CALLS = 1_000  # calls per case per round
STREAM = 2_000  # PUBLISHes in the PacketDecoder stream
VERSIONS = (ProtocolVersion.MQTT_3_1_1, ProtocolVersion.MQTT_5)


class _NoSocket:
    """Stands in for paho's socket: never written to, only closed when the client dies."""

    def close(self) -> None:
        """Nothing to close."""


def paho_publisher(version: ProtocolVersion) -> Any:
    """An unconnected paho client whose ``_send_publish`` builds and queues without I/O."""
    protocol = paho.MQTTv5 if version == ProtocolVersion.MQTT_5 else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench", protocol=protocol)
    client._sock = _NoSocket()  # type: ignore[assignment]
    client.on_socket_register_write = lambda _client, _userdata, _sock: None
    return client


def check_same_bytes(
    client: Any, packet: Publish, version: ProtocolVersion, paho_props: Any = None
) -> None:
    """Fail loudly unless paho builds exactly our bytes for this PUBLISH."""
    client._send_publish(
        packet.packet_id or 0, TOPIC.encode(), PAYLOAD, int(packet.qos), properties=paho_props
    )
    theirs = bytes(client._out_packet.pop()["packet"])
    if theirs != encode(packet, version):
        sys.exit(f"paho and fleetsim disagree on {packet} in {version.name}")


class Case:
    """A timed loop: ``run()`` performs ``operations`` operations; ``reset()`` is untimed."""

    def __init__(
        self, run: Callable[[], None], operations: int, reset: Callable[[], None] = lambda: None
    ) -> None:
        self.run = run
        self.operations = operations
        self.reset = reset
        self.best_ns = float("inf")

    def measure(self) -> None:
        """Time one run, keep the best."""
        start = time.perf_counter_ns()
        self.run()
        self.best_ns = min(self.best_ns, time.perf_counter_ns() - start)
        self.reset()

    @property
    def us(self) -> float:
        """Best cost per operation in µs."""
        return self.best_ns / self.operations / 1000


def repeat(fn: Callable[..., Any], *args: Any) -> Case:
    """A case calling ``fn(*args)`` CALLS times."""

    def run() -> None:
        for _ in range(CALLS):
            fn(*args)

    return Case(run, CALLS)


def paho_case(client: Any, qos: int, paho_props: Any = None) -> Case:
    """paho's PUBLISH builder; its output queue is cleared after each timed loop."""
    send = client._send_publish
    topic = TOPIC.encode()

    def run() -> None:
        for _ in range(CALLS):
            send(7, topic, PAYLOAD, qos, properties=paho_props)

    return Case(run, CALLS, client._out_packet.clear)


def paho_queueing_case(client: Any) -> Case:
    """The queueing share of paho's figure: ``_packet_queue`` alone."""
    queue_packet = client._packet_queue
    packet = bytearray(b"\x30\x00")

    def run() -> None:
        for _ in range(CALLS):
            queue_packet(0x30, packet, 7, 1)

    return Case(run, CALLS, client._out_packet.clear)


def stream_case(version: ProtocolVersion, chunk: int = 4_096) -> Case:
    """A stream of QoS 1 PUBLISHes fed in ``chunk``-byte pieces through a PacketDecoder."""
    stream = b"".join(
        encode(Publish(topic=TOPIC, payload=PAYLOAD, qos=QoS.AT_LEAST_ONCE, packet_id=i), version)
        for i in range(1, STREAM + 1)
    )
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]

    def run() -> None:
        decoder = PacketDecoder(version)
        decoded = 0
        for data in chunks:
            decoder.feed(data)
            while decoder.next_packet() is not None:
                decoded += 1
        assert decoded == STREAM

    return Case(run, STREAM)


def main() -> None:
    """Build the cases, time them in interleaved rounds, print the table."""
    cases: dict[tuple[str, ...], Case] = {}
    clients = {}
    for version in VERSIONS:
        clients[version] = client = paho_publisher(version)
        for qos in (0, 1):
            packet = Publish(
                topic=TOPIC, payload=PAYLOAD, qos=QoS(qos), packet_id=7 if qos else None
            )
            check_same_bytes(client, packet, version)
            data = encode(packet, version)
            cases[version.name, "PUBLISH", str(qos), "enc"] = repeat(encode, packet, version)
            cases[version.name, "PUBLISH", str(qos), "dec"] = repeat(decode, data, version)
            cases[version.name, "PUBLISH", str(qos), "paho"] = paho_case(client, qos)
        if version == ProtocolVersion.MQTT_5:  # the same with two user properties
            packet = Publish(
                topic=TOPIC,
                payload=PAYLOAD,
                qos=QoS.AT_LEAST_ONCE,
                packet_id=7,
                properties=Properties(user_properties=USER_PROPERTIES),
            )
            paho_props = PahoProperties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            paho_props.UserProperty = list(USER_PROPERTIES)
            check_same_bytes(client, packet, version, paho_props)
            data = encode(packet, version)
            cases[version.name, "PUBLISH", "1+", "enc"] = repeat(encode, packet, version)
            cases[version.name, "PUBLISH", "1+", "dec"] = repeat(decode, data, version)
            cases[version.name, "PUBLISH", "1+", "paho"] = paho_case(client, 1, paho_props)
        ack = PubAck(packet_id=7)
        cases[version.name, "PUBACK", "enc"] = repeat(encode, ack, version)
        cases[version.name, "PUBACK", "dec"] = repeat(decode, encode(ack, version), version)
        cases[version.name, "stream"] = stream_case(version)
        cases[version.name, "queueing"] = paho_queueing_case(client)
    for _ in range(ROUNDS):
        for case in cases.values():
            case.measure()
    for client in clients.values():
        client._sock = None

    print(
        f"MQTT codec benchmark: CPython {platform.python_version()}, paho-mqtt {paho_version}; "
        f"best of {ROUNDS} interleaved rounds of {CALLS} calls; µs per packet"
    )
    print(f"PUBLISH: topic {TOPIC!r} ({len(TOPIC)} bytes), {len(PAYLOAD)}-byte payload, "
          "no properties")  # fmt: skip
    print()
    header = f"{'case':<40}{'ours enc':>10}{'ours dec':>10}{'paho enc':>10}{'enc ours/paho':>15}"
    print(header)
    print("-" * len(header))
    for version in VERSIONS:
        label = "3.1.1" if version == ProtocolVersion.MQTT_3_1_1 else "5"
        for level in ("0", "1", "1+"):
            if (version.name, "PUBLISH", level, "enc") not in cases:
                continue
            enc, dec, theirs = (
                cases[version.name, "PUBLISH", level, k].us for k in ("enc", "dec", "paho")
            )
            name = f"PUBLISH MQTT {label} QoS {level[0]}" + (
                " +2 user props" if level == "1+" else ""
            )
            print(f"{name:<40}{enc:>10.2f}{dec:>10.2f}{theirs:>10.2f}{enc / theirs:>15.2f}")
        enc, dec = (cases[version.name, "PUBACK", k].us for k in ("enc", "dec"))
        print(f"{f'PUBACK MQTT {label}':<40}{enc:>10.2f}{dec:>10.2f}")
    print()
    for version in VERSIONS:
        label = "3.1.1" if version == ProtocolVersion.MQTT_3_1_1 else "5"
        print(
            f"PacketDecoder, MQTT {label}: {STREAM} QoS 1 PUBLISHes fed in 4 KiB chunks: "
            f"{cases[version.name, 'stream'].us:.2f} µs per packet"
        )
    queueing = min(cases[v.name, "queueing"].us for v in VERSIONS)
    print(f"(paho enc includes queueing the built packet: about {queueing:.2f} µs of it)")


if __name__ == "__main__":
    main()
