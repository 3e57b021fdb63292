"""CreateCertificateFromCsr, the CBOR variants, and the control plane's template validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet_sim.emulator.registry.models import CertificateStatus
from tests.integration.fleet_provisioning.support import (
    CREATE_FROM_CSR,
    ROLE_ARN,
    Identity,
    fleet_client,
    new_csr,
    provision_topic,
    rejection,
    subscribe_replies,
    unique,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop


def tampered(csr_pem: str) -> str:
    """The CSR with its subject altered after signing: the signature no longer verifies."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(Encoding.DER))
    index = der.index(b"csr-device")
    der[index] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


# ---------------------------------------------------------------------- CSR and CBOR


def test_create_certificate_from_csr_keeps_the_subject(emu: EmulatorThread, claim: Identity):
    common_name = unique("csr-device")
    _, csr = new_csr(common_name)
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, CREATE_FROM_CSR)
        outcome, body = client.request(CREATE_FROM_CSR, {"certificateSigningRequest": csr})
        assert outcome == "accepted", body
        assert set(body) == {"certificateOwnershipToken", "certificateId", "certificatePem"}
        cert = emu.registry.certificates.describe(body["certificateId"])
        assert cert.status is CertificateStatus.PENDING_ACTIVATION
        assert cert.subject_fields.common_name == common_name
        for request in ({"certificateSigningRequest": tampered(csr)}, {}, {"x": 1}):
            outcome, body = client.request(CREATE_FROM_CSR, request)
            assert (outcome, body) == ("rejected", rejection(400, "InvalidPayload"))


def test_cbor_requests_get_cbor_replies(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    create = "$aws/certificates/create/cbor"
    provision = provision_topic(template, "cbor")
    serial = unique("cbor")
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, create)
        subscribe_replies(client, provision)
        client.publish(create, b"")
        topic, payload = client.next_message(f"{create}/")
        keys = cbor2.loads(payload)
        assert topic == f"{create}/accepted", keys
        request = {
            "certificateOwnershipToken": keys["certificateOwnershipToken"],
            "parameters": {"SerialNumber": serial},
        }
        client.publish(provision, cbor2.dumps(request))
        topic, payload = client.next_message(f"{provision}/")
        assert topic == f"{provision}/accepted"
        assert cbor2.loads(payload)["thingName"] == f"device-{serial}"
        client.publish(provision, b"\xff\x00")
        topic, payload = client.next_message(f"{provision}/")
        assert topic == f"{provision}/rejected"
        assert cbor2.loads(payload) == rejection(400, "InvalidPayload")


# ---------------------------------------------------------------------- control plane


@pytest.mark.parametrize(
    "body",
    [
        {"Resource": {}},  # a typo: no Resources
        {
            "Resources": {
                "t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "X"}}}
            }
        },
    ],
)
def test_templates_are_validated_when_created(
    iot: Any, template: str, body: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_template(
            templateName=unique("bad"),
            templateBody=json.dumps(body),
            provisioningRoleArn=ROLE_ARN,
        )
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_template_version(
            templateName=template, templateBody=json.dumps(body)
        )
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
