from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from fleet_sim.errors import CertificateError
from fleet_sim.tls.keys import (
    KeyType,
    generate_private_key,
    key_type_name,
    load_private_key_file,
    load_private_key_pem,
    private_key_to_pem,
    public_key_der,
)


def test_key_type_values_are_the_cli_spellings():
    assert [k.value for k in KeyType] == ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"]
    assert KeyType("rsa-2048") is KeyType.RSA_2048


def test_parse_is_case_insensitive_and_rejects_unknown():
    assert KeyType.parse(" EC-P384 ") is KeyType.EC_P384
    with pytest.raises(CertificateError, match=r"unknown key type 'ed25519'.*ec-p256"):
        KeyType.parse("ed25519")


@pytest.mark.parametrize(
    ("key_type", "family", "size"),
    [
        (KeyType.EC_P256, ec.EllipticCurvePrivateKey, 256),
        (KeyType.EC_P384, ec.EllipticCurvePrivateKey, 384),
        (KeyType.RSA_2048, rsa.RSAPrivateKey, 2048),
    ],
)
def test_generate_private_key(key_type, family, size):
    key = generate_private_key(key_type)
    assert isinstance(key, family)
    assert key.key_size == size
    assert KeyType.of(key) is key_type
    assert KeyType.of(key.public_key()) is key_type


def test_generate_rsa_3072():
    key = generate_private_key(KeyType.RSA_3072)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072
    assert key.public_key().public_numbers().e == 65537


def test_key_type_name_of_other_keys():
    assert key_type_name(ec.generate_private_key(ec.SECP521R1())) == "ec-p521"
    assert key_type_name(ed25519.Ed25519PrivateKey.generate()) == "ed25519"
    assert KeyType.of(ed25519.Ed25519PrivateKey.generate()) is None


def test_pem_is_pkcs8_and_round_trips():
    key = generate_private_key(KeyType.EC_P256)
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = load_private_key_pem(pem)
    assert public_key_der(loaded.public_key()) == public_key_der(key.public_key())


def test_loads_pkcs1_rsa(rsa_key):
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert isinstance(load_private_key_pem(pem), rsa.RSAPrivateKey)


def test_loads_sec1_ec_after_ec_parameters_block():
    key = generate_private_key(KeyType.EC_P256)
    sec1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    # What `openssl ecparam -name prime256v1 -genkey` writes.
    data = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + sec1
    loaded = load_private_key_pem(data)
    assert public_key_der(loaded.public_key()) == public_key_der(key.public_key())


def test_encrypted_key_needs_the_password():
    key = generate_private_key(KeyType.EC_P256)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CertificateError, match=r"^ca\.key: private key is encrypted"):
        load_private_key_pem(pem, source="ca.key")
    with pytest.raises(CertificateError, match=r"ca\.key: unreadable private key"):
        load_private_key_pem(pem, source="ca.key", password=b"wrong")
    assert isinstance(load_private_key_pem(pem, password=b"secret"), ec.EllipticCurvePrivateKey)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM private key found"),
        (b"hello", "no PEM private key found"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "unreadable"),
    ],
)
def test_bad_key_data_names_the_file(data, message):
    with pytest.raises(CertificateError, match=f"^device.key: {message}") as caught:
        load_private_key_pem(data, source="device.key")
    assert caught.value.file == Path("device.key")


def test_certificate_is_not_a_key(root_ca):
    with pytest.raises(CertificateError, match="no PEM private key found"):
        load_private_key_pem(root_ca.certificate_pem(), source="x.pem")


def test_unsupported_key_family_is_refused():
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateError, match="unsupported key type ed25519"):
        load_private_key_pem(pem, source="k.pem")


def test_load_file(tmp_path):
    key = generate_private_key(KeyType.EC_P256)
    path = tmp_path / "k.pem"
    path.write_bytes(private_key_to_pem(key))
    assert public_key_der(load_private_key_file(path).public_key()) == public_key_der(
        key.public_key()
    )
    missing = tmp_path / "missing.key"
    with pytest.raises(CertificateError, match=f"^{missing}: cannot read private key"):
        load_private_key_file(missing)
