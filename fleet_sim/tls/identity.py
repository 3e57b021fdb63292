"""A device's credentials as one value: :class:`DeviceIdentity` (certificate, key, CA chain).

The chain bundle is the device certificate followed by its CA certificate(s), byte for byte
what ``cat deviceCert.crt rootCA.pem > deviceCertAndCACert.crt`` gives; JITP devices present
it so AWS IoT sees the registered CA during the handshake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from fleet_sim.errors import CertificateError
from fleet_sim.tls.inspect import certificate_id, certificate_to_pem, load_pem_certificates
from fleet_sim.tls.keys import (
    PrivateKey,
    load_private_key_pem,
    private_key_to_pem,
    public_key_der,
)
from fleet_sim.tls.pem import read_pem_file
from fleet_sim.tls.subject import DeviceSubject


def _with_newline(pem: bytes) -> bytes:
    return pem if pem.endswith(b"\n") else pem + b"\n"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A certificate, its private key and the CA certificates above it, all as PEM.

    PEM texts are normalised to end in a newline, so concatenating them is always valid PEM.

    Attributes:
        certificate_pem: the device (leaf) certificate.
        private_key_pem: its private key (PKCS#8 when fleetsim made it).
        chain_pems: the issuing CA's certificate first, then its issuers up to the root.
    """

    certificate_pem: bytes
    private_key_pem: bytes
    chain_pems: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificate_pem", _with_newline(self.certificate_pem))
        object.__setattr__(self, "private_key_pem", _with_newline(self.private_key_pem))
        object.__setattr__(self, "chain_pems", tuple(_with_newline(p) for p in self.chain_pems))

    @classmethod
    def from_objects(
        cls,
        certificate: x509.Certificate,
        private_key: PrivateKey,
        chain: Sequence[x509.Certificate] = (),
    ) -> DeviceIdentity:
        """Encode ``certificate``, ``private_key`` and ``chain`` (issuer first) as PEM."""
        return cls(
            certificate_to_pem(certificate),
            private_key_to_pem(private_key),
            tuple(certificate_to_pem(c) for c in chain),
        )

    def chain_bundle(self) -> bytes:
        """The device certificate then the chain: ``cat deviceCert.crt rootCA.pem``."""
        return self.certificate_pem + b"".join(self.chain_pems)

    def certificate(self) -> x509.Certificate:
        """Parse the device certificate."""
        return x509.load_pem_x509_certificate(self.certificate_pem)

    def private_key(self) -> PrivateKey:
        """Parse the private key.

        Raises:
            CertificateError: the key PEM is unusable.
        """
        return load_private_key_pem(self.private_key_pem)

    def certificate_id(self) -> str:
        """AWS's id of the device certificate (SHA-256 of its DER, lowercase hex)."""
        return certificate_id(self.certificate())

    def subject(self) -> DeviceSubject:
        """The device certificate's subject fields."""
        return DeviceSubject.from_name(self.certificate().subject)

    @classmethod
    def load(
        cls,
        certificate_path: Path | str,
        key_path: Path | str,
        *,
        password: bytes | None = None,
    ) -> DeviceIdentity:
        """Load an identity from a certificate file (alone or a bundle: leaf first, then CA
        certificates) and its key file, checking that they belong together.

        Raises:
            CertificateError: a file is unreadable or unusable, or the key does not match.
        """
        cert_data = read_pem_file(certificate_path, "certificate")
        key_data = read_pem_file(key_path, "private key")
        certificates = load_pem_certificates(cert_data, source=str(certificate_path))
        key = load_private_key_pem(key_data, source=key_path, password=password)
        check_key_matches(certificates[0], key, source=key_path)
        return cls(
            certificate_to_pem(certificates[0]),
            private_key_to_pem(key),
            tuple(certificate_to_pem(c) for c in certificates[1:]),
        )


def check_key_matches(
    cert: x509.Certificate,
    key: PrivateKeyTypes,
    source: Path | str | None = None,
) -> None:
    """Check that ``key`` is the private half of ``cert``'s public key.

    Args:
        cert: the certificate.
        key: the private key that should belong to it.
        source: the key's file, named in the error.

    Raises:
        CertificateError: ``<source>: private key does not match the certificate …``.
    """
    if public_key_der(key.public_key()) != public_key_der(cert.public_key()):
        raise CertificateError(
            f"private key does not match the certificate ({cert.subject.rfc4514_string()}, "
            f"id {certificate_id(cert)[:16]}…)",
            file=source,
        )
