"""A seeded fuzzing campaign against the emulator's TLS gateway (raw sockets, real TLS).

:class:`Campaign` draws all its randomness up front from one seed, then yields cases that each
open a connection, misbehave at one stage (garbage instead of TLS or MQTT, mutated packets,
absurd lengths, packets out of order, byte-at-a-time sends, TCP resets) and report how the
server reacted as an :class:`Outcome`. :class:`ErrorLog` collects what the emulator logged.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from fleet_sim.emulator.app import EndpointInfo
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
)
from tests.support.devices import DeviceFiles
from tests.support.raw_mqtt import RawClient, abort, client_context, tls_connect

V311 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
#: How long a case waits for the server to react before closing the connection itself.
LINGER_S = 0.3
TIMEOUT = 10.0

Opener = Callable[[], socket.socket]


class ErrorLog(logging.Handler):
    """Collects ERROR records from the emulator (its own loggers and asyncio's)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("fleet_sim", "asyncio")):
            with self._lock_records:
                self.records.append(record)

    def messages(self) -> list[str]:
        with self._lock_records:
            return [
                f"{r.name}: {r.getMessage()[:160]} ({r.exc_info and r.exc_info[1]!r})"
                for r in self.records
            ]

    @contextlib.contextmanager
    def attached(self) -> Iterator[ErrorLog]:
        root = logging.getLogger()
        root.addHandler(self)
        try:
            yield self
        finally:
            root.removeHandler(self)


# ---------------------------------------------------------------------------- case material


def valid_packets(version: ProtocolVersion, client_id: str) -> dict[str, bytes]:
    """Encodings of one valid packet of each kind a client sends."""
    v5 = version is V5
    props = Properties(user_properties=(("k", "v"),), content_type="text/plain") if v5 else None
    topic = f"devices/{client_id}/fuzz"
    connect = Connect(
        client_id=client_id,
        protocol_version=version,
        clean_start=False,
        keep_alive=30,
        will=Will(topic=f"{topic}/will", payload=b"gone", qos=QoS.AT_LEAST_ONCE),
        properties=Properties(session_expiry_interval=60, receive_maximum=20)
        if v5
        else NO_PROPERTIES,
    )
    subscribe = Subscribe(
        packet_id=7,
        subscriptions=(
            Subscription(topic_filter=f"{topic}/+", qos=QoS.AT_LEAST_ONCE, no_local=v5),
            Subscription(topic_filter="shared/#", retain_handling=2 if v5 else 0),
        ),
    )
    publish = Publish(
        topic=topic,
        payload=b"payload \x00\xff",
        qos=QoS.AT_LEAST_ONCE,
        retain=True,
        packet_id=9,
        properties=props or NO_PROPERTIES,
    )
    return {
        "CONNECT": encode(connect, version),
        "SUBSCRIBE": encode(subscribe, version),
        "UNSUBSCRIBE": encode(Unsubscribe(packet_id=8, topic_filters=(f"{topic}/+",)), version),
        "PUBLISH": encode(publish, version),
        "PUBLISH0": encode(Publish(topic=topic, payload=b"q0"), version),
        "PUBACK": encode(PubAck(packet_id=1), version),
        "PINGREQ": encode(PingReq(), version),
        "DISCONNECT": encode(
            Disconnect(properties=Properties(session_expiry_interval=0) if v5 else NO_PROPERTIES),
            version,
        ),
    }


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip, overwrite, truncate, extend, duplicate or insert bytes (one to three edits)."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        edit = rng.randrange(7)
        if edit == 0 and out:
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif edit == 1 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif edit == 2 and len(out) > 1:
            del out[rng.randrange(1, len(out)) :]
        elif edit == 3:
            out += rng.randbytes(rng.randint(1, 64))
        elif edit == 4 and len(out) > 1:
            out[1] = rng.randrange(256)  # the (first) remaining-length byte
        elif edit == 5 and out:
            start = rng.randrange(len(out))
            out[start:start] = out[start : start + rng.randint(1, 16)]
        else:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(256))
    return bytes(out)


def client_hello(context: ssl.SSLContext) -> bytes:
    """The bytes of a real ClientHello (for slowloris and mid-handshake resets)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# ---------------------------------------------------------------------------- running cases


@dataclass(frozen=True)
class Outcome:
    category: str
    closed_by_server: bool
    seconds: float
    received: bytes = b""


@dataclass(frozen=True)
class Case:
    category: str
    run: Callable[[], Outcome]


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read for up to ``seconds``; True when the server closed (EOF, reset or TLS alert)."""
    received = bytearray()
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False, bytes(received)
        except (OSError, ssl.SSLError):  # reset, alert, unexpected EOF
            return True, bytes(received)
        if not chunk:
            return True, bytes(received)
        received += chunk
    return False, bytes(received)


def finish(sock: socket.socket, rng_bit: bool) -> None:
    """End a case's connection: half of them gracefully, half with a TCP reset."""
    if rng_bit:
        abort(sock)
    else:
        with contextlib.suppress(OSError):
            sock.close()


class Campaign:
    """Builds the seeded list of cases (all randomness drawn up front, in order)."""

    def __init__(
        self, info: EndpointInfo, fuzzer: DeviceFiles, *, seed: int, must_close_within_s: float
    ) -> None:
        """Cases against ``info`` with the ``fuzzer`` identity (whose policy must allow any
        client id and topic); ``must_close_within_s`` bounds the waits of cases the server
        has to end by itself (it must exceed the emulator's handshake timeout)."""
        self.info = info
        self.context = client_context(info.ca_file, fuzzer.chain, fuzzer.key)
        self.rng = random.Random(seed)
        self.must_close_within_s = must_close_within_s
        self.serial = 0
        self.cases: list[Case] = []

    def _client_id(self) -> str:
        self.serial += 1
        return f"fuzz-{self.serial}"

    def add(self, category: str, run: Callable[[float], Outcome]) -> None:
        """Queue a case; ``run`` gets the monotonic time its case started."""
        self.cases.append(Case(category, lambda: run(time.monotonic())))

    # -- the building blocks a case uses

    def _tcp(self) -> socket.socket:
        return socket.create_connection((self.info.host, self.info.port), timeout=TIMEOUT)

    def _tls(self) -> ssl.SSLSocket:
        return tls_connect(self.info, self.context)

    def _connected(self, version: ProtocolVersion, client_id: str) -> RawClient:
        client = RawClient(self._tls(), version)
        client.send(Connect(client_id=client_id, protocol_version=version))
        connack = client.receive()
        assert isinstance(connack, ConnAck), connack
        assert connack.reason_code == 0, connack
        return client

    def _after_connect(self, version: ProtocolVersion, client_id: str) -> Opener:
        return lambda: self._connected(version, client_id).sock

    def _send_and_watch(
        self, category: str, opener: Opener, data: bytes, wait: float, rst: bool, t0: float
    ) -> Outcome:
        sock = opener()
        try:
            sock.sendall(data)
            closed, received = read_until_closed(sock, wait)
        except (OSError, ssl.SSLError):
            closed, received = True, b""
        finally:
            finish(sock, rst)
        return Outcome(category, closed, time.monotonic() - t0, received)

    def _watch(
        self, category: str, opener: Opener, data: bytes, wait: float, rst: bool = False
    ) -> None:
        self.add(category, partial(self._send_and_watch, category, opener, data, wait, rst))

    # -- the case families

    def tls_garbage(self, count: int) -> None:
        for _ in range(count):
            data = self.rng.randbytes(self.rng.randint(1, 2048))
            rst = self.rng.random() < 0.5
            self._watch("tls-garbage", self._tcp, data, self.must_close_within_s, rst)

    def mqtt_garbage_before_connect(self, count: int) -> None:
        for _ in range(count):
            data = self.rng.randbytes(self.rng.randint(1, 512))
            rst = self.rng.random() < 0.5
            self._watch("garbage-before-connect", self._tls, data, self.must_close_within_s, rst)

    def packets_before_connect(self) -> None:
        for version in (V311, V5):
            for name, data in valid_packets(version, "nobody").items():
                if name != "CONNECT":
                    self._watch("packet-before-connect", self._tls, data, self.must_close_within_s)

    def mutated_connects(self, count: int) -> None:
        for _ in range(count):
            version = self.rng.choice((V311, V5))
            data = mutate(self.rng, valid_packets(version, self._client_id())["CONNECT"])
            rst = self.rng.random() < 0.5
            self._watch("mutated-connect", self._tls, data, LINGER_S, rst)

    def mutated_after_connect(self, count: int) -> None:
        for _ in range(count):
            version = self.rng.choice((V311, V5))
            client_id = self._client_id()
            packets = valid_packets(version, client_id)
            name = self.rng.choice([n for n in packets if n != "CONNECT"])
            data = mutate(self.rng, packets[name])
            if self.rng.random() < 0.2:
                data += packets[self.rng.choice(("PINGREQ", "PUBLISH0", "SUBSCRIBE"))]
            rst = self.rng.random() < 0.5
            opener = self._after_connect(version, client_id)
            self._watch("mutated-after-connect", opener, data, LINGER_S, rst)

    def sequences_after_connect(self, count: int) -> None:
        """Several packets (ids shared across kinds, some mutated) in one TLS record."""
        for _ in range(count):
            version = self.rng.choice((V311, V5))
            client_id = self._client_id()
            packets = valid_packets(version, client_id)
            names = [n for n in packets if n != "CONNECT"]
            data = b"".join(
                mutate(self.rng, packets[name]) if self.rng.random() < 0.3 else packets[name]
                for name in self.rng.choices(names, k=self.rng.randint(2, 6))
            )
            rst = self.rng.random() < 0.5
            opener = self._after_connect(version, client_id)
            self._watch("sequence-after-connect", opener, data, LINGER_S, rst)

    def garbage_after_connect(self, count: int) -> None:
        for _ in range(count):
            version = self.rng.choice((V311, V5))
            opener = self._after_connect(version, self._client_id())
            data = self.rng.randbytes(self.rng.randint(1, 256))
            self._watch("garbage-after-connect", opener, data, LINGER_S, True)

    def oversized(self) -> None:
        # A PUBLISH announcing 256 MB, a malformed 5-byte length, a CONNECT announcing 256 MB.
        huge_publish = bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]) + b"\x00\x03a/b"
        bad_length = bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        for version in (V311, V5):
            for data in (huge_publish, bad_length):
                opener = self._after_connect(version, self._client_id())
                self._watch("oversized-length", opener, data, self.must_close_within_s)
        huge_connect = bytes([0x10, 0xFF, 0xFF, 0xFF, 0x7F]) + b"\x00\x04MQTT\x04"
        self._watch("oversized-length", self._tls, huge_connect, self.must_close_within_s)

    def second_connects(self) -> None:
        for version in (V311, V5):
            client_id = self._client_id()
            again = valid_packets(version, client_id)["CONNECT"]
            opener = self._after_connect(version, client_id)
            self._watch("second-connect", opener, again, self.must_close_within_s)

    def slowloris(self) -> None:
        hello = client_hello(self.context)
        connect = valid_packets(V311, "slow")["CONNECT"]
        for _ in range(3):
            self.add("slowloris-tls", partial(self._drip, "slowloris-tls", self._tcp, hello))
            self.add(
                "slowloris-connect", partial(self._drip, "slowloris-connect", self._tls, connect)
            )

    def _drip(self, category: str, opener: Opener, data: bytes, t0: float) -> Outcome:
        """Send one byte every 50 ms until the server hangs up (it must, at its timeout)."""
        sock = opener()
        closed = False
        try:
            for byte in data:
                sock.sendall(bytes([byte]))
                closed, _ = read_until_closed(sock, 0.05)
                if closed or time.monotonic() - t0 > self.must_close_within_s:
                    break
        except (OSError, ssl.SSLError):
            closed = True
        finally:
            finish(sock, False)
        return Outcome(category, closed, time.monotonic() - t0)

    def resets(self, count: int) -> None:
        hello = client_hello(self.context)
        stages = ("tcp", "mid-handshake", "tls", "connect", "subscribed", "mid-packet")
        for index in range(count):
            stage = stages[index % len(stages)]
            version = self.rng.choice((V311, V5))
            client_id = self._client_id()
            packets = valid_packets(version, client_id)
            self.add(
                f"reset-{stage}", partial(self._reset, stage, version, client_id, hello, packets)
            )

    def _reset(
        self,
        stage: str,
        version: ProtocolVersion,
        client_id: str,
        hello: bytes,
        packets: dict[str, bytes],
        t0: float,
    ) -> Outcome:
        sock: socket.socket
        if stage in ("tcp", "mid-handshake"):
            sock = self._tcp()
            if stage == "mid-handshake":
                sock.sendall(hello[: len(hello) // 2])
        elif stage in ("tls", "connect"):
            sock = self._tls()
            if stage == "connect":
                sock.sendall(packets["CONNECT"])
        else:
            sock = self._connected(version, client_id).sock
            if stage == "subscribed":
                sock.sendall(packets["SUBSCRIBE"])
            else:
                sock.sendall(packets["PUBLISH"][:5])
        abort(sock)
        return Outcome(f"reset-{stage}", False, time.monotonic() - t0)
