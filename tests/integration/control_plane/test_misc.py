"""DescribeEndpoint, TestAuthorization, unimplemented operations and throttling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fleet_sim.emulator.config import EmulatorConfig
from tests.integration.control_plane.conftest import NO_RETRIES
from tests.integration.control_plane.helpers import ACCOUNT, REGION, aws_error, unique
from tests.support.emulator_thread import EmulatorThread

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def test_describe_endpoint_is_the_emulators_data_endpoint(iot, emu) -> None:
    address = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert address == emu.info.endpoint
    assert iot.describe_endpoint()["endpointAddress"] == emu.info.endpoint
    with aws_error("InvalidRequestException", 400):
        iot.describe_endpoint(endpointType="iot:CredentialProvider")


def _policy(iot, statements) -> str:
    name = unique("authz")
    iot.create_policy(
        policyName=name,
        policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    return name


@pytest.fixture(scope="module")
def principal(iot):
    """A certificate attached to thing ``sensor-1`` with a policy using thing variables."""
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName="sensor-1")
    iot.attach_thing_principal(thingName="sensor-1", principal=certificate["certificateArn"])
    allow = _policy(
        iot,
        [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
            },
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/data/*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/data/secret"},
        ],
    )
    iot.attach_policy(policyName=allow, target=certificate["certificateArn"])
    return certificate["certificateArn"], allow


def _decide(iot: Any, principal_arn: str, action: str, resource: str, **kwargs: Any) -> Any:
    answer = iot.test_authorization(
        principal=principal_arn,
        authInfos=[{"actionType": action, "resources": [resource]}],
        **kwargs,
    )
    return answer["authResults"][0]


def test_authorization_allows_by_the_attached_policy(iot, principal) -> None:
    arn, policy = principal
    result = _decide(iot, arn, "CONNECT", f"{ARN}:client/sensor-1", clientId="sensor-1")
    assert result["authDecision"] == "ALLOWED"
    assert result["allowed"]["policies"] == [
        {"policyName": policy, "policyArn": f"{ARN}:policy/{policy}"}
    ]
    assert result["authInfo"] == {"actionType": "CONNECT", "resources": [f"{ARN}:client/sensor-1"]}
    assert result["missingContextValues"] == []


def test_authorization_uses_the_thing_of_the_client_id(iot, principal) -> None:
    arn, policy = principal
    result = _decide(iot, arn, "CONNECT", f"{ARN}:client/other", clientId="other")
    assert result["authDecision"] == "IMPLICIT_DENY"
    assert [p["policyName"] for p in result["denied"]["implicitDeny"]["policies"]] == [policy]


def test_authorization_explicit_deny_wins(iot, principal) -> None:
    arn, policy = principal
    assert _decide(iot, arn, "PUBLISH", f"{ARN}:topic/data/x")["authDecision"] == "ALLOWED"
    result = _decide(iot, arn, "PUBLISH", f"{ARN}:topic/data/secret")
    assert result["authDecision"] == "EXPLICIT_DENY"
    assert [p["policyName"] for p in result["denied"]["explicitDeny"]["policies"]] == [policy]


def test_authorization_with_policies_to_add_and_skip(iot, principal) -> None:
    arn, policy = principal
    extra = _policy(iot, [{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*"}])
    topic_filter = f"{ARN}:topicfilter/anything"
    assert _decide(iot, arn, "SUBSCRIBE", topic_filter)["authDecision"] == "IMPLICIT_DENY"
    added = _decide(iot, arn, "SUBSCRIBE", topic_filter, policyNamesToAdd=[extra])
    assert added["authDecision"] == "ALLOWED"
    skipped = _decide(iot, arn, "PUBLISH", f"{ARN}:topic/data/x", policyNamesToSkip=[policy])
    assert skipped["authDecision"] == "IMPLICIT_DENY"
    with aws_error("ResourceNotFoundException", 404):
        _decide(iot, arn, "SUBSCRIBE", topic_filter, policyNamesToAdd=[unique("ghost")])


def test_authorization_of_an_unknown_certificate_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        _decide(iot, f"{ARN}:cert/{'9' * 64}", "CONNECT", f"{ARN}:client/x")


def test_authorization_rejects_an_unknown_action_type(iot, principal) -> None:
    with aws_error("InvalidRequestException", 400):
        _decide(iot, principal[0], "FLY", f"{ARN}:client/x")


def test_unimplemented_operations_say_so(iot) -> None:
    with aws_error("NotImplementedException", 501):
        iot.list_jobs()


def test_throttling_answers_throttling_exception(tmp_path) -> None:
    config = EmulatorConfig(port=0, data_dir=tmp_path, throttle_control_plane=True)
    with EmulatorThread(config) as emu:
        iot = emu.emulator.boto3_client(config=NO_RETRIES)
        codes = []
        for _ in range(40):
            try:
                iot.describe_endpoint(endpointType="iot:Data-ATS")
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes[:10] == ["ok"] * 10  # a full bucket: one second's worth of burst
        assert "ThrottlingException" in codes
        assert set(codes) == {"ok", "ThrottlingException"}
        # other operations have their own buckets
        iot.create_thing(thingName="after-throttling")


def test_throttling_is_off_by_default(iot) -> None:
    for _ in range(40):
        iot.describe_endpoint(endpointType="iot:Data-ATS")
