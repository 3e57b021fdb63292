"""Helpers for the control-plane tests: AWS error assertions, test CAs, device certificates."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.keys import KeyType, generate_private_key
from fleet_sim.tls.subject import DeviceSubject
from tests.support.devices import make_ca, now_utc

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ProvisioningRole"

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test in this process uses."""
    return f"{prefix}-{next(_counter)}"


@contextmanager
def aws_error(code: str, status: int | None = None) -> Iterator[pytest.ExceptionInfo[ClientError]]:
    """Expect botocore to raise ``ClientError`` with AWS error ``code`` (and HTTP ``status``)."""
    with pytest.raises(ClientError) as info:
        yield info
    error = info.value.response["Error"]
    assert error["Code"] == code, error
    if status is not None:
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def allow_all_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
        }
    )


def new_ca(prefix: str = "ca") -> CertificateAuthority:
    """A fresh root CA with a unique subject (AWS allows 10 CAs per subject)."""
    return make_ca(unique(prefix))


def register_ca(iot: Any, ca: CertificateAuthority, **kwargs: Any) -> dict[str, Any]:
    """RegisterCACertificate in DEFAULT mode with a real verification certificate."""
    code = iot.get_registration_code()["registrationCode"]
    verification = ca.verification_certificate(code, KeyType.EC_P256, now_utc())
    response: dict[str, Any] = iot.register_ca_certificate(
        caCertificate=ca.certificate_pem().decode(),
        verificationCertificate=verification.certificate_pem.decode(),
        **kwargs,
    )
    return response


def device(ca: CertificateAuthority, name: str) -> DeviceIdentity:
    """A device identity issued by ``ca`` with CN ``name``."""
    return ca.issue_identity(DeviceSubject(common_name=name), KeyType.EC_P256, 30, now_utc())


def csr_pem(name: str) -> str:
    """A fresh key's CSR with CN ``name``."""
    key = generate_private_key(KeyType.EC_P256)
    return csr_to_pem(create_csr(key, DeviceSubject(common_name=name))).decode()
