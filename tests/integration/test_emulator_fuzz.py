"""Hostile input through real TLS sockets: the emulator must survive it and leak nothing.

A seeded campaign (a few hundred cases, run 16 at a time) throws garbage at every stage of a
connection: random bytes instead of TLS, random bytes instead of MQTT, mutated encodings of
valid CONNECT / SUBSCRIBE / PUBLISH / … packets, absurd remaining lengths, packets before
CONNECT, a second CONNECT, byte-at-a-time (slowloris) handshakes and CONNECTs, and TCP resets
at every stage. Afterwards an unmodified paho client must still work and the broker and
gateway must hold no connection the fuzzers left behind. Specific findings get their own
deterministic tests at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import (
    NO_PROPERTIES,
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Properties,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    ReasonCode,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
)
from tests.support.devices import DeviceFiles, make_ca, provision_device, register_ca
from tests.support.emulator_thread import EmulatorThread
from tests.support.raw_mqtt import (
    Closed,
    RawClient,
    abort,
    client_context,
    open_watcher,
    publishes_within,
    tls_connect,
)

V311 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
SEED = 20_240_601
HANDSHAKE_TIMEOUT_S = 1.0
#: How long a case waits for the server to react before closing the connection itself.
LINGER_S = 0.3
#: Cases whose connection the server must close by itself, and how soon.
MUST_CLOSE_WITHIN_S = HANDSHAKE_TIMEOUT_S + 2.0
TIMEOUT = 10.0

Opener = Callable[[], socket.socket]

ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


# ---------------------------------------------------------------------------- fixtures


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


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    config = EmulatorConfig(
        port=0,
        data_dir=tmp_path_factory.mktemp("emulator"),
        handshake_timeout_s=HANDSHAKE_TIMEOUT_S,
        limits=BrokerLimits.unlimited(),
    )
    with EmulatorThread(config) as running:
        yield running


@dataclass(frozen=True)
class Identities:
    fuzzer: DeviceFiles  # may connect as any client id and use any topic
    good: DeviceFiles  # the ordinary device policy


@pytest.fixture(scope="module")
def ids(emu: EmulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Identities:
    directory = tmp_path_factory.mktemp("identities")
    authority = make_ca("fuzz test CA")
    register_ca(emu.registry, authority)
    fuzzer = provision_device(
        emu.registry, authority, "fuzzer", directory, policy=ALLOW_ALL, policy_name="allow-all"
    )
    good = provision_device(emu.registry, authority, "well-behaved", directory)
    return Identities(fuzzer, good)


def counts(emu: EmulatorThread) -> tuple[int, int]:
    return emu.call(
        lambda: (emu.emulator.broker.connection_count, emu.emulator.gateway.open_connections)
    )


def wait_counts(emu: EmulatorThread, expected: tuple[int, int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := counts(emu)) != expected:
        assert time.monotonic() < deadline, f"(broker, gateway) connections {now} != {expected}"
        time.sleep(0.05)


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

    def __init__(self, emu: EmulatorThread, fuzzer: DeviceFiles) -> None:
        self.info = emu.info
        self.context = client_context(emu.info.ca_file, fuzzer.chain, fuzzer.key)
        self.rng = random.Random(SEED)
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
            self._watch("tls-garbage", self._tcp, data, MUST_CLOSE_WITHIN_S, rst)

    def mqtt_garbage_before_connect(self, count: int) -> None:
        for _ in range(count):
            data = self.rng.randbytes(self.rng.randint(1, 512))
            rst = self.rng.random() < 0.5
            self._watch("garbage-before-connect", self._tls, data, MUST_CLOSE_WITHIN_S, rst)

    def packets_before_connect(self) -> None:
        for version in (V311, V5):
            for name, data in valid_packets(version, "nobody").items():
                if name != "CONNECT":
                    self._watch("packet-before-connect", self._tls, data, MUST_CLOSE_WITHIN_S)

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
                self._watch("oversized-length", opener, data, MUST_CLOSE_WITHIN_S)
        huge_connect = bytes([0x10, 0xFF, 0xFF, 0xFF, 0x7F]) + b"\x00\x04MQTT\x04"
        self._watch("oversized-length", self._tls, huge_connect, MUST_CLOSE_WITHIN_S)

    def second_connects(self) -> None:
        for version in (V311, V5):
            client_id = self._client_id()
            again = valid_packets(version, client_id)["CONNECT"]
            opener = self._after_connect(version, client_id)
            self._watch("second-connect", opener, again, MUST_CLOSE_WITHIN_S)

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
                if closed or time.monotonic() - t0 > MUST_CLOSE_WITHIN_S:
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


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    errors: list[str]
    counts_after: tuple[int, int]
    seconds: float
    by_category: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def report(emu: EmulatorThread, ids: Identities) -> Report:
    campaign = Campaign(emu, ids.fuzzer)
    campaign.tls_garbage(30)
    campaign.mqtt_garbage_before_connect(40)
    campaign.packets_before_connect()
    campaign.mutated_connects(80)
    campaign.mutated_after_connect(120)
    campaign.sequences_after_connect(60)
    campaign.garbage_after_connect(20)
    campaign.oversized()
    campaign.second_connects()
    campaign.slowloris()
    campaign.resets(24)
    started = time.monotonic()
    with ErrorLog().attached() as errors, ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda case: case.run(), campaign.cases))
        # Everything the fuzzers opened must be gone (the server side too).
        with contextlib.suppress(AssertionError):
            wait_counts(emu, (0, 0))
        after = counts(emu)
        logged = errors.messages()
    return Report(
        outcomes,
        logged,
        after,
        time.monotonic() - started,
        Counter(o.category for o in outcomes),
    )


# ---------------------------------------------------------------------------- campaign checks


def test_campaign_ran_every_family(report: Report) -> None:
    assert len(report.outcomes) >= 300
    for family in (
        "tls-garbage",
        "garbage-before-connect",
        "packet-before-connect",
        "mutated-connect",
        "mutated-after-connect",
        "sequence-after-connect",
        "garbage-after-connect",
        "oversized-length",
        "second-connect",
        "slowloris-tls",
        "slowloris-connect",
        "reset-mid-packet",
    ):
        assert report.by_category[family] > 0, family


MUST_BE_CLOSED = (
    "tls-garbage",
    "garbage-before-connect",
    "packet-before-connect",
    "oversized-length",
    "second-connect",
    "slowloris-tls",
    "slowloris-connect",
)


@pytest.mark.parametrize("category", MUST_BE_CLOSED)
def test_server_hangs_up_on_hostile_connections(report: Report, category: str) -> None:
    cases = [o for o in report.outcomes if o.category == category]
    assert cases
    still_open = [o for o in cases if not o.closed_by_server]
    assert still_open == [], f"{len(still_open)}/{len(cases)} {category} connections left open"
    assert max(o.seconds for o in cases) < MUST_CLOSE_WITHIN_S + 1.0


def test_packets_before_connect_get_no_answer(report: Report) -> None:
    answered = [o for o in report.outcomes if o.category == "packet-before-connect" and o.received]
    assert answered == []


def test_slowloris_is_cut_off_by_the_handshake_timeout(report: Report) -> None:
    for outcome in report.outcomes:
        if outcome.category.startswith("slowloris"):
            assert HANDSHAKE_TIMEOUT_S * 0.8 <= outcome.seconds < HANDSHAKE_TIMEOUT_S + 1.5


def test_fuzzers_leave_no_connection_behind(report: Report) -> None:
    assert report.counts_after == (0, 0)


def test_campaign_is_bounded(report: Report) -> None:
    assert report.seconds < 15


def test_well_behaved_paho_client_works_after_the_campaign(
    report: Report, emu: EmulatorThread, ids: Identities
) -> None:
    got = threading.Event()
    connected = threading.Event()
    payloads: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ids.good.client_id)
    client.tls_set(
        ca_certs=emu.info.ca_file, certfile=str(ids.good.chain), keyfile=str(ids.good.key)
    )

    def on_connect(client, userdata, flags, reason_code, properties=None) -> None:
        connected.set()

    def on_message(client, userdata, message) -> None:
        payloads.append(bytes(message.payload))
        got.set()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(emu.info.endpoint, emu.info.port, keepalive=60)
    client.loop_start()
    try:
        assert connected.wait(TIMEOUT)
        topic = f"devices/{ids.good.client_id}/after-fuzz"
        result, _ = client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + TIMEOUT
        while not got.is_set() and time.monotonic() < deadline:
            client.publish(topic, b"still alive", qos=1).wait_for_publish(TIMEOUT)
            got.wait(0.2)  # the SUBACK may land after the first publish
        assert payloads
        assert payloads[0] == b"still alive"
        wait_counts(emu, (1, 1))  # just this client
    finally:
        client.disconnect()
        client.loop_stop()
    wait_counts(emu, (0, 0))


def test_campaign_logs_no_internal_error(report: Report) -> None:
    """Nothing the fuzzers send may make the emulator log an internal error (a traceback in
    the broker, or asyncio's 'Fatal error: protocol.data_received() call failed')."""
    assert report.errors == [], "\n".join(report.errors)


# ---------------------------------------------------------------------------- specific findings


@pytest.fixture
def watch(emu: EmulatorThread, ids: Identities, tmp_path: Path):
    """Open an MQTT 5 watcher (as the allow-all identity) on some topic filters."""
    opened: list[RawClient] = []
    counter = iter(range(1000))

    def open_(*filters: str) -> RawClient:
        watcher = open_watcher(
            emu.info, ids.fuzzer.chain, ids.fuzzer.key, f"watcher-{next(counter)}", filters
        )
        opened.append(watcher)
        return watcher

    yield open_
    for watcher in opened:
        watcher.close()


_specific = iter(range(1_000_000))


def collect_until_disconnected(watcher: RawClient, client_id: str) -> list[Publish]:
    """What the watcher receives up to ``client_id``'s disconnected event, plus 0.2 s more (a
    Will is published right after that event)."""
    event_topic = f"$aws/events/presence/disconnected/{client_id}"
    received: list[Publish] = []
    deadline = time.monotonic() + TIMEOUT
    while not any(m.topic == event_topic for m in received):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no disconnected event for {client_id}"
        received += publishes_within(watcher, min(remaining, 0.05))
    return received + publishes_within(watcher, 0.2)


def disconnect_reason(watcher: RawClient, client_id: str) -> str:
    for message in collect_until_disconnected(watcher, client_id):
        if message.topic == f"$aws/events/presence/disconnected/{client_id}":
            return str(json.loads(message.payload)["disconnectReason"])
    raise AssertionError("unreachable")


def connected_raw(
    emu: EmulatorThread, ids: Identities, version: ProtocolVersion, **kw
) -> RawClient:
    client_id = kw.pop("client_id")
    client = RawClient.open(emu.info, ids.fuzzer.chain, ids.fuzzer.key, version=version)
    client.send(Connect(client_id=client_id, protocol_version=version, **kw))
    connack = client.receive()
    assert isinstance(connack, ConnAck)
    assert connack.reason_code == 0
    return client


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_valid_second_connect_is_a_client_error(
    emu: EmulatorThread, ids: Identities, watch, caplog, version: ProtocolVersion
) -> None:
    client_id = f"second-{next(_specific)}"
    watcher = watch(f"$aws/events/presence/disconnected/{client_id}")
    client = connected_raw(emu, ids, version, client_id=client_id)
    try:
        client.send(Connect(client_id=client_id, protocol_version=version))
        before_close = client.wait_closed()
        expected = [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)] if version is V5 else []
        assert before_close == expected
        assert disconnect_reason(watcher, client_id) == "CLIENT_ERROR"
    finally:
        client.close()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:120]}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("fleet_sim", "asyncio"))
    ]


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_malformed_second_connect_is_a_clean_client_error(
    emu: EmulatorThread, ids: Identities, watch, caplog, version: ProtocolVersion
) -> None:
    """Regression: an undecodable second CONNECT used to get a CONNACK 0x01 on an
    established 3.1.1 connection, and on MQTT 5 a DISCONNECT 0x84 that encode() refused, so the
    error escaped into asyncio and the lifecycle reason was CONNECTION_LOST."""
    caplog.set_level(logging.WARNING)
    client_id = f"second-bad-{next(_specific)}"
    watcher = watch(f"$aws/events/presence/disconnected/{client_id}")
    client = connected_raw(emu, ids, version, client_id=client_id)
    try:
        second = bytearray(encode(Connect(client_id=client_id, protocol_version=version), version))
        second[4:8] = b"MQTX"  # the protocol name
        client.send_bytes(bytes(second))
        before_close = client.wait_closed()
        reason = disconnect_reason(watcher, client_id)
        emu.call(lambda: None)
        assert _errors(caplog) == []
        assert not any(isinstance(p, ConnAck) for p in before_close), before_close
        if version is V5:
            assert [type(p) for p in before_close] == [Disconnect]
        assert reason == "CLIENT_ERROR"
    finally:
        client.close()


def test_publish_then_disconnect_in_one_record_is_a_clean_disconnect(
    emu: EmulatorThread, ids: Identities, watch, caplog
) -> None:
    """Regression: the broker used to deliver the PUBLISH back to its (self-subscribed)
    sender after the same record's DISCONNECT had closed the session; send_publish raised, the
    connection ended as SERVER_ERROR and the Will was published."""
    caplog.set_level(logging.WARNING)
    client_id = f"echo-{next(_specific)}"
    topic = f"devices/{client_id}/echo"
    will_topic = f"devices/{client_id}/will"
    watcher = watch(f"$aws/events/presence/disconnected/{client_id}", topic, will_topic)
    client = connected_raw(
        emu, ids, V311, client_id=client_id, will=Will(topic=will_topic, payload=b"died")
    )
    try:
        client.send(Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter=topic),)))
        client.receive()  # SUBACK
        client.send_bytes(
            encode(Publish(topic=topic, payload=b"bye"), V311) + encode(Disconnect(), V311)
        )
        client.wait_closed()
        seen = {(m.topic, m.payload) for m in collect_until_disconnected(watcher, client_id)}
        assert (topic, b"bye") in seen
        reasons = {
            json.loads(payload)["disconnectReason"]
            for t, payload in seen
            if t.startswith("$aws/events/presence/disconnected/")
        }
        emu.call(lambda: None)
        assert _errors(caplog) == []
        assert reasons == {"CLIENT_INITIATED_DISCONNECT"}
        assert (will_topic, b"died") not in seen
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["publish", "subscribe", "unsubscribe"])
def test_duplicate_packet_id_in_one_record_is_not_a_server_error(
    emu: EmulatorThread, ids: Identities, watch, caplog, kind: str
) -> None:
    """Regression: two packets with one packet id in one record used to collapse into one
    pending entry, so the broker's second ack raised and the connection ended as SERVER_ERROR."""
    caplog.set_level(logging.WARNING)
    client_id = f"dup-{next(_specific)}"
    watcher = watch(f"$aws/events/presence/disconnected/{client_id}")
    client = connected_raw(emu, ids, V311, client_id=client_id)
    topic = f"devices/{client_id}/dup"
    packet: Publish | Subscribe | Unsubscribe
    if kind == "publish":  # a retransmission (DUP=1) before the PUBACK
        packet = Publish(topic=topic, payload=b"x", qos=QoS.AT_LEAST_ONCE, packet_id=5)
        twice = encode(packet, V311) + encode(replace(packet, dup=True), V311)
    elif kind == "subscribe":
        packet = Subscribe(packet_id=5, subscriptions=(Subscription(topic_filter=topic),))
        twice = encode(packet, V311) * 2
    else:
        packet = Unsubscribe(packet_id=5, topic_filters=(topic,))
        twice = encode(packet, V311) * 2
    try:
        client.send_bytes(twice)
        try:
            client.receive()
            client.receive()  # both answered …
            client.send(PingReq())
            assert client.receive() == PingResp()  # … and still connected
        except Closed:
            # Closing on a reused packet id is acceptable, as a client error.
            assert disconnect_reason(watcher, client_id) == "CLIENT_ERROR"
        emu.call(lambda: None)
        assert _errors(caplog) == []
    finally:
        client.close()
