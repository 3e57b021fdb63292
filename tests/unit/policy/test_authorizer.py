"""ConnectionAuthorizer: ARNs it builds, what it checks, and its bounded cache."""

from __future__ import annotations

import dataclasses

import pytest

from fleet_sim.policy import ConnectionAuthorizer, RequestContext, ThingInfo, parse_policy
from fleet_sim.policy.authorizer import DEFAULT_CACHE_SIZE

A = "arn:aws:iot:eu-west-1:123456789012:"

DEVICE = parse_policy(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": A + "client/${iot:Connection.Thing.ThingName}",
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": A + "topic/dev/${iot:ClientId}/*",
            },
            {"Effect": "Allow", "Action": "iot:RetainPublish", "Resource": A + "topic/dev/*/state"},
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": A + "topicfilter/dev/${iot:ClientId}/#",
            },
            {
                "Effect": "Allow",
                "Action": "iot:GetThingShadow",
                "Resource": A + "thing/${iot:ClientId}/cfg",
            },
        ],
    },
    name="device",
)


def make(client_id: str = "dev-1", cache_size: int = DEFAULT_CACHE_SIZE) -> ConnectionAuthorizer:
    context = RequestContext(client_id, thing=ThingInfo(client_id))
    return ConnectionAuthorizer(
        [DEVICE], context, region="eu-west-1", account_id="123456789012", cache_size=cache_size
    )


def test_convenience_checks() -> None:
    auth = make()
    assert auth.can_connect()
    assert auth.can_publish("dev/dev-1/temp")
    assert not auth.can_publish("dev/dev-2/temp")
    assert auth.can_receive("dev/dev-1/cmd")
    assert not auth.can_receive("other")
    assert auth.can_subscribe("dev/dev-1/#")
    assert not auth.can_subscribe("dev/dev-1/+")
    assert not auth.can_subscribe("dev/#")


def test_retain_publish_needs_publish_and_retain_publish() -> None:
    auth = make()
    assert auth.can_retain_publish("dev/dev-1/state")  # both allowed
    assert not auth.can_retain_publish("dev/dev-1/temp")  # Publish only
    assert not auth.can_retain_publish("dev/dev-2/state")  # RetainPublish only
    assert auth.check_retain_publish("dev/dev-2/state").allowed


def test_connect_denied_without_attached_thing() -> None:
    context = RequestContext("dev-1")
    auth = ConnectionAuthorizer([DEVICE], context, region="eu-west-1", account_id="123456789012")
    assert not auth.can_connect()
    assert auth.check_connect().reason == "implicit_deny"


def test_decisions_name_the_built_arns() -> None:
    auth = make()
    assert auth.check_connect().resource == A + "client/dev-1"
    assert auth.check_publish("a/b").resource == A + "topic/a/b"
    assert auth.check_receive("a/b").action == "iot:Receive"
    assert auth.check_subscribe("a/+").resource == A + "topicfilter/a/+"
    decision = auth.check("iot:GetThingShadow", A + "thing/dev-1/cfg")
    assert decision.allowed
    assert decision.policy_name == "device"
    assert decision.statement_number == 5


def test_repeated_checks_are_served_from_the_cache() -> None:
    auth = make()
    first = auth.check_publish("dev/dev-1/temp")
    assert auth.cached_decisions == 1
    assert auth.check_publish("dev/dev-1/temp") is first
    assert auth.cached_decisions == 1
    auth.can_subscribe("dev/dev-1/#")
    assert auth.cached_decisions == 2


def test_cache_is_bounded_oldest_out() -> None:
    auth = make(cache_size=3)
    first = auth.check_publish("t/0")
    for i in range(1, 4):
        auth.check_publish(f"t/{i}")
    assert auth.cached_decisions == 3
    assert auth.check_publish("t/0") is not first  # evicted, computed again
    assert auth.check_publish("t/3") is auth.check_publish("t/3")


def test_default_cache_size() -> None:
    auth = make()
    for i in range(DEFAULT_CACHE_SIZE + 10):
        auth.can_publish(f"t/{i}")
    assert auth.cached_decisions == DEFAULT_CACHE_SIZE


def test_with_policies_starts_a_fresh_cache() -> None:
    auth = make()
    assert auth.can_publish("dev/dev-1/x")
    locked = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Deny", "Action": "iot:*", "Resource": "*"},
        }
    )
    changed = auth.with_policies([DEVICE, locked])
    assert not changed.can_publish("dev/dev-1/x")
    assert changed.cached_decisions == 1
    assert changed.context is auth.context
    assert auth.can_publish("dev/dev-1/x")


def test_context_gets_region_and_account_for_arn_keys() -> None:
    will = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": "*",
                "Condition": {"ArnEquals": {"iot:LastWillTopic": A + "topic/dev-1/will"}},
            },
        }
    )
    context = RequestContext("dev-1", last_will_topic="dev-1/will")
    auth = ConnectionAuthorizer([will], context, region="eu-west-1", account_id="123456789012")
    assert auth.context.region == "eu-west-1"
    assert auth.can_connect()


def test_conflicting_context_region_is_an_error() -> None:
    context = RequestContext("c", region="us-east-1", account_id="123456789012")
    with pytest.raises(ValueError, match="region 'us-east-1' differs"):
        ConnectionAuthorizer([], context, region="eu-west-1", account_id="123456789012")
    same = dataclasses.replace(context, region="eu-west-1")
    assert (
        ConnectionAuthorizer([], same, region="eu-west-1", account_id="123456789012").context
        is same
    )


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        make(cache_size=0)


def test_partition() -> None:
    auth = ConnectionAuthorizer(
        [], RequestContext("c"), region="cn-north-1", account_id="1", partition="aws-cn"
    )
    assert auth.check_connect().resource == "arn:aws-cn:iot:cn-north-1:1:client/c"
    assert auth.with_policies([]).check_connect().resource == "arn:aws-cn:iot:cn-north-1:1:client/c"
