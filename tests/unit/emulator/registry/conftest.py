"""Fixtures for the registry tests: a small EC PKI, registries in memory and on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_sim.emulator.registry import Registry, RegistryEvent
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.emulator.registry.support import ISSUED_AT, Pki, open_registry


@pytest.fixture(scope="session")
def pki() -> Pki:
    subject = DeviceSubject(common_name="Registry Test CA", organization="Acme", country="US")
    return Pki(
        ca=CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, ISSUED_AT),
        twin=CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, ISSUED_AT),
        other=CertificateAuthority.create_root(
            DeviceSubject(common_name="Other CA"), KeyType.EC_P256, 3650, ISSUED_AT
        ),
    )


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = open_registry(":memory:")
    yield reg
    reg.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.sqlite3"


@pytest.fixture
def events(registry: Registry) -> list[RegistryEvent]:
    seen: list[RegistryEvent] = []
    registry.subscribe(seen.append)
    return seen
