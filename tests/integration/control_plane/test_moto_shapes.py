"""The same boto3 calls against the emulator and against moto's ``mock_aws``: the response
key sets must agree (values and ResponseMetadata ignored), to catch drift from AWS's API.

moto models AWS IoT independently (from the same service model, by hand), so a key the
emulator sends and moto does not, or the reverse, is worth a look. Known, checked
differences are listed in :data:`KNOWN_DIFFERENCES` with the reason; anything else fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.integration.control_plane.helpers import (
    allow_all_policy,
    csr_pem,
    device,
    new_ca,
    register_ca,
)

#: (call, key path) → why the emulator and moto legitimately differ.
_MOTO_OMITS = "in AWS's output shape and AWS returns it; moto does not send it"
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("create_thing_type", "thingTypeId"): _MOTO_OMITS,
    **{
        ("describe_ca_certificate", f"certificateDescription.{key}"): _MOTO_OMITS
        for key in ("autoRegistrationStatus", "certificateMode", "customerVersion", "generationId")
    },
    **{
        ("describe_certificate", f"certificateDescription.{key}"): _MOTO_OMITS
        for key in ("certificateMode", "customerVersion", "generationId")
    },
    ("list_certificates", "certificates[].certificateMode"): _MOTO_OMITS,
    ("list_certificates_by_ca", "certificates[].certificateMode"): _MOTO_OMITS,
    **{
        ("get_policy", key): _MOTO_OMITS
        for key in ("creationDate", "lastModifiedDate", "generationId")
    },
}

Call = Callable[[Any, dict[str, Any]], dict[str, Any]]


def _scenario() -> list[tuple[str, Call]]:
    ca = new_ca("moto-shapes")
    leaf = device(ca, "moto-device").certificate_pem.decode()
    sni_leaf = device(new_ca("moto-sni"), "moto-sni").certificate_pem.decode()
    csr = csr_pem("moto-csr")

    def keep(name: str, value: Any, state: dict[str, Any]) -> Any:
        state[name] = value
        return value

    return [
        ("create_thing_type", lambda c, s: c.create_thing_type(thingTypeName="moto-type")),
        (
            "create_thing",
            lambda c, s: c.create_thing(
                thingName="moto-thing",
                thingTypeName="moto-type",
                attributePayload={"attributes": {"a": "1"}},
            ),
        ),
        ("describe_thing", lambda c, s: c.describe_thing(thingName="moto-thing")),
        ("list_things", lambda c, s: c.list_things()),
        (
            "update_thing",
            lambda c, s: c.update_thing(
                thingName="moto-thing", attributePayload={"attributes": {"b": "2"}, "merge": True}
            ),
        ),
        ("create_thing_group", lambda c, s: c.create_thing_group(thingGroupName="moto-group")),
        (
            "add_thing_to_thing_group",
            lambda c, s: c.add_thing_to_thing_group(
                thingGroupName="moto-group", thingName="moto-thing"
            ),
        ),
        ("describe_thing_type", lambda c, s: c.describe_thing_type(thingTypeName="moto-type")),
        ("get_registration_code", lambda c, s: c.get_registration_code()),
        (
            "register_ca_certificate",
            lambda c, s: keep("ca", register_ca(c, ca, setAsActive=True), s),
        ),
        (
            "describe_ca_certificate",
            lambda c, s: c.describe_ca_certificate(certificateId=s["ca"]["certificateId"]),
        ),
        (
            "register_certificate",
            lambda c, s: keep(
                "registered",
                c.register_certificate(
                    certificatePem=leaf,
                    caCertificatePem=ca.certificate_pem().decode(),
                    status="ACTIVE",
                ),
                s,
            ),
        ),
        (
            "register_certificate_without_ca",
            lambda c, s: c.register_certificate_without_ca(
                certificatePem=sni_leaf, status="ACTIVE"
            ),
        ),
        (
            "create_keys_and_certificate",
            lambda c, s: keep("keys", c.create_keys_and_certificate(setAsActive=True), s),
        ),
        (
            "create_certificate_from_csr",
            lambda c, s: c.create_certificate_from_csr(
                certificateSigningRequest=csr, setAsActive=False
            ),
        ),
        (
            "describe_certificate",
            lambda c, s: c.describe_certificate(certificateId=s["keys"]["certificateId"]),
        ),
        (
            "update_certificate",
            lambda c, s: c.update_certificate(
                certificateId=s["registered"]["certificateId"], newStatus="INACTIVE"
            ),
        ),
        ("list_certificates", lambda c, s: c.list_certificates()),
        (
            "list_certificates_by_ca",
            lambda c, s: c.list_certificates_by_ca(caCertificateId=s["ca"]["certificateId"]),
        ),
        (
            "create_policy",
            lambda c, s: c.create_policy(
                policyName="moto-policy", policyDocument=allow_all_policy()
            ),
        ),
        ("get_policy", lambda c, s: c.get_policy(policyName="moto-policy")),
        (
            "create_policy_version",
            lambda c, s: c.create_policy_version(
                policyName="moto-policy", policyDocument=allow_all_policy(), setAsDefault=True
            ),
        ),
        (
            "get_policy_version",
            lambda c, s: c.get_policy_version(policyName="moto-policy", policyVersionId="1"),
        ),
        ("list_policy_versions", lambda c, s: c.list_policy_versions(policyName="moto-policy")),
        ("list_policies", lambda c, s: c.list_policies()),
        (
            "attach_policy",
            lambda c, s: c.attach_policy(
                policyName="moto-policy", target=s["keys"]["certificateArn"]
            ),
        ),
        (
            "list_attached_policies",
            lambda c, s: c.list_attached_policies(target=s["keys"]["certificateArn"]),
        ),
        (
            "list_targets_for_policy",
            lambda c, s: c.list_targets_for_policy(policyName="moto-policy"),
        ),
        (
            "attach_thing_principal",
            lambda c, s: c.attach_thing_principal(
                thingName="moto-thing", principal=s["keys"]["certificateArn"]
            ),
        ),
        ("list_thing_principals", lambda c, s: c.list_thing_principals(thingName="moto-thing")),
        (
            "list_principal_things",
            lambda c, s: c.list_principal_things(principal=s["keys"]["certificateArn"]),
        ),
        (
            "detach_thing_principal",
            lambda c, s: c.detach_thing_principal(
                thingName="moto-thing", principal=s["keys"]["certificateArn"]
            ),
        ),
        (
            "detach_policy",
            lambda c, s: c.detach_policy(
                policyName="moto-policy", target=s["keys"]["certificateArn"]
            ),
        ),
        ("describe_endpoint", lambda c, s: c.describe_endpoint(endpointType="iot:Data-ATS")),
        ("delete_thing", lambda c, s: c.delete_thing(thingName="moto-thing")),
    ]


def _run(client: Any, scenario: list[tuple[str, Call]]) -> dict[str, dict[str, Any]]:
    state: dict[str, Any] = {}
    return {name: call(client, state) for name, call in scenario}


def _key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in a response (list items merged under ``[]``)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= _key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= _key_paths(item, f"{prefix}[]")
    return paths


@pytest.fixture(scope="module")
def responses(iot) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    scenario = _scenario()
    ours = _run(iot, scenario)
    with mock_aws():
        moto = boto3.client(
            "iot",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        theirs = _run(moto, scenario)
    return ours, theirs


@pytest.mark.parametrize("call", [name for name, _ in _scenario()])
def test_response_keys_match_moto(responses, call: str) -> None:
    ours, theirs = responses
    mine, moto = _key_paths(ours[call]), _key_paths(theirs[call])
    unexplained = {
        (side, path)
        for side, paths in (("only emulator", mine - moto), ("only moto", moto - mine))
        for path in paths
        if (call, path) not in KNOWN_DIFFERENCES
    }
    assert not unexplained, json.dumps(sorted(unexplained), indent=1)
