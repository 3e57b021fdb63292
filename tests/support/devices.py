"""Test PKI and registry set-up: a registered fleet CA and provisioned device identities."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject


#: A policy that lets a device connect as its thing and use topics under its own name,
#: plus ``shared/#``; lifecycle events are readable.
def device_policy(region: str = "us-east-1", account: str = "123456789012") -> str:
    arn = f"arn:aws:iot:{region}:{account}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": f"{arn}:client/${{iot:Connection.Thing.ThingName}}",
                },
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
                    "Resource": [
                        f"{arn}:topic/devices/${{iot:ClientId}}/*",
                        f"{arn}:topic/shared/*",
                        f"{arn}:topic/$aws/events/*",
                    ],
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": [
                        f"{arn}:topicfilter/devices/${{iot:ClientId}}/*",
                        f"{arn}:topicfilter/shared/*",
                        f"{arn}:topicfilter/$aws/events/*",
                    ],
                },
            ],
        }
    )


def now_utc() -> datetime:
    return datetime.now(tz=UTC)


def make_ca(
    name: str = "fleet test CA", key_type: KeyType = KeyType.EC_P256
) -> CertificateAuthority:
    return CertificateAuthority.create_root(
        DeviceSubject(common_name=name, organization="fleetsim tests"), key_type, 365, now_utc()
    )


def register_ca(
    registry: Registry,
    ca: CertificateAuthority,
    *,
    active: bool = True,
    auto_registration: bool = False,
) -> str:
    """Register ``ca`` in DEFAULT mode with a real verification certificate."""
    code = registry.cas.get_registration_code()
    verification = ca.verification_certificate(code, KeyType.EC_P256, now_utc())
    record = registry.cas.register(
        ca.certificate_pem(),
        now=time.time(),
        verification_pem=verification.certificate_pem,
        set_as_active=active,
        allow_auto_registration=auto_registration,
    )
    return record.certificate_id


@dataclass(frozen=True)
class DeviceFiles:
    client_id: str
    certificate_id: str
    certificate: Path
    key: Path
    chain: Path


def provision_device(
    registry: Registry,
    ca: CertificateAuthority,
    client_id: str,
    directory: Path,
    *,
    policy: str | None = None,
    policy_name: str = "device-policy",
    status: CertificateStatus = CertificateStatus.ACTIVE,
    thing: bool = True,
    key_type: KeyType = KeyType.EC_P256,
) -> DeviceFiles:
    """Issue a certificate, register it (ACTIVE by default), attach the policy and the thing."""
    identity = ca.issue_identity(DeviceSubject(common_name=client_id), key_type, 30, now_utc())
    files = write_identity(identity, directory, client_id)
    record = registry.certificates.register(
        identity.certificate_pem,
        now=time.time(),
        ca_certificate_pem=ca.certificate_pem(),
        status=status,
    )
    if registry.policies.get(policy_name) is None:
        registry.policies.create(
            policy_name,
            policy or device_policy(registry.region, registry.account_id),
            now=time.time(),
        )
    registry.attachments.attach_policy(policy_name, record.arn)
    if thing:
        if registry.thing(client_id) is None:
            registry.things.create(client_id)
        registry.attachments.attach_thing_principal(client_id, record.arn)
    return DeviceFiles(
        client_id, record.certificate_id, files.certificate, files.private_key, files.chain_bundle
    )
