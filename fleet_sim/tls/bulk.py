"""Many device identities, fast: one CA, one :class:`IdentitySpec`, ``count`` devices.

Identities are generated in-process or across worker processes and, given a cache
directory, stored under ``<cache_dir>/<ca-id[:16]>/<spec-hash[:16]>/<index>.pem`` so that the
next run with the same CA, key type, name pattern, subject and validity reuses them (same keys,
same certificate ids; RSA keys take ~50 ms each to generate).

A cache entry is the device certificate and key preceded by a header naming the CA id, spec
hash, index and a SHA-256 over those and the PEM text. An entry is used only if the header and
digest match (which binds the bytes to this CA, spec and index: subject, key type and key pair
are then exactly what was generated), the certificate names this CA's subject as issuer, and it
is valid at ``now``. Anything else (corruption, a partial write, an expired or foreign entry) is
regenerated and overwritten. Signatures and key pairs are not re-verified on reuse, which keeps
a cache hit cheaper than generating even an EC identity; the digest guards against accidents,
not against someone who can write to the cache (they could replace anything anyway).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import multiprocessing
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509

from fleet_sim.errors import CertificateError, FleetSimError
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.inspect import certificate_to_pem, check_validity
from fleet_sim.tls.keys import (
    KeyType,
    generate_private_key,
    load_private_key_pem,
    private_key_to_pem,
)
from fleet_sim.tls.pem import pem_blocks
from fleet_sim.tls.pem_files import PendingFile, write_files
from fleet_sim.tls.subject import DeviceSubject

CACHE_FORMAT = "fleetsim-identity-cache v1"


@dataclass(frozen=True, slots=True)
class IdentitySpec:
    """What the devices of a fleet look like.

    Attributes:
        name_pattern: ``str.format`` pattern of the CN, given ``index``:
            ``sensor-{index:05d}``.
        key_type: the device key type.
        subject: the other subject fields (its CN is ignored, the pattern gives it).
        validity_days: certificate validity from the generation time.
    """

    name_pattern: str = "device-{index:05d}"
    key_type: KeyType = KeyType.EC_P256
    subject: DeviceSubject = field(default_factory=DeviceSubject)
    validity_days: int = 365

    def __post_init__(self) -> None:
        try:
            first, second = self.name_pattern.format(index=0), self.name_pattern.format(index=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise CertificateError(
                f"bad name pattern {self.name_pattern!r} ({exc}): "
                "use {index}, e.g. 'sensor-{index:05d}'"
            ) from None
        if first == second:
            raise CertificateError(
                f"name pattern {self.name_pattern!r} must contain {{index}} (names would repeat)"
            )
        if self.validity_days < 1:
            raise CertificateError(f"validity must be at least 1 day, got {self.validity_days}")
        self.subject_for(0).validate()

    def common_name(self, index: int) -> str:
        """The CN of device ``index``."""
        return self.name_pattern.format(index=index)

    def subject_for(self, index: int) -> DeviceSubject:
        """The whole subject of device ``index``."""
        return self.subject.with_common_name(self.common_name(index))

    def cache_key(self, ca_certificate_id: str) -> str:
        """SHA-256 (hex) over the CA id and every field that shapes a certificate."""
        document = {
            "format": CACHE_FORMAT,
            "ca": ca_certificate_id,
            "pattern": self.name_pattern,
            "key_type": self.key_type.value,
            "subject": self.subject.with_common_name("").to_dict(),
            "validity_days": self.validity_days,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What :func:`build_identities` did.

    Attributes:
        identities: the identities, in index order.
        generated: how many were generated now.
        reused: how many came from the cache.
        rejected: cache entries found unusable (and regenerated).
        cache_path: the cache directory of this CA and spec, None without a cache.
    """

    identities: tuple[DeviceIdentity, ...]
    generated: int
    reused: int
    rejected: int
    cache_path: Path | None


def cache_path_for(cache_dir: Path | str, ca: CertificateAuthority, spec: IdentitySpec) -> Path:
    """The directory holding the cached identities of ``ca`` and ``spec``."""
    ca_id = ca.certificate_id
    return Path(cache_dir) / ca_id[:16] / spec.cache_key(ca_id)[:16]


def generate_identities(
    ca: CertificateAuthority,
    spec: IdentitySpec,
    count: int,
    *,
    now: datetime,
    start: int = 0,
    workers: int = 1,
    cache_dir: Path | str | None = None,
    start_method: str | None = None,
) -> list[DeviceIdentity]:
    """Return ``count`` identities (indexes ``start`` … ``start + count - 1``) issued by ``ca``.

    See :func:`build_identities`, which also reports what was reused.
    """
    result = build_identities(
        ca,
        spec,
        count,
        now=now,
        start=start,
        workers=workers,
        cache_dir=cache_dir,
        start_method=start_method,
    )
    return list(result.identities)


def build_identities(
    ca: CertificateAuthority,
    spec: IdentitySpec,
    count: int,
    *,
    now: datetime,
    start: int = 0,
    workers: int = 1,
    cache_dir: Path | str | None = None,
    start_method: str | None = None,
) -> BulkResult:
    """Generate (or take from the cache) ``count`` device identities issued by ``ca``.

    Args:
        ca: the issuing CA; each identity's chain is its certificate and chain.
        spec: names, key type, subject and validity of the devices.
        count: how many identities.
        now: the current time (timezone-aware).
        start: the index of the first device.
        workers: processes generating identities (1: in this process).
        cache_dir: the cache root, e.g. ``certs/fleet-cache``; None for no cache.
        start_method: multiprocessing start method; by default ``fork`` when this process
            has one thread, else ``forkserver`` (or ``spawn``).

    Raises:
        CertificateError: a negative count, fewer than one worker, the CA not valid at
            ``now``, or an unwritable cache.
    """
    if count < 0 or start < 0:
        raise CertificateError(f"count and start must not be negative (got {count}, {start})")
    if workers < 1:
        raise CertificateError(f"workers must be at least 1, got {workers}")
    check_validity(ca.certificate, now, what="CA certificate")
    indexes = range(start, start + count)
    chain = ca.chain_pems()
    found: dict[int, DeviceIdentity] = {}
    rejected = 0
    entry_dir = cache_path_for(cache_dir, ca, spec) if cache_dir is not None else None
    if entry_dir is not None:
        checker = _EntryChecker(ca, spec, now, chain)
        for index in indexes:
            identity, existed = checker.load(entry_dir / f"{index}.pem", index)
            if identity is not None:
                found[index] = identity
            elif existed:
                rejected += 1
    missing = [index for index in indexes if index not in found]
    fresh = _generate(ca, spec, missing, now, workers, start_method)
    if entry_dir is not None and fresh:
        _store(entry_dir, ca, spec, fresh)
    for index, (cert_pem, key_pem) in fresh.items():
        found[index] = DeviceIdentity(cert_pem, key_pem, chain)
    return BulkResult(
        identities=tuple(found[index] for index in indexes),
        generated=len(fresh),
        reused=count - len(fresh),
        rejected=rejected,
        cache_path=entry_dir,
    )


# --------------------------------------------------------------------------- generation


def _generate(
    ca: CertificateAuthority,
    spec: IdentitySpec,
    indexes: Sequence[int],
    now: datetime,
    workers: int,
    start_method: str | None,
) -> dict[int, tuple[bytes, bytes]]:
    if not indexes:
        return {}
    if workers == 1 or len(indexes) < 2:
        return dict(zip(indexes, _issue_many(ca, spec, indexes, now), strict=True))
    size = max(1, math.ceil(len(indexes) / (workers * 4)))
    chunks = [list(indexes[i : i + size]) for i in range(0, len(indexes), size)]
    method = start_method or _default_start_method()
    ca_pems = (ca.certificate_pem(), ca.private_key_pem())
    results: dict[int, tuple[bytes, bytes]] = {}
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), mp_context=multiprocessing.get_context(method)
    ) as pool:
        futures = [pool.submit(_issue_chunk, *ca_pems, spec, chunk, now) for chunk in chunks]
        try:
            for chunk, future in zip(chunks, futures, strict=True):
                results.update(zip(chunk, future.result(), strict=True))
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise FleetSimError(f"an identity worker process died ({exc})") from None
    return results


def _default_start_method() -> str:
    """``fork`` while this process has a single thread (cheapest and then safe; about 20 ms
    per pool instead of 350 ms), else ``forkserver``, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _issue_chunk(
    ca_certificate_pem: bytes,
    ca_key_pem: bytes,
    spec: IdentitySpec,
    indexes: list[int],
    now: datetime,
) -> list[tuple[bytes, bytes]]:
    """Worker-process entry point: rebuild the CA and issue ``indexes``."""
    ca = CertificateAuthority(
        x509.load_pem_x509_certificate(ca_certificate_pem),
        load_private_key_pem(ca_key_pem, skip_rsa_validation=True),
    )
    return _issue_many(ca, spec, indexes, now)


def _issue_many(
    ca: CertificateAuthority, spec: IdentitySpec, indexes: Sequence[int], now: datetime
) -> list[tuple[bytes, bytes]]:
    issued = []
    for index in indexes:
        key = generate_private_key(spec.key_type)
        cert = ca.issue(key.public_key(), spec.subject_for(index), spec.validity_days, now)
        issued.append((certificate_to_pem(cert), private_key_to_pem(key)))
    return issued


# --------------------------------------------------------------------------- cache


def _digest(ca_id: str, spec_key: str, index: int, payload: bytes) -> str:
    return hashlib.sha256(f"{ca_id}\n{spec_key}\n{index}\n".encode() + payload).hexdigest()


def _store(
    entry_dir: Path,
    ca: CertificateAuthority,
    spec: IdentitySpec,
    fresh: dict[int, tuple[bytes, bytes]],
) -> None:
    ca_id = ca.certificate_id
    spec_key = spec.cache_key(ca_id)
    files = [
        PendingFile(
            entry_dir / "spec.json",
            json.dumps(
                {
                    "ca_certificate_id": ca_id,
                    "spec": spec_key,
                    "pattern": spec.name_pattern,
                    "key_type": spec.key_type.value,
                    "subject": spec.subject.to_dict(),
                    "validity_days": spec.validity_days,
                },
                indent=2,
            ).encode()
            + b"\n",
        )
    ]
    for index, (cert_pem, key_pem) in fresh.items():
        payload = cert_pem + key_pem
        header = (
            f"{CACHE_FORMAT}\nca: {ca_id}\nspec: {spec_key}\nindex: {index}\n"
            f"sha256: {_digest(ca_id, spec_key, index, payload)}\n"
        )
        # Overwrites rejected entries on purpose: the cache is ours, not a user's key file.
        files.append(
            PendingFile(entry_dir / f"{index}.pem", header.encode() + payload, secret=True)
        )
    write_files(files, force=True, durable=False)


class _EntryChecker:
    """Validates cache entries of one CA and spec (see the module docstring)."""

    def __init__(
        self,
        ca: CertificateAuthority,
        spec: IdentitySpec,
        now: datetime,
        chain: tuple[bytes, ...],
    ) -> None:
        self.ca_id = ca.certificate_id
        self.spec = spec
        self.spec_key = spec.cache_key(self.ca_id)
        self.now = now
        self.chain = chain
        self.issuer = ca.certificate.subject

    def load(self, path: Path, index: int) -> tuple[DeviceIdentity | None, bool]:
        """Return (the identity if the entry is usable, whether the file exists)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, False
        except OSError:
            return None, True
        try:
            identity = self._check(data, index)
        except (ValueError, TypeError, CertificateError, x509.ExtensionNotFound):
            identity = None
        return identity, True

    def _check(self, data: bytes, index: int) -> DeviceIdentity | None:
        header, _, _ = data.partition(b"-----BEGIN")
        blocks = pem_blocks(data)
        if [b.label for b in blocks] != ["CERTIFICATE", "PRIVATE KEY"]:
            return None
        cert_pem, key_pem = blocks[0].text, blocks[1].text
        expected = (
            f"{CACHE_FORMAT}\nca: {self.ca_id}\nspec: {self.spec_key}\nindex: {index}\n"
            f"sha256: {_digest(self.ca_id, self.spec_key, index, cert_pem + key_pem)}\n"
        )
        if header.decode("ascii", "replace") != expected:
            return None
        # The digest binds the bytes to this CA, spec and index, so the subject, key type and
        # key/certificate pairing are what was generated; only time and the issuer remain.
        cert = x509.load_pem_x509_certificate(cert_pem)
        if cert.issuer != self.issuer:
            return None
        if not cert.not_valid_before_utc <= self.now < cert.not_valid_after_utc:
            return None
        return DeviceIdentity(cert_pem, key_pem, self.chain)
