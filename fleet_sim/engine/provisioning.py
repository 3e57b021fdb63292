"""Setting up the provisioning methods on the target, through the AWS IoT API (boto3).

* ``jitp``: the group's CA is registered with auto-registration and a registration config
  (the scenario's template, or fleetsim's: thing named by the certificate's CN, the group's
  policy, certificate ACTIVE). Devices get CA-signed certificates that the target does not know.
* ``jitr``: the CA is registered with auto-registration and no template; on the embedded
  emulator fleetsim installs its reference JITR activator as a local rule (on AWS, the
  user's rule and Lambda do it).
* ``claim``: the fleet-provisioning template is created if it does not exist, and the claim
  certificate is made (CreateKeysAndCertificate) with a claim policy, unless given as files.

The same code runs against the emulator and AWS.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet_sim.engine.setup import (
    PreparedIdentity,
    SetupError,
    call_api,
    ensure_policy,
    error_code,
    load_or_create_fleet_ca,
    policy_name,
)
from fleet_sim.engine.target import ResolvedTarget
from fleet_sim.scenario.model import (
    ClaimProvisioning,
    DeviceGroup,
    InlinePolicy,
    JitpProvisioning,
    JitrProvisioning,
)
from fleet_sim.tls.bulk import IdentitySpec, generate_identities
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject

logger = logging.getLogger(__name__)


def _role_arn(target: ResolvedTarget, role_arn: str | None) -> str:
    if role_arn is not None:
        return role_arn
    account = target.account_id or "123456789012"
    return f"arn:aws:iam::{account}:role/fleetsim-provisioning"


def _group_ca(
    group: DeviceGroup, source: object, certs_dir: Path, method: str, now: datetime
) -> CertificateAuthority:
    if source == "generate":
        return load_or_create_fleet_ca(certs_dir / f"{method}-ca", now=now)
    cert = Path(getattr(source, "cert"))  # noqa: B009 - CertificateFiles
    key = Path(getattr(source, "key_file"))  # noqa: B009
    return CertificateAuthority.from_files(cert, key, now)


def _template(
    parameters: dict[str, Any], thing_name: dict[str, str], policy: str, method: str
) -> dict[str, Any]:
    """A template: thing named by ``thing_name``, the certificate ACTIVE, the group's policy."""
    return {
        "Parameters": parameters,
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": thing_name,
                    "AttributePayload": {"provisionedBy": f"fleetsim-{method}"},
                },
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                    "Status": "ACTIVE",
                },
            },
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": policy}},
        },
    }


def jitp_template(policy: str) -> dict[str, Any]:
    """fleetsim's JITP template: thing named by the CN, the group's policy, ACTIVE."""
    parameters = {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    }
    return _template(parameters, {"Ref": "AWS::IoT::Certificate::CommonName"}, policy, "jitp")


def fleet_template(policy: str) -> dict[str, Any]:
    """fleetsim's fleet-provisioning template: thing named by ``SerialNumber``."""
    template = _template(
        {"SerialNumber": {"Type": "String"}}, {"Ref": "SerialNumber"}, policy, "claim"
    )
    template["DeviceConfiguration"] = {"provisionedBy": "fleetsim"}
    return template


def _ensure_group_policy(iot: Any, scenario_name: str, group: DeviceGroup) -> str:
    name = policy_name(scenario_name, group)
    if isinstance(group.policy, InlinePolicy):
        ensure_policy(iot, name, group.policy.document)
    return name


def register_ca_for_auto_registration(
    iot: Any, ca: CertificateAuthority, *, registration_config: dict[str, str] | None, now: datetime
) -> str:
    """Register ``ca`` ACTIVE with auto-registration (JITP with a config, JITR without)."""
    ca_id = ca.certificate_id
    try:
        iot.describe_ca_certificate(certificateId=ca_id)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise SetupError(f"DescribeCACertificate failed: {error}") from error
        code = call_api("GetRegistrationCode", iot.get_registration_code)["registrationCode"]
        verification = ca.verification_certificate(code, KeyType.EC_P256, now)
        kwargs: dict[str, Any] = {
            "caCertificate": ca.certificate_pem().decode(),
            "verificationCertificate": verification.certificate_pem.decode(),
            "setAsActive": True,
            "allowAutoRegistration": True,
        }
        if registration_config is not None:
            kwargs["registrationConfig"] = registration_config
        call_api("RegisterCACertificate", iot.register_ca_certificate, **kwargs)
        return ca_id
    update: dict[str, Any] = {
        "certificateId": ca_id,
        "newStatus": "ACTIVE",
        "newAutoRegistrationStatus": "ENABLE",
    }
    if registration_config is not None:
        update["registrationConfig"] = registration_config
    else:
        update["removeAutoRegistration"] = True
    call_api("UpdateCACertificate", iot.update_ca_certificate, **update)
    if registration_config is None:  # removeAutoRegistration also clears the status on AWS
        call_api(
            "UpdateCACertificate",
            iot.update_ca_certificate,
            certificateId=ca_id,
            newAutoRegistrationStatus="ENABLE",
        )
    return ca_id


def ca_signed_identities(
    group: DeviceGroup,
    ca: CertificateAuthority,
    *,
    identity_dir: Path,
    cache_dir: Path,
    now: datetime,
) -> list[PreparedIdentity]:
    """Device certificates signed by ``ca`` with the thing name as CN, not registered."""
    values = [group.device_values(index) for index in group.indices]
    identities: list[DeviceIdentity]
    if group.thing_name.fields <= {"index", "group"}:
        pattern = group.thing_name.source.replace("{group}", group.name)
        spec = IdentitySpec(name_pattern=pattern, key_type=group.key_type)
        identities = generate_identities(
            ca, spec, group.count, now=now, start=group.first_index, cache_dir=cache_dir
        )
    else:
        identities = [
            ca.issue_identity(
                DeviceSubject(common_name=str(v["thing_name"])), group.key_type, 365, now
            )
            for v in values
        ]
    identity_dir.mkdir(parents=True, exist_ok=True)
    prepared = []
    for value, identity in zip(values, identities, strict=True):
        path = identity_dir / f"{value['client_id']}.pem"
        path.write_bytes(identity.chain_bundle() + identity.private_key_pem)
        path.chmod(0o600)
        prepared.append(
            PreparedIdentity(
                group=group.name,
                index=int(str(value["index"])),
                client_id=str(value["client_id"]),
                thing_name=str(value["thing_name"]),
                certificate_file=path,
                certificate_id=identity.certificate_id(),
            )
        )
    return prepared


def setup_jitp(
    target: ResolvedTarget,
    *,
    scenario_name: str,
    group: DeviceGroup,
    provisioning: JitpProvisioning,
    certs_dir: Path,
    identity_dir: Path,
    now: datetime,
) -> list[PreparedIdentity]:
    """Register the CA with a JITP template; devices get unregistered CA-signed certificates."""
    iot = target.iot
    ca = _group_ca(group, provisioning.ca, certs_dir, "jitp", now)
    if provisioning.template is not None:
        body = Path(provisioning.template).read_text(encoding="utf-8")
    else:
        body = json.dumps(jitp_template(_ensure_group_policy(iot, scenario_name, group)))
    config = {"templateBody": body, "roleArn": _role_arn(target, provisioning.role_arn)}
    register_ca_for_auto_registration(iot, ca, registration_config=config, now=now)
    return ca_signed_identities(
        group, ca, identity_dir=identity_dir, cache_dir=certs_dir / "fleet-cache", now=now
    )


def setup_jitr(
    target: ResolvedTarget,
    *,
    scenario_name: str,
    group: DeviceGroup,
    provisioning: JitrProvisioning,
    certs_dir: Path,
    identity_dir: Path,
    now: datetime,
) -> list[PreparedIdentity]:
    """Register the CA for JITR; on the emulator, install the reference activator."""
    iot = target.iot
    ca = _group_ca(group, provisioning.ca, certs_dir, "jitr", now)
    policy = _ensure_group_policy(iot, scenario_name, group)
    register_ca_for_auto_registration(iot, ca, registration_config=None, now=now)
    if provisioning.activator == "fleetsim":
        install_jitr_activator(target, policy_name=policy)
    return ca_signed_identities(
        group, ca, identity_dir=identity_dir, cache_dir=certs_dir / "fleet-cache", now=now
    )


def install_jitr_activator(target: ResolvedTarget, *, policy_name: str) -> None:
    """Route ``$aws/events/certificates/registered/+`` to fleetsim's reference activator.

    Only the embedded emulator can run it locally; on AWS, deploy
    ``fleet_sim/lambdas/jitr_activator.py`` as the rule's Lambda (``activator: external``).
    """
    emulator = target.emulator
    if emulator is None:
        raise SetupError(
            "JITR with activator 'fleetsim' needs the embedded emulator; on AWS deploy "
            "fleet_sim/lambdas/jitr_activator.py behind an IoT rule and use activator: external"
        )
    from fleet_sim.lambdas import jitr_activator

    os.environ.setdefault("FLEETSIM_IOT_ENDPOINT", str(emulator.control_plane_url))
    os.environ["JITR_POLICY_NAME"] = policy_name
    emulator.rules.add_rule(
        "$aws/events/certificates/registered/+",
        jitr_activator.handler,
        name="fleetsim-jitr-activator",
    )


@dataclass(frozen=True, slots=True)
class ClaimSetup:
    """What claim devices share: the claim identity and the template to call."""

    claim_file: Path
    template_name: str


def claim_policy_document(template_name: str) -> str:
    """The claim certificate's policy: only the provisioning topics (§3.3)."""
    arn = "arn:aws:iot:*:*:"
    topics = [
        f"{arn}topic/$aws/certificates/create/*",
        f"{arn}topic/$aws/certificates/create-from-csr/*",
        f"{arn}topic/$aws/provisioning-templates/{template_name}/provision/*",
    ]
    filters = [t.replace(":topic/", ":topicfilter/") for t in topics]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}client/*"},
                {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": topics},
                {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": filters},
            ],
        },
        separators=(",", ":"),
    )


def setup_claim(
    target: ResolvedTarget,
    *,
    scenario_name: str,
    group: DeviceGroup,
    provisioning: ClaimProvisioning,
    certs_dir: Path,
    identity_dir: Path,
) -> ClaimSetup:
    """Make sure the template and the claim certificate exist."""
    iot = target.iot
    template = provisioning.template_name
    try:
        iot.describe_provisioning_template(templateName=template)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise SetupError(f"DescribeProvisioningTemplate failed: {error}") from error
        policy = _ensure_group_policy(iot, scenario_name, group)
        call_api(
            "CreateProvisioningTemplate",
            iot.create_provisioning_template,
            templateName=template,
            templateBody=json.dumps(fleet_template(policy)),
            provisioningRoleArn=_role_arn(target, None),
            enabled=True,
        )
    source = provisioning.claim_certificate
    if source != "generate":
        cert = Path(getattr(source, "cert"))  # noqa: B009
        key = Path(getattr(source, "key_file"))  # noqa: B009
        combined = identity_dir / f"claim-{group.name}.pem"
        identity_dir.mkdir(parents=True, exist_ok=True)
        combined.write_bytes(cert.read_bytes() + b"\n" + key.read_bytes())
        combined.chmod(0o600)
        return ClaimSetup(combined, template)
    created = call_api(
        "CreateKeysAndCertificate", iot.create_keys_and_certificate, setAsActive=True
    )
    claim_policy = f"fleetsim-claim-{template}"[:128]
    ensure_policy(iot, claim_policy, claim_policy_document(template))
    call_api(
        "AttachPolicy", iot.attach_policy, policyName=claim_policy, target=created["certificateArn"]
    )
    identity_dir.mkdir(parents=True, exist_ok=True)
    combined = identity_dir / f"claim-{group.name}.pem"
    combined.write_bytes(
        created["certificatePem"].encode() + b"\n" + created["keyPair"]["PrivateKey"].encode()
    )
    combined.chmod(0o600)
    return ClaimSetup(combined, template)
