"""``fleetsim certs …`` end to end, as a user runs it (``python -m fleet_sim``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.inspect import is_issued_by, load_certificate_file
from fleet_sim.tls.keys import KeyType, generate_private_key, private_key_to_pem
from fleet_sim.tls.subject import DeviceSubject

CODE = "c0ffee" * 10 + "abcd"


def fleetsim(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fleet_sim", "certs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def ok(cwd: Path, *args: str) -> str:
    done = fleetsim(cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fails(cwd: Path, *args: str) -> str:
    done = fleetsim(cwd, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with a root CA and an RSA intermediate made through the CLI."""
    cwd = tmp_path_factory.mktemp("cli")
    out = ok(cwd, "create-ca", "--org", "Acme", "--country", "US")
    assert "wrote certs/root-ca.key" in out
    ok(cwd, "create-ca", "--parent", "certs/root-ca.crt", "--key-type", "rsa-2048", "--days", "900")
    return cwd


def test_create_ca_files_and_modes(pki):
    certs = pki / "certs"
    assert (certs / "root-ca.key").stat().st_mode & 0o777 == 0o600
    [root] = load_certificate_file(certs / "root-ca.crt")
    chain = load_certificate_file(certs / "intermediate-ca.chain.crt")
    assert chain[1] == root
    assert is_issued_by(chain[0], root)
    assert DeviceSubject.from_name(root.subject) == DeviceSubject(
        common_name="fleetsim Root CA", country="US", organization="Acme"
    )


def test_issue_device_with_jitp_fields_under_the_intermediate(pki):
    out = ok(
        pki,
        "issue",
        "--ca",
        "certs/intermediate-ca.chain.crt",
        "--cn",
        "sensor-1",
        "--country",
        "US",
        "--org",
        "Acme",
        "--org-unit",
        "Fleet",
        "--state",
        "WA",
        "--locality",
        "Seattle",
        "--subject-serial",
        "SN-1",
        "--dn-qualifier",
        "q1",
        "--days",
        "30",
        "--out-dir",
        "devices",
    )
    assert "wrote devices/sensor-1.key" in out
    assert "certificate id " in out
    bundle = load_certificate_file(pki / "devices" / "sensor-1.chain.crt")
    assert len(bundle) == 3
    subject = DeviceSubject.from_name(bundle[0].subject)
    assert subject == DeviceSubject(
        common_name="sensor-1",
        country="US",
        organization="Acme",
        organizational_unit="Fleet",
        state="WA",
        locality="Seattle",
        serial_number="SN-1",
        dn_qualifier="q1",
    )
    assert (pki / "devices" / "sensor-1.key").stat().st_mode & 0o777 == 0o600


def test_issue_refuses_to_overwrite_a_key_unless_forced(pki):
    ok(pki, "issue", "--ca", "certs/root-ca.crt", "--cn", "twice", "--out-dir", "twice")
    key = (pki / "twice" / "twice.key").read_bytes()
    line = fails(pki, "issue", "--ca", "certs/root-ca.crt", "--cn", "twice", "--out-dir", "twice")
    assert line.startswith("error: twice/twice.key: a private key exists already")
    assert (pki / "twice" / "twice.key").read_bytes() == key
    ok(pki, "issue", "--ca", "certs/root-ca.crt", "--cn", "twice", "--out-dir", "twice", "--force")
    assert (pki / "twice" / "twice.key").read_bytes() != key


def test_issue_from_csr(pki):
    key = generate_private_key(KeyType.EC_P256)
    csr = create_csr(key, DeviceSubject("from-csr", organization="CsrOrg"))
    (pki / "d.csr").write_bytes(csr_to_pem(csr))
    out = ok(pki, "issue", "--ca", "certs/root-ca.crt", "--csr", "d.csr", "--out-dir", "csr")
    assert "wrote csr/from-csr.crt" in out
    assert not (pki / "csr" / "from-csr.key").exists()
    [cert, _root] = load_certificate_file(pki / "csr" / "from-csr.chain.crt")
    assert DeviceSubject.from_name(cert.subject) == DeviceSubject("from-csr", organization="CsrOrg")
    assert cert.public_key() == key.public_key()
    line = fails(
        pki, "issue", "--ca", "certs/root-ca.crt", "--csr", "d.csr", "--key-type", "ec-p384"
    )
    assert "--key-type does not apply with --csr" in line


def test_bad_csr_is_one_line(pki):
    (pki / "bad.csr").write_bytes(
        b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"
    )
    line = fails(pki, "issue", "--ca", "certs/root-ca.crt", "--csr", "bad.csr")
    assert line == "error: bad.csr: malformed certificate signing request"


def test_verification_cert_and_inspect_json(pki):
    out = ok(pki, "verification-cert", "--ca", "certs/root-ca.crt", "--registration-code", CODE)
    assert "--verification-cert file://certs/verification.crt" in out
    document = json.loads(
        ok(
            pki,
            "inspect",
            "--json",
            "certs/root-ca.crt",
            "certs/intermediate-ca.chain.crt",
            "certs/verification.crt",
        )
    )
    kinds = [(Path(e["file"]).name, e["position"], e["kind"]) for e in document]
    assert kinds == [
        ("root-ca.crt", 0, "root-ca"),
        ("intermediate-ca.chain.crt", 0, "intermediate-ca"),
        ("intermediate-ca.chain.crt", 1, "root-ca"),
        ("verification.crt", 0, "verification"),
    ]
    assert document[3]["subject"] == {"common_name": CODE}
    assert document[0]["status"] == "valid"
    assert len(document[0]["certificate_id"]) == 64


def test_inspect_table(pki):
    out = ok(pki, "inspect", "certs/root-ca.crt")
    assert "root-ca" in out
    assert "CN=fleetsim Root CA" in out


def test_inspect_reports_a_key_file_and_keeps_going(pki):
    done = fleetsim(pki, "inspect", "--json", "certs/root-ca.key", "certs/root-ca.crt")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: certs/root-ca.key: expected a PEM certificate, found a private key"
    )
    assert [e["kind"] for e in json.loads(done.stdout)] == ["root-ca"]


def test_ca_errors_are_one_line(pki):
    assert fails(pki, "issue", "--ca", "missing.crt", "--cn", "x") == (
        "error: missing.crt: no --ca-key given and missing.key does not exist"
    )
    other = CertificateAuthority.create_root(
        DeviceSubject("x"), KeyType.EC_P256, 1, datetime.now(UTC)
    )
    (pki / "wrong.key").write_bytes(private_key_to_pem(other.private_key))
    line = fails(pki, "issue", "--ca", "certs/root-ca.crt", "--ca-key", "wrong.key", "--cn", "x")
    assert line.startswith("error: wrong.key: private key does not match the certificate")
    line = fails(pki, "issue", "--ca", "certs/root-ca.crt", "--cn", "x", "--country", "USA")
    assert line == "error: subject C must be 2 letters, got 3: 'USA'"


def test_bulk_twice_reuses_the_cache(pki):
    args = [
        "bulk",
        "--ca",
        "certs/root-ca.crt",
        "--count",
        "20",
        "--pattern",
        "sensor-{index:05d}",
        "--key-type",
        "ec-p256",
        "--workers",
        "1",
        "--org",
        "Acme",
    ]
    first = ok(pki, *args, "--out-dir", "fleet")
    assert "20 generated, 0 reused" in first
    second = ok(pki, *args, "--out-dir", "fleet")
    assert "0 generated, 20 reused from cache" in second
    manifest = json.loads((pki / "fleet" / "manifest.json").read_text())
    assert [m["name"] for m in manifest][:2] == ["sensor-00000", "sensor-00001"]
    [cert, _root] = load_certificate_file(pki / "fleet" / "sensor-00019.chain.crt")
    assert DeviceSubject.from_name(cert.subject).organization == "Acme"
    assert (pki / "fleet" / "sensor-00000.key").stat().st_mode & 0o777 == 0o600
    assert fails(pki, "bulk", "--ca", "certs/root-ca.crt", "--count", "2", "--pattern", "x") == (
        "error: name pattern 'x' must contain {index} (names would repeat)"
    )
