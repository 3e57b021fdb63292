"""RegisterThing over MQTT (paho-mqtt 5, mutual TLS): activation, tokens, templates, error
codes and the pre-provisioning hooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.emulator.registry.models import CertificateStatus
from tests.integration.fleet_provisioning.conftest import Hooks
from tests.integration.fleet_provisioning.support import (
    ROLE_ARN,
    Identity,
    claim_policy,
    create_claim,
    create_keys,
    create_template,
    fleet_client,
    fleet_template,
    provision_topic,
    register,
    rejection,
    subscribe_replies,
    unique,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop


# ---------------------------------------------------------------------- RegisterThing


def test_keys_are_pending_until_register_thing_activates_them(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    serial = unique("serial")
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        assert set(keys) == {
            "certificateId",
            "certificatePem",
            "privateKey",
            "certificateOwnershipToken",
        }
        cert = emu.registry.certificates.describe(keys["certificateId"])
        assert cert.status is CertificateStatus.PENDING_ACTIVATION
        assert cert.pem == keys["certificatePem"]
        token = keys["certificateOwnershipToken"]
        outcome, body = register(client, template, token, {"SerialNumber": serial})
        assert outcome == "accepted", body
        assert body["thingName"] == f"device-{serial}"
        # The token stays valid until it expires: a retry provisions the same thing again.
        outcome, again = register(client, template, token, {"SerialNumber": serial})
        assert (outcome, again) == ("accepted", body)
    cert = emu.registry.certificates.describe(keys["certificateId"])
    assert cert.status is CertificateStatus.ACTIVE


def test_the_device_cannot_name_another_certificate(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    with fleet_client(emu, claim) as client:
        mine, other = create_keys(client), create_keys(client)
        outcome, body = register(
            client,
            template,
            mine["certificateOwnershipToken"],
            {"SerialNumber": unique("s"), "AWS::IoT::Certificate::Id": other["certificateId"]},
        )
    assert outcome == "accepted", body
    certificates = emu.registry.certificates
    assert certificates.describe(mine["certificateId"]).status is CertificateStatus.ACTIVE
    assert certificates.describe(other["certificateId"]).status is (
        CertificateStatus.PENDING_ACTIVATION
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "Certificate ownership token cannot be empty."),
        (None, "Certificate ownership token cannot be empty."),
        ("bm90LWEtdG9rZW4=", "Certificate ownership token is invalid."),
    ],
)
def test_bad_tokens_are_rejected(
    emu: EmulatorThread, claim: Identity, template: str, token: str | None, message: str
) -> None:
    topic = provision_topic(template)
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, topic)
        body = {} if token is None else {"certificateOwnershipToken": token}
        outcome, reply = client.request(topic, body)
    assert outcome == "rejected"
    assert reply == {
        "statusCode": 400,
        "errorCode": "InvalidCertificateOwnershipToken",
        "errorMessage": message,
    }


def test_unknown_template_is_404(emu: EmulatorThread, iot: Any, files: Path) -> None:
    ghost = unique("ghost")
    claim = create_claim(iot, files, claim_policy(ghost))
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        outcome, body = register(client, ghost, keys["certificateOwnershipToken"])
    assert (outcome, body) == ("rejected", rejection(404, "ResourceNotFound"))


def test_disabled_and_jitp_templates_are_refused(
    emu: EmulatorThread, iot: Any, files: Path, device_policy_name: str
) -> None:
    disabled = create_template(iot, fleet_template(device_policy_name), enabled=False)
    jitp = unique("jitp")
    iot.create_provisioning_template(
        templateName=jitp,
        templateBody=fleet_template(device_policy_name),
        provisioningRoleArn=ROLE_ARN,
        enabled=True,
        type="JITP",
    )
    claim = create_claim(iot, files, claim_policy(disabled, jitp))
    with fleet_client(emu, claim) as client:
        token = create_keys(client)["certificateOwnershipToken"]
        parameters = {"SerialNumber": unique("s")}
        assert register(client, disabled, token, parameters) == (
            "rejected",
            rejection(403, "AccessDenied"),
        )
        assert register(client, jitp, token, parameters) == (
            "rejected",
            rejection(404, "ResourceNotFound"),
        )


def test_template_that_does_not_render_is_invalid_parameters(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        outcome, body = register(client, template, keys["certificateOwnershipToken"], {})
    assert (outcome, body) == ("rejected", rejection(400, "InvalidParameters"))
    assert "SerialNumber" in body["errorMessage"]
    cert = emu.registry.certificates.describe(keys["certificateId"])
    assert cert.status is CertificateStatus.PENDING_ACTIVATION


def test_malformed_request_payload_is_invalid_payload(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    topic = provision_topic(template)
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, topic)
        client.publish(topic, b"{not json")
        reply_topic, reply = client.next_message(f"{topic}/")
        assert reply_topic.endswith("/rejected")
        assert json.loads(reply) == rejection(400, "InvalidPayload")
        outcome, body = client.request(
            topic, {"certificateOwnershipToken": "x", "parameters": {"n": 1}}
        )
        assert (outcome, body) == ("rejected", rejection(400, "InvalidPayload"))


# ---------------------------------------------------------------------- pre-provisioning hooks


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        (Hooks.DENY, "did not allow"),
        (Hooks.RAISE, "RuntimeError: the hook broke"),
        (Hooks.SLOW, "timed out"),
        (Hooks.MISSING, "no pre-provisioning hook is configured"),
    ],
)
def test_hook_denial_failure_or_timeout_is_access_denied(
    emu: EmulatorThread,
    iot: Any,
    files: Path,
    device_policy_name: str,
    hook: str,
    reason: str,
) -> None:
    template = create_template(iot, fleet_template(device_policy_name), hook=hook)
    claim = create_claim(iot, files, claim_policy(template))
    serial = unique("s")
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        outcome, body = register(
            client, template, keys["certificateOwnershipToken"], {"SerialNumber": serial}
        )
    assert (outcome, body) == ("rejected", rejection(403, "AccessDenied"))
    assert reason in body["errorMessage"]
    assert emu.registry.thing(f"device-{serial}") is None
    cert = emu.registry.certificates.describe(keys["certificateId"])
    assert cert.status is CertificateStatus.PENDING_ACTIVATION


def test_hook_gets_aws_event_and_its_overrides_apply(
    emu: EmulatorThread, iot: Any, files: Path, device_policy_name: str, hooks: Hooks
) -> None:
    template = create_template(iot, fleet_template(device_policy_name), hook=Hooks.OVERRIDE)
    claim = create_claim(iot, files, claim_policy(template))
    serial = unique("s")
    client_id = unique("claim")
    with fleet_client(emu, claim, client_id=client_id) as client:
        keys = create_keys(client)
        outcome, body = register(
            client, template, keys["certificateOwnershipToken"], {"SerialNumber": serial}
        )
    assert outcome == "accepted", body
    assert body["thingName"] == f"device-hooked-{serial}"
    assert body["deviceConfiguration"]["LocationUrl"] == f"https://example.com/hooked-{serial}"
    event, context = hooks.calls[-1]
    assert event == {
        "claimCertificateId": claim.certificate_id,
        "certificateId": keys["certificateId"],
        "certificatePem": keys["certificatePem"],
        "templateArn": f"arn:aws:iot:us-east-1:123456789012:provisioningtemplate/{template}",
        "clientId": client_id,
        "parameters": {"SerialNumber": serial},
    }
    assert context.invoked_function_arn == Hooks.OVERRIDE
    assert 0 < context.get_remaining_time_in_millis() <= 500
