"""Our native client against mosquitto (mutual TLS): it is not tuned to our own broker."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from fleet_sim.device.link import Endpoint
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.errors import ConnectionFailed
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, Publish
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject
from fleet_sim.transport.tls_protocol import ReadBuffer
from tests.support.devices import make_ca, now_utc
from tests.support.mosquitto import mosquitto_tls

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("version", [ProtocolVersion.MQTT_3_1_1, ProtocolVersion.MQTT_5])
async def test_native_client_round_trip_through_mosquitto(
    tmp_path: Path, version: ProtocolVersion
) -> None:
    with mosquitto_tls(tmp_path) as broker:
        identity = broker.ca.issue_identity(
            DeviceSubject(common_name="dev-1"), KeyType.EC_P256, 30, now_utc()
        )
        files = write_identity(identity, tmp_path, "dev-1")
        settings = TlsSettings(ca_file=broker.ca_file)
        inbox: list[Publish] = []
        conn = NativeConnection(
            ClientSession("dev-1", version=version),
            Endpoint(broker.host, broker.port, "localhost"),
            client_context(settings, files.chain_bundle, files.private_key),
            read_buffer=ReadBuffer(),
            on_message=inbox.append,
        )
        timings = await conn.connect(timeout_s=10)
        assert timings.total_s > 0
        assert await conn.subscribe([("t/#", 1)], timeout_s=10) == (1,)
        for i in range(20):
            await conn.publish(f"t/{i}", b"x" * 100, qos=1, timeout_s=10)
        for _ in range(200):
            if len(inbox) == 20:
                break
            await asyncio.sleep(0.01)
        assert sorted(m.topic for m in inbox) == sorted(f"t/{i}" for i in range(20))
        await conn.disconnect()


async def test_mosquitto_rejects_a_certificate_from_another_ca(tmp_path: Path) -> None:
    with mosquitto_tls(tmp_path) as broker:
        stranger = make_ca("stranger")
        identity = stranger.issue_identity(
            DeviceSubject(common_name="x"), KeyType.EC_P256, 30, now_utc()
        )
        files = write_identity(identity, tmp_path, "x")
        settings = TlsSettings(ca_file=broker.ca_file, max_version=ssl.TLSVersion.TLSv1_2)
        conn = NativeConnection(
            ClientSession("x"),
            Endpoint(broker.host, broker.port, "localhost"),
            client_context(settings, files.chain_bundle, files.private_key),
            read_buffer=ReadBuffer(),
        )
        with pytest.raises(ConnectionFailed) as caught:
            await conn.connect(timeout_s=10)
        assert caught.value.failure == "tls_cert_rejected"
