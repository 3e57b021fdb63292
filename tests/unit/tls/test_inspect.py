from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleet_sim.errors import CertificateError
from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.inspect import (
    CertificateKind,
    certificate_id,
    check_issued_by,
    check_validity,
    check_verification_certificate,
    classify,
    describe,
    load_certificate_file,
    load_pem_certificates,
    looks_like_registration_code,
)
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject

CODE = "ab" * 32


def test_certificate_id_is_sha256_of_der(root_ca):
    der = root_ca.certificate.public_bytes(serialization.Encoding.DER)
    cid = certificate_id(root_ca.certificate)
    assert cid == hashlib.sha256(der).hexdigest()
    assert len(cid) == 64
    assert cid == cid.lower()


def test_load_bundle_in_order(intermediate_ca, root_ca, now):
    identity = intermediate_ca.issue_identity(DeviceSubject("d"), KeyType.EC_P256, 1, now)
    certs = load_pem_certificates(identity.chain_bundle(), source="bundle.crt")
    assert certs == [identity.certificate(), intermediate_ca.certificate, root_ca.certificate]


def test_other_blocks_are_ignored_next_to_a_certificate(root_ca):
    data = root_ca.private_key_pem() + root_ca.certificate_pem()
    assert load_pem_certificates(data) == [root_ca.certificate]


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda ca: ca.private_key_pem(), "found a private key"),
        (lambda ca: b"not a pem at all", "found no PEM data"),
        (lambda ca: b"", "found nothing \\(empty file\\)"),
        (lambda ca: ca.certificate_pem()[:100], "found a truncated or malformed PEM block"),
        (
            lambda ca: csr_to_pem(create_csr(ca.private_key, DeviceSubject("x"))),
            "found a certificate signing request",
        ),
    ],
)
def test_not_a_certificate_names_the_source(root_ca, make, phrase):
    with pytest.raises(CertificateError, match=f"^dev.pem: expected a PEM certificate, {phrase}"):
        load_pem_certificates(make(root_ca), source="dev.pem")


def test_malformed_certificate_block(root_ca):
    bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateError, match=r"^x: certificate #2 in the file is malformed"):
        load_pem_certificates(root_ca.certificate_pem() + bad, source="x")


def test_error_without_source_has_no_file(root_ca):
    with pytest.raises(CertificateError) as caught:
        load_pem_certificates(b"junk")
    assert caught.value.file is None
    assert str(caught.value).startswith("expected a PEM certificate")


def test_load_certificate_file(tmp_path, root_ca):
    path = tmp_path / "root.pem"
    path.write_bytes(root_ca.certificate_pem())
    assert load_certificate_file(path) == [root_ca.certificate]
    with pytest.raises(CertificateError, match="cannot read certificate"):
        load_certificate_file(tmp_path / "missing.pem")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CODE, True),
        (CODE.upper(), True),
        (CODE[:-1], False),
        (CODE + "0", False),
        ("g" * 64, False),
        ("6f1c3c9e-3b2a-4b1e-9c3a-0a6e3f1b2c4d", False),
        (None, False),
    ],
)
def test_registration_code_shape(text, expected):
    assert looks_like_registration_code(text) is expected


def test_classify_every_kind(root_ca, intermediate_ca, now):
    device = root_ca.issue_identity(DeviceSubject("sensor-1"), KeyType.EC_P256, 1, now)
    verification = root_ca.verification_certificate(CODE, KeyType.EC_P256, now)
    assert classify(root_ca.certificate) is CertificateKind.ROOT_CA
    assert classify(intermediate_ca.certificate) is CertificateKind.INTERMEDIATE_CA
    assert classify(device.certificate()) is CertificateKind.DEVICE
    assert classify(verification.certificate()) is CertificateKind.VERIFICATION


def test_describe_device(intermediate_ca, now):
    subject = DeviceSubject(
        common_name="sensor-7",
        country="US",
        organization="Acme",
        organizational_unit="Fleet",
        state="WA",
        locality="Seattle",
        serial_number="SN7",
        dn_qualifier="q1",
    )
    identity = intermediate_ca.issue_identity(subject, KeyType.RSA_2048, 10, now, serial=77)
    info = describe(identity.certificate())
    assert info.certificate_id == identity.certificate_id()
    assert info.kind is CertificateKind.DEVICE
    assert info.subject == subject
    assert "serialNumber=SN7" in info.subject_dn
    assert "dnQualifier=q1" in info.subject_dn
    assert info.issuer == DeviceSubject(common_name="Test Intermediate CA")
    assert info.issuer_dn == "CN=Test Intermediate CA"
    assert info.serial == 77
    assert info.not_valid_after == now + timedelta(days=10)
    assert info.key_type == "rsa-2048"
    assert info.signature_algorithm == "ecdsa-with-SHA256"
    assert not info.is_ca
    assert not info.self_signed
    ca_ski = intermediate_ca.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value.digest.hex()
    assert info.authority_key_id == ca_ski
    assert info.subject_key_id is not None


def test_describe_root_and_json(root_ca, rsa_root_ca, now):
    info = describe(root_ca.certificate)
    assert info.kind is CertificateKind.ROOT_CA
    assert info.is_ca
    assert info.self_signed
    assert info.path_length is None
    assert info.subject_key_id == info.authority_key_id
    data = json.loads(json.dumps(info.to_json_dict()))
    assert data["kind"] == "root-ca"
    assert data["subject"] == {
        "common_name": "Test Root CA",
        "country": "US",
        "organization": "Acme",
    }
    assert data["serial"] == format(root_ca.certificate.serial_number, "x")
    assert data["not_valid_after"] == (now + timedelta(days=3650)).isoformat()
    assert data["certificate_id"] == root_ca.certificate_id
    assert describe(rsa_root_ca.certificate).signature_algorithm == "sha256WithRSAEncryption"


def test_validity_status(root_ca, now):
    info = describe(root_ca.certificate)
    assert info.validity_status(now) == "valid"
    assert info.is_valid_at(now)
    assert info.validity_status(now - timedelta(days=1)) == "not-yet-valid"
    assert info.validity_status(now + timedelta(days=3650)) == "expired"
    assert not info.is_valid_at(now + timedelta(days=3650))


def test_check_validity_and_issued_by(root_ca, other_root_ca, now):
    check_validity(root_ca.certificate, now)
    with pytest.raises(CertificateError, match=r"^f: thing expired on"):
        check_validity(root_ca.certificate, now + timedelta(days=4000), source="f", what="thing")
    check_issued_by(root_ca.certificate, root_ca.certificate)
    # Same subject DN, other key: the signature decides.
    with pytest.raises(CertificateError, match="certificate is not signed by 'CN=Test Root CA"):
        check_issued_by(root_ca.certificate, other_root_ca.certificate)


def test_check_verification_certificate(root_ca, other_root_ca, now):
    verification = root_ca.verification_certificate(CODE, KeyType.EC_P256, now).certificate()
    check_verification_certificate(verification, root_ca.certificate, CODE, now=now)
    with pytest.raises(CertificateError, match="is not the registration code"):
        check_verification_certificate(verification, root_ca.certificate, "cd" * 32)
    with pytest.raises(CertificateError, match="verification certificate is not signed by"):
        check_verification_certificate(verification, other_root_ca.certificate, CODE)
    with pytest.raises(CertificateError, match="verification certificate expired"):
        check_verification_certificate(
            verification, root_ca.certificate, CODE, now=now + timedelta(days=366)
        )
