"""The emulator's own PKI, kept under ``<data-dir>/pki``.

* ``root-ca.pem``: the root clients trust (``--cafile``); it plays AmazonRootCA1.pem's role.
* ``server.crt`` / ``server.key``: the gateway's certificate, for the endpoint name,
  ``localhost`` and ``127.0.0.1``, signed by the root.
* ``device-ca.pem`` / ``device-ca.key``: the issuer of certificates the emulator creates itself
  (CreateKeysAndCertificate, CreateCertificateFromCsr, fleet provisioning), in the role of AWS
  IoT's own issuing CA.

Made once and reused on restart; the server certificate is re-issued when the endpoint name
changes or it is about to expire. EC P-256 keys: cheap handshakes, as AWS's ECC endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from fleet_sim.tls.ca import CertificateAuthority, LeafPurpose
from fleet_sim.tls.inspect import certificate_to_pem
from fleet_sim.tls.keys import KeyType, generate_private_key, private_key_to_pem
from fleet_sim.tls.pem import read_pem_file
from fleet_sim.tls.pem_files import PendingFile, write_files
from fleet_sim.tls.subject import DeviceSubject

_ORG = "fleetsim local AWS IoT emulator"


@dataclass(frozen=True, slots=True)
class EmulatorPki:
    """Paths and CAs of the emulator's PKI."""

    directory: Path
    root: CertificateAuthority
    device_ca: CertificateAuthority

    @property
    def root_ca_file(self) -> Path:
        """The root CA clients trust."""
        return self.directory / "root-ca.pem"

    @property
    def server_certificate_file(self) -> Path:
        """The gateway's certificate followed by nothing else (the root is the issuer)."""
        return self.directory / "server.crt"

    @property
    def server_key_file(self) -> Path:
        """The gateway's private key."""
        return self.directory / "server.key"

    @classmethod
    def load_or_create(cls, directory: Path, *, endpoint: str, now: datetime) -> EmulatorPki:
        """Load the PKI from ``directory``, creating whatever is missing.

        Raises:
            CertificateError: existing files are unreadable or inconsistent (naming the file).
        """
        directory.mkdir(parents=True, exist_ok=True)
        root = _load_or_create_ca(
            directory,
            "root-ca",
            DeviceSubject(common_name="fleetsim emulator root CA", organization=_ORG),
            None,
            now,
        )
        device_ca = _load_or_create_ca(
            directory,
            "device-ca",
            DeviceSubject(common_name="fleetsim emulator device CA", organization=_ORG),
            root,
            now,
        )
        pki = cls(directory, root, device_ca)
        pki._ensure_server_certificate(endpoint, now)
        return pki

    def _ensure_server_certificate(self, endpoint: str, now: datetime) -> None:
        names = sorted({endpoint, "localhost"})
        cert_file = self.server_certificate_file
        if cert_file.exists() and self.server_key_file.exists():
            current = x509.load_pem_x509_certificate(read_pem_file(cert_file, "certificate"))
            if _covers(current, names) and current.not_valid_after_utc - now > timedelta(days=7):
                return
        key = generate_private_key(KeyType.EC_P256)
        cert = self.root.issue(
            key.public_key(),
            DeviceSubject(common_name=endpoint, organization=_ORG),
            825,
            now,
            purpose=LeafPurpose.SERVER,
            dns_names=names,
            ip_addresses=["127.0.0.1", "::1"],
        )
        write_files(
            [
                PendingFile(self.server_key_file, private_key_to_pem(key), secret=True),
                PendingFile(cert_file, certificate_to_pem(cert)),
            ],
            force=True,
        )


def _covers(cert: x509.Certificate, names: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    present = set(san.value.get_values_for_type(x509.DNSName))
    return all(name in present for name in names)


def _load_or_create_ca(
    directory: Path,
    stem: str,
    subject: DeviceSubject,
    parent: CertificateAuthority | None,
    now: datetime,
) -> CertificateAuthority:
    cert_file = directory / f"{stem}.pem"
    key_file = directory / f"{stem}.key"
    if cert_file.exists() and key_file.exists():
        return CertificateAuthority.from_files(cert_file, key_file, now)
    if parent is None:
        ca = CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, now)
    else:
        ca = parent.create_intermediate(subject, KeyType.EC_P256, 3650, now)
    write_files(
        [
            PendingFile(key_file, ca.private_key_pem(), secret=True),
            PendingFile(cert_file, b"".join(ca.chain_pems())),
        ],
        force=True,
    )
    return ca
