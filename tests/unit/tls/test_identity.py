from __future__ import annotations

import pytest

from fleet_sim.errors import CertificateError
from fleet_sim.tls.identity import DeviceIdentity, check_key_matches
from fleet_sim.tls.keys import KeyType, generate_private_key, public_key_der
from fleet_sim.tls.subject import DeviceSubject


def test_chain_bundle_is_cat_of_cert_and_ca_files(root_ca, now):
    identity = root_ca.issue_identity(DeviceSubject("d"), KeyType.EC_P256, 1, now)
    # `cat deviceCert.crt rootCA.pem`
    assert identity.chain_bundle() == identity.certificate_pem + root_ca.certificate_pem()
    assert identity.chain_bundle().count(b"-----BEGIN CERTIFICATE-----") == 2


def test_pems_are_normalised_to_end_in_a_newline(root_ca):
    cert = root_ca.certificate_pem().rstrip(b"\n")
    identity = DeviceIdentity(cert, root_ca.private_key_pem().rstrip(b"\n"), (cert,))
    assert identity.certificate_pem.endswith(b"-----\n")
    assert identity.private_key_pem.endswith(b"-----\n")
    assert b"----------" not in identity.chain_bundle()


def test_from_objects_and_accessors(intermediate_ca, root_ca, now):
    key = generate_private_key(KeyType.EC_P256)
    cert = intermediate_ca.issue(key.public_key(), DeviceSubject("x", country="US"), 1, now)
    identity = DeviceIdentity.from_objects(cert, key, intermediate_ca.certificates)
    assert identity.certificate() == cert
    assert public_key_der(identity.private_key().public_key()) == public_key_der(key.public_key())
    assert identity.subject() == DeviceSubject("x", country="US")
    assert len(identity.certificate_id()) == 64
    assert identity.chain_pems == (intermediate_ca.certificate_pem(), root_ca.certificate_pem())


def test_identity_is_a_hashable_value(root_ca, now):
    identity = root_ca.issue_identity(DeviceSubject("d"), KeyType.EC_P256, 1, now)
    same = DeviceIdentity(identity.certificate_pem, identity.private_key_pem, identity.chain_pems)
    assert identity == same
    assert hash(identity) == hash(same)


def test_load_bundle_and_key(tmp_path, intermediate_ca, now):
    identity = intermediate_ca.issue_identity(DeviceSubject("d"), KeyType.EC_P256, 1, now)
    (tmp_path / "d.chain.crt").write_bytes(identity.chain_bundle())
    (tmp_path / "d.key").write_bytes(identity.private_key_pem)
    assert DeviceIdentity.load(tmp_path / "d.chain.crt", tmp_path / "d.key") == identity


def test_load_rejects_a_key_of_another_certificate(tmp_path, root_ca, now):
    first = root_ca.issue_identity(DeviceSubject("a"), KeyType.EC_P256, 1, now)
    second = root_ca.issue_identity(DeviceSubject("b"), KeyType.EC_P256, 1, now)
    (tmp_path / "a.crt").write_bytes(first.certificate_pem)
    (tmp_path / "b.key").write_bytes(second.private_key_pem)
    key_path = tmp_path / "b.key"
    with pytest.raises(
        CertificateError, match=f"^{key_path}: private key does not match the certificate"
    ) as caught:
        DeviceIdentity.load(tmp_path / "a.crt", key_path)
    assert caught.value.file == key_path


def test_load_missing_files(tmp_path):
    with pytest.raises(CertificateError, match="cannot read certificate"):
        DeviceIdentity.load(tmp_path / "x.crt", tmp_path / "x.key")


def test_check_key_matches(root_ca, rsa_key, now):
    key = generate_private_key(KeyType.EC_P256)
    cert = root_ca.issue(key.public_key(), DeviceSubject("d"), 1, now)
    check_key_matches(cert, key)
    with pytest.raises(CertificateError, match=r"^dev\.key: private key does not match .*CN=d"):
        check_key_matches(cert, generate_private_key(KeyType.EC_P256), "dev.key")
    with pytest.raises(CertificateError, match="does not match"):
        check_key_matches(cert, rsa_key)
