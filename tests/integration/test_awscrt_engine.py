"""The awscrt device engine against the in-process emulator, over real TLS sockets.

awscrt (AWS's device SDK) runs on its own native threads; the engine bridges its callbacks
onto the test's event loop, which also runs the emulator. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import socket
import ssl
import threading
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from awscrt import io

from fleet_sim.device.awscrt_bridge import LoopBridge
from fleet_sim.device.awscrt_engine import AwscrtEngine, split_pem
from fleet_sim.device.awscrt_failures import connect_failure, lost_failure, operation_failure
from fleet_sim.device.link import DeviceLink, Endpoint, LinkSpec
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.errors import (
    CertificateError,
    ConnectionFailed,
    ConnectionLost,
    LocalProtocolError,
    OperationRejected,
    OperationTimeout,
    ScenarioError,
)
from fleet_sim.mqtt.packets import Publish
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject
from tests.support.devices import DeviceFiles, make_ca, now_utc, provision_device, register_ca

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
VERSIONS = [pytest.param(True, id="mqtt5"), pytest.param(False, id="mqtt311")]
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _no_system_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="module")
def engine() -> AwscrtEngine:
    return AwscrtEngine(threads=1)


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(port=0, data_dir=tmp_path / "emu")) as emu:
        yield emu


@pytest.fixture
def ca(emulator: Emulator) -> CertificateAuthority:
    authority = make_ca("awscrt engine CA")
    register_ca(emulator.registry, authority)
    return authority


def endpoint(emulator: Emulator) -> Endpoint:
    return Endpoint(emulator.info.host, emulator.info.port, server_name=emulator.info.endpoint)


def spec_for(
    emulator: Emulator,
    certificate: Path,
    key: Path | None,
    client_id: str,
    *,
    mqtt5: bool = True,
    where: Endpoint | None = None,
    ca_file: Path | None = None,
) -> LinkSpec:
    return LinkSpec(
        client_id=client_id,
        endpoint=where or endpoint(emulator),
        certificate_file=certificate,
        key_file=key,
        ca_file=ca_file or Path(emulator.info.ca_file),
        mqtt5=mqtt5,
    )


def device(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, *, mqtt5: bool
) -> tuple[DeviceFiles, LinkSpec]:
    client_id = f"crt-{next(_ids)}"
    files = provision_device(emulator.registry, ca, client_id, tmp_path)
    return files, spec_for(emulator, files.chain, files.key, client_id, mqtt5=mqtt5)


async def connect_fails(link: DeviceLink, timeout_s: float = TIMEOUT) -> ConnectionFailed:
    with pytest.raises(ConnectionFailed) as caught:
        await link.connect(timeout_s=timeout_s)
    return caught.value


async def eventually(check, seconds: float = TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------- happy path


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_connect_subscribe_publish_receive(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    inbox: list[Publish] = []
    link = engine.prepare(spec).new_link(inbox.append)
    timings = await link.connect(timeout_s=TIMEOUT)
    assert 0 < timings.total_s < TIMEOUT
    assert (timings.tcp_s, timings.tls_s, timings.mqtt_s) == (None, None, None)
    assert engine.phases == ("connect",)
    topic = f"devices/{spec.client_id}/cmd"
    codes = await link.subscribe(
        [(topic, 1), (f"devices/{spec.client_id}/zero", 0), ("devices/other/x", 1)],
        timeout_s=TIMEOUT,
    )
    assert codes[:2] == (1, 0)
    assert codes[2] >= 0x80  # 0x87 on MQTT 5, 0x80 on 3.1.1
    await link.publish(topic, b"hello", qos=1, timeout_s=TIMEOUT)
    await link.publish(topic, b"fire and forget", qos=0, timeout_s=TIMEOUT)
    await eventually(lambda: len(inbox) == 2)
    assert [(m.topic, m.payload, int(m.qos)) for m in inbox] == [
        (topic, b"hello", 1),
        (topic, b"fire and forget", 0),
    ]
    await link.disconnect()
    assert await asyncio.wait_for(link.closed, TIMEOUT) is None
    await eventually(lambda: emulator.broker.connection(spec.client_id) is None)


async def test_key_inside_the_certificate_file(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files, _ = device(emulator, ca, tmp_path, mqtt5=True)
    combined = tmp_path / "combined.pem"
    combined.write_bytes(files.key.read_bytes() + files.chain.read_bytes())
    link = engine.prepare(spec_for(emulator, combined, None, files.client_id)).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    await link.disconnect()


# ---------------------------------------------------------------------------- connect failures


@pytest.mark.parametrize(
    ("mqtt5", "failure"),
    [
        pytest.param(False, "closed_before_connack", id="mqtt311"),
        pytest.param(True, "connack_refused:135", id="mqtt5"),
    ],
)
async def test_refused_client_id(
    engine: AwscrtEngine,
    emulator: Emulator,
    ca: CertificateAuthority,
    tmp_path: Path,
    mqtt5: bool,
    failure: str,
) -> None:
    files, _ = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    spec = spec_for(emulator, files.chain, files.key, "someone-else", mqtt5=mqtt5)
    link = engine.prepare(spec).new_link(None)
    error = await connect_fails(link)
    assert error.failure == failure
    assert error.phase == "mqtt"
    assert await asyncio.wait_for(link.closed, TIMEOUT) is error


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_unknown_certificate_of_a_registered_ca_is_dropped_before_connack(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    identity = ca.issue_identity(
        DeviceSubject(common_name="unknown"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "unknown")
    spec = spec_for(emulator, files.chain_bundle, files.private_key, "unknown", mqtt5=mqtt5)
    error = await connect_fails(engine.prepare(spec).new_link(None))
    assert error.failure == "closed_before_connack"


async def test_certificate_of_an_unregistered_ca_is_rejected_in_tls(
    engine: AwscrtEngine, emulator: Emulator, tmp_path: Path
) -> None:
    stranger = make_ca("stranger CA")
    identity = stranger.issue_identity(
        DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "x")
    spec = spec_for(emulator, files.chain_bundle, files.private_key, "x")
    error = await connect_fails(engine.prepare(spec).new_link(None))
    # TLS 1.3: the server's alert arrives after our handshake finished (see awscrt_failures).
    assert error.failure == "tls_cert_rejected"
    assert error.phase == "tls"


async def test_nobody_listening_is_tcp_refused(engine: AwscrtEngine, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ca_file = tmp_path / "ca.pem"
    authority = make_ca()
    ca_file.write_bytes(authority.certificate_pem())
    identity = authority.issue_identity(
        DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "x")
    spec = LinkSpec(
        client_id="x",
        endpoint=Endpoint("127.0.0.1", port, "localhost"),
        certificate_file=files.chain_bundle,
        key_file=files.private_key,
        ca_file=ca_file,
    )
    error = await connect_fails(engine.prepare(spec).new_link(None))
    assert error.failure == "tcp_refused"
    assert error.phase == "tcp"


async def test_unresolvable_endpoint_is_dns(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files, _ = device(emulator, ca, tmp_path, mqtt5=True)
    where = Endpoint("no-such-host.invalid", emulator.info.port, "no-such-host.invalid")
    spec = spec_for(emulator, files.chain, files.key, files.client_id, where=where)
    error = await connect_fails(engine.prepare(spec).new_link(None))
    assert error.failure == "dns"


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_silent_server_is_a_bounded_connect_timeout(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    accepted: list[asyncio.StreamWriter] = []
    peer_closed = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        while await reader.read(4096):  # take the ClientHello, never answer it
            pass
        peer_closed.set()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        files, _ = device(emulator, ca, tmp_path, mqtt5=mqtt5)
        where = Endpoint("127.0.0.1", port, "localhost")
        link = engine.prepare(
            spec_for(emulator, files.chain, files.key, files.client_id, where=where, mqtt5=mqtt5)
        ).new_link(None)
        started = time.monotonic()
        error = await connect_fails(link, timeout_s=0.5)
        assert error.failure == "connect_timeout"
        assert time.monotonic() - started < 3.0
        assert isinstance(await asyncio.wait_for(link.closed, TIMEOUT), ConnectionFailed)
        # The attempt was stopped: the client closes its socket, and no reconnect follows.
        await asyncio.wait_for(peer_closed.wait(), TIMEOUT)
        await asyncio.sleep(1.2)
        assert len(accepted) == 1
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# ---------------------------------------------------------------------------- operations and loss


async def test_denied_publish_mqtt5_is_puback_failure_and_stays_connected(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=True)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    with pytest.raises(OperationRejected) as caught:
        await link.publish("devices/other/x", b"no", qos=1, timeout_s=TIMEOUT)
    assert caught.value.failure == "puback_failure:135"
    await link.publish(f"devices/{spec.client_id}/ok", b"ok", qos=1, timeout_s=TIMEOUT)
    assert not link.closed.done()
    await link.disconnect()


async def test_denied_publish_mqtt311_loses_the_connection(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=False)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    with pytest.raises(ConnectionLost) as caught:
        await link.publish("devices/other/x", b"no", qos=1, timeout_s=TIMEOUT)
    assert caught.value.failure == "connection_lost"
    assert await asyncio.wait_for(link.closed, TIMEOUT) is caught.value
    with pytest.raises(ConnectionLost):  # a closed link refuses further operations
        await link.publish(f"devices/{spec.client_id}/x", b"x", qos=0, timeout_s=TIMEOUT)


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_awscrt_client_side_validation_is_a_local_error(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    with pytest.raises(LocalProtocolError):  # a wildcard in a topic name never leaves awscrt
        await link.publish(f"devices/{spec.client_id}/#", b"x", qos=1, timeout_s=TIMEOUT)
    assert not link.closed.done()
    await link.disconnect()


@pytest.mark.parametrize(
    ("mqtt5", "failure"),
    [
        pytest.param(True, "disconnected_by_server:135", id="mqtt5"),
        pytest.param(False, "connection_lost", id="mqtt311"),
    ],
)
async def test_certificate_deactivation_resolves_closed_with_connection_lost(
    engine: AwscrtEngine,
    emulator: Emulator,
    ca: CertificateAuthority,
    tmp_path: Path,
    mqtt5: bool,
    failure: str,
) -> None:
    files, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    emulator.registry.certificates.update_status(
        files.certificate_id, CertificateStatus.INACTIVE, now=time.time()
    )
    error = await asyncio.wait_for(link.closed, TIMEOUT)
    assert isinstance(error, ConnectionLost)
    assert error.failure == failure
    with pytest.raises(ConnectionLost):
        await link.subscribe([(f"devices/{spec.client_id}/x", 1)], timeout_s=TIMEOUT)


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_no_builtin_reconnect_and_a_new_link_reconnects(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    files, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    prepared = engine.prepare(spec)
    first = prepared.new_link(None)
    await first.connect(timeout_s=TIMEOUT)
    stats = emulator.broker.stats
    assert stats.connections_accepted == 1
    registry = emulator.registry.certificates
    registry.update_status(files.certificate_id, CertificateStatus.INACTIVE, now=time.time())
    assert isinstance(await asyncio.wait_for(first.closed, TIMEOUT), ConnectionLost)
    registry.update_status(files.certificate_id, CertificateStatus.ACTIVE, now=time.time())
    # awscrt's own reconnect (1 s after a loss for MQTT 5 by default) would be accepted now.
    await asyncio.sleep(1.5)
    assert stats.connections_accepted == 1
    assert emulator.gateway.open_connections == 0
    second = prepared.new_link(None)
    await second.connect(timeout_s=TIMEOUT)
    assert stats.connections_accepted == 2
    await second.subscribe([(f"devices/{spec.client_id}/x", 1)], timeout_s=TIMEOUT)
    await second.disconnect()


async def test_a_link_connects_once(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=True)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    with pytest.raises(LocalProtocolError):
        await link.connect(timeout_s=TIMEOUT)
    await link.disconnect()


@pytest.mark.parametrize(
    ("mqtt5", "aborts", "reason"),
    [
        pytest.param(True, True, "CONNECTION_LOST", id="mqtt5-abort"),
        pytest.param(True, False, "CLIENT_INITIATED_DISCONNECT", id="mqtt5-disconnect"),
        pytest.param(False, False, "CLIENT_INITIATED_DISCONNECT", id="mqtt311-disconnect"),
    ],
)
async def test_abort_drops_without_disconnect_and_disconnect_is_clean(
    engine: AwscrtEngine,
    emulator: Emulator,
    ca: CertificateAuthority,
    tmp_path: Path,
    mqtt5: bool,
    aborts: bool,
    reason: str,
) -> None:
    _, watcher_spec = device(emulator, ca, tmp_path, mqtt5=True)
    _, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    events: list[Publish] = []
    watcher = engine.prepare(watcher_spec).new_link(events.append)
    await watcher.connect(timeout_s=TIMEOUT)
    topic = f"$aws/events/presence/disconnected/{spec.client_id}"
    assert await watcher.subscribe([(topic, 1)], timeout_s=TIMEOUT) == (1,)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    if aborts:
        link.abort()
        error = link.closed.result()
        assert isinstance(error, ConnectionLost)
        assert error.failure == "aborted"
    else:
        await link.disconnect()
        assert link.closed.result() is None
    await eventually(lambda: bool(events))
    assert json.loads(events[0].payload)["disconnectReason"] == reason
    await watcher.disconnect()


@pytest.mark.parametrize("mqtt5", VERSIONS)
async def test_finished_links_are_released(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, mqtt5
) -> None:
    # awscrt holds a link's callbacks until the link lets go of its client: a link that keeps
    # it would never be collected (~30 KB leaked per MQTT 5 connect).
    _, spec = device(emulator, ca, tmp_path, mqtt5=mqtt5)
    prepared = engine.prepare(spec)
    refs = []
    clean = prepared.new_link(None)
    await clean.connect(timeout_s=TIMEOUT)
    await clean.disconnect()
    refs.append(weakref.ref(clean))
    await asyncio.sleep(1.1)  # AWS allows 1 CONNECT/s per client id
    dropped = prepared.new_link(None)
    await dropped.connect(timeout_s=TIMEOUT)
    dropped.abort()
    refs.append(weakref.ref(dropped))
    refused = engine.prepare(
        spec_for(emulator, spec.certificate_file, spec.key_file, "someone-else", mqtt5=mqtt5)
    ).new_link(None)
    await connect_fails(refused)
    refs.append(weakref.ref(refused))
    del clean, dropped, refused

    def collected() -> bool:
        gc.collect()
        return all(ref() is None for ref in refs)

    await eventually(collected)


async def test_operation_timeout_when_no_ack_comes(
    engine: AwscrtEngine, emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    _, spec = device(emulator, ca, tmp_path, mqtt5=True)
    link = engine.prepare(spec).new_link(None)
    await link.connect(timeout_s=TIMEOUT)
    with pytest.raises(OperationTimeout) as caught:
        await link.subscribe([(f"devices/{spec.client_id}/x", 1)], timeout_s=0.000_001)
    assert caught.value.failure == "subscribe_timeout"
    await link.disconnect()


# ---------------------------------------------------------------------------- preparation


def test_prepare_names_unusable_files(engine: AwscrtEngine, tmp_path: Path) -> None:
    authority = make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.certificate_pem())
    identity = authority.issue_identity(
        DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "x")
    where = Endpoint("localhost", 8883, "localhost")

    def spec(certificate: Path, key: Path | None, ca: Path = ca_file) -> LinkSpec:
        return LinkSpec(
            client_id="x", endpoint=where, certificate_file=certificate, key_file=key, ca_file=ca
        )

    with pytest.raises(CertificateError) as missing:
        engine.prepare(spec(tmp_path / "nope.crt", files.private_key))
    assert missing.value.file == tmp_path / "nope.crt"
    with pytest.raises(CertificateError):
        engine.prepare(spec(files.chain_bundle, None))  # no key anywhere
    other = write_identity(
        authority.issue_identity(DeviceSubject(common_name="y"), KeyType.EC_P256, 30, now_utc()),
        tmp_path,
        "y",
    )
    with pytest.raises(CertificateError):
        engine.prepare(spec(files.chain_bundle, other.private_key))  # key does not fit
    with pytest.raises(CertificateError) as no_ca:
        engine.prepare(spec(files.chain_bundle, files.private_key, tmp_path / "no-ca.pem"))
    assert no_ca.value.file == tmp_path / "no-ca.pem"


def test_tls_version_cap_is_refused(engine: AwscrtEngine, tmp_path: Path) -> None:
    spec = LinkSpec(
        client_id="x",
        endpoint=Endpoint("localhost", 8883),
        certificate_file=tmp_path / "x.crt",
        key_file=None,
        ca_file=tmp_path / "ca.pem",
        max_tls_version=ssl.TLSVersion.TLSv1_2,
    )
    with pytest.raises(ScenarioError):
        engine.prepare(spec)


def test_system_ca_bundle_is_not_read_while_preparing(
    engine: AwscrtEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = make_ca()
    pem = authority.certificate_pem()
    (tmp_path / "ca.pem").write_bytes(pem)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem * 150)  # a system bundle's worth of certificates to parse
    identity = authority.issue_identity(
        DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "x")
    spec = LinkSpec(
        client_id="x",
        endpoint=Endpoint("localhost", 8883),
        certificate_file=files.chain_bundle,
        key_file=files.private_key,
        ca_file=tmp_path / "ca.pem",
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    seen: list[tuple[str | None, str | None]] = []
    real = io.ClientTlsContext

    def spy(options):
        seen.append((os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")))
        return real(options)

    monkeypatch.setattr(io, "ClientTlsContext", spy)
    engine.prepare(spec)
    assert seen == [(None, None)]
    assert os.environ["SSL_CERT_FILE"] == str(bundle)  # restored
    assert os.environ["SSL_CERT_DIR"] == str(tmp_path)
    monkeypatch.setattr(io, "ClientTlsContext", real)

    # And it matters: with the variables set, awscrt parses the bundle for every context.
    cert, key = split_pem(files.chain_bundle.read_bytes())[0], files.private_key.read_bytes()

    def unguarded() -> None:
        options = io.TlsContextOptions.create_client_with_mtls(cert, key)
        options.override_default_trust_store(pem)
        io.ClientTlsContext(options)

    def cpu(fn, n: int = 10) -> float:
        began = time.process_time()
        for _ in range(n):
            fn()
        return time.process_time() - began

    assert cpu(unguarded) > 4 * cpu(lambda: engine.prepare(spec))


# ---------------------------------------------------------------------------- pure parts


def test_split_pem_separates_key_and_chain() -> None:
    cert = b"-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
    ca = b"-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n"
    key = b"-----BEGIN EC PRIVATE KEY-----\nCCC\n-----END EC PRIVATE KEY-----\n"
    assert split_pem(key + cert + ca) == (cert + ca, key)
    assert split_pem(cert) == (cert, None)


@pytest.mark.parametrize(
    ("name", "code", "failure", "phase"),
    [
        ("AWS_IO_DNS_INVALID_NAME", None, "dns", "dns"),
        ("AWS_IO_SOCKET_CONNECTION_REFUSED", None, "tcp_refused", "tcp"),
        ("AWS_IO_SOCKET_TIMEOUT", None, "tcp_timeout", "tcp"),
        ("AWS_IO_SOCKET_NO_ROUTE_TO_HOST", None, "tcp_error", "tcp"),
        ("AWS_IO_SOCKET_CLOSED", None, "tls_handshake_failed", "tls"),
        ("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", None, "tls_handshake_failed", "tls"),
        ("AWS_IO_TLS_ERROR_READ_FAILURE", None, "tls_cert_rejected", "tls"),
        ("AWS_IO_TLS_PEER_CERTIFICATE_UNKNOWN", None, "tls_cert_rejected", "tls"),
        ("AWS_IO_TLS_NEGOTIATION_TIMEOUT", None, "connect_timeout", "tls"),
        ("AWS_ERROR_MQTT_UNEXPECTED_HANGUP", None, "closed_before_connack", "mqtt"),
        ("AWS_ERROR_MQTT5_CONNACK_CONNECTION_REFUSED", 0x87, "connack_refused:135", "mqtt"),
        ("Exception", 5, "connack_refused:5", "mqtt"),
        ("AWS_ERROR_MQTT5_CONNACK_TIMEOUT", None, "connect_timeout", "mqtt"),
        ("AWS_ERROR_SOMETHING_NEW", None, "connect_failed:AWS_ERROR_SOMETHING_NEW", "connect"),
    ],
)
def test_connect_failure_names(name: str, code: int | None, failure: str, phase: str) -> None:
    error = connect_failure(name, connack_code=code)
    assert (error.failure, error.phase) == (failure, phase)


def test_lost_and_operation_failure_names() -> None:
    assert lost_failure("AWS_ERROR_MQTT5_DISCONNECT_RECEIVED", disconnect_code=142).failure == (
        "disconnected_by_server:142"
    )
    assert lost_failure("AWS_ERROR_MQTT5_PING_RESPONSE_TIMEOUT").failure == "keepalive_timeout"
    assert lost_failure("AWS_ERROR_MQTT_TIMEOUT").failure == "keepalive_timeout"
    assert lost_failure("AWS_ERROR_MQTT_UNEXPECTED_HANGUP").failure == "connection_lost"
    assert lost_failure("AWS_ERROR_MQTT5_DECODE_PROTOCOL_ERROR").failure == "protocol_error"
    assert operation_failure("AWS_ERROR_MQTT_TIMEOUT", operation="publish").failure == (
        "publish_timeout"
    )
    assert isinstance(
        operation_failure("AWS_ERROR_MQTT5_PUBLISH_OPTIONS_VALIDATION", operation="publish"),
        LocalProtocolError,
    )
    assert (
        operation_failure(
            "AWS_ERROR_MQTT5_OPERATION_FAILED_DUE_TO_OFFLINE_QUEUE_POLICY", operation="subscribe"
        ).failure
        == "connection_lost"
    )


async def test_bridge_runs_every_call_from_many_threads_in_order() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    seen: dict[int, list[int]] = {t: [] for t in range(4)}
    on_loop: list[bool] = []
    loop_thread = threading.get_ident()
    count = 2000

    def record(thread: int, n: int) -> None:
        on_loop.append(threading.get_ident() == loop_thread)
        seen[thread].append(n)

    def produce(thread: int) -> None:
        for n in range(count):
            bridge.post(record, thread, n)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    await eventually(lambda: sum(map(len, seen.values())) == 4 * count)
    for t in threads:
        t.join(TIMEOUT)
    assert all(seen[t] == list(range(count)) for t in range(4))
    assert all(on_loop)


async def test_bridge_reports_a_failing_call_and_runs_the_next() -> None:
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    try:
        bridge = LoopBridge(loop)
        ran: list[int] = []
        bridge.post(lambda: 1 / 0)
        bridge.post(ran.append, 1)
        await eventually(lambda: ran == [1])
        assert isinstance(reported[0], ZeroDivisionError)
    finally:
        loop.set_exception_handler(None)
