from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleet_sim.errors import CertificateError
from fleet_sim.tls.csr import create_csr, csr_to_pem, load_csr_file, load_pem_csr
from fleet_sim.tls.keys import KeyType, generate_private_key, public_key_der
from fleet_sim.tls.subject import DeviceSubject


def tampered_csr_pem(common_name: str = "sensor-1") -> bytes:
    """A CSR whose subject was altered after signing (signature no longer verifies)."""
    csr = create_csr(generate_private_key(KeyType.EC_P256), DeviceSubject(common_name))
    der = csr.public_bytes(serialization.Encoding.DER)
    altered = der.replace(common_name.encode(), common_name[:-1].encode() + b"X")
    assert altered != der
    return x509.load_der_x509_csr(altered).public_bytes(serialization.Encoding.PEM)


def test_create_and_load_round_trip(tmp_path):
    key = generate_private_key(KeyType.EC_P256)
    csr = create_csr(key, DeviceSubject(common_name="sensor-1", country="US"))
    path = tmp_path / "d.csr"
    path.write_bytes(csr_to_pem(csr))
    loaded = load_csr_file(path)
    assert loaded.is_signature_valid
    assert DeviceSubject.from_name(loaded.subject) == DeviceSubject("sensor-1", country="US")
    assert public_key_der(loaded.public_key()) == public_key_der(key.public_key())


def test_bad_signature_is_rejected_naming_the_file():
    with pytest.raises(CertificateError, match=r"^dev\.csr: CSR signature does not verify"):
        load_pem_csr(tampered_csr_pem(), source="dev.csr")


def test_new_certificate_request_label_is_accepted():
    csr = create_csr(generate_private_key(KeyType.EC_P256), DeviceSubject("x"))
    pem = csr_to_pem(csr).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert load_pem_csr(pem).subject == csr.subject


def test_not_a_csr(root_ca):
    with pytest.raises(CertificateError, match="expected a certificate signing request, found"):
        load_pem_csr(root_ca.private_key_pem(), source="k.pem")
    with pytest.raises(CertificateError, match="malformed certificate signing request"):
        load_pem_csr(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"
        )


def test_missing_file(tmp_path):
    with pytest.raises(CertificateError, match="cannot read CSR"):
        load_csr_file(tmp_path / "none.csr")
