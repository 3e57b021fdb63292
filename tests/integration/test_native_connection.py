"""The native engine's connection against the in-process emulator, over real TLS sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.device.link import Endpoint
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.errors import ConnectionFailed, ConnectionLost, OperationRejected, OperationTimeout
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, Publish
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject
from fleet_sim.transport.tls_protocol import ReadBuffer
from tests.support.devices import DeviceFiles, make_ca, now_utc, provision_device, register_ca

TIMEOUT = 10.0


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(port=0, data_dir=tmp_path / "emu")) as emu:
        yield emu


@pytest.fixture
def ca(emulator: Emulator) -> CertificateAuthority:
    authority = make_ca()
    register_ca(emulator.registry, authority)
    return authority


def endpoint(emulator: Emulator) -> Endpoint:
    return Endpoint(emulator.info.host, emulator.info.port, server_name=emulator.info.endpoint)


def context_for(
    emulator: Emulator, files: DeviceFiles, *, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    settings = TlsSettings(ca_file=Path(emulator.info.ca_file), max_version=max_version)
    return client_context(settings, files.chain, files.key)


class Dial:
    """Builds a NativeConnection when told where to connect (the tests' shorthand)."""

    def __init__(self, client_id: str, version: ProtocolVersion, inbox: list[Publish] | None):
        self.session = ClientSession(client_id, version=version, keep_alive=60)
        self.inbox = inbox
        self.conn: NativeConnection | None = None

    async def connect(self, where: Endpoint, context: ssl.SSLContext, *, timeout_s: float):
        on_message = None if self.inbox is None else self.inbox.append
        self.conn = NativeConnection(
            self.session, where, context, read_buffer=ReadBuffer(), on_message=on_message
        )
        return await self.conn.connect(timeout_s=timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def connection(
    client_id: str,
    *,
    version: ProtocolVersion = ProtocolVersion.MQTT_3_1_1,
    inbox: list[Publish] | None = None,
) -> Any:
    return Dial(client_id, version, inbox)


@pytest.mark.parametrize("version", [ProtocolVersion.MQTT_3_1_1, ProtocolVersion.MQTT_5])
async def test_connect_publish_receive_with_phase_timings(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, version: ProtocolVersion
) -> None:
    files = provision_device(emulator.registry, ca, "native-1", tmp_path)
    inbox: list[Publish] = []
    conn = connection("native-1", version=version, inbox=inbox)
    timings = await conn.connect(
        endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT
    )
    assert timings.tcp_s > 0
    assert timings.tls_s > 0
    assert timings.mqtt_s > 0
    assert conn.connected
    codes = await conn.subscribe([("devices/native-1/cmd", 1)], timeout_s=TIMEOUT)
    assert codes == (1,)
    await conn.publish("devices/native-1/cmd", b"hello", qos=1, timeout_s=TIMEOUT)
    for _ in range(100):
        if inbox:
            break
        await asyncio.sleep(0.01)
    assert [m.payload for m in inbox] == [b"hello"]
    await conn.disconnect()
    assert await conn.closed is None


async def test_refused_connect_mqtt311_is_closed_before_connack(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = provision_device(emulator.registry, ca, "native-2", tmp_path)
    conn = connection("someone-else")
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
    assert caught.value.failure == "closed_before_connack"


async def test_refused_connect_mqtt5_names_the_reason_code(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = provision_device(emulator.registry, ca, "native-3", tmp_path)
    conn = connection("someone-else", version=ProtocolVersion.MQTT_5)
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
    assert caught.value.failure == "connack_refused:135"


async def test_unknown_certificate_of_a_registered_ca_is_dropped_before_connack(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = ca.issue_identity(
        DeviceSubject(common_name="unknown"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "unknown")
    settings = TlsSettings(ca_file=Path(emulator.info.ca_file))
    conn = connection("unknown")
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(
            endpoint(emulator),
            client_context(settings, files.chain_bundle, files.private_key),
            timeout_s=TIMEOUT,
        )
    assert caught.value.failure == "closed_before_connack"


@pytest.mark.parametrize("max_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_certificate_of_an_unregistered_ca_is_rejected_in_tls(
    emulator: Emulator, tmp_path: Path, max_version: ssl.TLSVersion
) -> None:
    stranger = make_ca("stranger CA")
    identity = stranger.issue_identity(
        DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
    )
    files = write_identity(identity, tmp_path, "x")
    settings = TlsSettings(ca_file=Path(emulator.info.ca_file), max_version=max_version)
    conn = connection("x")
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(
            endpoint(emulator),
            client_context(settings, files.chain_bundle, files.private_key),
            timeout_s=TIMEOUT,
        )
    assert caught.value.failure == "tls_cert_rejected"


async def test_untrusted_server_is_a_handshake_failure(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = provision_device(emulator.registry, ca, "native-4", tmp_path)
    other_root = make_ca("not the emulator")
    (tmp_path / "other.pem").write_bytes(other_root.certificate_pem())
    settings = TlsSettings(ca_file=tmp_path / "other.pem")
    conn = connection("native-4")
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(
            endpoint(emulator), client_context(settings, files.chain, files.key), timeout_s=TIMEOUT
        )
    assert caught.value.failure == "tls_handshake_failed"


async def test_nobody_listening_is_tcp_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = connection("x")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(ConnectionFailed) as caught:
        await conn.connect(Endpoint("127.0.0.1", port, "localhost"), context, timeout_s=TIMEOUT)
    assert caught.value.failure == "tcp_refused"


async def test_denied_publish_mqtt5_is_puback_failure(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = provision_device(emulator.registry, ca, "native-5", tmp_path)
    conn = connection("native-5", version=ProtocolVersion.MQTT_5)
    await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
    with pytest.raises(OperationRejected) as caught:
        await conn.publish("devices/other/x", b"no", qos=1, timeout_s=TIMEOUT)
    assert caught.value.failure == "puback_failure:135"
    await conn.disconnect()


async def test_certificate_deactivation_is_seen_as_server_disconnect(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = provision_device(emulator.registry, ca, "native-6", tmp_path)
    conn = connection("native-6", version=ProtocolVersion.MQTT_5)
    await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
    emulator.registry.certificates.update_status(
        files.certificate_id, CertificateStatus.INACTIVE, now=time.time()
    )
    error = await asyncio.wait_for(conn.closed, TIMEOUT)
    assert isinstance(error, ConnectionLost)
    assert error.failure == "disconnected_by_server:135"


async def test_publish_without_puback_times_out(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    # AWS discards publishes over 100/s per connection; MQTT 3.1.1 gets no PUBACK for them.
    files = provision_device(emulator.registry, ca, "native-7", tmp_path)
    conn = connection("native-7")
    await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
    outcomes = await asyncio.gather(
        *[conn.publish(f"devices/native-7/t{i}", b"x", qos=1, timeout_s=0.5) for i in range(130)],
        return_exceptions=True,
    )
    timeouts = [o for o in outcomes if isinstance(o, OperationTimeout)]
    assert len(timeouts) >= 20
    assert {t.failure for t in timeouts} == {"publish_timeout"}
    assert conn.connected  # a missing PUBACK is not a lost connection
    await conn.disconnect()


async def test_policies_of_the_things_groups_apply_to_its_connection(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    registry = emulator.registry
    arn = f"arn:aws:iot:{registry.region}:{registry.account_id}"
    connect_only = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",'
        f'"Resource":"{arn}:client/${{iot:Connection.Thing.ThingName}}"}}]}}'
    )
    member = provision_device(
        registry, ca, "grouped", tmp_path, policy=connect_only, policy_name="connect-only"
    )
    outsider = provision_device(registry, ca, "outsider", tmp_path, policy_name="connect-only")
    group = registry.thing_groups.create("fleet-publishers", now=time.time())
    registry.policies.create(
        "group-publish",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",'
        f'"Resource":"{arn}:topic/telemetry/*"}}]}}',
        now=time.time(),
    )
    registry.attachments.attach_policy("group-publish", group.arn)
    registry.thing_groups.add_thing("fleet-publishers", "grouped")
    results = {}
    for files in (member, outsider):
        conn = connection(files.client_id, version=ProtocolVersion.MQTT_5)
        await conn.connect(endpoint(emulator), context_for(emulator, files), timeout_s=TIMEOUT)
        try:
            await conn.publish("telemetry/x", b"1", qos=1, timeout_s=TIMEOUT)
            results[files.client_id] = "allowed"
        except OperationRejected as error:
            results[files.client_id] = error.failure
        await conn.disconnect()
    assert results == {"grouped": "allowed", "outsider": "puback_failure:135"}
