"""Helpers for the registry tests: a small EC PKI, constants, registry factories."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from fleet_sim.emulator.registry import Registry
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.inspect import certificate_id, certificate_to_pem
from fleet_sim.tls.keys import KeyType, generate_private_key
from fleet_sim.tls.subject import DeviceSubject

ISSUED_AT = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
NOW = ISSUED_AT.timestamp()
REGION = "eu-west-1"
ACCOUNT = "111122223333"

POLICY = (
    '{"Version": "2012-10-17", '
    '"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}'
)
POLICY_2 = (
    '{"Version": "2012-10-17", '
    '"Statement": [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}]}'
)
TEMPLATE = '{"Parameters": {"SerialNumber": {"Type": "String"}}, "Resources": {}}'
ROLE = "arn:aws:iam::111122223333:role/ProvisioningRole"


@dataclass
class Pki:
    """Two CAs with the same subject (different keys), a third CA, and a leaf factory."""

    ca: CertificateAuthority
    twin: CertificateAuthority
    other: CertificateAuthority

    def leaf(
        self, common_name: str = "device", ca: CertificateAuthority | None = None, **fields: str
    ) -> str:
        issuer = ca or self.ca
        key = generate_private_key(KeyType.EC_P256)
        subject = DeviceSubject(common_name=common_name, **fields)
        cert = issuer.issue(key.public_key(), subject, 365, ISSUED_AT)
        return certificate_to_pem(cert).decode()

    @staticmethod
    def pem(ca: CertificateAuthority) -> str:
        return ca.certificate_pem().decode()

    @staticmethod
    def id_of(pem: str) -> str:
        return certificate_id(x509.load_pem_x509_certificate(pem.encode()))

    @staticmethod
    def verification(ca: CertificateAuthority, code: str) -> str:
        return ca.verification_certificate(
            code, KeyType.EC_P256, ISSUED_AT
        ).certificate_pem.decode()


def open_registry(path: str | Path, seed: int = 7) -> Registry:
    return Registry.open(
        path, region=REGION, account_id=ACCOUNT, random_bytes=random.Random(seed).randbytes
    )


def register_sni_ca(registry: Registry, pki: Pki, ca: CertificateAuthority | None = None) -> str:
    """Register ``ca`` (default: pki.ca) ACTIVE in SNI_ONLY mode; return its id."""
    record = registry.cas.register(
        pki.pem(ca or pki.ca), now=NOW, set_as_active=True, certificate_mode="SNI_ONLY"
    )
    return record.certificate_id
