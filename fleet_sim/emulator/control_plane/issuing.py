"""Certificates the emulator issues itself, as AWS IoT's own CA does: for a fresh key
(CreateKeysAndCertificate) or a device's CSR (CreateCertificateFromCsr, RegisterThing).

They are signed by the emulator's device CA (``<data-dir>/pki/device-ca.pem``, which the
gateway trusts), expire at the end of 2049 like AWS-issued certificates, and are recorded in
the registry without a CA certificate id, as AWS reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleet_sim.emulator.control_plane.context import HandlerContext
from fleet_sim.emulator.registry.models import Certificate, CertificateStatus
from fleet_sim.errors import CertificateError, InvalidRequest
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.csr import load_pem_csr
from fleet_sim.tls.inspect import certificate_to_pem
from fleet_sim.tls.keys import KeyType, PrivateKey, generate_private_key, private_key_to_pem
from fleet_sim.tls.subject import DeviceSubject

#: AWS IoT-issued certificates are valid until 2049-12-31T23:59:59Z.
AWS_ISSUED_NOT_AFTER = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)

#: The subject AWS gives certificates made by CreateKeysAndCertificate.
AWS_ISSUED_SUBJECT = DeviceSubject(common_name="AWS IoT Certificate")

#: Key type of CreateKeysAndCertificate's keys. AWS generates RSA-2048; the emulator uses
#: EC P-256, which is two orders of magnitude cheaper to generate under load.
GENERATED_KEY_TYPE = KeyType.EC_P256


@dataclass(frozen=True, slots=True)
class IssuedKeys:
    """A generated key pair and the registry record of its certificate."""

    certificate: Certificate
    private_key: PrivateKey

    @property
    def private_key_pem(self) -> str:
        """The private key, PKCS#8 PEM."""
        return private_key_to_pem(self.private_key).decode("ascii")

    @property
    def public_key_pem(self) -> str:
        """The public key, SubjectPublicKeyInfo PEM."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def _status(active: bool) -> CertificateStatus:
    return CertificateStatus.ACTIVE if active else CertificateStatus.INACTIVE


def _validity_days(now: datetime) -> int:
    return max(1, (AWS_ISSUED_NOT_AFTER - now).days)


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """A CSR from the request, checked.

    Raises:
        InvalidRequest: not a CSR, malformed, or its signature does not verify.
    """
    try:
        return load_pem_csr(text.encode("utf-8"))
    except CertificateError as error:
        raise InvalidRequest(f"certificateSigningRequest: {error.message}") from None


def csr_issuer(
    device_ca: CertificateAuthority, now_utc: Callable[[], datetime]
) -> Callable[[x509.CertificateSigningRequest], x509.Certificate]:
    """A function that signs a device's CSR with ``device_ca``, keeping its subject, valid
    until the end of 2049 as AWS-issued certificates are (what provisioning templates with a
    ``CertificateSigningRequest`` use).

    The returned function raises :class:`CertificateError` for a CSR it cannot sign.
    """

    def issue(csr: x509.CertificateSigningRequest) -> x509.Certificate:
        now = now_utc()
        return device_ca.issue(csr, None, _validity_days(now), now)

    return issue


def issue_from_csr(
    ctx: HandlerContext, csr_pem: str, *, status: CertificateStatus | str
) -> Certificate:
    """Sign a device's CSR (keeping its subject) and register the certificate.

    Raises:
        InvalidRequest: an unusable CSR.
    """
    csr = load_csr(csr_pem)
    now = ctx.now_utc()
    try:
        cert = csr_issuer(ctx.device_ca, lambda: now)(csr)
    except CertificateError as error:
        raise InvalidRequest(f"certificateSigningRequest: {error.message}") from None
    return ctx.registry.certificates.create(
        certificate_to_pem(cert), now=now.timestamp(), status=status
    )


def create_keys_and_certificate(
    ctx: HandlerContext, *, active: bool, status: CertificateStatus | str | None = None
) -> IssuedKeys:
    """Generate a key, issue its certificate (CN ``AWS IoT Certificate``), register it
    ACTIVE or INACTIVE per ``active``, or with ``status`` when given (fleet provisioning's
    ``PENDING_ACTIVATION``)."""
    key = generate_private_key(GENERATED_KEY_TYPE)
    now = ctx.now_utc()
    cert = ctx.device_ca.issue(key.public_key(), AWS_ISSUED_SUBJECT, _validity_days(now), now)
    record = ctx.registry.certificates.create(
        certificate_to_pem(cert),
        now=now.timestamp(),
        status=_status(active) if status is None else status,
    )
    return IssuedKeys(record, key)


def status_from_flag(active: bool | None) -> CertificateStatus:
    """``setAsActive`` as the initial status (INACTIVE when absent, as AWS)."""
    return _status(bool(active))
