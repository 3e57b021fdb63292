"""Just-in-time provisioning on the emulator, over real TLS sockets with the native client:
the first connect is dropped without CONNACK, the template runs asynchronously, the next
connect succeeds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.provisioning.jitp import Outcome
from fleet_sim.emulator.registry.models import (
    CertificateMode,
    CertificateStatus,
    RegistrationConfig,
)
from fleet_sim.mqtt.packets import QoS
from tests.integration.provisioning.support import (
    REGISTERED,
    ROLE_ARN,
    TIMEOUT,
    config,
    connect_with_retries,
    device_files,
    dial,
    eventually,
    jitp_config,
    jitp_template,
    refused,
    register_jit_ca,
    subscriber,
    unique,
)


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(config(tmp_path)) as emu:
        yield emu


async def idle(emulator: Emulator) -> None:
    await asyncio.wait_for(emulator.auto_registration.wait_idle(), TIMEOUT)


@pytest.mark.parametrize("chain", [True, False], ids=["chain-presented", "leaf-only"])
async def test_first_connect_dropped_then_template_provisions_then_connect_succeeds(
    tmp_path: Path, chain: bool
) -> None:
    async with Emulator(config(tmp_path, jitp_latency_s=(0.3, 0.3))) as emulator:
        registry = emulator.registry
        ca, ca_id = register_jit_ca(registry, config=jitp_config())
        name = unique("bulb")
        files, cert_id = device_files(ca, tmp_path, name, serial_number="SN-42")
        certificate = files.chain_bundle if chain else files.certificate

        assert await refused(emulator, certificate, files.private_key, name) == (
            "closed_before_connack"
        )
        pending = registry.certificate_by_id(cert_id)
        assert pending is not None
        assert pending.status == CertificateStatus.PENDING_ACTIVATION
        assert pending.ca_certificate_id == ca_id
        assert pending.certificate_mode == CertificateMode.DEFAULT
        assert registry.thing(name) is None  # provisioning has not run yet
        assert emulator.gateway.dropped["jitp_registered"] == 1

        await idle(emulator)
        provisioned = registry.certificate_by_id(cert_id)
        assert provisioned is not None
        assert provisioned.status == CertificateStatus.ACTIVE
        thing = registry.thing(name)
        assert thing is not None
        assert dict(thing.attributes) == {"serial": "SN-42"}
        assert [t.name for t in registry.things_for_certificate(cert_id)] == [name]
        assert len(registry.policies_for_certificate(cert_id)) == 1

        conn = await dial(emulator, certificate, files.private_key, name)
        await conn.publish("foo/bar", b"Hello", qos=QoS.AT_LEAST_ONCE, timeout_s=TIMEOUT)
        await conn.disconnect()
        stats = emulator.auto_registration.stats
        assert stats.registered == 1
        assert stats.jitp_outcomes == {"provisioned": 1}


async def test_jitp_publishes_the_registered_event_by_default(
    emulator: Emulator, tmp_path: Path
) -> None:
    ca, ca_id = register_jit_ca(emulator.registry, config=jitp_config())
    name = unique("evented")
    files, cert_id = device_files(ca, tmp_path, name)
    async with subscriber(emulator, ca, tmp_path, REGISTERED + ca_id) as inbox:
        await refused(emulator, files.chain_bundle, files.private_key, name)
        await eventually(lambda: inbox)
    event = json.loads(inbox[0].payload)
    assert event["certificateId"] == cert_id
    assert event["caCertificateId"] == ca_id
    assert event["certificateStatus"] == "PENDING_ACTIVATION"


async def test_the_registered_event_of_jitp_can_be_switched_off(tmp_path: Path) -> None:
    async with Emulator(config(tmp_path, jitp_registered_event=False)) as emulator:
        ca, ca_id = register_jit_ca(emulator.registry, config=jitp_config())
        name = unique("silent")
        files, _ = device_files(ca, tmp_path, name)
        async with subscriber(emulator, ca, tmp_path, REGISTERED + ca_id) as inbox:
            await refused(emulator, files.chain_bundle, files.private_key, name)
            await idle(emulator)
            await asyncio.sleep(0.05)
        assert inbox == []
        assert emulator.auto_registration.stats.events_published == 0
        await connect_with_retries(emulator, files.chain_bundle, files.private_key, name)


async def test_reconnect_while_provisioning_does_not_schedule_twice(tmp_path: Path) -> None:
    async with Emulator(config(tmp_path, jitp_latency_s=(0.5, 0.5))) as emulator:
        ca, _ = register_jit_ca(emulator.registry, config=jitp_config())
        name = unique("eager")
        files, _ = device_files(ca, tmp_path, name)
        for _ in range(2):
            await refused(emulator, files.chain_bundle, files.private_key, name)
        assert emulator.gateway.dropped["jitp_in_progress"] == 1
        assert emulator.auto_registration.stats.jitp_scheduled == 1
        await idle(emulator)
        conn, drops = await connect_with_retries(
            emulator, files.chain_bundle, files.private_key, name
        )
        assert drops == 0
        await conn.disconnect()


async def test_sni_only_ca_requires_sni(tmp_path: Path) -> None:
    settings = replace(config(tmp_path), require_sni=False)
    async with Emulator(settings) as emulator:
        registry = emulator.registry
        ca, _ = register_jit_ca(registry, config=jitp_config(), mode=CertificateMode.SNI_ONLY)
        name = unique("sni")
        files, cert_id = device_files(ca, tmp_path, name)

        await refused(emulator, files.chain_bundle, files.private_key, name, sni=False)
        assert emulator.gateway.dropped["sni_required"] == 1
        assert registry.certificate_by_id(cert_id) is None

        await refused(emulator, files.chain_bundle, files.private_key, name)
        record = registry.certificate_by_id(cert_id)
        assert record is not None
        assert record.certificate_mode == CertificateMode.SNI_ONLY
        conn, _ = await connect_with_retries(emulator, files.chain_bundle, files.private_key, name)
        await conn.disconnect()


@pytest.mark.parametrize(
    ("active", "auto", "reason"),
    [(False, True, "ca_inactive"), (True, False, "auto_registration_disabled")],
    ids=["ca-inactive", "auto-registration-disabled"],
)
async def test_refused_and_nothing_registered(
    emulator: Emulator, tmp_path: Path, active: bool, auto: bool, reason: str
) -> None:
    ca, _ = register_jit_ca(emulator.registry, config=jitp_config(), active=active, auto=auto)
    name = unique("refused")
    files, cert_id = device_files(ca, tmp_path, name)
    for _ in range(2):
        await refused(emulator, files.chain_bundle, files.private_key, name)
    assert emulator.gateway.dropped[reason] == 2
    assert emulator.registry.certificate_by_id(cert_id) is None
    assert emulator.auto_registration.stats.jitp_scheduled == 0


async def test_a_certificate_lacking_a_declared_parameter_stays_pending(
    emulator: Emulator, tmp_path: Path
) -> None:
    registry = emulator.registry
    ca, _ = register_jit_ca(registry, config=jitp_config(jitp_template(country=True)))
    name = unique("stateless")
    files, cert_id = device_files(ca, tmp_path, name)  # no C= in the subject
    for attempt in range(1, 3):
        await refused(emulator, files.chain_bundle, files.private_key, name)
        await idle(emulator)
        failures = emulator.auto_registration.stats.jitp_outcomes["failed"]
        assert failures == attempt
    last = emulator.auto_registration.recent[-1]
    assert last.outcome is Outcome.FAILED
    assert "AWS::IoT::Certificate::Country" in last.detail
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.status == CertificateStatus.PENDING_ACTIVATION
    assert registry.thing(name) is None
    assert registry.policies_for_certificate(cert_id) == []

    # The same template provisions a device whose subject has the country.
    other = unique("stated")
    files, _ = device_files(ca, tmp_path, other, country="US")
    conn, _ = await connect_with_retries(emulator, files.chain_bundle, files.private_key, other)
    await conn.disconnect()


async def test_register_thing_quota_throttles_a_burst_and_retries_succeed(tmp_path: Path) -> None:
    settings = config(tmp_path, jitp_latency_s=(0.0, 0.05), register_thing_tps=10.0)
    async with Emulator(settings) as emulator:
        ca, _ = register_jit_ca(emulator.registry, config=jitp_config())
        names = [unique("burst") for _ in range(30)]
        devices = [device_files(ca, tmp_path, name) for name in names]
        results = await asyncio.gather(
            *(
                connect_with_retries(emulator, files.chain_bundle, files.private_key, name)
                for name, (files, _) in zip(names, devices, strict=True)
            )
        )
        for conn, drops in results:
            assert drops >= 1
            await conn.disconnect()
        outcomes = emulator.auto_registration.stats.jitp_outcomes
        assert outcomes["provisioned"] == 30
        assert outcomes["throttled"] >= 10
        for _, cert_id in devices:
            record = emulator.registry.certificate_by_id(cert_id)
            assert record is not None
            assert record.status == CertificateStatus.ACTIVE


async def test_injected_errors_keep_the_certificate_pending_until_a_retry_succeeds(
    tmp_path: Path,
) -> None:
    async with Emulator(config(tmp_path, jitp_error_rate=1.0)) as emulator:
        service = emulator.auto_registration
        ca, _ = register_jit_ca(emulator.registry, config=jitp_config())
        name = unique("unlucky")
        files, cert_id = device_files(ca, tmp_path, name)
        for _ in range(2):
            await refused(emulator, files.chain_bundle, files.private_key, name)
            await idle(emulator)
        assert service.stats.jitp_outcomes == {"injected_error": 2}
        record = emulator.registry.certificate_by_id(cert_id)
        assert record is not None
        assert record.status == CertificateStatus.PENDING_ACTIVATION

        service.provisioner.config = replace(service.config, jitp_error_rate=0.0)
        conn, _ = await connect_with_retries(emulator, files.chain_bundle, files.private_key, name)
        await conn.disconnect()
        assert service.stats.jitp_outcomes["provisioned"] == 1


async def test_template_name_of_a_jitp_template_uses_its_default_version(
    emulator: Emulator, tmp_path: Path
) -> None:
    registry = emulator.registry
    template_name = unique("jitp-template")
    first = jitp_template()
    first["Resources"]["thing"]["Properties"]["AttributePayload"] = {"version": "v1"}
    second = jitp_template()
    second["Resources"]["thing"]["Properties"]["AttributePayload"] = {"version": "v2"}
    registry.templates.create(
        template_name,
        json.dumps(first),
        now=time.time(),
        provisioning_role_arn=ROLE_ARN,
        type="JITP",
    )
    registry.templates.create_version(
        template_name, json.dumps(second), now=time.time(), set_as_default=True
    )
    ca, _ = register_jit_ca(registry, config=RegistrationConfig(template_name=template_name))
    name = unique("named")
    files, _ = device_files(ca, tmp_path, name)
    conn, drops = await connect_with_retries(emulator, files.chain_bundle, files.private_key, name)
    await conn.disconnect()
    assert drops == 1
    thing = registry.thing(name)
    assert thing is not None
    assert dict(thing.attributes) == {"version": "v2"}
