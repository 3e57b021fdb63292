"""Interop with the real ``openssl`` binary: it accepts what we make, we read what it makes
(including the manual AWS JITP procedure, command for command)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleet_sim.errors import CertificateError
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.csr import create_csr, csr_to_pem, load_csr_file
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.inspect import (
    CertificateKind,
    certificate_id,
    certificate_to_pem,
    check_verification_certificate,
    describe,
    load_certificate_file,
)
from fleet_sim.tls.keys import (
    KeyType,
    generate_private_key,
    load_private_key_file,
    public_key_der,
)
from fleet_sim.tls.pem_files import write_identity, write_public_file
from fleet_sim.tls.subject import DeviceSubject

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]

CODE = "3f2a9c81e04b7d65" * 4


def openssl(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"openssl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout + done.stderr


def openssl_fails(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0, f"openssl {' '.join(args)} unexpectedly succeeded"
    return done.stdout + done.stderr


@pytest.fixture
def now() -> datetime:
    # openssl verify checks against the real clock.
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------- openssl accepts ours


@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.RSA_2048])
@pytest.mark.parametrize("with_intermediate", [False, True], ids=["root-only", "intermediate"])
def test_openssl_verifies_our_chains(tmp_path, now, key_type, with_intermediate):
    root = CertificateAuthority.create_root(
        DeviceSubject(common_name="Interop Root", organization="fleetsim"), key_type, 30, now
    )
    write_public_file(tmp_path / "root.pem", root.certificate_pem())
    issuer = root
    untrusted: list[str] = []
    if with_intermediate:
        issuer = root.create_intermediate(DeviceSubject("Interop Intermediate"), key_type, 20, now)
        write_public_file(tmp_path / "intermediate.pem", issuer.certificate_pem())
        untrusted = ["-untrusted", "intermediate.pem"]
    subject = DeviceSubject(common_name="sensor-1", country="US", serial_number="SN-1")
    identity = issuer.issue_identity(subject, key_type, 10, now)
    write_identity(identity, tmp_path, "device")

    out = openssl("verify", "-CAfile", "root.pem", *untrusted, "device.crt", cwd=tmp_path)
    assert "device.crt: OK" in out
    # Our leaves are fit for TLS client authentication.
    out = openssl(
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        "root.pem",
        *untrusted,
        "device.crt",
        cwd=tmp_path,
    )
    assert "device.crt: OK" in out
    # The chain bundle carries what a JITP device presents.
    out = openssl(
        "verify",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "device.chain.crt",
        "device.crt",
        cwd=tmp_path,
    )
    assert "device.crt: OK" in out
    # A different root does not verify it.
    stranger = CertificateAuthority.create_root(DeviceSubject("Interop Root"), key_type, 30, now)
    write_public_file(tmp_path / "stranger.pem", stranger.certificate_pem())
    openssl_fails("verify", "-CAfile", "stranger.pem", *untrusted, "device.crt", cwd=tmp_path)


def test_openssl_reads_our_key_csr_and_agrees_on_the_id(tmp_path, now):
    root = CertificateAuthority.create_root(DeviceSubject("R"), KeyType.EC_P256, 30, now)
    identity = root.issue_identity(DeviceSubject("d"), KeyType.EC_P256, 10, now)
    write_identity(identity, tmp_path, "d")
    from_key = openssl("pkey", "-in", "d.key", "-pubout", cwd=tmp_path)
    from_cert = openssl("x509", "-in", "d.crt", "-noout", "-pubkey", cwd=tmp_path)
    assert from_key == from_cert

    fingerprint = openssl("x509", "-in", "d.crt", "-noout", "-fingerprint", "-sha256", cwd=tmp_path)
    value = fingerprint.strip().split("=", 1)[1]
    assert value.replace(":", "").lower() == identity.certificate_id()

    key = generate_private_key(KeyType.RSA_2048)
    csr = create_csr(key, DeviceSubject("csr-device", country="US", dn_qualifier="q"))
    (tmp_path / "ours.csr").write_bytes(csr_to_pem(csr))
    out = openssl("req", "-in", "ours.csr", "-noout", "-verify", "-subject", cwd=tmp_path)
    assert "self-signature ok" in out or "verify OK" in out
    assert "CN = csr-device" in out


def test_subject_fields_read_by_openssl(tmp_path, now):
    root = CertificateAuthority.create_root(DeviceSubject("R"), KeyType.EC_P256, 30, now)
    subject = DeviceSubject(
        common_name="sensor-9",
        country="DE",
        organization="Acme",
        organizational_unit="Fleet",
        state="Bavaria",
        locality="Munich",
        serial_number="SN-9",
        dn_qualifier="plant7",
    )
    identity = root.issue_identity(subject, KeyType.EC_P256, 10, now)
    write_public_file(tmp_path / "d.crt", identity.certificate_pem)
    out = openssl("x509", "-in", "d.crt", "-noout", "-subject", "-nameopt", "RFC2253", cwd=tmp_path)
    assert out.strip() == (
        "subject=dnQualifier=plant7,serialNumber=SN-9,CN=sensor-9,OU=Fleet,O=Acme,L=Munich,"
        "ST=Bavaria,C=DE"
    )


# ------------------------------------------------------------- the manual AWS procedure


@pytest.fixture
def aws_manual(tmp_path: Path) -> Path:
    """Run the openssl commands of the manual JITP procedure, as written."""
    openssl("genrsa", "-out", "rootCA.key", "2048", cwd=tmp_path)
    openssl(
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-key",
        "rootCA.key",
        "-sha256",
        "-days",
        "1024",
        "-out",
        "rootCA.pem",
        "-subj",
        "/C=US/ST=WA/L=Seattle/O=Example/CN=Example JITP Root",
        cwd=tmp_path,
    )
    openssl("genrsa", "-out", "deviceCert.key", "2048", cwd=tmp_path)
    openssl(
        "req",
        "-new",
        "-key",
        "deviceCert.key",
        "-out",
        "deviceCert.csr",
        "-subj",
        "/C=US/ST=WA/O=Example/OU=Sensors/CN=device-0001/serialNumber=SN0001",
        cwd=tmp_path,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "deviceCert.csr",
        "-CA",
        "rootCA.pem",
        "-CAkey",
        "rootCA.key",
        "-CAcreateserial",
        "-out",
        "deviceCert.crt",
        "-days",
        "365",
        "-sha256",
        cwd=tmp_path,
    )
    bundle = (tmp_path / "deviceCert.crt").read_bytes() + (tmp_path / "rootCA.pem").read_bytes()
    (tmp_path / "deviceCertAndCACert.crt").write_bytes(bundle)  # cat deviceCert.crt rootCA.pem
    return tmp_path


def test_we_classify_the_manual_procedure_files(aws_manual):
    [root] = load_certificate_file(aws_manual / "rootCA.pem")
    [device] = load_certificate_file(aws_manual / "deviceCert.crt")
    assert describe(root).kind is CertificateKind.ROOT_CA
    info = describe(device)
    assert info.kind is CertificateKind.DEVICE
    assert info.subject == DeviceSubject(
        common_name="device-0001",
        country="US",
        state="WA",
        organization="Example",
        organizational_unit="Sensors",
        serial_number="SN0001",
    )
    assert info.issuer.common_name == "Example JITP Root"
    assert info.key_type == "rsa-2048"
    assert info.signature_algorithm == "sha256WithRSAEncryption"
    bundle = load_certificate_file(aws_manual / "deviceCertAndCACert.crt")
    assert bundle == [device, root]
    assert [describe(c).kind for c in bundle] == [CertificateKind.DEVICE, CertificateKind.ROOT_CA]

    identity = DeviceIdentity.load(
        aws_manual / "deviceCertAndCACert.crt", aws_manual / "deviceCert.key"
    )
    assert identity.chain_bundle() == (aws_manual / "deviceCertAndCACert.crt").read_bytes()
    with pytest.raises(CertificateError, match=r"rootCA\.key: private key does not match"):
        DeviceIdentity.load(aws_manual / "deviceCert.crt", aws_manual / "rootCA.key")

    fingerprint = openssl(
        "x509", "-in", "deviceCert.crt", "-noout", "-fingerprint", "-sha256", cwd=aws_manual
    )
    assert fingerprint.split("=", 1)[1].strip().replace(":", "").lower() == certificate_id(device)


def test_our_ca_tooling_loads_the_openssl_ca_and_certifies_its_csr(aws_manual):
    now = datetime.now(UTC)  # after openssl stamped notBefore with its own clock
    ca = CertificateAuthority.from_files(aws_manual / "rootCA.pem", aws_manual / "rootCA.key", now)
    csr = load_csr_file(aws_manual / "deviceCert.csr")
    cert = ca.issue(csr, None, 30, now)
    assert cert.subject == csr.subject
    identity = DeviceIdentity(
        certificate_to_pem(cert), (aws_manual / "deviceCert.key").read_bytes(), ca.chain_pems()
    )
    write_public_file(aws_manual / "ours.crt", identity.certificate_pem)
    out = openssl(
        "verify", "-purpose", "sslclient", "-CAfile", "rootCA.pem", "ours.crt", cwd=aws_manual
    )
    assert "ours.crt: OK" in out
    # …and openssl's device key is usable with it.
    key = load_private_key_file(aws_manual / "deviceCert.key")
    assert public_key_der(key.public_key()) == public_key_der(cert.public_key())


def test_openssl_made_verification_certificate(aws_manual, now):
    openssl("genrsa", "-out", "verif.key", "2048", cwd=aws_manual)
    openssl(
        "req",
        "-new",
        "-key",
        "verif.key",
        "-out",
        "verif.csr",
        "-subj",
        f"/CN={CODE}",
        cwd=aws_manual,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "verif.csr",
        "-CA",
        "rootCA.pem",
        "-CAkey",
        "rootCA.key",
        "-CAcreateserial",
        "-out",
        "verif.crt",
        "-days",
        "500",
        "-sha256",
        cwd=aws_manual,
    )
    [verification] = load_certificate_file(aws_manual / "verif.crt")
    [root] = load_certificate_file(aws_manual / "rootCA.pem")
    assert describe(verification).kind is CertificateKind.VERIFICATION
    check_verification_certificate(verification, root, CODE, now=datetime.now(UTC))
    with pytest.raises(CertificateError, match="is not the registration code"):
        check_verification_certificate(verification, root, "0" * 64)
    ours = CertificateAuthority.create_root(DeviceSubject("Other"), KeyType.EC_P256, 30, now)
    with pytest.raises(CertificateError, match="not signed by"):
        check_verification_certificate(verification, ours.certificate, CODE)


def test_our_verification_certificate_verifies_with_openssl(tmp_path, now):
    ca = CertificateAuthority.create_root(DeviceSubject("R"), KeyType.RSA_2048, 30, now)
    identity = ca.verification_certificate(CODE, KeyType.EC_P256, now)
    write_public_file(tmp_path / "ca.pem", ca.certificate_pem())
    write_public_file(tmp_path / "verif.crt", identity.certificate_pem)
    assert "verif.crt: OK" in openssl("verify", "-CAfile", "ca.pem", "verif.crt", cwd=tmp_path)
    subject = openssl("x509", "-in", "verif.crt", "-noout", "-subject", cwd=tmp_path)
    assert subject.strip() == f"subject=CN = {CODE}"


# ------------------------------------------------------------------- keys openssl writes


@pytest.mark.parametrize(
    "command",
    [
        ["genrsa", "-out", "k.pem", "2048"],
        ["genrsa", "-traditional", "-out", "k.pem", "2048"],
        ["ecparam", "-name", "prime256v1", "-genkey", "-out", "k.pem"],
        ["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "k.pem"],
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"],
    ],
    ids=["genrsa", "genrsa-pkcs1", "ecparam-sec1", "ecparam-noout", "genpkey"],
)
def test_we_load_keys_openssl_writes(tmp_path, now, command):
    openssl(*command, cwd=tmp_path)
    key = load_private_key_file(tmp_path / "k.pem")
    assert KeyType.of(key) is not None


def test_openssl_ca_without_ca_flag_is_refused(tmp_path, now):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=tmp_path)
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        "leaf.key",
        "-days",
        "5",
        "-out",
        "leaf.pem",
        "-subj",
        "/CN=not-a-ca",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        cwd=tmp_path,
    )
    with pytest.raises(CertificateError, match=r"leaf\.pem: not a CA certificate"):
        CertificateAuthority.from_files(tmp_path / "leaf.pem", tmp_path / "leaf.key", now)


def test_expired_openssl_ca_is_refused(tmp_path, now):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=tmp_path)
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-days",
        "1",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=old",
        cwd=tmp_path,
    )
    with pytest.raises(CertificateError, match=r"ca\.pem: CA certificate expired on"):
        CertificateAuthority.from_files(
            tmp_path / "ca.pem", tmp_path / "ca.key", now + timedelta(days=2)
        )


def test_v1_self_signed_openssl_certificate_is_a_root(tmp_path):
    openssl("genrsa", "-out", "k.key", "2048", cwd=tmp_path)
    openssl("req", "-new", "-key", "k.key", "-out", "k.csr", "-subj", "/CN=v1", cwd=tmp_path)
    openssl(
        "x509",
        "-req",
        "-in",
        "k.csr",
        "-signkey",
        "k.key",
        "-out",
        "v1.crt",
        "-days",
        "2",
        cwd=tmp_path,
    )
    [cert] = load_certificate_file(tmp_path / "v1.crt")
    if cert.version.name != "v1":
        pytest.skip("this openssl adds extensions to x509 -req output")
    assert describe(cert).kind is CertificateKind.ROOT_CA
