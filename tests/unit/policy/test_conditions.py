"""Condition operators: IAM semantics for absent keys, IfExists, set operators, variables."""

from __future__ import annotations

import pytest

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.conditions import (
    CONDITION_OPERATORS,
    CompiledCondition,
    Condition,
    parse_operator,
)
from fleet_sim.policy.variables import RequestContext, ThingInfo

CTX = RequestContext(
    "dev-1",
    source_ip="10.1.2.3",
    thing=ThingInfo("dev-1", attributes={"Fleet": "blue", "Rank": "7"}),
    subject={"CommonName": ("dev-1",), "OrganizationalUnit": ("eng", "ops")},
    connect_attributes=("PersistentConnect",),
    last_will_topic="dev-1/will",
    region="us-east-1",
    account_id="123456789012",
    now=1_700_000_000.0,
    extra_keys={"test:Empty": (), "test:Arn": ("arn:aws:iot:us-east-1:123456789012:thing/dev-1",)},
)
OU = "iot:Certificate.Subject.OrganizationalUnit.List"


def holds(
    operator: str, key: str, *values: str, context: RequestContext = CTX, variables: bool = True
) -> bool:
    return CompiledCondition.compile(Condition(operator, key, values), variables=variables).test(
        context
    )


@pytest.mark.parametrize(
    ("operator", "key", "values", "expected"),
    [
        # strings
        ("StringEquals", "iot:ClientId", ("dev-1",), True),
        ("StringEquals", "IOT:clientid", ("dev-1",), True),  # key names case-insensitive
        ("StringEquals", "iot:ClientId", ("DEV-1",), False),  # values case-sensitive
        ("StringEquals", "iot:ClientId", ("x", "dev-1"), True),  # values ORed
        ("StringEquals", "iot:ClientId", ("dev-*",), False),  # no wildcards in Equals
        ("StringNotEquals", "iot:ClientId", ("x", "y"), True),
        ("StringNotEquals", "iot:ClientId", ("x", "dev-1"), False),
        ("StringEqualsIgnoreCase", "iot:ClientId", ("DEV-1",), True),
        ("StringNotEqualsIgnoreCase", "iot:ClientId", ("DEV-1",), False),
        ("StringLike", "iot:ClientId", ("dev-?",), True),
        ("StringLike", "iot:ClientId", ("dev*",), True),
        ("StringLike", "iot:ClientId", ("Dev*",), False),
        ("StringNotLike", "iot:ClientId", ("gw-*",), True),
        ("StringNotLike", "iot:ClientId", ("dev-*",), False),
        # variables in values
        ("StringEquals", "iot:ClientId", ("${iot:Connection.Thing.ThingName}",), True),
        (
            "StringEquals",
            "iot:Connection.Thing.Attributes[Fleet]",
            ("${iot:Certificate.Subject.CommonName}",),
            False,
        ),
        ("StringLike", "iot:ClientId", ("${iot:Certificate.Subject.CommonName}*",), True),
        # numbers
        ("NumericEquals", "iot:Connection.Thing.Attributes[Rank]", ("7",), True),
        ("NumericEquals", "iot:Connection.Thing.Attributes[Rank]", ("7.0",), True),
        ("NumericNotEquals", "iot:Connection.Thing.Attributes[Rank]", ("7",), False),
        ("NumericLessThan", "iot:Connection.Thing.Attributes[Rank]", ("7",), False),
        ("NumericLessThanEquals", "iot:Connection.Thing.Attributes[Rank]", ("7",), True),
        ("NumericGreaterThan", "iot:Connection.Thing.Attributes[Rank]", ("6.5",), True),
        ("NumericGreaterThanEquals", "iot:Connection.Thing.Attributes[Rank]", ("8",), False),
        ("NumericEquals", "iot:ClientId", ("1",), False),  # context value not a number
        # dates
        ("DateGreaterThan", "aws:CurrentTime", ("2023-01-01T00:00:00Z",), True),
        ("DateLessThan", "aws:CurrentTime", ("2023-01-01",), False),
        ("DateEquals", "aws:EpochTime", ("1700000000",), True),
        ("DateLessThanEquals", "aws:CurrentTime", ("2023-11-14T22:13:20+00:00",), True),
        # bool
        ("Bool", "iot:Connection.Thing.IsAttached", ("true",), True),
        ("Bool", "iot:Connection.Thing.IsAttached", ("TRUE",), True),
        ("Bool", "iot:Connection.Thing.IsAttached", ("false",), False),
        # IP
        ("IpAddress", "aws:SourceIp", ("10.0.0.0/8",), True),
        ("IpAddress", "aws:SourceIp", ("192.168.0.0/16", "10.1.2.3"), True),
        ("IpAddress", "aws:SourceIp", ("10.1.2.0/32",), False),
        ("IpAddress", "aws:SourceIp", ("::/0",), False),  # IPv4 address, IPv6 block
        ("NotIpAddress", "aws:SourceIp", ("10.0.0.0/8",), False),
        ("NotIpAddress", "aws:SourceIp", ("172.16.0.0/12",), True),
        ("IpAddress", "iot:ClientId", ("0.0.0.0/0",), False),  # not an address
        # ARNs: component-wise; Equals and Like are the same in IAM
        (
            "ArnEquals",
            "iot:LastWillTopic",
            ("arn:aws:iot:us-east-1:123456789012:topic/dev-1/will",),
            True,
        ),
        ("ArnEquals", "iot:LastWillTopic", ("arn:aws:iot:*:*:topic/${iot:ClientId}/will",), True),
        ("ArnLike", "iot:LastWillTopic", ("arn:aws:iot:us-east-1:*:topic/*",), True),
        (
            "ArnLike",
            "iot:LastWillTopic",
            ("arn:aws:iot:*:topic/*",),
            False,
        ),  # '*' stays in a component
        ("ArnLike", "iot:LastWillTopic", ("*",), True),
        ("ArnNotEquals", "iot:LastWillTopic", ("arn:aws:iot:*:*:topic/other",), True),
        ("ArnNotLike", "iot:LastWillTopic", ("arn:aws:iot:*:*:topic/dev-1/*",), False),
        ("ArnLike", "test:Arn", ("arn:aws:iot:us-east-1:123456789012:thing/dev-?",), True),
        # binary
        ("BinaryEquals", "test:Arn", ("YQ==",), False),
        # Null
        ("Null", "iot:Certificate.Subject.Country", ("true",), True),
        ("Null", "iot:Certificate.Subject.CommonName", ("true",), False),
        ("Null", "iot:Certificate.Subject.CommonName", ("false",), True),
        ("Null", "test:Empty", ("true",), True),  # an empty value list counts as absent
    ],
)
def test_operator(operator: str, key: str, values: tuple[str, ...], expected: bool) -> None:
    assert holds(operator, key, *values) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("NumericLessThan", False),
        ("Bool", False),
        ("IpAddress", False),
        ("ArnLike", False),
        # negated operators are true when the key is absent (IAM)
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("StringNotEqualsIgnoreCase", True),
        ("NumericNotEquals", True),
        ("NotIpAddress", True),
        ("ArnNotEquals", True),
        # IfExists: true when absent
        ("StringEqualsIfExists", True),
        ("NumericLessThanIfExists", True),
        ("BoolIfExists", True),
        # set operators on an absent key
        ("ForAllValues:StringEquals", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringEqualsIfExists", True),
        ("ForAllValues:StringNotEquals", True),
        ("ForAnyValue:StringNotEquals", False),
    ],
)
def test_absent_key(operator: str, expected: bool) -> None:
    value = "10.0.0.0/8" if "Ip" in operator else "1"
    value = "true" if "Bool" in operator else value
    value = "arn:aws:iot:*:*:topic/x" if "Arn" in operator else value
    assert holds(operator, "iot:Certificate.Subject.Country", value) is expected


def test_if_exists_still_checks_a_present_key() -> None:
    assert holds("StringEqualsIfExists", "iot:ClientId", "dev-1")
    assert not holds("StringEqualsIfExists", "iot:ClientId", "other")


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("ForAllValues:StringEquals", ("eng", "ops"), True),
        ("ForAllValues:StringEquals", ("eng", "ops", "hr"), True),
        ("ForAllValues:StringEquals", ("eng",), False),  # 'ops' is not allowed
        ("ForAnyValue:StringEquals", ("eng",), True),
        ("ForAnyValue:StringEquals", ("hr",), False),
        ("ForAllValues:StringLike", ("e*", "o*"), True),
        ("ForAnyValue:StringNotEquals", ("eng",), True),  # 'ops' differs
        ("ForAllValues:StringNotEquals", ("eng",), False),  # 'eng' does not
        ("ForAllValues:StringNotEquals", ("hr",), True),
        ("StringEquals", ("ops",), True),  # no prefix on a multi-valued key: any value
        ("StringNotEquals", ("ops",), False),  # ... and negated: none may match
        ("StringNotEquals", ("hr",), True),
    ],
)
def test_multi_valued_keys(operator: str, values: tuple[str, ...], expected: bool) -> None:
    assert holds(operator, OU, *values) is expected


def test_connect_attributes_guard() -> None:
    persistent_only = "ForAllValues:StringEquals"
    assert holds(persistent_only, "iot:ConnectAttributes", "PersistentConnect")
    with_will = RequestContext("c", connect_attributes=("PersistentConnect", "LastWill"))
    assert not holds(
        persistent_only, "iot:ConnectAttributes", "PersistentConnect", context=with_will
    )
    assert holds("ForAnyValue:StringEquals", "iot:ConnectAttributes", "LastWill", context=with_will)


def test_variables_are_not_substituted_in_2008_policies() -> None:
    assert not holds("StringEquals", "iot:ClientId", "${iot:ClientId}", variables=False)
    bare = RequestContext("${iot:ClientId}")
    assert holds("StringEquals", "iot:ClientId", "${iot:ClientId}", context=bare, variables=False)


def test_unresolved_variable_in_a_condition_value_stays_literal() -> None:
    no_thing = RequestContext("dev-1")
    assert not holds(
        "StringEquals", "iot:ClientId", "${iot:Connection.Thing.ThingName}", context=no_thing
    )


def test_parse_operator() -> None:
    spec = parse_operator("ForAllValues:StringLikeIfExists")
    assert (spec.base, spec.kind, spec.set_operator, spec.if_exists, spec.negated) == (
        "StringLike",
        "like",
        "ForAllValues",
        True,
        False,
    )
    assert parse_operator("NotIpAddress").negated
    assert "DateNotEquals" in CONDITION_OPERATORS
    with pytest.raises(MalformedPolicy, match="unknown condition operator 'IfExists'"):
        parse_operator("IfExists")
    with pytest.raises(MalformedPolicy, match="Null takes no prefix"):
        parse_operator("ForAnyValue:Null")
