from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet_sim.errors import CertificateError
from fleet_sim.tls.ca import BACKDATE, CertificateAuthority, LeafPurpose
from fleet_sim.tls.csr import create_csr
from fleet_sim.tls.inspect import CertificateKind, certificate_to_pem, classify, is_issued_by
from fleet_sim.tls.keys import KeyType, generate_private_key, private_key_to_pem
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.tls.conftest import NOW
from tests.unit.tls.test_csr import tampered_csr_pem


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


def test_root_is_self_signed_ca_with_openssl_like_extensions(root_ca):
    cert = root_ca.certificate
    assert cert.subject == cert.issuer
    assert is_issued_by(cert, cert)
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length is None
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert root_ca.chain == ()
    assert root_ca.key_type is KeyType.EC_P256


def test_validity_window_comes_from_now(root_ca):
    cert = root_ca.certificate
    assert cert.not_valid_before_utc == NOW - BACKDATE
    assert cert.not_valid_after_utc == NOW + timedelta(days=3650)


def test_rsa_root_signs_with_sha256(rsa_root_ca):
    cert = rsa_root_ca.certificate
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert rsa_root_ca.key_type is KeyType.RSA_2048


def test_intermediate_is_signed_by_parent_and_carries_the_chain(root_ca, intermediate_ca):
    cert = intermediate_ca.certificate
    assert is_issued_by(cert, root_ca.certificate)
    assert cert.issuer == root_ca.certificate.subject
    assert ext(cert, x509.BasicConstraints).value.path_length == 0
    root_ski = ext(root_ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert intermediate_ca.chain == (root_ca.certificate,)
    assert intermediate_ca.certificates == (cert, root_ca.certificate)
    assert classify(cert) is CertificateKind.INTERMEDIATE_CA


def test_issue_device_certificate_from_a_key(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    subject = DeviceSubject(common_name="sensor-1", country="US", serial_number="SN1")
    cert = root_ca.issue(key.public_key(), subject, 30, now)
    assert is_issued_by(cert, root_ca.certificate)
    assert DeviceSubject.from_name(cert.subject) == subject
    assert not ext(cert, x509.BasicConstraints).value.ca
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment
    assert not usage.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc == now + timedelta(days=30)
    assert classify(cert) is CertificateKind.DEVICE


def test_rsa_leaf_allows_key_encipherment(root_ca, now, rsa_key):
    cert = root_ca.issue(rsa_key.public_key(), DeviceSubject("r"), 1, now)
    assert ext(cert, x509.KeyUsage).value.key_encipherment


def test_issue_with_given_serial_and_server_purpose(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    cert = root_ca.issue(
        key.public_key(),
        DeviceSubject("localhost"),
        1,
        now,
        serial=4242,
        purpose=LeafPurpose.SERVER,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    assert cert.serial_number == 4242
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = ext(cert, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_issue_from_csr_keeps_the_whole_csr_subject(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "dev"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    cert = root_ca.issue(csr, None, 10, now)
    assert cert.subject == name
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_issue_from_csr_with_subject_override(root_ca, now):
    csr = create_csr(generate_private_key(KeyType.EC_P256), DeviceSubject("from-csr"))
    cert = root_ca.issue(csr, DeviceSubject("override"), 10, now)
    assert DeviceSubject.from_name(cert.subject).common_name == "override"


def test_csr_with_bad_signature_is_refused(root_ca, now):
    csr = x509.load_pem_x509_csr(tampered_csr_pem())
    with pytest.raises(CertificateError, match="CSR signature does not verify"):
        root_ca.issue(csr, None, 10, now)


def test_bare_key_needs_a_subject(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    with pytest.raises(CertificateError, match="a subject is needed"):
        root_ca.issue(key.public_key(), None, 10, now)
    with pytest.raises(CertificateError, match="subject is empty"):
        root_ca.issue(key.public_key(), DeviceSubject(), 10, now)


@pytest.mark.parametrize(
    ("days", "serial", "message"),
    [(0, None, "at least 1 day"), (1, 0, "serial number must be positive")],
)
def test_bad_validity_or_serial(root_ca, now, days, serial, message):
    key = generate_private_key(KeyType.EC_P256)
    with pytest.raises(CertificateError, match=message):
        root_ca.issue(key.public_key(), DeviceSubject("x"), days, now, serial=serial)


def test_naive_now_is_a_programming_error(root_ca):
    key = generate_private_key(KeyType.EC_P256)
    with pytest.raises(ValueError, match="timezone-aware"):
        root_ca.issue(key.public_key(), DeviceSubject("x"), 1, NOW.replace(tzinfo=None))


def test_expired_ca_does_not_issue(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    later = now + timedelta(days=3651)
    with pytest.raises(CertificateError, match="issuing CA certificate expired on 2035"):
        root_ca.issue(key.public_key(), DeviceSubject("x"), 1, later)
    with pytest.raises(CertificateError, match="expired"):
        root_ca.create_intermediate(DeviceSubject("i"), KeyType.EC_P256, 1, later)


def test_issue_identity_has_key_cert_and_chain(intermediate_ca, root_ca, now):
    identity = intermediate_ca.issue_identity(DeviceSubject("d"), KeyType.EC_P384, 5, now)
    cert = identity.certificate()
    assert is_issued_by(cert, intermediate_ca.certificate)
    assert KeyType.of(identity.private_key()) is KeyType.EC_P384
    assert identity.chain_pems == (intermediate_ca.certificate_pem(), root_ca.certificate_pem())


def test_verification_certificate(root_ca, now):
    code = "0123456789abcdef" * 4
    identity = root_ca.verification_certificate(code, KeyType.EC_P256, now)
    cert = identity.certificate()
    assert DeviceSubject.from_name(cert.subject) == DeviceSubject(common_name=code)
    assert is_issued_by(cert, root_ca.certificate)
    assert classify(cert) is CertificateKind.VERIFICATION


def test_verification_certificate_rejects_empty_or_long_codes(root_ca, now):
    with pytest.raises(CertificateError, match="registration code is empty"):
        root_ca.verification_certificate("  ", KeyType.EC_P256, now)
    with pytest.raises(CertificateError, match="CN must be 1–64"):
        root_ca.verification_certificate("a" * 65, KeyType.EC_P256, now)


# ------------------------------------------------------------------------- loading a CA


def test_from_pem_round_trip(intermediate_ca, now):
    pem = b"".join(intermediate_ca.chain_pems())
    loaded = CertificateAuthority.from_pem(pem, intermediate_ca.private_key_pem(), now)
    assert loaded.certificate == intermediate_ca.certificate
    assert loaded.chain == intermediate_ca.chain
    assert loaded.certificate_id == intermediate_ca.certificate_id


def test_from_files(tmp_path, root_ca, now):
    (tmp_path / "ca.crt").write_bytes(root_ca.certificate_pem())
    (tmp_path / "ca.key").write_bytes(root_ca.private_key_pem())
    loaded = CertificateAuthority.from_files(tmp_path / "ca.crt", tmp_path / "ca.key", now)
    assert loaded.certificate == root_ca.certificate
    with pytest.raises(CertificateError, match=r"nope\.key: cannot read CA private key"):
        CertificateAuthority.from_files(tmp_path / "ca.crt", tmp_path / "nope.key", now)


def test_key_that_does_not_match(root_ca, other_root_ca, now):
    with pytest.raises(CertificateError, match=r"^ca\.key: private key does not match"):
        CertificateAuthority.from_pem(
            root_ca.certificate_pem(),
            other_root_ca.private_key_pem(),
            now,
            certificate_source="ca.crt",
            key_source="ca.key",
        )


def test_leaf_is_not_a_ca(root_ca, now):
    identity = root_ca.issue_identity(DeviceSubject("leaf"), KeyType.EC_P256, 5, now)
    with pytest.raises(CertificateError, match=r"^leaf\.crt: not a CA certificate"):
        CertificateAuthority.from_pem(
            identity.certificate_pem,
            identity.private_key_pem,
            now,
            certificate_source="leaf.crt",
        )


def test_ca_without_key_cert_sign_is_refused(now):
    key = ec.generate_private_key(ec.SECP256R1())
    name = DeviceSubject("no-sign").to_name()
    usage = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateError, match="lacks keyCertSign"):
        CertificateAuthority.from_pem(certificate_to_pem(cert), private_key_to_pem(key), now)


def test_expired_ca_is_refused_with_a_clear_error(now):
    old = CertificateAuthority.create_root(
        DeviceSubject("Old CA"), KeyType.EC_P256, 30, now - timedelta(days=60)
    )
    with pytest.raises(CertificateError, match=r"^old\.crt: CA certificate expired on 2025-12"):
        CertificateAuthority.from_pem(
            old.certificate_pem(), old.private_key_pem(), now, certificate_source="old.crt"
        )


def test_not_yet_valid_ca_is_refused(now):
    future = CertificateAuthority.create_root(
        DeviceSubject("Future CA"), KeyType.EC_P256, 30, now + timedelta(days=2)
    )
    with pytest.raises(CertificateError, match="CA certificate is not valid before"):
        CertificateAuthority.from_pem(future.certificate_pem(), future.private_key_pem(), now)


def test_chain_in_wrong_order_is_refused(root_ca, other_root_ca, intermediate_ca, now):
    pem = intermediate_ca.certificate_pem() + other_root_ca.certificate_pem()
    with pytest.raises(CertificateError, match="certificate #1 of the CA file is not signed by"):
        CertificateAuthority.from_pem(pem, intermediate_ca.private_key_pem(), now)


def test_ca_file_holding_a_key_is_refused(root_ca, now):
    with pytest.raises(CertificateError, match=r"^x: expected a PEM certificate, found a private"):
        CertificateAuthority.from_pem(
            root_ca.private_key_pem(), root_ca.private_key_pem(), now, certificate_source="x"
        )


def test_bad_ip_address_is_a_certificate_error(root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    with pytest.raises(CertificateError, match=r"'999\.1\.1\.1' is not an IP address"):
        root_ca.issue(key.public_key(), DeviceSubject("s"), 1, now, ip_addresses=["999.1.1.1"])
