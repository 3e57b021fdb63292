"""The auto-registration service on a manual clock: JITP latency and quota, the CA lookup
among CAs sharing a subject, the registered event's payload, and closing."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography import x509

from fleet_sim.clock import ManualClock
from fleet_sim.emulator.config import AutoRegistrationConfig
from fleet_sim.emulator.provisioning.auto_registration import (
    AutoRegistrationService,
    registered_event,
)
from fleet_sim.emulator.provisioning.jitp import Outcome
from fleet_sim.emulator.registry.models import CertificateStatus, RegistrationConfig
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject

NOW = datetime(2025, 1, 1, tzinfo=UTC)
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "AWS::IoT::Certificate::CommonName": {"Type": "String"},
            "AWS::IoT::Certificate::Id": {"Type": "String"},
        },
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}},
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}},
            },
        },
    }
)


class Events:
    """Collects what the service publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, object], int]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, json.loads(payload), qos))


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry.open(":memory:", random_bytes=random.Random(3).randbytes)
    yield reg
    reg.close()


def make_ca(name: str = "unit JIT CA") -> CertificateAuthority:
    return CertificateAuthority.create_root(
        DeviceSubject(common_name=name), KeyType.EC_P256, 30, NOW
    )


def register(
    registry: Registry,
    ca: CertificateAuthority,
    *,
    config: RegistrationConfig | None = None,
    active: bool = True,
    auto: bool = True,
) -> str:
    code = registry.cas.get_registration_code()
    verification = ca.verification_certificate(code, KeyType.EC_P256, NOW)
    return registry.cas.register(
        ca.certificate_pem(),
        now=NOW.timestamp(),
        verification_pem=verification.certificate_pem,
        set_as_active=active,
        allow_auto_registration=auto,
        registration_config=config,
    ).certificate_id


def leaf(ca: CertificateAuthority, name: str) -> tuple[x509.Certificate, str]:
    identity = ca.issue_identity(DeviceSubject(common_name=name), KeyType.EC_P256, 10, NOW)
    return identity.certificate(), identity.certificate_id()


def service(
    registry: Registry, clock: ManualClock, events: Events, **settings: object
) -> AutoRegistrationService:
    return AutoRegistrationService(
        registry,
        events,
        clock=clock,
        rng=random.Random(1),
        config=AutoRegistrationConfig(**settings),  # type: ignore[arg-type]
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_jitp_runs_after_the_latency_on_the_injected_clock(registry: Registry) -> None:
    clock, events = ManualClock(), Events()
    jit = service(registry, clock, events, jitp_latency_s=(2.0, 2.0))
    ca = make_ca()
    register(registry, ca, config=RegistrationConfig(template_body=TEMPLATE))
    cert, cert_id = leaf(ca, "lazy")
    assert jit.unknown_certificate(cert, cert_id, server_name="x") == "jitp_registered"
    clock.advance(1.9)
    await settle()
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.status == CertificateStatus.PENDING_ACTIVATION
    clock.advance(0.2)
    await settle()
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.status == CertificateStatus.ACTIVE
    assert jit.in_progress == 0
    await jit.close()


async def test_quota_throttles_then_a_later_connect_retries(registry: Registry) -> None:
    clock, events = ManualClock(), Events()
    jit = service(registry, clock, events, jitp_latency_s=(0.0, 0.0), register_thing_tps=1.0)
    ca = make_ca()
    register(registry, ca, config=RegistrationConfig(template_body=TEMPLATE))
    first, first_id = leaf(ca, "first")
    second, second_id = leaf(ca, "second")
    jit.unknown_certificate(first, first_id, server_name="x")
    jit.unknown_certificate(second, second_id, server_name="x")
    await settle()
    assert [a.outcome for a in jit.recent] == [Outcome.PROVISIONED, Outcome.THROTTLED]
    record = registry.certificate_by_id(second_id)
    assert record is not None
    assert record.status == CertificateStatus.PENDING_ACTIVATION

    assert jit.pending_certificate(record, server_name="x") == "jitp_pending"  # too early
    await settle()
    assert jit.recent[-1].outcome == "throttled"
    clock.advance(1.0)
    assert jit.pending_certificate(record, server_name="x") == "jitp_pending"
    await settle()
    assert jit.recent[-1].outcome == "provisioned"
    assert dict(jit.stats.jitp_outcomes) == {"provisioned": 2, "throttled": 2}
    await jit.close()


async def test_the_signing_ca_is_found_among_cas_sharing_a_subject(registry: Registry) -> None:
    clock, events = ManualClock(), Events()
    jit = service(registry, clock, events)
    twins = [make_ca("twin"), make_ca("twin"), make_ca("twin")]
    ids = [register(registry, twin, auto=index != 0) for index, twin in enumerate(twins)]
    cert, cert_id = leaf(twins[2], "twin-device")
    assert jit.unknown_certificate(cert, cert_id, server_name=None) == "jitr_registered"
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.ca_certificate_id == ids[2]
    [(topic, event, qos)] = events.published
    assert topic == f"$aws/events/certificates/registered/{ids[2]}"
    assert qos == 1
    assert event["caCertificateId"] == ids[2]

    # Signed by the twin whose auto-registration is off: refused, not registered.
    refused, refused_id = leaf(twins[0], "refused-twin")
    assert jit.unknown_certificate(refused, refused_id, server_name=None) == (
        "auto_registration_disabled"
    )
    assert registry.certificate_by_id(refused_id) is None


async def test_a_ca_subject_with_serial_number_and_dn_qualifier_is_found(
    registry: Registry,
) -> None:
    jit = service(registry, ManualClock(), Events())
    subject = DeviceSubject(common_name="serial CA", serial_number="42", dn_qualifier="q1")
    ca = CertificateAuthority.create_root(subject, KeyType.EC_P256, 30, NOW)
    ca_id = register(registry, ca)
    cert, cert_id = leaf(ca, "serial-device")
    assert jit.unknown_certificate(cert, cert_id, server_name="x") == "jitr_registered"
    record = registry.certificate_by_id(cert_id)
    assert record is not None
    assert record.ca_certificate_id == ca_id


async def test_a_certificate_no_registered_ca_signed_is_unknown(registry: Registry) -> None:
    jit = service(registry, ManualClock(), Events())
    register(registry, make_ca("known"))
    cert, cert_id = leaf(make_ca("known"), "impostor")  # same subject, another key
    assert jit.unknown_certificate(cert, cert_id, server_name="x") == "unknown_certificate"
    assert jit.stats.refused == {"unknown_certificate": 1}


async def test_close_cancels_scheduled_attempts(registry: Registry) -> None:
    clock, events = ManualClock(), Events()
    jit = service(registry, clock, events, jitp_latency_s=(5.0, 5.0))
    ca = make_ca()
    register(registry, ca, config=RegistrationConfig(template_body=TEMPLATE))
    cert, cert_id = leaf(ca, "cancelled")
    jit.unknown_certificate(cert, cert_id, server_name="x")
    assert jit.in_progress == 1
    await jit.close()
    clock.advance(10.0)
    await settle()
    assert jit.in_progress == 0
    assert list(jit.recent) == []


def test_registered_event_payload() -> None:
    payload = registered_event(
        certificate_id="c" * 64,
        ca_certificate_id="a" * 64,
        timestamp_ms=1695074220131,
        account_id="123456789012",
        registration_timestamp_ms=1623723165331,
        source_ip="10.0.0.7",
    )
    assert json.loads(payload) == {
        "certificateId": "c" * 64,
        "caCertificateId": "a" * 64,
        "timestamp": 1695074220131,
        "certificateStatus": "PENDING_ACTIVATION",
        "awsAccountId": "123456789012",
        "certificateRegistrationTimestamp": "1623723165331",
        "sourceIp": "10.0.0.7",
    }
    bare = json.loads(
        registered_event(
            certificate_id="c" * 64,
            ca_certificate_id="a" * 64,
            timestamp_ms=1,
            account_id="123456789012",
            registration_timestamp_ms=None,
            source_ip=None,
        )
    )
    assert bare["certificateRegistrationTimestamp"] is None
    assert "sourceIp" not in bare
