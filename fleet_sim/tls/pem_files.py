"""Writing certificates and keys to disk safely.

Every file is written to a temporary file in the target directory and renamed into place, so
a reader never sees half a file. Private keys get mode 0600 and are never replaced unless
``force`` is given (:class:`~fleet_sim.errors.KeyExistsError` otherwise); rewriting a key with
identical bytes is not a replacement and is allowed. When several files are written together,
all are prepared before any is renamed, keys first, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet_sim.errors import CertificateError, KeyExistsError
from fleet_sim.tls.identity import DeviceIdentity

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A file to write.

    Attributes:
        path: where it goes.
        data: its bytes.
        secret: a private key (mode 0600, protected against overwriting).
    """

    path: Path
    data: bytes
    secret: bool = False


@dataclass(frozen=True, slots=True)
class IdentityFiles:
    """Where :func:`write_identity` puts an identity: ``<name>.key``, ``<name>.crt`` (the
    certificate alone) and ``<name>.chain.crt`` (certificate then CA chain)."""

    private_key: Path
    certificate: Path
    chain_bundle: Path

    @classmethod
    def at(cls, directory: Path | str, name: str) -> IdentityFiles:
        """The paths for ``name`` in ``directory``."""
        base = Path(directory)
        return cls(base / f"{name}.key", base / f"{name}.crt", base / f"{name}.chain.crt")


def safe_file_stem(name: str) -> str:
    """Turn a common name into a file name stem: runs of characters other than letters,
    digits, ``.``, ``_`` and ``-`` become ``_``; a leading dot is dropped.

    Raises:
        CertificateError: nothing usable is left.
    """
    stem = _UNSAFE_CHARS.sub("_", name).lstrip(".")
    if not stem.strip("_"):
        raise CertificateError(f"cannot make a file name from {name!r}")
    return stem


def write_files(
    files: Sequence[PendingFile], *, force: bool = False, durable: bool = True
) -> list[Path]:
    """Write ``files`` atomically, keys first; return the paths actually (re)written.

    Args:
        files: what to write.
        force: replace existing private keys whose content differs.
        durable: fsync files and directories (off for caches, which are validated on read).

    Raises:
        KeyExistsError: a private key exists with other content and ``force`` is false;
            nothing has been written then.
        CertificateError: an OS error, naming the file; temporary files are removed.
    """
    plan = [f for f in files if not (f.secret and _unchanged(f, force))]
    plan.sort(key=lambda f: not f.secret)
    prepared: list[tuple[PendingFile, str]] = []
    try:
        for pending in plan:
            prepared.append((pending, _write_temporary(pending, durable)))  # noqa: PERF401
        for position, (pending, temporary) in enumerate(prepared):
            _commit(pending, temporary, force)
            prepared[position] = (pending, "")
    except BaseException:
        for _, temporary in prepared:
            if temporary:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        raise
    if durable:
        _sync_directories(p.path.parent for p in plan)
    return [p.path for p in plan]


def write_private_key(
    path: Path | str, data: bytes, *, force: bool = False, durable: bool = True
) -> None:
    """Write one private key (mode 0600, atomic, see :func:`write_files`)."""
    write_files([PendingFile(Path(path), data, secret=True)], force=force, durable=durable)


def write_public_file(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Write one certificate or other public file (mode 0644, atomic, replaces)."""
    write_files([PendingFile(Path(path), data)], durable=durable)


def write_identity(
    identity: DeviceIdentity,
    directory: Path | str,
    name: str,
    *,
    force: bool = False,
    durable: bool = True,
) -> IdentityFiles:
    """Write ``identity`` as ``<name>.key``, ``<name>.crt`` and ``<name>.chain.crt``.

    Raises:
        KeyExistsError: ``<name>.key`` exists with other content and ``force`` is false.
        CertificateError: an OS error, naming the file.
    """
    paths = IdentityFiles.at(directory, name)
    write_files(
        [
            PendingFile(paths.private_key, identity.private_key_pem, secret=True),
            PendingFile(paths.certificate, identity.certificate_pem),
            PendingFile(paths.chain_bundle, identity.chain_bundle()),
        ],
        force=force,
        durable=durable,
    )
    return paths


def write_fleet(
    identities: Sequence[DeviceIdentity],
    names: Sequence[str],
    directory: Path | str,
    *,
    force: bool = False,
) -> Path:
    """Write many identities (``<name>.key/.crt/.chain.crt`` each, names made file-safe) and
    a ``manifest.json`` listing name, certificate id and paths; return the manifest's path.

    All files are prepared before any is renamed, so a refused key writes nothing. Files
    are not fsynced (they can be regenerated).

    Raises:
        KeyExistsError: a key exists with other content and ``force`` is false.
        CertificateError: an OS error, naming the file.
    """
    files: list[PendingFile] = []
    manifest: list[dict[str, str]] = []
    for identity, name in zip(identities, names, strict=True):
        paths = IdentityFiles.at(directory, safe_file_stem(name))
        files += [
            PendingFile(paths.private_key, identity.private_key_pem, secret=True),
            PendingFile(paths.certificate, identity.certificate_pem),
            PendingFile(paths.chain_bundle, identity.chain_bundle()),
        ]
        manifest.append(
            {
                "name": name,
                "certificate_id": identity.certificate_id(),
                "private_key": str(paths.private_key),
                "certificate": str(paths.certificate),
                "chain_bundle": str(paths.chain_bundle),
            }
        )
    manifest_path = Path(directory) / "manifest.json"
    files.append(PendingFile(manifest_path, json.dumps(manifest, indent=2).encode() + b"\n"))
    write_files(files, force=force, durable=False)
    return manifest_path


def _unchanged(pending: PendingFile, force: bool) -> bool:
    """For a key: True when the file already holds these bytes (nothing to do).

    Raises:
        KeyExistsError: it holds something else (or is unreadable) and ``force`` is false.
    """
    if not os.path.lexists(pending.path):
        return False
    try:
        same = pending.path.read_bytes() == pending.data
    except OSError:
        same = False
    if same:
        return True
    if not force:
        raise KeyExistsError(
            "a private key exists already; refusing to overwrite it (use --force)",
            file=pending.path,
        )
    return False


def _write_temporary(pending: PendingFile, durable: bool) -> str:
    directory = pending.path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{pending.path.name}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise CertificateError(f"cannot write: {exc.strerror or exc}", file=pending.path) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), SECRET_MODE if pending.secret else PUBLIC_MODE)
            stream.write(pending.data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise CertificateError(
                f"cannot write: {exc.strerror or exc}", file=pending.path
            ) from None
        raise
    return temporary


def _commit(pending: PendingFile, temporary: str, force: bool) -> None:
    try:
        if pending.secret and not force:
            _link_without_replacing(temporary, pending.path)
        else:
            os.replace(temporary, pending.path)
    except FileExistsError:
        raise KeyExistsError(
            "a private key appeared while writing; refusing to overwrite it", file=pending.path
        ) from None
    except OSError as exc:
        raise CertificateError(f"cannot write: {exc.strerror or exc}", file=pending.path) from None


def _link_without_replacing(temporary: str, path: Path) -> None:
    """Move ``temporary`` to ``path`` unless ``path`` exists (atomically where hard links
    work; raises FileExistsError otherwise)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(path):
            raise FileExistsError(str(path)) from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _sync_directories(directories: Iterable[Path]) -> None:
    for directory in set(directories):
        with contextlib.suppress(OSError):
            handle = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
