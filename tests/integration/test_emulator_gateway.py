"""The emulator's TLS gateway over real sockets: versions, client certificates, trust store,
certificate and CA status, ALPN, handshake and keep-alive timeouts, ``endpoint.json``.

Stdlib ``ssl`` and raw MQTT (our codec) on purpose: these tests need to stop half-way, omit a
certificate, or stay silent, which no ready-made client does.
"""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    ProtocolVersion,
    PubAck,
    Publish,
    QoS,
    ReasonCode,
)
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject
from tests.support.devices import DeviceFiles, make_ca, now_utc, provision_device, register_ca
from tests.support.emulator_thread import EmulatorThread
from tests.support.raw_mqtt import (
    RawClient,
    client_context,
    open_watcher,
    publishes_within,
    self_signed_identity,
    tls_connect,
)

V311 = ProtocolVersion.MQTT_3_1_1
V5 = ProtocolVersion.MQTT_5
HANDSHAKE_TIMEOUT_S = 0.75
TLS_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    config = EmulatorConfig(
        port=0,
        alpn_port=0,
        data_dir=tmp_path_factory.mktemp("emulator"),
        handshake_timeout_s=HANDSHAKE_TIMEOUT_S,
        limits=BrokerLimits(min_keep_alive_s=1),
    )
    with EmulatorThread(config) as running:
        yield running


@pytest.fixture(scope="module")
def ca(emu: EmulatorThread):
    authority = make_ca("gateway test CA")
    register_ca(emu.registry, authority)
    return authority


_counter = itertools.count()


@pytest.fixture
def make_device(emu: EmulatorThread, ca, tmp_path: Path):
    def make(authority=None, **kwargs) -> DeviceFiles:
        name = f"gw-{next(_counter)}"
        return provision_device(emu.registry, authority or ca, name, tmp_path, **kwargs)

    return make


def connect(
    emu: EmulatorThread, device: DeviceFiles, version: ProtocolVersion, **connect_args
) -> RawClient:
    """TLS 1.2 (so a certificate refused at the TLS level fails here), then CONNECT."""
    client = RawClient.open(
        emu.info, device.chain, device.key, version=version, tls_version=ssl.TLSVersion.TLSv1_2
    )
    client.send(Connect(client_id=device.client_id, protocol_version=version, **connect_args))
    return client


def connack(client: RawClient) -> ConnAck:
    packet = client.receive()
    assert isinstance(packet, ConnAck), packet
    return packet


def handshake_error(emu: EmulatorThread, context: ssl.SSLContext) -> ssl.SSLError:
    """Handshake, then read: the server's refusal shows in one or the other (TLS 1.3 reports a
    client-certificate failure only after the client thinks the handshake is done)."""
    try:
        with tls_connect(emu.info, context) as tls:
            tls.settimeout(5)
            tls.sendall(b"\x10\x00")  # never answered if the server accepted us
            tls.recv(1)
    except ssl.SSLError as error:
        return error
    raise AssertionError("the server accepted the TLS connection")


def sync(emu: EmulatorThread) -> None:
    """Wait until the emulator's loop has run what registry events queued on it."""
    emu.call(lambda: None)


def counts(emu: EmulatorThread) -> tuple[int, int]:
    return emu.call(
        lambda: (emu.emulator.broker.connection_count, emu.emulator.gateway.open_connections)
    )


def watch(emu: EmulatorThread, make_device, topic_filter: str) -> RawClient:
    watcher = make_device()
    return open_watcher(emu.info, watcher.chain, watcher.key, watcher.client_id, [topic_filter])


# ---------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_tls_version_is_accepted(emu: EmulatorThread, make_device, version) -> None:
    device = make_device()
    context = client_context(emu.info.ca_file, device.chain, device.key, tls_version=version)
    client = RawClient(tls_connect(emu.info, context), V311)
    try:
        assert client.sock.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
        client.send(Connect(client_id=device.client_id))
        assert connack(client).reason_code == 0
    finally:
        client.close()


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_no_client_certificate_fails_the_handshake(emu: EmulatorThread, version) -> None:
    error = handshake_error(emu, client_context(emu.info.ca_file, None, None, tls_version=version))
    expected = "handshake failure" if version is ssl.TLSVersion.TLSv1_2 else "certificate required"
    assert expected in str(error)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_certificate_of_an_unregistered_ca_fails_the_handshake(
    emu: EmulatorThread, tmp_path: Path, version
) -> None:
    stranger = make_ca("not registered")
    identity = stranger.issue_identity(
        DeviceSubject(common_name="stranger"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "stranger")
    context = client_context(
        emu.info.ca_file, files.chain_bundle, files.private_key, tls_version=version
    )
    assert "unknown ca" in str(handshake_error(emu, context))


# ---------------------------------------------------------------------------- certificate state


def test_inactive_certificate_311_is_closed_without_connack(emu: EmulatorThread, make_device):
    device = make_device(status=CertificateStatus.INACTIVE)
    watcher = watch(emu, make_device, f"$aws/events/presence/connect_failed/{device.client_id}")
    client = connect(emu, device, V311)
    try:
        assert client.wait_closed() == []
        [event] = publishes_within(watcher, 2.0)  # the CONNECT was seen, and refused
        assert json.loads(event.payload)["connectFailureReason"] == "AUTHORIZATION_FAILED"
    finally:
        client.close()
        watcher.close()


def test_inactive_certificate_mqtt5_gets_connack_0x87(emu: EmulatorThread, make_device):
    device = make_device(status=CertificateStatus.INACTIVE)
    client = connect(emu, device, V5)
    try:
        code = connack(client).reason_code
        assert code == ReasonCode.NOT_AUTHORIZED
        assert code == 0x87
        assert client.wait_closed() == []
    finally:
        client.close()


def test_inactive_ca_refuses_its_devices(emu: EmulatorThread, make_device, tmp_path: Path):
    authority = make_ca("soon inactive CA")
    ca_id = register_ca(emu.registry, authority)
    live, later_311, later_5 = (make_device(authority) for _ in range(3))
    online = connect(emu, live, V311)
    try:
        assert connack(online).reason_code == 0
        emu.registry.cas.update(ca_id, now=time.time(), new_status="INACTIVE")
        assert online.wait_closed() == []  # dropped at once
        refused = connect(emu, later_311, V311)
        assert refused.wait_closed() == []  # no CONNACK on 3.1.1
        refused.close()
        refused = connect(emu, later_5, V5)
        assert connack(refused).reason_code == 0x87
        refused.close()
    finally:
        online.close()


def test_certificate_registered_without_ca_is_trusted_at_once(
    emu: EmulatorThread, tmp_path: Path
) -> None:
    identity, files = self_signed_identity("self-signed-device", tmp_path)
    context = client_context(emu.info.ca_file, files.chain_bundle, files.private_key)
    assert "unknown ca" in str(handshake_error(emu, context))  # not trusted yet
    record = emu.registry.certificates.register_without_ca(
        identity.certificate_pem, now=time.time(), status="ACTIVE"
    )
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
        }
    )
    emu.registry.policies.create("self-signed-policy", policy, now=time.time())
    emu.registry.attachments.attach_policy("self-signed-policy", record.arn)
    sync(emu)
    client = RawClient(tls_connect(emu.info, context), V5)
    try:
        client.send(Connect(client_id="self-signed-device", protocol_version=V5))
        assert connack(client).reason_code == 0
    finally:
        client.close()


# ---------------------------------------------------------------------------- ALPN port


def test_alpn_port_accepts_x_amzn_mqtt_ca(emu: EmulatorThread, make_device) -> None:
    device = make_device()
    assert emu.info.alpn_port is not None
    client = RawClient.open(
        emu.info, device.chain, device.key, port=emu.info.alpn_port, alpn=["x-amzn-mqtt-ca"]
    )
    try:
        assert client.sock.selected_alpn_protocol() == "x-amzn-mqtt-ca"
        client.send(Connect(client_id=device.client_id))
        assert connack(client).reason_code == 0
    finally:
        client.close()


@pytest.mark.parametrize("alpn", [None, ["mqtt"]], ids=["no-alpn", "alpn-mqtt"])
def test_alpn_port_closes_clients_without_x_amzn_mqtt_ca(
    emu: EmulatorThread, make_device, alpn
) -> None:
    device = make_device()
    client = RawClient.open(
        emu.info,
        device.chain,
        device.key,
        port=emu.info.alpn_port,
        alpn=alpn,
        tls_version=ssl.TLSVersion.TLSv1_2,
    )
    try:
        client.send(Connect(client_id=device.client_id))
        assert client.wait_closed() == []
    finally:
        client.close()


# ---------------------------------------------------------------------------- timeouts


def test_tcp_connection_without_client_hello_is_dropped(emu: EmulatorThread) -> None:
    with socket.create_connection((emu.info.host, emu.info.port), timeout=5) as raw:
        started = time.monotonic()
        assert raw.recv(1) == b""  # closed by the server (a TimeoutError if never)
        elapsed = time.monotonic() - started
    assert HANDSHAKE_TIMEOUT_S * 0.8 <= elapsed < HANDSHAKE_TIMEOUT_S + 2


def test_tls_connection_without_connect_is_dropped(emu: EmulatorThread, make_device) -> None:
    device = make_device()
    client = RawClient.open(emu.info, device.chain, device.key, tls_version=ssl.TLSVersion.TLSv1_2)
    started = time.monotonic()
    try:
        assert client.wait_closed(timeout=5) == []
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert elapsed < HANDSHAKE_TIMEOUT_S + 2


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_silent_client_is_dropped_after_one_and_a_half_keep_alives(
    emu: EmulatorThread, make_device, version: ProtocolVersion
) -> None:
    device = make_device()
    watcher = watch(emu, make_device, f"$aws/events/presence/disconnected/{device.client_id}")
    client = connect(emu, device, version, keep_alive=1)
    try:
        assert connack(client).reason_code == 0
        started = time.monotonic()
        before_close = client.wait_closed(timeout=5)
        elapsed = time.monotonic() - started
        assert 1.2 <= elapsed < 3.0
        if version is V5:
            assert before_close == [Disconnect(reason_code=ReasonCode.KEEP_ALIVE_TIMEOUT)]
        else:
            assert before_close == []
        event = watcher.receive()
        assert isinstance(event, Publish)
        body = json.loads(event.payload)
        assert body["clientId"] == device.client_id
        assert body["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
        assert body["clientInitiatedDisconnect"] is False
        assert emu.call(lambda: emu.emulator.broker.connection(device.client_id)) is None
    finally:
        client.close()
        watcher.close()


def test_pinging_client_outlives_its_keep_alive(emu: EmulatorThread, make_device) -> None:
    device = make_device()
    client = connect(emu, device, V311, keep_alive=1)
    try:
        assert connack(client).reason_code == 0
        for _ in range(5):  # 2.5 s, well past 1.5 x 1 s
            time.sleep(0.5)
            client.send(PingReq())
            assert client.receive() == PingResp()
        topic = f"devices/{device.client_id}/x"
        client.send(Publish(topic=topic, payload=b".", qos=QoS(1), packet_id=1))
        assert client.receive() == PubAck(packet_id=1)
    finally:
        client.close()


# ---------------------------------------------------------------------------- endpoint.json


def test_endpoint_json_matches_the_running_emulator(emu: EmulatorThread) -> None:
    info = emu.info
    written = json.loads((Path(info.data_dir) / "endpoint.json").read_text(encoding="utf-8"))
    assert written == asdict(info)
    assert written["port"] > 0
    assert written["alpn_port"] > 0
    assert written["endpoint"] == "localhost"
    assert Path(written["ca_file"]).is_file()
    # The CA file verifies the server certificate for the endpoint name. (TLS 1.3: the client
    # finishes its handshake before the server checks the missing client certificate.)
    context = ssl.create_default_context(cafile=written["ca_file"])
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((written["host"], written["port"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=written["endpoint"]) as tls:
            certificate = tls.getpeercert()
    assert certificate is not None
    names = certificate["subjectAltName"]
    assert ("DNS", "localhost") in names


def test_gateway_ends_with_no_leftover_connections(emu: EmulatorThread) -> None:
    deadline = time.monotonic() + 5
    while counts(emu) != (0, 0):
        assert time.monotonic() < deadline, counts(emu)
        time.sleep(0.05)
