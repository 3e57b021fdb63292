"""The reference JITR activator called directly, against the emulator's control plane through
real boto3, with crafted registered events; and its dependency-free CN reader."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.lambdas import jitr_activator
from fleet_sim.lambdas.jitr_activator import common_name_from_der, common_name_from_pem
from fleet_sim.tls.inspect import certificate_to_pem
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject
from tests.integration.provisioning.support import register_jit_ca, unique
from tests.support.devices import now_utc
from tests.support.emulator_thread import EmulatorThread


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    config = EmulatorConfig(port=0, data_dir=tmp_path_factory.mktemp("emulator"))
    with EmulatorThread(config) as running:
        yield running


@pytest.fixture
def aws_env(emu: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = emu.info.control_plane_url
    assert url is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL_IOT", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fleetsim")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fleetsim")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("JITR_POLICY_NAME", "JITR_POLICY_DOCUMENT", "FLEETSIM_IOT_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def pending_certificate(emu: EmulatorThread, name: str, status: str = "PENDING_ACTIVATION"):
    """A certificate registered by hand under a JITR CA, and its registered event."""
    ca, ca_id = register_jit_ca(emu.registry)
    issued = ca.issue_identity(DeviceSubject(common_name=name), KeyType.EC_P256, 30, now_utc())
    record = emu.registry.certificates.register(
        issued.certificate_pem,
        now=time.time(),
        ca_certificate_pem=ca.certificate_pem(),
        status=status,
    )
    event = {
        "certificateId": record.certificate_id,
        "caCertificateId": ca_id,
        "timestamp": int(time.time() * 1000),
        "certificateStatus": "PENDING_ACTIVATION",
        "awsAccountId": "123456789012",
        "certificateRegistrationTimestamp": None,
    }
    return record, event


@pytest.mark.usefixtures("aws_env")
def test_activates_creates_the_thing_and_attaches_the_default_policy(emu: EmulatorThread) -> None:
    name = unique("activated")
    record, event = pending_certificate(emu, name)
    result = jitr_activator.handler(event, None)
    assert result == {
        "certificateId": record.certificate_id,
        "thingName": name,
        "policyName": jitr_activator.DEFAULT_POLICY_NAME,
        "status": "ACTIVE",
    }
    registry = emu.registry
    updated = registry.certificate_by_id(record.certificate_id)
    assert updated is not None
    assert updated.status == CertificateStatus.ACTIVE
    assert [t.name for t in registry.things_for_certificate(record.certificate_id)] == [name]
    policy = registry.policies.describe(jitr_activator.DEFAULT_POLICY_NAME)
    assert json.loads(policy.document) == json.loads(jitr_activator.DEFAULT_POLICY_DOCUMENT)
    assert [p for p, _ in registry.policies_for_certificate(record.certificate_id)] == [
        jitr_activator.DEFAULT_POLICY_NAME
    ]
    # A re-published event (the device reconnected meanwhile) changes nothing.
    assert jitr_activator.handler(event, None) == {
        "certificateId": record.certificate_id,
        "skipped": "certificate is ACTIVE",
    }


@pytest.mark.usefixtures("aws_env")
def test_policy_name_and_document_come_from_the_environment(
    emu: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_name = unique("custom-policy")
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
        }
    )
    monkeypatch.setenv("JITR_POLICY_NAME", policy_name)
    monkeypatch.setenv("JITR_POLICY_DOCUMENT", document)
    record, event = pending_certificate(emu, unique("custom"))
    assert jitr_activator.handler(event, None)["policyName"] == policy_name
    assert emu.registry.policies.describe(policy_name).document == document
    assert [p for p, _ in emu.registry.policies_for_certificate(record.certificate_id)] == [
        policy_name
    ]


@pytest.mark.usefixtures("aws_env")
def test_an_existing_thing_is_reused(emu: EmulatorThread) -> None:
    name = unique("existing")
    emu.registry.things.create(name, attributes={"site": "lab"})
    record, event = pending_certificate(emu, name)
    assert jitr_activator.handler(event, None)["status"] == "ACTIVE"
    thing = emu.registry.thing(name)
    assert thing is not None
    assert dict(thing.attributes) == {"site": "lab"}
    assert [t.name for t in emu.registry.things_for_certificate(record.certificate_id)] == [name]


@pytest.mark.usefixtures("aws_env")
def test_a_revoked_certificate_is_left_alone(emu: EmulatorThread) -> None:
    name = unique("revoked")
    record, event = pending_certificate(emu, name, status="REVOKED")
    result = jitr_activator.handler(event, None)
    assert result == {"certificateId": record.certificate_id, "skipped": "certificate is REVOKED"}
    assert emu.registry.thing(name) is None


@pytest.mark.usefixtures("aws_env")
def test_an_unknown_certificate_fails_the_invocation(emu: EmulatorThread) -> None:
    with pytest.raises(ClientError) as caught:
        jitr_activator.handler({"certificateId": "ab" * 32}, None)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.usefixtures("aws_env")
def test_fleetsim_endpoint_variable_is_the_local_fallback(
    emu: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = emu.info.control_plane_url
    assert url is not None
    for name in ("AWS_ENDPOINT_URL_IOT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("FLEETSIM_IOT_ENDPOINT", url)
    settings = jitr_activator.Settings.from_environment({"FLEETSIM_IOT_ENDPOINT": url})
    assert (settings.endpoint_url, settings.region, settings.dummy_credentials) == (
        url,
        "us-east-1",
        True,
    )
    _, event = pending_certificate(emu, unique("fallback"))
    assert jitr_activator.handler(event, None)["status"] == "ACTIVE"


# ---------------------------------------------------------------------- the DER walk


def _certificate(name: x509.Name) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(tz=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("value", "asn1_type"),
    [
        ("sensor-1", _ASN1Type.UTF8String),
        ("Sensor 1", _ASN1Type.PrintableString),
        ("capteur-é-ü-日本", _ASN1Type.UTF8String),
        ("capteur-é", _ASN1Type.BMPString),
        ("x", _ASN1Type.UniversalString),
        ("ia5@example", _ASN1Type.IA5String),
    ],
)
def test_common_name_matches_cryptography(value: str, asn1_type: _ASN1Type) -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, value, _type=asn1_type),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "SN1"),
        ]
    )
    cert = _certificate(name)
    assert common_name_from_pem(certificate_to_pem(cert).decode()) == value
    assert common_name_from_der(cert.public_bytes(Encoding.DER)) == value


def test_no_common_name_is_none() -> None:
    cert = _certificate(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]))
    assert common_name_from_pem(certificate_to_pem(cert).decode()) is None


@pytest.mark.parametrize("text", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\n!!\n"])
def test_garbage_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        common_name_from_pem(text)


def test_truncated_der_is_a_value_error() -> None:
    cert = _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    der = cert.public_bytes(Encoding.DER)
    for cut in (1, 10, len(der) // 2):
        with pytest.raises(ValueError, match=r"."):
            common_name_from_der(der[:cut])
