"""Helpers of the JITP/JITR tests: templates, auto-registering CAs, devices and connects."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fleet_sim.device.link import Endpoint
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import AutoRegistrationConfig, EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateMode, RegistrationConfig
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import ConnectionFailed
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, Publish
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import IdentityFiles, write_identity
from fleet_sim.tls.subject import DeviceSubject
from fleet_sim.transport.tls_protocol import ReadBuffer
from tests.support.devices import make_ca, now_utc

TIMEOUT = 10.0
ROLE_ARN = "arn:aws:iam::123456789012:role/JITPRole"
REGISTERED = "$aws/events/certificates/registered/"
ARN = "arn:aws:iot:us-east-1:123456789012"
ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def jitp_template(*, country: bool = False, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """Thing named by the CN (with the serial number as an attribute), the certificate
    ACTIVE, a per-thing inline policy; optionally the Country parameter and thing groups."""
    parameters: dict[str, Any] = {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::SerialNumber": {"Type": "String", "Default": "none"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    }
    if country:
        parameters["AWS::IoT::Certificate::Country"] = {"Type": "String"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iot:Connect"],
                "Resource": [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"],
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish"],
                "Resource": [f"{ARN}:topic/foo/bar"],
            },
        ],
    }
    thing: dict[str, Any] = {
        "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
        "AttributePayload": {"serial": {"Ref": "AWS::IoT::Certificate::SerialNumber"}},
    }
    if groups:
        thing["ThingGroups"] = list(groups)
    return {
        "Parameters": parameters,
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": thing},
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                    "Status": "ACTIVE",
                },
            },
            "policy": {
                "Type": "AWS::IoT::Policy",
                "Properties": {"PolicyDocument": json.dumps(policy)},
            },
        },
    }


def jitp_config(template: dict[str, Any] | None = None) -> RegistrationConfig:
    body = json.dumps(template if template is not None else jitp_template())
    return RegistrationConfig(template_body=body, role_arn=ROLE_ARN)


def register_jit_ca(
    registry: Registry,
    *,
    config: RegistrationConfig | None = None,
    active: bool = True,
    auto: bool = True,
    mode: CertificateMode = CertificateMode.DEFAULT,
    name: str | None = None,
) -> tuple[CertificateAuthority, str]:
    """A fresh CA registered with auto-registration (JITP with ``config``, else JITR)."""
    ca = make_ca(name or unique("jit CA"))
    verification = None
    if mode is CertificateMode.DEFAULT:
        code = registry.cas.get_registration_code()
        verification = ca.verification_certificate(code, KeyType.EC_P256, now_utc()).certificate_pem
    record = registry.cas.register(
        ca.certificate_pem(),
        now=time.time(),
        verification_pem=verification,
        set_as_active=active,
        allow_auto_registration=auto,
        registration_config=config,
        certificate_mode=mode,
    )
    return ca, record.certificate_id


def device_files(
    ca: CertificateAuthority, directory: Path, name: str, **subject: str
) -> tuple[IdentityFiles, str]:
    """A device certificate issued by ``ca`` (CN ``name``), written out; and its id."""
    identity = ca.issue_identity(
        DeviceSubject(common_name=name, **subject), KeyType.EC_P256, 30, now_utc()
    )
    return write_identity(identity, directory, name), identity.certificate_id()


def config(tmp_path: Path, **auto: Any) -> EmulatorConfig:
    """An emulator on a free port with a fast JITP (unless ``auto`` says otherwise)."""
    settings = {"jitp_latency_s": (0.01, 0.03), **auto}
    return EmulatorConfig(
        port=0,
        data_dir=tmp_path / "emulator",
        auto_registration=AutoRegistrationConfig(**settings),
    )


def endpoint(emulator: Emulator, *, sni: bool = True) -> Endpoint:
    info = emulator.info
    return Endpoint(info.host, info.port, server_name=info.endpoint if sni else None)


async def dial(
    emulator: Emulator,
    certificate: Path,
    key: Path,
    client_id: str,
    *,
    sni: bool = True,
    inbox: list[Publish] | None = None,
) -> NativeConnection:
    """One connect; raises :class:`ConnectionFailed` when it does not reach CONNACK."""
    settings = TlsSettings(ca_file=Path(emulator.info.ca_file), check_hostname=sni)
    context = client_context(settings, certificate, key)
    session = ClientSession(client_id, version=ProtocolVersion.MQTT_3_1_1, keep_alive=60)
    conn = NativeConnection(
        session,
        endpoint(emulator, sni=sni),
        context,
        read_buffer=ReadBuffer(),
        on_message=None if inbox is None else inbox.append,
    )
    await conn.connect(timeout_s=TIMEOUT)
    return conn


async def refused(
    emulator: Emulator, certificate: Path, key: Path, client_id: str, *, sni: bool = True
) -> str:
    """Connect, expecting a refusal; returns its failure name."""
    try:
        conn = await dial(emulator, certificate, key, client_id, sni=sni)
    except ConnectionFailed as error:
        return error.failure
    await conn.disconnect()
    raise AssertionError(f"{client_id} connected")


async def connect_with_retries(
    emulator: Emulator,
    certificate: Path,
    key: Path,
    client_id: str,
    *,
    attempts: int = 60,
    backoff_s: float = 0.05,
    max_backoff_s: float = 0.4,
) -> tuple[NativeConnection, int]:
    """Connect until CONNACK with exponential backoff; returns the connection and how many
    attempts were dropped before it."""
    drops = 0
    delay = backoff_s
    for _ in range(attempts):
        try:
            return await dial(emulator, certificate, key, client_id), drops
        except ConnectionFailed as error:
            if error.failure != "closed_before_connack":
                raise
            drops += 1
        await asyncio.sleep(delay)
        delay = min(max_backoff_s, delay * 2)
    raise AssertionError(f"{client_id} never connected ({drops} drops)")


async def eventually(predicate: Any, *, timeout_s: float = TIMEOUT) -> None:
    """Poll ``predicate()`` until true (yielding to the loop in between)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def active_device(
    emulator: Emulator, ca: CertificateAuthority, directory: Path
) -> tuple[IdentityFiles, str]:
    """A device registered ACTIVE by hand under ``ca`` and allowed everything; its files and
    name (= client id)."""
    registry = emulator.registry
    name = unique("helper")
    files, _ = device_files(ca, directory, name)
    record = registry.certificates.register(
        files.certificate.read_bytes(),
        now=time.time(),
        ca_certificate_pem=ca.certificate_pem(),
        status="ACTIVE",
    )
    if registry.policies.get("allow-all") is None:
        registry.policies.create("allow-all", ALLOW_ALL, now=time.time())
    registry.attachments.attach_policy("allow-all", record.arn)
    return files, name


@asynccontextmanager
async def subscriber(
    emulator: Emulator, ca: CertificateAuthority, directory: Path, topic_filter: str
) -> AsyncIterator[list[Publish]]:
    """An :func:`active_device` subscribed to ``topic_filter``; yields the list its messages
    arrive in."""
    files, name = active_device(emulator, ca, directory)
    inbox: list[Publish] = []
    conn = await dial(emulator, files.chain_bundle, files.private_key, name, inbox=inbox)
    try:
        codes = await conn.subscribe([(topic_filter, 1)], timeout_s=TIMEOUT)
        assert codes == (1,), codes
        yield inbox
    finally:
        await conn.disconnect()
