"""Just-in-time registration on the emulator: the registered event, its re-publication while
the certificate is pending, and the reference activator running as a local rule."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import RegistrationTimestamp
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.lambdas import jitr_activator
from tests.integration.provisioning.support import (
    REGISTERED,
    config,
    connect_with_retries,
    device_files,
    eventually,
    refused,
    register_jit_ca,
    subscriber,
    unique,
)

EVENT_FIELDS = {
    "certificateId",
    "caCertificateId",
    "timestamp",
    "certificateStatus",
    "awsAccountId",
    "certificateRegistrationTimestamp",
    "sourceIp",
}


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(config(tmp_path)) as emu:
        yield emu


async def test_unknown_certificate_is_registered_announced_and_dropped(
    emulator: Emulator, tmp_path: Path
) -> None:
    registry = emulator.registry
    ca, ca_id = register_jit_ca(registry)
    name = unique("jitr")
    files, cert_id = device_files(ca, tmp_path, name)
    async with subscriber(emulator, ca, tmp_path, REGISTERED + ca_id) as inbox:
        before_ms = int(time.time() * 1000)
        failure = await refused(emulator, files.chain_bundle, files.private_key, name)
        await eventually(lambda: inbox)
        after_ms = int(time.time() * 1000)
    assert failure == "closed_before_connack"
    assert inbox[0].topic == f"$aws/events/certificates/registered/{ca_id}"
    event = json.loads(inbox[0].payload)
    assert set(event) == EVENT_FIELDS
    assert event["certificateId"] == cert_id
    assert event["caCertificateId"] == ca_id
    assert event["certificateStatus"] == "PENDING_ACTIVATION"
    assert event["awsAccountId"] == "123456789012"
    assert event["certificateRegistrationTimestamp"] is None
    assert event["sourceIp"] == "127.0.0.1"
    assert isinstance(event["timestamp"], int)
    assert before_ms <= event["timestamp"] <= after_ms
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.status == CertificateStatus.PENDING_ACTIVATION
    assert emulator.gateway.dropped["jitr_registered"] == 1
    assert emulator.auto_registration.stats.jitp_scheduled == 0


async def test_a_pending_certificate_connecting_again_republishes_the_event(
    emulator: Emulator, tmp_path: Path
) -> None:
    ca, ca_id = register_jit_ca(emulator.registry)
    name = unique("again")
    files, cert_id = device_files(ca, tmp_path, name)
    async with subscriber(emulator, ca, tmp_path, REGISTERED + ca_id) as inbox:
        for _ in range(3):
            await refused(emulator, files.certificate, files.private_key, name)
        await eventually(lambda: len(inbox) == 3)
    assert [json.loads(m.payload)["certificateId"] for m in inbox] == [cert_id] * 3
    assert emulator.gateway.dropped["jitr_pending"] == 2
    assert emulator.auto_registration.stats.registered == 1


async def test_event_shape_options(tmp_path: Path) -> None:
    settings = config(
        tmp_path,
        registration_timestamp=RegistrationTimestamp.STRING_MS,
        source_ip_in_event=False,
    )
    async with Emulator(settings) as emulator:
        ca, ca_id = register_jit_ca(emulator.registry)
        name = unique("shaped")
        files, cert_id = device_files(ca, tmp_path, name)
        async with subscriber(emulator, ca, tmp_path, REGISTERED + ca_id) as inbox:
            await refused(emulator, files.chain_bundle, files.private_key, name)
            await eventually(lambda: inbox)
        event = json.loads(inbox[0].payload)
        record = emulator.registry.certificate_by_id(cert_id)
        assert record is not None
        assert "sourceIp" not in event
        assert event["certificateRegistrationTimestamp"] == str(int(record.created * 1000))


async def test_reference_activator_as_a_local_rule_onboards_the_device(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = emulator.control_plane_url
    assert url is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL_IOT", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fleetsim")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fleetsim")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("JITR_POLICY_NAME", raising=False)
    rule = emulator.rules.add_rule(
        REGISTERED + "+", jitr_activator.handler, name="jitr_activator", concurrency=4
    )
    registry = emulator.registry
    ca, _ = register_jit_ca(registry)
    name = unique("onboarded")
    files, cert_id = device_files(ca, tmp_path, name)

    conn, drops = await connect_with_retries(emulator, files.chain_bundle, files.private_key, name)
    await conn.disconnect()

    assert drops >= 1
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.status == CertificateStatus.ACTIVE
    assert registry.thing(name) is not None
    assert [t.name for t in registry.things_for_certificate(cert_id)] == [name]
    assert [p for p, _ in registry.policies_for_certificate(cert_id)] == [
        jitr_activator.DEFAULT_POLICY_NAME
    ]
    assert rule.stats.succeeded >= 1
    assert rule.stats.failed == 0
