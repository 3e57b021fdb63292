"""Reading the PEM certificates callers register, with AWS-shaped errors.

Built on :mod:`fleet_sim.tls.inspect`; this module only adapts its results and errors to the
registry (one certificate per PEM, :class:`CertificateValidation` instead of
:class:`CertificateError`, validity as epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from fleet_sim.errors import CertificateError, CertificateValidation
from fleet_sim.tls.inspect import (
    CertificateInfo,
    certificate_to_pem,
    describe,
    load_pem_certificates,
)


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    """One certificate read from PEM.

    Attributes:
        cert: the certificate.
        info: what :func:`fleet_sim.tls.inspect.describe` says about it.
        pem: its canonical PEM (what the registry stores and returns).
        not_before: start of validity, epoch seconds.
        not_after: end of validity, epoch seconds.
    """

    cert: x509.Certificate
    info: CertificateInfo
    pem: str
    not_before: float
    not_after: float

    @property
    def certificate_id(self) -> str:
        """AWS's certificate id (SHA-256 of the DER)."""
        return self.info.certificate_id


def parse_certificate(pem: str | bytes, what: str = "certificate") -> ParsedCertificate:
    """Read exactly one certificate from ``pem`` (text or bytes).

    Raises:
        CertificateValidation: no certificate, a malformed one, or more than one.
    """
    try:
        data = pem.encode("utf-8") if isinstance(pem, str) else pem
        certificates = load_pem_certificates(data, source=what)
    except CertificateError as exc:
        raise CertificateValidation(f"{what}: {exc.message}") from None
    if len(certificates) != 1:
        raise CertificateValidation(f"{what}: expected one certificate, found {len(certificates)}")
    cert = certificates[0]
    info = describe(cert)
    return ParsedCertificate(
        cert=cert,
        info=info,
        pem=certificate_to_pem(cert).decode("ascii"),
        not_before=info.not_valid_before.timestamp(),
        not_after=info.not_valid_after.timestamp(),
    )
