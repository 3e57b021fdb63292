from __future__ import annotations

import json
import os
import stat

import pytest

from fleet_sim.errors import CertificateError, KeyExistsError
from fleet_sim.tls import pem_files
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import (
    IdentityFiles,
    PendingFile,
    safe_file_stem,
    write_files,
    write_fleet,
    write_identity,
    write_private_key,
    write_public_file,
)
from fleet_sim.tls.subject import DeviceSubject


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_key_is_0600_and_certificate_0644(tmp_path):
    write_private_key(tmp_path / "a.key", b"KEY")
    write_public_file(tmp_path / "a.crt", b"CERT")
    assert mode(tmp_path / "a.key") == 0o600
    assert mode(tmp_path / "a.crt") == 0o644
    assert (tmp_path / "a.key").read_bytes() == b"KEY"


def test_key_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        write_private_key(tmp_path / "a.key", b"KEY")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.key") == 0o600


def test_creates_missing_directories(tmp_path):
    write_private_key(tmp_path / "x" / "y" / "a.key", b"K")
    assert (tmp_path / "x" / "y" / "a.key").read_bytes() == b"K"


def test_refuses_to_overwrite_a_key_and_writes_nothing(tmp_path):
    key = tmp_path / "d.key"
    key.write_bytes(b"OLD")
    files = [PendingFile(tmp_path / "d.crt", b"NEWCERT"), PendingFile(key, b"NEW", secret=True)]
    with pytest.raises(KeyExistsError, match=f"^{key}: a private key exists already") as caught:
        write_files(files)
    assert caught.value.file == key
    assert isinstance(caught.value, CertificateError)
    assert key.read_bytes() == b"OLD"
    assert not (tmp_path / "d.crt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.key"]


def test_force_replaces_the_key_with_mode_0600(tmp_path):
    key = tmp_path / "d.key"
    key.write_bytes(b"OLD")
    os.chmod(key, 0o644)
    write_private_key(key, b"NEW", force=True)
    assert key.read_bytes() == b"NEW"
    assert mode(key) == 0o600


def test_identical_key_content_is_not_an_overwrite(tmp_path):
    key = tmp_path / "d.key"
    write_private_key(key, b"SAME")
    assert write_files([PendingFile(key, b"SAME", secret=True)]) == []


def test_certificates_are_replaced(tmp_path):
    write_public_file(tmp_path / "a.crt", b"ONE")
    write_public_file(tmp_path / "a.crt", b"TWO", durable=False)
    assert (tmp_path / "a.crt").read_bytes() == b"TWO"


def test_failure_leaves_no_temporary_files(tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr("fleet_sim.tls.pem_files.os.replace", failing_replace)
    files = [
        PendingFile(tmp_path / "a.crt", b"A"),
        PendingFile(tmp_path / "b.crt", b"B"),
        PendingFile(tmp_path / "c.crt", b"C"),
    ]
    with pytest.raises(CertificateError, match=r"b\.crt: cannot write: No space left on device"):
        write_files(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.crt"]


def test_key_appearing_during_the_write_is_not_clobbered(tmp_path, monkeypatch):
    key = tmp_path / "d.key"
    real = pem_files._write_temporary

    def racing(pending, durable):
        temporary = real(pending, durable)
        key.write_bytes(b"RACER")
        return temporary

    monkeypatch.setattr(pem_files, "_write_temporary", racing)
    with pytest.raises(KeyExistsError, match="appeared while writing"):
        write_private_key(key, b"MINE")
    assert key.read_bytes() == b"RACER"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.key"]


def test_write_into_a_file_path_fails_cleanly(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(CertificateError, match="cannot write"):
        write_private_key(tmp_path / "file" / "a.key", b"K")


def test_write_identity(tmp_path, root_ca, now):
    identity = root_ca.issue_identity(DeviceSubject("s-1"), KeyType.EC_P256, 1, now)
    paths = write_identity(identity, tmp_path, "s-1")
    assert paths == IdentityFiles.at(tmp_path, "s-1")
    assert paths.private_key.name == "s-1.key"
    assert paths.private_key.read_bytes() == identity.private_key_pem
    assert paths.certificate.read_bytes() == identity.certificate_pem
    assert paths.chain_bundle.read_bytes() == identity.chain_bundle()
    assert mode(paths.private_key) == 0o600
    other = root_ca.issue_identity(DeviceSubject("s-1"), KeyType.EC_P256, 1, now)
    with pytest.raises(KeyExistsError):
        write_identity(other, tmp_path, "s-1")
    assert paths.certificate.read_bytes() == identity.certificate_pem
    write_identity(other, tmp_path, "s-1", force=True)
    assert paths.certificate.read_bytes() == other.certificate_pem


@pytest.mark.parametrize(
    ("name", "stem"),
    [("sensor-00001", "sensor-00001"), ("a/b c", "a_b_c"), ("../x", "_x"), (".hidden", "hidden")],
)
def test_safe_file_stem(name, stem):
    assert safe_file_stem(name) == stem


def test_safe_file_stem_refuses_nothing():
    with pytest.raises(CertificateError, match="cannot make a file name"):
        safe_file_stem("///")


def test_write_fleet_with_manifest(tmp_path, root_ca, now):
    identities = [
        root_ca.issue_identity(DeviceSubject(f"s/{i}"), KeyType.EC_P256, 1, now) for i in range(2)
    ]
    manifest_path = write_fleet(identities, ["s/0", "s/1"], tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert [entry["name"] for entry in manifest] == ["s/0", "s/1"]
    assert manifest[1]["certificate_id"] == identities[1].certificate_id()
    assert manifest[1]["private_key"] == str(tmp_path / "s_1.key")
    assert (tmp_path / "s_1.chain.crt").read_bytes() == identities[1].chain_bundle()
    assert mode(tmp_path / "s_0.key") == 0o600
    others = [root_ca.issue_identity(DeviceSubject("x"), KeyType.EC_P256, 1, now)] * 2
    with pytest.raises(KeyExistsError):
        write_fleet(others, ["s/0", "s/1"], tmp_path)
    assert json.loads(manifest_path.read_text()) == manifest
