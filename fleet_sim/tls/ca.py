"""Certificate authorities: create root and intermediate CAs, load one made by openssl, and
issue device, server and ``register-ca-certificate`` verification certificates.

Every signature is SHA-256 (``-sha256`` in the AWS procedure). Extensions follow OpenSSL's
``v3_ca`` / ``usr_cert`` habits: CAs get critical ``basicConstraints CA:TRUE`` and
``keyUsage keyCertSign, cRLSign, digitalSignature``; leaves get ``CA:FALSE``, a key usage
fitting their key, an extended key usage, and both key identifiers. Time is an argument:
certificates are valid from ``now - BACKDATE`` (tolerating a verifier's clock running a little
behind ours) to ``now + validity_days``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fleet_sim.errors import CertificateError
from fleet_sim.tls.csr import check_csr
from fleet_sim.tls.extensions import (
    Extensions,
    LeafPurpose,
    authority_key_identifier,
    ca_extensions,
    leaf_extensions,
)
from fleet_sim.tls.identity import DeviceIdentity, check_key_matches
from fleet_sim.tls.inspect import (
    certificate_id,
    certificate_to_pem,
    check_issued_by,
    check_validity,
    is_ca_certificate,
    load_pem_certificates,
    require_aware,
)
from fleet_sim.tls.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    generate_private_key,
    load_private_key_pem,
    private_key_to_pem,
)
from fleet_sim.tls.pem import read_pem_file
from fleet_sim.tls.subject import DeviceSubject

__all__ = ["BACKDATE", "CertificateAuthority", "LeafPurpose", "Subject"]

BACKDATE = timedelta(minutes=5)
"""How far before ``now`` issued certificates start being valid."""

Subject = DeviceSubject | x509.Name
"""A subject given as the JITP fields or as a complete X.509 name."""


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA certificate, its private key and the certificates above it.

    Attributes:
        certificate: this CA's certificate.
        private_key: its private key.
        chain: the issuers above it, nearest first, ending with the root; empty for a root.
    """

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    # ------------------------------------------------------------------ properties

    @property
    def certificate_id(self) -> str:
        """AWS's id of the CA certificate (``caCertificateId`` once registered)."""
        return certificate_id(self.certificate)

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate followed by :attr:`chain`."""
        return (self.certificate, *self.chain)

    @property
    def key_type(self) -> KeyType | None:
        """The key type of the CA key, None when it is none of :class:`KeyType`."""
        return KeyType.of(self.private_key)

    def certificate_pem(self) -> bytes:
        """This CA's certificate as PEM."""
        return certificate_to_pem(self.certificate)

    def private_key_pem(self) -> bytes:
        """This CA's private key as PKCS#8 PEM."""
        return private_key_to_pem(self.private_key)

    def chain_pems(self) -> tuple[bytes, ...]:
        """PEMs of :attr:`certificates`: what a leaf's chain bundle appends to the leaf."""
        return tuple(certificate_to_pem(c) for c in self.certificates)

    # ------------------------------------------------------------------ creating CAs

    @classmethod
    def create_root(
        cls,
        subject: Subject,
        key_type: KeyType,
        validity_days: int,
        now: datetime,
        *,
        private_key: PrivateKey | None = None,
        path_length: int | None = None,
    ) -> CertificateAuthority:
        """Create a self-signed root CA (``openssl req -x509 -new -sha256``).

        Args:
            subject: the CA's subject (and issuer).
            key_type: the key to generate, unless ``private_key`` is given.
            validity_days: days of validity from ``now``.
            now: the current time (timezone-aware).
            private_key: an existing key to use.
            path_length: basicConstraints pathlen; None for no limit.

        Raises:
            CertificateError: an invalid subject.
        """
        key = private_key if private_key is not None else generate_private_key(key_type)
        name = _to_name(subject)
        extensions = ca_extensions(
            key.public_key(), authority_key_identifier(None, key.public_key()), path_length
        )
        builder = _builder(name, name, key.public_key(), validity_days, now, None, extensions)
        return cls(builder.sign(key, hashes.SHA256()), key)

    def create_intermediate(
        self,
        subject: Subject,
        key_type: KeyType,
        validity_days: int,
        now: datetime,
        *,
        private_key: PrivateKey | None = None,
        path_length: int | None = 0,
    ) -> CertificateAuthority:
        """Create an intermediate CA signed by this one.

        Args:
            subject: the intermediate's subject.
            key_type: the key to generate, unless ``private_key`` is given.
            validity_days: days of validity from ``now``.
            now: the current time (timezone-aware).
            private_key: an existing key to use.
            path_length: basicConstraints pathlen (0: it may sign only leaves).

        Raises:
            CertificateError: this CA is not valid at ``now``, or an invalid subject.
        """
        check_validity(self.certificate, now, what="issuing CA certificate")
        key = private_key if private_key is not None else generate_private_key(key_type)
        extensions = ca_extensions(key.public_key(), self._authority(), path_length)
        builder = _builder(
            _to_name(subject),
            self.certificate.subject,
            key.public_key(),
            validity_days,
            now,
            None,
            extensions,
        )
        return CertificateAuthority(
            builder.sign(self.private_key, hashes.SHA256()), key, self.certificates
        )

    # ------------------------------------------------------------------ issuing leaves

    def issue(
        self,
        public_key_or_csr: PublicKey | x509.CertificateSigningRequest,
        subject: Subject | None,
        validity_days: int,
        now: datetime,
        *,
        serial: int | None = None,
        purpose: LeafPurpose = LeafPurpose.CLIENT,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> x509.Certificate:
        """Issue a leaf certificate for a public key or for a CSR.

        Args:
            public_key_or_csr: the device's public key, or its CSR (signature checked).
            subject: the subject; None takes the CSR's whole subject.
            validity_days: days of validity from ``now``.
            now: the current time (timezone-aware).
            serial: the X.509 serial number; a random 159-bit one by default.
            purpose: client authentication (devices) or server authentication.
            dns_names: subjectAltName DNS entries (server certificates).
            ip_addresses: subjectAltName IP entries (server certificates).

        Raises:
            CertificateError: a CSR with a bad signature or key type, no subject at all,
                this CA not valid at ``now``, or an invalid subject.
        """
        check_validity(self.certificate, now, what="issuing CA certificate")
        if isinstance(public_key_or_csr, x509.CertificateSigningRequest):
            check_csr(public_key_or_csr)
            public_key = public_key_or_csr.public_key()
            name = _to_name(subject) if subject is not None else public_key_or_csr.subject
        else:
            public_key = public_key_or_csr
            if subject is None:
                raise CertificateError("a subject is needed to issue for a bare public key")
            name = _to_name(subject)
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CertificateError("only RSA and EC keys can be certified for AWS IoT")
        extensions = leaf_extensions(
            public_key, self._authority(), purpose, dns_names, ip_addresses
        )
        builder = _builder(
            name, self.certificate.subject, public_key, validity_days, now, serial, extensions
        )
        return builder.sign(self.private_key, hashes.SHA256())

    def issue_identity(
        self,
        subject: Subject,
        key_type: KeyType,
        validity_days: int,
        now: datetime,
        *,
        serial: int | None = None,
        purpose: LeafPurpose = LeafPurpose.CLIENT,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> DeviceIdentity:
        """Generate a key and issue its certificate: a complete identity with this CA's chain.

        Raises:
            CertificateError: as :meth:`issue`.
        """
        key = generate_private_key(key_type)
        cert = self.issue(
            key.public_key(),
            subject,
            validity_days,
            now,
            serial=serial,
            purpose=purpose,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
        )
        return DeviceIdentity(certificate_to_pem(cert), private_key_to_pem(key), self.chain_pems())

    def verification_certificate(
        self,
        registration_code: str,
        key_type: KeyType,
        now: datetime,
        *,
        validity_days: int = 365,
    ) -> DeviceIdentity:
        """Make the private-key verification certificate ``register-ca-certificate`` wants in
        DEFAULT mode: a fresh key, CN = the registration code, signed by this CA.

        Raises:
            CertificateError: an empty or over-long (more than 64 characters) code, or this
                CA not valid at ``now``.
        """
        code = registration_code.strip()
        if not code:
            raise CertificateError("the registration code is empty")
        return self.issue_identity(DeviceSubject(common_name=code), key_type, validity_days, now)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pem(
        cls,
        certificate_pem: bytes,
        private_key_pem: bytes,
        now: datetime,
        *,
        certificate_source: Path | str | None = None,
        key_source: Path | str | None = None,
        password: bytes | None = None,
    ) -> CertificateAuthority:
        """Load a CA from PEM: the certificate text may be followed by its chain (issuer
        first). Checks the key matches, the certificate is a CA allowed to sign
        certificates, it is valid at ``now``, and each chain certificate signed the one
        before it.

        Raises:
            CertificateError: naming the file at fault and the problem.
        """
        source = str(certificate_source) if certificate_source is not None else None
        certificates = load_pem_certificates(certificate_pem, source=source)
        key = load_private_key_pem(private_key_pem, source=key_source, password=password)
        ca_cert = certificates[0]
        check_key_matches(ca_cert, key, source=key_source)
        if not is_ca_certificate(ca_cert):
            raise CertificateError(
                "not a CA certificate (basicConstraints CA:TRUE is missing), it cannot sign",
                file=certificate_source,
            )
        try:
            usage = ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.key_cert_sign:
            raise CertificateError(
                "CA certificate key usage lacks keyCertSign, it cannot sign certificates",
                file=certificate_source,
            )
        check_validity(ca_cert, now, source=certificate_source, what="CA certificate")
        for position in range(1, len(certificates)):
            check_issued_by(
                certificates[position - 1],
                certificates[position],
                source=certificate_source,
                what=f"certificate #{position} of the CA file",
            )
        return cls(ca_cert, key, tuple(certificates[1:]))

    @classmethod
    def from_files(
        cls,
        certificate_path: Path | str,
        key_path: Path | str,
        now: datetime,
        *,
        password: bytes | None = None,
    ) -> CertificateAuthority:
        """Load a CA from a certificate file (optionally followed by its chain) and a key
        file; see :meth:`from_pem` for the checks.

        Raises:
            CertificateError: a file is unreadable, or a check fails.
        """
        return cls.from_pem(
            read_pem_file(certificate_path, "CA certificate"),
            read_pem_file(key_path, "CA private key"),
            now,
            certificate_source=certificate_path,
            key_source=key_path,
            password=password,
        )

    def _authority(self) -> x509.AuthorityKeyIdentifier:
        return authority_key_identifier(self.certificate, self.private_key.public_key())


def _to_name(subject: Subject) -> x509.Name:
    name = subject.to_name() if isinstance(subject, DeviceSubject) else subject
    if len(name) == 0:
        raise CertificateError("the certificate subject is empty")
    return name


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    validity_days: int,
    now: datetime,
    serial: int | None,
    extensions: Extensions,
) -> x509.CertificateBuilder:
    start = require_aware(now).replace(microsecond=0)
    if validity_days < 1:
        raise CertificateError(f"validity must be at least 1 day, got {validity_days}")
    if serial is not None and not 0 < serial < 2**159:
        raise CertificateError("the serial number must be positive and below 2**159")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(start + timedelta(days=validity_days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder
