"""The unmodified AWS CLI (awscli from PyPI) against the emulator, including the manual JITP
set-up sequence from AWS's guide with real openssl commands."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_binary
from tests.integration.control_plane.helpers import ACCOUNT, REGION, unique

pytestmark = pytest.mark.interop

JITP_TEMPLATE = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}},
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "ACTIVE",
            },
        },
    },
}


class Cli:
    """``python -m awscli iot ...`` with dummy credentials and no user configuration."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.url = url
        self.cwd = cwd
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "fleetsim",
            "AWS_SECRET_ACCESS_KEY": "fleetsim",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(cwd / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(cwd / "no-credentials"),
            "AWS_MAX_ATTEMPTS": "1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "awscli",
            "iot",
            *args,
            "--endpoint-url",
            self.url,
            "--region",
            REGION,
            "--output",
            "json",
        ]
        return subprocess.run(
            command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
        )

    def ok(self, *args: str) -> dict[str, Any]:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture
def cli(emu, tmp_path) -> Cli:
    return Cli(emu.info.control_plane_url, tmp_path)


def openssl(cwd: Path, command: str) -> None:
    """Run ``openssl <command>`` (written as in AWS's guide) in ``cwd``."""
    subprocess.run(
        [require_binary("openssl"), *shlex.split(command)],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_cli_thing_round_trip_and_error_exit(cli) -> None:
    name = unique("cli-thing")
    created = cli.ok(
        "create-thing", "--thing-name", name, "--attribute-payload", "attributes={color=blue}"
    )
    assert created["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"
    described = cli.ok("describe-thing", "--thing-name", name)
    assert described["attributes"] == {"color": "blue"}
    listed = cli.ok("list-things", "--max-items", "1000")
    assert name in [t["thingName"] for t in listed["things"]]
    missing = cli.run("describe-thing", "--thing-name", unique("nope"))
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr


def test_cli_certificate_and_policy_commands(cli, tmp_path) -> None:
    created = cli.ok("create-keys-and-certificate", "--set-as-active")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
            }
        )
    )
    name = unique("cli-policy")
    cli.ok("create-policy", "--policy-name", name, "--policy-document", f"file://{policy_file}")
    cli.ok("attach-policy", "--policy-name", name, "--target", created["certificateArn"])
    attached = cli.ok("list-attached-policies", "--target", created["certificateArn"])
    assert [p["policyName"] for p in attached["policies"]] == [name]
    cli.ok(
        "update-certificate",
        "--certificate-id",
        created["certificateId"],
        "--new-status",
        "INACTIVE",
    )
    described = cli.ok("describe-certificate", "--certificate-id", created["certificateId"])
    assert described["certificateDescription"]["status"] == "INACTIVE"
    conflict = cli.run("delete-certificate", "--certificate-id", created["certificateId"])
    assert conflict.returncode != 0
    assert "DeleteConflictException" in conflict.stderr


@pytest.mark.slow
def test_manual_jitp_setup_sequence(cli, tmp_path) -> None:
    """AWS's JITP guide step by step: registration code, openssl CA and verification
    certificate, register-ca-certificate with auto-registration and a registration config;
    then a device certificate signed by that CA, registered through RegisterThing."""
    code = cli.ok("get-registration-code")["registrationCode"]
    root = unique("jitp-root")
    openssl(tmp_path, "genrsa -out rootCA.key 2048")
    openssl(
        tmp_path,
        f"req -x509 -new -nodes -key rootCA.key -sha256 -days 365 -out rootCA.pem -subj /CN={root}"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl(tmp_path, "genrsa -out verificationCert.key 2048")
    openssl(
        tmp_path, f"req -new -key verificationCert.key -out verificationCert.csr -subj /CN={code}"
    )
    openssl(
        tmp_path,
        "x509 -req -in verificationCert.csr -CA rootCA.pem -CAkey rootCA.key -CAcreateserial"
        " -out verificationCert.pem -days 500 -sha256",
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/JITPRole"
    template_body = json.dumps(JITP_TEMPLATE)
    (tmp_path / "regconfig.json").write_text(
        json.dumps({"templateBody": template_body, "roleArn": role})
    )
    registered = cli.ok(
        *shlex.split(
            "register-ca-certificate --ca-certificate file://rootCA.pem"
            " --verification-cert file://verificationCert.pem --set-as-active"
            " --allow-auto-registration --registration-config file://regconfig.json"
        )
    )
    ca_id = registered["certificateId"]
    described = cli.ok("describe-ca-certificate", "--certificate-id", ca_id)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert described["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"
    assert described["registrationConfig"] == {"templateBody": template_body, "roleArn": role}

    # A device certificate from the CA; until JITP exists, RegisterThing provisions it.
    device = unique("jitp-device")
    openssl(tmp_path, "genrsa -out device.key 2048")
    openssl(tmp_path, f"req -new -key device.key -out device.csr -subj /CN={device}")
    openssl(
        tmp_path,
        "x509 -req -in device.csr -CA rootCA.pem -CAkey rootCA.key -CAcreateserial"
        " -out device.pem -days 365 -sha256",
    )
    certificate = cli.ok(
        *shlex.split(
            "register-certificate --certificate-pem file://device.pem"
            " --ca-certificate-pem file://rootCA.pem"
        )
    )
    (tmp_path / "template.json").write_text(template_body)
    (tmp_path / "parameters.json").write_text(
        json.dumps(
            {
                "AWS::IoT::Certificate::CommonName": device,
                "AWS::IoT::Certificate::Id": certificate["certificateId"],
            }
        )
    )
    provisioned = cli.ok(
        *shlex.split(
            "register-thing --template-body file://template.json"
            " --parameters file://parameters.json"
        )
    )
    assert provisioned["resourceArns"]["thing"].endswith(f":thing/{device}")
    principals = cli.ok("list-thing-principals", "--thing-name", device)["principals"]
    assert principals == [certificate["certificateArn"]]
    status = cli.ok("describe-certificate", "--certificate-id", certificate["certificateId"])
    assert status["certificateDescription"]["status"] == "ACTIVE"
    assert status["certificateDescription"]["caCertificateId"] == ca_id
    by_ca = cli.ok("list-certificates-by-ca", "--ca-certificate-id", ca_id)["certificates"]
    assert [c["certificateId"] for c in by_ca] == [certificate["certificateId"]]
