"""Reading certificates the way AWS IoT does: certificate ids, PEM loading, classification.

``certificate_id`` is AWS's rule (SHA-256 of the DER, 64 lowercase hex). ``describe`` turns a
certificate into a :class:`CertificateInfo` (subject fields JITP reads, issuer, validity, key
type, and whether it is a root CA, an intermediate CA, a device certificate or a
``register-ca-certificate`` verification certificate). The emulator's registry is built on
these three functions; keep their signatures stable.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from fleet_sim.errors import CertificateError
from fleet_sim.tls.keys import key_type_name
from fleet_sim.tls.pem import describe_pem_labels, pem_blocks, read_pem_file
from fleet_sim.tls.subject import DeviceSubject

_E = TypeVar("_E", bound=x509.ExtensionType)

_REGISTRATION_CODE = re.compile(r"[0-9a-fA-F]{64}")

# Short names RFC 4514 output lacks in ``cryptography`` (it prints the dotted OID otherwise).
#: Attribute short names for RFC 4514 strings (subject/issuer DNs the registry indexes).
RFC4514_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.DN_QUALIFIER: "dnQualifier"}

_SIGNATURE_NAMES: dict[x509.ObjectIdentifier, str] = {
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa_with_SHA256",
    SignatureAlgorithmOID.ED25519: "ED25519",
    SignatureAlgorithmOID.ED448: "ED448",
}



class CertificateKind(enum.StrEnum):
    """What a certificate is for, as far as AWS IoT registration is concerned."""

    ROOT_CA = "root-ca"
    INTERMEDIATE_CA = "intermediate-ca"
    DEVICE = "device"
    VERIFICATION = "verification"


def certificate_id(cert: x509.Certificate) -> str:
    """AWS IoT's certificate id: SHA-256 of the DER encoding, 64 lowercase hex characters."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_pem_certificates(data: bytes, *, source: str | None = None) -> list[x509.Certificate]:
    """Load every certificate in PEM ``data``, in order (a bundle gives leaf first).

    Other PEM blocks (keys, parameters) are ignored when at least one certificate is present.

    Raises:
        CertificateError: naming ``source``: the data holds no certificate (a key, a CSR,
            garbage, nothing) or a certificate block is malformed.
    """
    blocks = [block for block in pem_blocks(data) if block.label == "CERTIFICATE"]
    if not blocks:
        raise CertificateError(
            f"expected a PEM certificate, found {describe_pem_labels(data)}", file=source
        )
    certificates = []
    for position, block in enumerate(blocks, start=1):
        try:
            certificates.append(x509.load_pem_x509_certificate(block.text))
        except ValueError:
            raise CertificateError(
                f"certificate #{position} in the file is malformed", file=source
            ) from None
    return certificates


def load_certificate_file(path: Path | str) -> list[x509.Certificate]:
    """Read ``path`` and load its certificates (see :func:`load_pem_certificates`).

    Raises:
        CertificateError: the file cannot be read or holds no usable certificate.
    """
    data = read_pem_file(path, "certificate")
    return load_pem_certificates(data, source=str(path))


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    """Encode ``cert`` as PEM, exactly as ``openssl x509`` writes it."""
    return cert.public_bytes(serialization.Encoding.PEM)


def looks_like_registration_code(text: str | None) -> bool:
    """True for 64 hex characters: the shape of an AWS IoT CA registration code."""
    return text is not None and _REGISTRATION_CODE.fullmatch(text) is not None


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s subject is ``cert``'s issuer and its key verifies the signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_ca_certificate(cert: x509.Certificate) -> bool:
    """True for ``basicConstraints CA:TRUE``; a v1 self-signed certificate counts too (as in
    OpenSSL, which treats such trust anchors as CAs)."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version is x509.Version.v1 and is_issued_by(cert, cert)


def classify(cert: x509.Certificate) -> CertificateKind:
    """Root CA, intermediate CA, verification certificate (a leaf whose CN looks like a
    registration code: 64 hex) or device certificate (any other leaf)."""
    if is_ca_certificate(cert):
        return (
            CertificateKind.ROOT_CA if is_issued_by(cert, cert) else CertificateKind.INTERMEDIATE_CA
        )
    if looks_like_registration_code(DeviceSubject.from_name(cert.subject).common_name):
        return CertificateKind.VERIFICATION
    return CertificateKind.DEVICE


def check_issued_by(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    source: Path | str | None = None,
    what: str = "certificate",
) -> None:
    """Check that ``issuer`` signed ``cert``.

    Raises:
        CertificateError: ``the <what> is not signed by <issuer DN> (its issuer is …)``.
    """
    if not is_issued_by(cert, issuer):
        raise CertificateError(
            f"{what} is not signed by {issuer.subject.rfc4514_string()!r} "
            f"(its issuer is {cert.issuer.rfc4514_string()!r})",
            file=source,
        )


def require_aware(now: datetime) -> datetime:
    """Return ``now`` if it carries a time zone.

    Raises:
        ValueError: ``now`` is naive (a programming error: pass ``datetime.now(UTC)``).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def check_validity(
    cert: x509.Certificate,
    now: datetime,
    *,
    source: Path | str | None = None,
    what: str = "certificate",
) -> None:
    """Check that ``now`` is within ``cert``'s validity period.

    Raises:
        CertificateError: ``<what> expired on …`` or ``<what> is not valid before …``.
    """
    if require_aware(now) >= cert.not_valid_after_utc:
        raise CertificateError(
            f"{what} expired on {cert.not_valid_after_utc.isoformat()}", file=source
        )
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}", file=source
        )


def check_verification_certificate(
    verification: x509.Certificate,
    ca_certificate: x509.Certificate,
    registration_code: str,
    *,
    now: datetime | None = None,
    source: Path | str | None = None,
) -> None:
    """Check a verification certificate as ``register-ca-certificate`` (DEFAULT mode) does:
    its CN is the registration code and the CA being registered signed it.

    Raises:
        CertificateError: the CN differs, another key signed it, or (``now`` given) it is
            outside its validity period.
    """
    common_name = DeviceSubject.from_name(verification.subject).common_name
    if common_name != registration_code:
        raise CertificateError(
            f"verification certificate CN {common_name!r} is not the registration code "
            f"{registration_code!r}",
            file=source,
        )
    check_issued_by(verification, ca_certificate, source=source, what="verification certificate")
    if now is not None:
        check_validity(verification, now, source=source, what="verification certificate")


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What :func:`describe` reads from a certificate.

    Attributes:
        certificate_id: AWS's id (see :func:`certificate_id`).
        kind: root CA, intermediate CA, device or verification certificate.
        subject: the subject fields JITP reads.
        subject_dn: the whole subject, RFC 4514 (``CN=sensor-1,O=Acme``).
        issuer: the issuer's fields.
        issuer_dn: the whole issuer, RFC 4514.
        serial: the X.509 serial number.
        not_valid_before: start of validity (UTC, aware).
        not_valid_after: end of validity (UTC, aware).
        key_type: e.g. ``ec-p256``, ``rsa-2048`` (see :func:`key_type_name`).
        signature_algorithm: OpenSSL's name, e.g. ``ecdsa-with-SHA256``.
        is_ca: basicConstraints CA:TRUE (or a v1 self-signed certificate).
        path_length: basicConstraints pathlen, None when absent or unlimited.
        self_signed: its own key verifies its signature.
        subject_key_id: subjectKeyIdentifier as lowercase hex, None when absent.
        authority_key_id: authorityKeyIdentifier keyid as lowercase hex, None when absent.
    """

    certificate_id: str
    kind: CertificateKind
    subject: DeviceSubject
    subject_dn: str
    issuer: DeviceSubject
    issuer_dn: str
    serial: int
    not_valid_before: datetime
    not_valid_after: datetime
    key_type: str
    signature_algorithm: str
    is_ca: bool
    path_length: int | None
    self_signed: bool
    subject_key_id: str | None
    authority_key_id: str | None

    def is_valid_at(self, now: datetime) -> bool:
        """True when ``now`` lies in [not_valid_before, not_valid_after)."""
        return self.not_valid_before <= now < self.not_valid_after

    def validity_status(self, now: datetime) -> str:
        """``valid``, ``expired`` or ``not-yet-valid`` at ``now``."""
        if now >= self.not_valid_after:
            return "expired"
        return "valid" if now >= self.not_valid_before else "not-yet-valid"

    def to_json_dict(self) -> dict[str, object]:
        """Plain JSON-ready data: datetimes as ISO 8601, the serial as lowercase hex."""
        return {
            "certificate_id": self.certificate_id,
            "kind": self.kind.value,
            "subject": self.subject.to_dict(),
            "subject_dn": self.subject_dn,
            "issuer": self.issuer.to_dict(),
            "issuer_dn": self.issuer_dn,
            "serial": format(self.serial, "x"),
            "not_valid_before": self.not_valid_before.isoformat(),
            "not_valid_after": self.not_valid_after.isoformat(),
            "key_type": self.key_type,
            "signature_algorithm": self.signature_algorithm,
            "is_ca": self.is_ca,
            "path_length": self.path_length,
            "self_signed": self.self_signed,
            "subject_key_id": self.subject_key_id,
            "authority_key_id": self.authority_key_id,
        }


def describe(cert: x509.Certificate) -> CertificateInfo:
    """Read ``cert`` into a :class:`CertificateInfo`."""
    constraints = _extension(cert, x509.BasicConstraints)
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    aki_id = aki.key_identifier if aki is not None else None
    oid = cert.signature_algorithm_oid
    return CertificateInfo(
        certificate_id=certificate_id(cert),
        kind=classify(cert),
        subject=DeviceSubject.from_name(cert.subject),
        subject_dn=cert.subject.rfc4514_string(RFC4514_NAMES),
        issuer=DeviceSubject.from_name(cert.issuer),
        issuer_dn=cert.issuer.rfc4514_string(RFC4514_NAMES),
        serial=cert.serial_number,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        key_type=key_type_name(cert.public_key()),
        signature_algorithm=_SIGNATURE_NAMES.get(oid, oid.dotted_string),
        is_ca=is_ca_certificate(cert),
        path_length=constraints.path_length if constraints is not None else None,
        self_signed=is_issued_by(cert, cert),
        subject_key_id=ski.digest.hex() if ski is not None else None,
        authority_key_id=aki_id.hex() if aki_id is not None else None,
    )


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    """The value of ``cert``'s extension of class ``kind``, None when absent."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
