"""ARN builders and parser."""

from __future__ import annotations

import pytest

from fleet_sim.policy.arns import (
    IotArn,
    cert_arn,
    client_arn,
    parse_arn,
    policy_arn,
    rolealias_arn,
    thing_arn,
    topic_arn,
    topicfilter_arn,
)

R, ACCT = "us-east-1", "123456789012"
P = f"arn:aws:iot:{R}:{ACCT}:"


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (client_arn(R, ACCT, "dev-1"), P + "client/dev-1"),
        (
            topic_arn(R, ACCT, "$aws/things/t/shadow/update"),
            P + "topic/$aws/things/t/shadow/update",
        ),
        (topicfilter_arn(R, ACCT, "a/+/#"), P + "topicfilter/a/+/#"),
        (thing_arn(R, ACCT, "t"), P + "thing/t"),
        (thing_arn(R, ACCT, "t", "cfg"), P + "thing/t/cfg"),
        (cert_arn(R, ACCT, "ab"), P + "cert/ab"),
        (policy_arn(R, ACCT, "p"), P + "policy/p"),
        (rolealias_arn(R, ACCT, "r"), P + "rolealias/r"),
        (
            client_arn(R, ACCT, "c", partition="aws-us-gov"),
            f"arn:aws-us-gov:iot:{R}:{ACCT}:client/c",
        ),
    ],
)
def test_builders(built: str, expected: str) -> None:
    assert built == expected


def test_parse_arn() -> None:
    assert parse_arn(P + "topic/a:b/c") == IotArn("aws", "iot", R, ACCT, "topic", "a:b/c")
    assert parse_arn(P + "cert").resource_name == ""
    with pytest.raises(ValueError, match="not an ARN"):
        parse_arn("topic/a")
