"""Client-side TLS contexts for simulated devices (one per device identity).

Python's :mod:`ssl` can only present a client certificate that was loaded into an
:class:`ssl.SSLContext`, so every device with its own certificate needs its own context.
Building one costs about a millisecond of CPU with OpenSSL 3 (measurements.md §1), so contexts
are built before the measured connect window and reused across reconnects.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from fleet_sim.errors import CertificateError

#: ALPN protocol AWS IoT requires for MQTT with X.509 client certificates on port 443.
ALPN_MQTT_CA = "x-amzn-mqtt-ca"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """How devices speak TLS to the target."""

    ca_file: Path
    """The root CA that signs the server certificate (AmazonRootCA1.pem or the emulator's)."""

    alpn: tuple[str, ...] = ()
    """ALPN protocols to offer: ``("x-amzn-mqtt-ca",)`` on port 443."""

    max_version: ssl.TLSVersion | None = None
    """Cap the TLS version (``TLSv1_2`` to pin 1.2, as the AWS guides' mosquitto_pub does)."""

    check_hostname: bool = True
    """Verify that the server certificate names the SNI host."""


def client_context(
    settings: TlsSettings, certificate_file: Path, key_file: Path | None
) -> ssl.SSLContext:
    """A TLS client context presenting one device's certificate (and chain, if in the file).

    Args:
        settings: trust and protocol options shared by the fleet.
        certificate_file: PEM with the device certificate, optionally followed by its CA
            chain (what ``cat deviceCert.crt rootCA.pem`` makes), optionally with the key too.
        key_file: the private key, or None when ``certificate_file`` holds it.

    Raises:
        CertificateError: a file is unreadable or the key does not match (naming the file).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.max_version is not None:
        context.maximum_version = settings.max_version
    context.check_hostname = settings.check_hostname
    try:
        context.load_verify_locations(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as error:
        raise CertificateError(f"cannot load CA file: {error}", file=settings.ca_file) from None
    try:
        context.load_cert_chain(str(certificate_file), None if key_file is None else str(key_file))
    except (OSError, ssl.SSLError) as error:
        raise CertificateError(
            f"cannot load device certificate/key: {error}", file=certificate_file
        ) from None
    if settings.alpn:
        context.set_alpn_protocols(list(settings.alpn))
    return context
