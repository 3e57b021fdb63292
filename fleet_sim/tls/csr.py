"""Certificate signing requests: build one (fleet provisioning's CreateCertificateFromCsr,
``certs issue --csr``) and load one, always checking its self-signature.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fleet_sim.errors import CertificateError
from fleet_sim.tls.keys import PrivateKey, key_type_name
from fleet_sim.tls.pem import describe_pem_labels, pem_blocks, read_pem_file
from fleet_sim.tls.subject import DeviceSubject

_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})


def create_csr(private_key: PrivateKey, subject: DeviceSubject) -> x509.CertificateSigningRequest:
    """Build a CSR for ``subject`` signed (SHA-256) with ``private_key``, as ``openssl req``.

    Raises:
        CertificateError: an invalid subject field.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_name())
    return builder.sign(private_key, hashes.SHA256())


def csr_to_pem(csr: x509.CertificateSigningRequest) -> bytes:
    """Encode ``csr`` as PEM (``-----BEGIN CERTIFICATE REQUEST-----``)."""
    return csr.public_bytes(serialization.Encoding.PEM)


def check_csr(csr: x509.CertificateSigningRequest, *, source: Path | str | None = None) -> None:
    """Check that ``csr`` is signed by its own key and that the key is RSA or EC.

    Raises:
        CertificateError: a bad signature (the request was altered) or an unsupported key.
    """
    if not csr.is_signature_valid:
        raise CertificateError(
            "CSR signature does not verify (altered, or signed by a key other than its own)",
            file=source,
        )
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CertificateError(
            f"CSR key type {key_type_name(public_key)} is not RSA or EC", file=source
        )


def load_pem_csr(
    data: bytes, *, source: Path | str | None = None
) -> x509.CertificateSigningRequest:
    """Load and check (:func:`check_csr`) the first CSR in PEM ``data``.

    Raises:
        CertificateError: naming ``source``: no CSR, a malformed one or a bad signature.
    """
    block = next((b for b in pem_blocks(data) if b.label in _CSR_LABELS), None)
    if block is None:
        raise CertificateError(
            f"expected a certificate signing request, found {describe_pem_labels(data)}",
            file=source,
        )
    text = block.text.replace(b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(text)
    except ValueError:
        raise CertificateError("malformed certificate signing request", file=source) from None
    check_csr(csr, source=source)
    return csr


def load_csr_file(path: Path | str) -> x509.CertificateSigningRequest:
    """Read ``path`` and load its CSR (see :func:`load_pem_csr`).

    Raises:
        CertificateError: unreadable file or unusable CSR.
    """
    data = read_pem_file(path, "CSR")
    return load_pem_csr(data, source=path)
