"""The options ``fleetsim certs …`` commands share, and turning their values into
:mod:`fleet_sim.tls` objects.

* The ``Annotated`` option types (subject attributes, CA files, output directory, ``--force``)
  that several commands declare, so each option reads the same everywhere.
* :func:`subject_from_options`, :func:`load_ca` and :func:`parse_serial`: option values to a
  :class:`DeviceSubject`, a :class:`CertificateAuthority` and an X.509 serial number; they
  raise :class:`CertificateError` (the command reports it) for values that cannot be used.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from fleet_sim.errors import CertificateError
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.subject import DeviceSubject

__all__ = [
    "CaFile",
    "CaKeyFile",
    "CommonName",
    "Country",
    "DnQualifier",
    "Force",
    "Locality",
    "OrgUnit",
    "Organization",
    "OutDir",
    "State",
    "SubjectSerial",
    "default_key_path",
    "load_ca",
    "parse_serial",
    "subject_from_options",
]

CommonName = Annotated[str | None, typer.Option("--cn", help="Subject CN.")]
Country = Annotated[str | None, typer.Option(help="Subject C (two letters).")]
Organization = Annotated[str | None, typer.Option("--org", help="Subject O.")]
OrgUnit = Annotated[str | None, typer.Option("--org-unit", help="Subject OU.")]
State = Annotated[str | None, typer.Option(help="Subject ST.")]
Locality = Annotated[str | None, typer.Option(help="Subject L.")]
SubjectSerial = Annotated[
    str | None,
    typer.Option("--subject-serial", help="Subject serialNumber attribute (OID 2.5.4.5)."),
]
DnQualifier = Annotated[str | None, typer.Option("--dn-qualifier", help="Subject dnQualifier.")]
CaFile = Annotated[
    Path, typer.Option("--ca", help="CA certificate (optionally followed by its chain).")
]
CaKeyFile = Annotated[
    Path | None,
    typer.Option("--ca-key", help="CA private key [default: the CA file's name with .key]."),
]
OutDir = Annotated[Path, typer.Option("--out-dir", help="Where to write the files.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing private keys.")]


def subject_from_options(
    cn: str | None,
    country: str | None,
    org: str | None,
    org_unit: str | None,
    state: str | None,
    locality: str | None,
    subject_serial: str | None,
    dn_qualifier: str | None,
) -> DeviceSubject:
    """Return the subject the subject options describe (unset attributes stay ``None``)."""
    return DeviceSubject(
        common_name=cn,
        country=country,
        organization=org,
        organizational_unit=org_unit,
        state=state,
        locality=locality,
        serial_number=subject_serial,
        dn_qualifier=dn_qualifier,
    )


def default_key_path(certificate: Path) -> Path:
    """``ca.crt`` / ``ca.pem`` / ``ca.chain.crt`` → ``ca.key`` next to it."""
    stem = certificate.name
    for suffix in (".crt", ".pem", ".cer"):
        stem = stem.removesuffix(suffix)
    return certificate.with_name(stem.removesuffix(".chain") + ".key")


def load_ca(ca: Path, ca_key: Path | None, now: datetime) -> CertificateAuthority:
    """Load the CA of ``--ca`` with the key of ``--ca-key`` (default: :func:`default_key_path`).

    Raises:
        CertificateError: no ``--ca-key`` and no key file at the default path, or the files
            do not hold a usable CA.
    """
    key_path = ca_key if ca_key is not None else default_key_path(ca)
    if ca_key is None and not key_path.exists():
        raise CertificateError(f"no --ca-key given and {key_path} does not exist", file=ca)
    return CertificateAuthority.from_files(ca, key_path, now)


def parse_serial(text: str | None) -> int | None:
    """Parse ``--serial`` (decimal or ``0x`` hex); ``None`` stays ``None`` (a random serial).

    Raises:
        CertificateError: the text is not a number.
    """
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        raise CertificateError(f"--serial {text!r} is not a number") from None
