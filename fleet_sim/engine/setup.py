"""Setting up pre-registered devices through the AWS IoT control-plane API (boto3).

For each group that uses ``provisioning: preregistered`` (and has no identities of its own):

1. a fleet CA is loaded from ``certs/`` or created, and registered with the target
   (``GetRegistrationCode`` → verification certificate → ``RegisterCACertificate``);
2. device identities are generated (EC keys are cheap) and cached on disk, so reruns reuse them;
3. the group's policy is created (inline document) or taken by name;
4. per device: ``RegisterCertificate`` (ACTIVE), ``CreateThing``, ``AttachPolicy``,
   ``AttachThingPrincipal`` — pipelined over a pool of worker threads sharing one client.

Everything is idempotent: rerunning against the same target reuses what exists. The same code
runs against the emulator and against AWS (where the control-plane TPS quotas apply).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_sim.errors import FleetSimError
from fleet_sim.scenario.model import DeviceGroup, InlinePolicy, NamedPolicy
from fleet_sim.tls.bulk import IdentitySpec, generate_identities
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.identity import DeviceIdentity
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import PendingFile, write_files
from fleet_sim.tls.subject import DeviceSubject

logger = logging.getLogger(__name__)


class SetupError(FleetSimError):
    """The target refused a setup step (names the step and the AWS error)."""

    failure = "setup_failed"


@dataclass(frozen=True, slots=True)
class PreparedIdentity:
    """One device's identity as the engine needs it."""

    group: str
    index: int
    client_id: str
    thing_name: str
    certificate_file: Path
    """Certificate and CA chain, with the private key too when ``key_file`` is None."""
    certificate_id: str
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What setup did, timed apart from the run."""

    identities: tuple[PreparedIdentity, ...]
    seconds: float
    api_calls: int

    @property
    def per_device_ms(self) -> float:
        """Wall-clock setup time per device."""
        return 1000 * self.seconds / max(1, len(self.identities))


def load_or_create_fleet_ca(directory: Path, *, now: datetime) -> CertificateAuthority:
    """The fleet CA under ``directory`` (``fleet-ca.pem``/``fleet-ca.key``), created if absent."""
    cert, key = directory / "fleet-ca.pem", directory / "fleet-ca.key"
    if cert.exists() and key.exists():
        return CertificateAuthority.from_files(cert, key, now)
    ca = CertificateAuthority.create_root(
        DeviceSubject(common_name="fleetsim fleet CA", organization="fleetsim"),
        KeyType.EC_P256,
        3650,
        now,
    )
    directory.mkdir(parents=True, exist_ok=True)
    write_files(
        [
            PendingFile(key, ca.private_key_pem(), secret=True),
            PendingFile(cert, ca.certificate_pem()),
        ]
    )
    return ca


def error_code(error: Exception) -> str | None:
    """The AWS error code of a botocore ClientError (None for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def call_api(step: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a boto3 operation; an AWS error becomes a SetupError naming the step."""
    try:
        return fn(**kwargs)
    except Exception as error:
        code = error_code(error)
        if code is None:
            raise
        raise SetupError(f"{step} failed: {code}: {error}") from error


def register_ca(iot: Any, ca: CertificateAuthority, *, now: datetime) -> str:
    """Register ``ca`` ACTIVE (DEFAULT mode, with a verification certificate); its id."""
    try:
        described = iot.describe_ca_certificate(certificateId=ca.certificate_id)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise SetupError(f"DescribeCACertificate failed: {error}") from error
    else:
        if described["certificateDescription"]["status"] != "ACTIVE":
            call_api(
                "UpdateCACertificate",
                iot.update_ca_certificate,
                certificateId=ca.certificate_id,
                newStatus="ACTIVE",
            )
        return ca.certificate_id
    code = call_api("GetRegistrationCode", iot.get_registration_code)["registrationCode"]
    verification = ca.verification_certificate(code, KeyType.EC_P256, now)
    response = call_api(
        "RegisterCACertificate",
        iot.register_ca_certificate,
        caCertificate=ca.certificate_pem().decode(),
        verificationCertificate=verification.certificate_pem.decode(),
        setAsActive=True,
    )
    return str(response["certificateId"])


def ensure_policy(iot: Any, name: str, document: str) -> None:
    """Create the policy, or make ``document`` its default version if it differs."""
    try:
        current = iot.get_policy(policyName=name)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise SetupError(f"GetPolicy {name} failed: {error}") from error
        call_api("CreatePolicy", iot.create_policy, policyName=name, policyDocument=document)
        return
    if current["policyDocument"] != document:
        versions = iot.list_policy_versions(policyName=name)["policyVersions"]
        for version in versions:  # AWS keeps five versions: make room
            if not version["isDefaultVersion"] and len(versions) >= 5:
                iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])
                break
        call_api(
            "CreatePolicyVersion",
            iot.create_policy_version,
            policyName=name,
            policyDocument=document,
            setAsDefault=True,
        )


def policy_name(scenario_name: str, group: DeviceGroup) -> str:
    """The policy a group's certificates get."""
    if isinstance(group.policy, NamedPolicy):
        return group.policy.name
    assert isinstance(group.policy, InlinePolicy)
    digest = hashlib.sha256(group.policy.document.encode()).hexdigest()[:8]
    return f"fleetsim-{scenario_name}-{group.name}-{digest}"[:128]


def setup_preregistered(
    iot: Any,
    *,
    scenario_name: str,
    group: DeviceGroup,
    ca: CertificateAuthority,
    identity_dir: Path,
    cache_dir: Path,
    now: datetime,
    workers: int = 16,
) -> SetupResult:
    """Register every device of ``group`` on the target and write its identity file."""
    started = time.monotonic()
    calls = 0
    name = policy_name(scenario_name, group)
    if isinstance(group.policy, InlinePolicy):
        ensure_policy(iot, name, group.policy.document)
        calls += 2
    spec = IdentitySpec(name_pattern=f"{group.name}-{{index:06d}}", key_type=group.key_type)
    identities = generate_identities(
        ca, spec, group.count, now=now, start=group.first_index, cache_dir=cache_dir
    )
    ca_pem = ca.certificate_pem().decode()
    devices = [group.device_values(index) for index in group.indices]
    identity_dir.mkdir(parents=True, exist_ok=True)

    def register(pair: tuple[dict[str, object], DeviceIdentity]) -> PreparedIdentity:
        values, identity = pair
        thing = str(values["thing_name"])
        arn = _register_certificate(iot, identity, ca_pem)
        call_api("CreateThing", iot.create_thing, thingName=thing)
        call_api("AttachPolicy", iot.attach_policy, policyName=name, target=arn)
        call_api("AttachThingPrincipal", iot.attach_thing_principal, thingName=thing, principal=arn)
        path = identity_dir / f"{values['client_id']}.pem"
        path.write_bytes(identity.chain_bundle() + identity.private_key_pem)
        path.chmod(0o600)
        return PreparedIdentity(
            group=group.name,
            index=int(str(values["index"])),
            client_id=str(values["client_id"]),
            thing_name=thing,
            certificate_file=path,
            certificate_id=identity.certificate_id(),
        )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetsim-setup") as pool:
        prepared = list(pool.map(register, zip(devices, identities, strict=True)))
    calls += 4 * len(prepared)
    return SetupResult(tuple(prepared), time.monotonic() - started, calls)


def _register_certificate(iot: Any, identity: DeviceIdentity, ca_pem: str) -> str:
    try:
        response = iot.register_certificate(
            certificatePem=identity.certificate_pem.decode(),
            caCertificatePem=ca_pem,
            status="ACTIVE",
        )
        return str(response["certificateArn"])
    except Exception as error:
        if error_code(error) not in ("ResourceAlreadyExistsException",):
            code = error_code(error)
            if code is None:
                raise
            raise SetupError(f"RegisterCertificate failed: {code}: {error}") from error
    cert_id = identity.certificate_id()
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    if description["status"] != "ACTIVE":
        iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    return str(description["certificateArn"])


def now_utc() -> datetime:
    """The current time, timezone-aware (certificate validity)."""
    return datetime.now(tz=UTC)


def identities_from_dir(group: DeviceGroup, directory: Path) -> Sequence[PreparedIdentity]:
    """Pre-registered identities the user supplies: ``<thing_name>.pem`` (+ ``.key``)."""
    prepared: list[PreparedIdentity] = []
    for index in group.indices:
        values = group.device_values(index)
        thing = str(values["thing_name"])
        cert = directory / f"{thing}.pem"
        key = directory / f"{thing}.key"
        if not cert.exists():
            raise SetupError(f"{cert}: missing identity for thing {thing}")
        prepared.append(
            PreparedIdentity(
                group=group.name,
                index=index,
                client_id=str(values["client_id"]),
                thing_name=thing,
                certificate_file=cert,
                certificate_id="",
                key_file=key if key.exists() else None,
            )
        )
    return prepared
