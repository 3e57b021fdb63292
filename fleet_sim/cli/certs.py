"""``fleetsim certs …``: create CAs, issue device, server and verification certificates,
inspect certificate files and generate fleets of identities.

This is an edge: it reads the clock and the file system, calls :mod:`fleet_sim.tls`, and
turns every :class:`~fleet_sim.errors.FleetSimError` into one ``error: <file>: <problem>``
line on stderr and exit status 2. The options several commands share, and turning their
values into :mod:`fleet_sim.tls` objects, are :mod:`fleet_sim.cli.certs_options`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fleet_sim.cli.certs_options import (
    CaFile,
    CaKeyFile,
    CommonName,
    Country,
    DnQualifier,
    Force,
    Locality,
    Organization,
    OrgUnit,
    OutDir,
    State,
    SubjectSerial,
    load_ca,
    parse_serial,
    subject_from_options,
)
from fleet_sim.errors import CertificateError, FleetSimError
from fleet_sim.tls.bulk import IdentitySpec, build_identities
from fleet_sim.tls.ca import CertificateAuthority, LeafPurpose
from fleet_sim.tls.csr import load_csr_file
from fleet_sim.tls.inspect import certificate_to_pem, describe, load_certificate_file
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import (
    IdentityFiles,
    PendingFile,
    safe_file_stem,
    write_files,
    write_fleet,
    write_identity,
)
from fleet_sim.tls.subject import DeviceSubject

EXIT_ERROR = 2

certs_app = typer.Typer(
    name="certs",
    help="Create CAs and device certificates for AWS IoT provisioning, and inspect them.",
    no_args_is_help=True,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reports_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn fleetsim errors into one stderr line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except FleetSimError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def _now() -> datetime:
    return datetime.now(UTC)


def _show_written(paths: list[Path], certificate_id: str) -> None:
    for path in paths:
        typer.echo(f"wrote {path}")
    typer.echo(f"certificate id {certificate_id}")


def _write_and_show(files: list[PendingFile], certificate_id: str, *, force: bool = False) -> None:
    write_files(files, force=force)
    _show_written([f.path for f in files], certificate_id)


# ----------------------------------------------------------------------------- commands


@certs_app.command("create-ca")
@_reports_errors
def create_ca(
    cn: CommonName = None,
    country: Country = None,
    org: Organization = None,
    org_unit: OrgUnit = None,
    state: State = None,
    locality: Locality = None,
    subject_serial: SubjectSerial = None,
    dn_qualifier: DnQualifier = None,
    parent: Annotated[
        Path | None, typer.Option(help="Parent CA certificate: create an intermediate CA.")
    ] = None,
    parent_key: Annotated[
        Path | None, typer.Option(help="Parent CA key [default: the parent's name with .key].")
    ] = None,
    key_type: Annotated[KeyType, typer.Option(help="Key type.")] = KeyType.EC_P256,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 3650,
    path_length: Annotated[
        int | None, typer.Option(help="basicConstraints pathlen [root: none, intermediate: 0].")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="File name stem [root-ca / intermediate-ca].")
    ] = None,
    out_dir: OutDir = Path("certs"),
    force: Force = False,
) -> None:
    """Create a root CA, or with --parent an intermediate CA, for register-ca-certificate."""
    now = _now()
    default_cn = "fleetsim Root CA" if parent is None else "fleetsim Intermediate CA"
    subject = subject_from_options(
        cn or default_cn, country, org, org_unit, state, locality, subject_serial, dn_qualifier
    )
    if parent is None:
        ca = CertificateAuthority.create_root(subject, key_type, days, now, path_length=path_length)
    else:
        issuer = load_ca(parent, parent_key, now)
        ca = issuer.create_intermediate(
            subject, key_type, days, now, path_length=0 if path_length is None else path_length
        )
    stem = name or ("root-ca" if parent is None else "intermediate-ca")
    files = [
        PendingFile(out_dir / f"{stem}.key", ca.private_key_pem(), secret=True),
        PendingFile(out_dir / f"{stem}.crt", ca.certificate_pem()),
    ]
    if parent is not None:
        files.append(PendingFile(out_dir / f"{stem}.chain.crt", b"".join(ca.chain_pems())))
    _write_and_show(files, ca.certificate_id, force=force)


@certs_app.command("issue")
@_reports_errors
def issue(
    ca: CaFile,
    ca_key: CaKeyFile = None,
    cn: CommonName = None,
    country: Country = None,
    org: Organization = None,
    org_unit: OrgUnit = None,
    state: State = None,
    locality: Locality = None,
    subject_serial: SubjectSerial = None,
    dn_qualifier: DnQualifier = None,
    csr: Annotated[
        Path | None,
        typer.Option(
            help="Certify this CSR (its subject unless options override) instead "
            "of generating a key."
        ),
    ] = None,
    key_type: Annotated[
        KeyType | None, typer.Option(help="Key type of the new key [ec-p256].")
    ] = None,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
    serial: Annotated[
        str | None, typer.Option(help="X.509 serial number (decimal or 0x-hex) [random].")
    ] = None,
    server: Annotated[
        bool, typer.Option("--server", help="A TLS server certificate (serverAuth).")
    ] = False,
    dns_name: Annotated[
        list[str] | None, typer.Option("--dns-name", help="subjectAltName DNS (repeatable).")
    ] = None,
    ip_address: Annotated[
        list[str] | None, typer.Option("--ip-address", help="subjectAltName IP (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="File name stem [from the CN].")] = None,
    out_dir: OutDir = Path("certs"),
    force: Force = False,
) -> None:
    """Issue a device certificate: writes NAME.key, NAME.crt and NAME.chain.crt (cert + CA)."""
    now = _now()
    authority = load_ca(ca, ca_key, now)
    given = subject_from_options(
        cn, country, org, org_unit, state, locality, subject_serial, dn_qualifier
    )
    x509_serial = parse_serial(serial)
    purpose = LeafPurpose.SERVER if server else LeafPurpose.CLIENT
    alt_names = {"dns_names": dns_name or (), "ip_addresses": ip_address or ()}
    if csr is not None:
        if key_type is not None:
            raise CertificateError("--key-type does not apply with --csr (the CSR has a key)")
        request = load_csr_file(csr)
        subject = (
            DeviceSubject.from_name(request.subject).merged_with(given) if given.to_dict() else None
        )
        cert = authority.issue(
            request, subject, days, now, serial=x509_serial, purpose=purpose, **alt_names
        )
        stem = name or safe_file_stem(DeviceSubject.from_name(cert.subject).common_name or csr.stem)
        files = [
            PendingFile(out_dir / f"{stem}.crt", certificate_to_pem(cert)),
            PendingFile(
                out_dir / f"{stem}.chain.crt",
                certificate_to_pem(cert) + b"".join(authority.chain_pems()),
            ),
        ]
        _write_and_show(files, describe(cert).certificate_id)
        return
    if given.common_name is None:
        raise CertificateError("--cn is required (or give --csr)")
    identity = authority.issue_identity(
        given,
        key_type or KeyType.EC_P256,
        days,
        now,
        serial=x509_serial,
        purpose=purpose,
        **alt_names,
    )
    paths = write_identity(
        identity, out_dir, name or safe_file_stem(given.common_name), force=force
    )
    _show_written(
        [paths.private_key, paths.certificate, paths.chain_bundle], identity.certificate_id()
    )


@certs_app.command("verification-cert")
@_reports_errors
def verification_cert(
    ca: CaFile,
    registration_code: Annotated[
        str, typer.Option(help="The code from `aws iot get-registration-code`.")
    ],
    ca_key: CaKeyFile = None,
    key_type: Annotated[KeyType, typer.Option(help="Key type.")] = KeyType.EC_P256,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
    name: Annotated[str, typer.Option(help="File name stem.")] = "verification",
    out_dir: OutDir = Path("certs"),
    force: Force = False,
) -> None:
    """Make the private-key verification certificate (CN = registration code) that
    register-ca-certificate needs in DEFAULT mode."""
    now = _now()
    authority = load_ca(ca, ca_key, now)
    identity = authority.verification_certificate(
        registration_code, key_type, now, validity_days=days
    )
    paths = IdentityFiles.at(out_dir, name)
    files = [
        PendingFile(paths.private_key, identity.private_key_pem, secret=True),
        PendingFile(paths.certificate, identity.certificate_pem),
    ]
    _write_and_show(files, identity.certificate_id(), force=force)
    typer.echo(
        f"register with: aws iot register-ca-certificate --ca-certificate file://{ca} "
        f"--verification-cert file://{paths.certificate}"
    )


@certs_app.command("inspect")
def inspect_files(
    files: Annotated[list[Path], typer.Argument(help="PEM files (bundles are split).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe certificates: kind (root CA, intermediate CA, device, verification), subject,
    issuer, validity, key type and AWS certificate id."""
    now = _now()
    rows: list[tuple[Path, int, dict[str, object], str]] = []
    failed = False
    for path in files:
        try:
            certificates = load_certificate_file(path)
        except FleetSimError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
            continue
        for position, cert in enumerate(certificates):
            info = describe(cert)
            rows.append((path, position, info.to_json_dict(), info.validity_status(now)))
    if as_json:
        document = [
            {"file": str(path), "position": position, "status": status, **data}
            for path, position, data, status in rows
        ]
        typer.echo(json.dumps(document, indent=2))
    elif rows:
        _print_table(rows)
    if failed:
        raise typer.Exit(EXIT_ERROR)


def _print_table(rows: list[tuple[Path, int, dict[str, object], str]]) -> None:
    table = Table(show_lines=False)
    for column in ("File", "Kind", "Subject", "Issuer", "Key", "Not after", "Status"):
        table.add_column(column, overflow="fold")
    table.add_column("Certificate id", no_wrap=True, min_width=64)
    for path, position, data, status in rows:
        label = str(path) if position == 0 else f"{path} #{position + 1}"
        table.add_row(
            label,
            str(data["kind"]),
            str(data["subject_dn"]),
            str(data["issuer_dn"]),
            str(data["key_type"]),
            str(data["not_valid_after"])[:19].replace("T", " "),
            status,
            str(data["certificate_id"]),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)
    console.print(table)


@certs_app.command("bulk")
@_reports_errors
def bulk(
    ca: CaFile,
    count: Annotated[int, typer.Option(help="How many identities.")],
    ca_key: CaKeyFile = None,
    pattern: Annotated[
        str, typer.Option(help="CN pattern, formatted with index.")
    ] = "device-{index:05d}",
    start: Annotated[int, typer.Option(help="Index of the first device.")] = 0,
    key_type: Annotated[KeyType, typer.Option(help="Key type.")] = KeyType.EC_P256,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
    country: Country = None,
    org: Organization = None,
    org_unit: OrgUnit = None,
    state: State = None,
    locality: Locality = None,
    subject_serial: SubjectSerial = None,
    dn_qualifier: DnQualifier = None,
    cache_dir: Annotated[Path, typer.Option(help="Identity cache (reused by later runs).")] = Path(
        "certs/fleet-cache"
    ),
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Also write NAME.key/.crt/.chain.crt per device and manifest.json."),
    ] = None,
    force: Force = False,
) -> None:
    """Generate many device identities fast (EC by default), cached for reuse."""
    now = _now()
    authority = load_ca(ca, ca_key, now)
    subject = subject_from_options(
        None, country, org, org_unit, state, locality, subject_serial, dn_qualifier
    )
    spec = IdentitySpec(pattern, key_type, subject, days)
    began = time.perf_counter()
    result = build_identities(
        authority,
        spec,
        count,
        now=now,
        start=start,
        workers=workers,
        cache_dir=None if no_cache else cache_dir,
    )
    elapsed = time.perf_counter() - began
    rate = count / elapsed if elapsed > 0 else float("inf")
    typer.echo(
        f"{count} identities ({key_type}) in {elapsed:.2f} s ({rate:,.0f}/s): "
        f"{result.generated} generated, {result.reused} reused from cache"
        + (f", {result.rejected} bad cache entries replaced" if result.rejected else "")
    )
    if result.cache_path is not None:
        typer.echo(f"cache {result.cache_path}")
    if out_dir is None:
        return
    names = [spec.common_name(start + offset) for offset in range(count)]
    write_fleet(result.identities, names, out_dir, force=force)
    typer.echo(f"wrote {len(result.identities)} identities and manifest.json to {out_dir}")
