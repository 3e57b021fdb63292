"""AWS's manual JITP procedure, verbatim, against the emulator: openssl for the CA, the
verification and device certificates, the AWS CLI to register the CA with a registration
config, then ``mosquitto_pub`` twice — the first connect provisions and is dropped, the
second publishes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.tls.inspect import certificate_id, load_certificate_file
from tests.conftest import require_binary
from tests.integration.provisioning.support import unique
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

REGION = "us-east-1"
ACCOUNT = "123456789012"
#: mosquitto_pub's exit code when the server closes the connection (MOSQ_ERR_CONN_LOST).
MOSQ_ERR_CONN_LOST = 7

#: The template of AWS's JITP guide and blog: the thing named by the CN, the certificate
#: ACTIVE, and a policy that lets the device connect and publish (as the sample scripts').
TEMPLATE = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Country": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "AttributePayload": {
                    "version": "v1",
                    "country": {"Ref": "AWS::IoT::Certificate::Country"},
                },
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "ACTIVE",
            },
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {
                "PolicyDocument": '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow",'
                ' "Action":["iot:Connect","iot:Publish"], "Resource": ["*"] }] }'
            },
        },
    },
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    config = EmulatorConfig(port=0, data_dir=tmp_path_factory.mktemp("emulator"))
    with EmulatorThread(config) as running:
        yield running


def run(cwd: Path, command: str) -> None:
    """A command line exactly as AWS's guide writes it (``cat … > …`` included)."""
    if command.startswith("openssl "):
        require_binary("openssl")
    subprocess.run(["/bin/sh", "-c", command], cwd=cwd, check=True, capture_output=True, timeout=60)


def aws_iot(url: str, cwd: Path, command: str) -> dict[str, Any]:
    """``aws iot <command>`` (the AWS CLI from PyPI) against the emulator's control plane."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "fleetsim",
        "AWS_SECRET_ACCESS_KEY": "fleetsim",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(cwd / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(cwd / "no-credentials"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "iot", *shlex.split(command), "--endpoint-url", url],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def mosquitto_pub(emu: EmulatorThread, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = (
        f"{require_binary('mosquitto_pub')} --cafile {emu.info.ca_file}"
        " --cert deviceCertAndCACert.crt --key deviceCert.key"
        f" -h localhost -p {emu.info.port} -q 1 -t foo/bar -I anyclientID"
        ' --tls-version tlsv1.2 -m "Hello" -d'
    )
    return subprocess.run(shlex.split(command), cwd=cwd, capture_output=True, text=True, timeout=30)


def test_manual_jitp_procedure_first_publish_fails_second_succeeds(
    emu: EmulatorThread, tmp_path: Path
) -> None:
    url = emu.info.control_plane_url
    assert url is not None
    root, thing = unique("JITP-root"), unique("jitp-device")

    # 1. The CA and its registration, with the template attached.
    run(tmp_path, "openssl genrsa -out rootCA.key 2048")
    run(
        tmp_path,
        "openssl req -x509 -new -nodes -key rootCA.key -sha256 -days 1024 -out rootCA.pem"
        f" -subj '/C=US/ST=WA/O=fleetsim/CN={root}'",
    )
    code = aws_iot(url, tmp_path, "get-registration-code")["registrationCode"]
    run(tmp_path, "openssl genrsa -out verificationCert.key 2048")
    run(
        tmp_path,
        f"openssl req -new -key verificationCert.key -out verificationCert.csr -subj '/CN={code}'",
    )
    run(
        tmp_path,
        "openssl x509 -req -in verificationCert.csr -CA rootCA.pem -CAkey rootCA.key"
        " -CAcreateserial -out verificationCert.pem -days 500 -sha256",
    )
    registration = {
        "templateBody": json.dumps(TEMPLATE),
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/JITPRole",
    }
    (tmp_path / "provisioning-template.json").write_text(json.dumps(registration))
    ca = aws_iot(
        url,
        tmp_path,
        "register-ca-certificate --ca-certificate file://rootCA.pem"
        " --verification-cert file://verificationCert.pem --set-as-active"
        " --allow-auto-registration --registration-config file://provisioning-template.json",
    )

    # 2. The device certificate, signed by the CA, bundled with it.
    run(tmp_path, "openssl genrsa -out deviceCert.key 2048")
    run(
        tmp_path,
        "openssl req -new -key deviceCert.key -out deviceCert.csr"
        f" -subj '/C=US/ST=WA/L=Seattle/O=fleetsim/CN={thing}'",
    )
    run(
        tmp_path,
        "openssl x509 -req -in deviceCert.csr -CA rootCA.pem -CAkey rootCA.key -CAcreateserial"
        " -out deviceCert.crt -days 365 -sha256",
    )
    run(tmp_path, "cat deviceCert.crt rootCA.pem > deviceCertAndCACert.crt")
    cert_id = certificate_id(load_certificate_file(tmp_path / "deviceCert.crt")[0])
    assert emu.registry.certificate_by_id(cert_id) is None

    # 3. First connect: provisioning starts, the connection is dropped without CONNACK.
    first = mosquitto_pub(emu, tmp_path)
    assert first.returncode == MOSQ_ERR_CONN_LOST, first.stdout + first.stderr
    assert "The connection was lost" in first.stderr
    assert "sending CONNECT" in first.stdout
    assert "received CONNACK" not in first.stdout
    deadline = time.monotonic() + 10
    while True:
        record = emu.registry.certificate_by_id(cert_id)
        if record is not None and record.status == CertificateStatus.ACTIVE:
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    assert record.ca_certificate_id == ca["certificateId"]

    # 4. Second connect: it publishes.
    second = mosquitto_pub(emu, tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "received CONNACK (0)" in second.stdout
    assert "sending PUBLISH (d0, q1, r0, m1, 'foo/bar', ... (5 bytes))" in second.stdout
    assert "received PUBACK (Mid: 1" in second.stdout
    described = emu.registry.thing(thing)
    assert described is not None
    assert dict(described.attributes) == {"version": "v1", "country": "US"}
