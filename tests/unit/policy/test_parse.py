"""Parsing policy JSON: accepted shapes, and errors that name the statement and problem."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_sim.errors import EmulatorError, MalformedPolicy
from fleet_sim.policy import Condition, PolicyDocument, Statement, parse_policy, policy_size

ALLOW_ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}


def doc(*statements: Any, **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


# --------------------------------------------------------------------------- accepted


def test_string_or_list_for_action_and_resource() -> None:
    one = parse_policy(doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}))
    many = parse_policy(
        doc({"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"], "Resource": ["*"]})
    )
    assert one.statements[0].actions == ("iot:Connect",)
    assert one.statements[0].resources == ("*",)
    assert many.statements[0].actions == ("iot:Publish", "iot:Receive")
    assert many.statements[0].effect == "Deny"


def test_statement_as_a_single_object() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": ALLOW_ALL})
    assert len(policy.statements) == 1


def test_full_model_from_text() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "device-policy",
            "Statement": [
                {
                    "Sid": "conn",
                    "Effect": "Allow",
                    "NotAction": "iot:Publish",
                    "NotResource": "arn:aws:iot:us-east-1:123456789012:topic/x",
                    "Condition": {
                        "Bool": {"iot:Connection.Thing.IsAttached": True},
                        "NumericLessThan": {"k": [1, 2.5]},
                    },
                }
            ],
        },
        indent=2,
    )
    policy = parse_policy(text, name="dev")
    assert policy == PolicyDocument(
        version="2012-10-17",
        id="device-policy",
        name="dev",
        statements=(
            Statement(
                sid="conn",
                effect="Allow",
                not_actions=("iot:Publish",),
                not_resources=("arn:aws:iot:us-east-1:123456789012:topic/x",),
                conditions=(
                    Condition("Bool", "iot:Connection.Thing.IsAttached", ("true",)),
                    Condition("NumericLessThan", "k", ("1", "2.5")),
                ),
            ),
        ),
    )


def test_bytes_are_accepted() -> None:
    assert parse_policy(json.dumps(doc(ALLOW_ALL)).encode()).version == "2012-10-17"


@pytest.mark.parametrize("version", ["2012-10-17", "2008-10-17"])
def test_both_versions(version: str) -> None:
    assert parse_policy(doc(ALLOW_ALL, Version=version)).version == version


def test_missing_version_means_2008() -> None:
    assert parse_policy({"Statement": ALLOW_ALL}).version == "2008-10-17"


@pytest.mark.parametrize(
    "action", ["iot:Publish", "iot:publish", "IOT:PUBLISH", "iot:*", "*", "iot:Get*"]
)
def test_action_spelling_accepted(action: str) -> None:
    parse_policy(doc({"Effect": "Allow", "Action": action, "Resource": "*"}))


def test_model_accepts_lists_and_stores_tuples() -> None:
    statement = Statement(effect="Allow", actions=["iot:Connect"], resources="*")  # type: ignore[arg-type]
    assert statement.actions == ("iot:Connect",)
    assert statement.resources == ("*",)


# --------------------------------------------------------------------------- size limit


def test_size_excludes_whitespace() -> None:
    assert policy_size('{ "a" :\n\t"b c" }') == len('{"a":"bc"}')


def _sized(target: int) -> dict[str, Any]:
    base = doc({"Sid": "", **ALLOW_ALL})
    padding = target - policy_size(json.dumps(base))
    base["Statement"][0]["Sid"] = "x" * padding
    return base


def test_2048_characters_is_the_limit() -> None:
    parse_policy(_sized(2048))
    with pytest.raises(MalformedPolicy, match=r"2049 characters .* the limit is 2048"):
        parse_policy(_sized(2049))


def test_whitespace_does_not_count_towards_the_limit() -> None:
    text = json.dumps(_sized(2048), indent=8)
    assert len(text) > 2048
    parse_policy(text)


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (
            [
                ALLOW_ALL,
                {"Sid": "pub", "Effect": "allow", "Action": "iot:Publish", "Resource": "*"},
            ],
            "policy 'dev': statement 2 (Sid 'pub'): Effect must be 'Allow' or 'Deny', got 'allow'",
        ),
        (
            [{"Effect": "DENY", "Action": "iot:Publish", "Resource": "*"}],
            "policy 'dev': statement 1: Effect must be 'Allow' or 'Deny', got 'DENY'",
        ),
        (
            [{"Action": "iot:Publish", "Resource": "*"}],
            "policy 'dev': statement 1: Effect is missing",
        ),
        (
            [{"Sid": "s", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            "statement 1 (Sid 's'): Action 's3:GetObject' is not an AWS IoT action",
        ),
        (
            [{"Effect": "Allow", "Action": "greengrass:Discover", "Resource": "*"}],
            "Action 'greengrass:Discover' is not an AWS IoT action",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:", "Resource": "*"}],
            "Action 'iot:' is not an AWS IoT action",
        ),
        (
            [{"Effect": "Allow", "Resource": "*"}],
            "statement 1: statement needs Action or NotAction",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:*", "NotAction": "iot:Connect", "Resource": "*"}],
            "statement has both Action and NotAction",
        ),
        (
            [{"Effect": "Allow", "Action": [], "Resource": "*"}],
            "Action must not be empty",
        ),
        (
            [{"Effect": "Allow", "Action": ["iot:Connect", 3], "Resource": "*"}],
            "Action must be a string or a list of strings, got ['iot:Connect', 3]",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:Connect"}],
            "statement needs Resource or NotResource",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "NotResource": "*"}],
            "statement has both Resource and NotResource",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/dev1"}],
            "Resource 'client/dev1' must be '*' or an ARN",
        ),
        (
            [{**ALLOW_ALL, "Principal": "*"}],
            "unknown element 'Principal' (AWS IoT policies name no Principal)",
        ),
        (
            [{**ALLOW_ALL, "effect": "Allow"}],
            "unknown element 'effect'",
        ),
        (
            [{**ALLOW_ALL, "Sid": 7}],
            "statement 1: Sid must be a string, got 7",
        ),
        (
            [{**ALLOW_ALL, "Sid": "c", "Condition": {"StringEqualz": {"iot:ClientId": "a"}}}],
            "statement 1 (Sid 'c'): unknown condition operator 'StringEqualz'",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"ForSomeValues:StringEquals": {"k": "a"}}}],
            "unknown condition operator 'ForSomeValues:StringEquals'",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"stringequals": {"k": "a"}}}],
            "unknown condition operator 'stringequals'",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"NullIfExists": {"k": "true"}}}],
            "Null takes no prefix or IfExists",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"NumericLessThan": {"k": "ten"}}}],
            "condition NumericLessThan 'k': value 'ten' is not a number",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}}],
            "value '10.0.0.0/33' is not an IP address or CIDR block",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"Bool": {"k": "yes"}}}],
            "value 'yes' is not 'true' or 'false'",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"DateGreaterThan": {"aws:CurrentTime": "soon"}}}],
            "value 'soon' is not a date",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"StringEquals": {"k": []}}}],
            "condition StringEquals 'k': no values",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"StringEquals": {"k": {"nested": 1}}}}],
            "values must be strings, booleans or numbers",
        ),
        (
            [{**ALLOW_ALL, "Condition": {"StringEquals": "k"}}],
            "condition StringEquals: must map condition keys to values",
        ),
        (
            [{**ALLOW_ALL, "Condition": []}],
            "Condition must be a non-empty object",
        ),
        (
            ["not an object"],
            "statement 1: statement must be a JSON object",
        ),
    ],
)
def test_malformed_statement(statements: list[Any], message: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(doc(*statements), name="dev")
    assert message in str(caught.value)
    assert caught.value.policy_name == "dev"
    assert caught.value.statement_number is not None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"Version": "2012-10-17",\n  "Statement": [,]}', "invalid JSON at line 2 column 17"),
        ("", "invalid JSON at line 1 column 1"),
        ("[]", "policy document must be a JSON object"),
        ('{"Version": "2012-10-17"}', "Statement is missing"),
        ('{"Statement": []}', "Statement must be an object or a non-empty list"),
        ('{"Version": "2012-10-18", "Statement": {}}', "Version must be one of 2012-10-17"),
        ('{"Version": 2012, "Statement": {}}', "Version must be a string"),
        ('{"version": "2012-10-17", "Statement": {}}', "unknown top-level element 'version'"),
        ('{"Id": 5, "Statement": {}}', "Id must be a string"),
        (
            '{"Statement": {"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}}',
            "duplicate key 'Effect' in a JSON object",
        ),
        (b"\xff\xfe", "policy is not UTF-8"),
    ],
)
def test_malformed_document(document: str | bytes, message: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(document, name="dev")
    assert str(caught.value).startswith("policy 'dev': ")
    assert message in str(caught.value)


def test_unnamed_policy_message_has_no_policy_prefix() -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(doc({"Sid": "pub", "Effect": "allow", "Action": "*", "Resource": "*"}))
    assert str(caught.value) == (
        "statement 1 (Sid 'pub'): Effect must be 'Allow' or 'Deny', got 'allow'"
    )
    assert caught.value.sid == "pub"
    assert caught.value.problem == "Effect must be 'Allow' or 'Deny', got 'allow'"


def test_malformed_policy_is_an_aws_shaped_emulator_error() -> None:
    error = MalformedPolicy("x")
    assert isinstance(error, EmulatorError)
    assert error.aws_code == "MalformedPolicyException"
    assert error.http_status == 400
    assert error.failure == "malformed_policy"


def test_constructing_the_model_validates() -> None:
    with pytest.raises(MalformedPolicy, match="Effect must be"):
        Statement(effect="allow", actions=("*",), resources=("*",))  # type: ignore[arg-type]
    with pytest.raises(MalformedPolicy, match="no statements"):
        PolicyDocument(statements=())
