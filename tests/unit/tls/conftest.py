"""Shared CAs and times for the TLS tooling tests (RSA keys are made once per session)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType, PrivateKey, generate_private_key
from fleet_sim.tls.subject import DeviceSubject

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def root_ca() -> CertificateAuthority:
    subject = DeviceSubject(common_name="Test Root CA", organization="Acme", country="US")
    return CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, NOW)


@pytest.fixture(scope="session")
def other_root_ca() -> CertificateAuthority:
    subject = DeviceSubject(common_name="Test Root CA", organization="Acme", country="US")
    return CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, NOW)


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return generate_private_key(KeyType.RSA_2048)


@pytest.fixture(scope="session")
def rsa_root_ca(rsa_key: PrivateKey) -> CertificateAuthority:
    subject = DeviceSubject(common_name="RSA Root CA")
    return CertificateAuthority.create_root(
        subject, KeyType.RSA_2048, 3650, NOW, private_key=rsa_key
    )


@pytest.fixture(scope="session")
def intermediate_ca(root_ca: CertificateAuthority) -> CertificateAuthority:
    return root_ca.create_intermediate(
        DeviceSubject(common_name="Test Intermediate CA"), KeyType.EC_P256, 1825, NOW
    )
