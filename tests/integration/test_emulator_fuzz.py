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
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig
from fleet_sim.mqtt.codec import encode
from fleet_sim.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    ProtocolVersion,
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
from tests.support.fuzz_campaign import Campaign, ErrorLog, Outcome
from tests.support.raw_mqtt import (
    Closed,
    RawClient,
    open_watcher,
    publishes_within,
)

V311 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
SEED = 20_240_601
HANDSHAKE_TIMEOUT_S = 1.0
#: Cases whose connection the server must close by itself, and how soon.
MUST_CLOSE_WITHIN_S = HANDSHAKE_TIMEOUT_S + 2.0
TIMEOUT = 10.0

ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


# ---------------------------------------------------------------------------- fixtures


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


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    errors: list[str]
    counts_after: tuple[int, int]
    seconds: float
    by_category: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def report(emu: EmulatorThread, ids: Identities) -> Report:
    campaign = Campaign(emu.info, ids.fuzzer, seed=SEED, must_close_within_s=MUST_CLOSE_WITHIN_S)
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
