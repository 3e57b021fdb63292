"""IAM evaluation rules and what a Decision reports (examples are in test_examples.py)."""

from __future__ import annotations

from typing import Any

from fleet_sim.policy import (
    PolicyDocument,
    RequestContext,
    client_arn,
    evaluate,
    parse_policy,
    topic_arn,
    topicfilter_arn,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
A = f"arn:aws:iot:{REGION}:{ACCOUNT}:"


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def policy(
    *statements: dict[str, Any], name: str = "p", version: str = "2012-10-17"
) -> PolicyDocument:
    return parse_policy({"Version": version, "Statement": list(statements)}, name=name)


def arn(kind: str, name: str) -> str:
    builders = {"client": client_arn, "topic": topic_arn, "topicfilter": topicfilter_arn}
    return builders[kind](REGION, ACCOUNT, name)


# --------------------------------------------------------------------------- decisions


def test_default_is_implicit_deny() -> None:
    decision = evaluate([], "iot:Connect", arn("client", "c"), RequestContext("c"))
    assert (decision.allowed, decision.reason, decision.statements) == (False, "implicit_deny", ())
    assert decision.policy_name is None
    assert decision.explain().endswith("denied (no statement allows it)")


def test_decision_names_every_deciding_statement() -> None:
    first = policy(allow("iot:*", "*"), {**allow("iot:Publish", "*"), "Sid": "pub"}, name="base")
    second = policy(
        {**deny("iot:Publish", A + "topic/admin/*"), "Sid": "noadmin"},
        deny("iot:*", A + "topic/admin/reboot"),
        name="guard",
    )
    allowed = evaluate([first, second], "iot:Publish", arn("topic", "dev/x"), RequestContext("c"))
    assert allowed.reason == "allowed"
    assert [(r.policy_name, r.statement_number, r.sid) for r in allowed.statements] == [
        ("base", 1, None),
        ("base", 2, "pub"),
    ]
    assert allowed.policy_names == ("base",)
    denied = evaluate(
        [first, second], "iot:Publish", arn("topic", "admin/reboot"), RequestContext("c")
    )
    assert (denied.allowed, denied.reason) == (False, "explicit_deny")
    assert (denied.policy_name, denied.statement_number, denied.sid) == ("guard", 1, "noadmin")
    assert len(denied.statements) == 2
    assert denied.explain() == (
        f"iot:Publish on {A}topic/admin/reboot: denied explicitly by "
        "policy 'guard' statement 1 (Sid 'noadmin'), policy 'guard' statement 2"
    )
    assert denied.action == "iot:Publish"
    assert denied.resource == arn("topic", "admin/reboot")


def test_conditions_are_anded_across_operators_and_keys() -> None:
    doc = policy(
        allow(
            "iot:Connect",
            "*",
            Condition={
                "StringLike": {"iot:ClientId": "dev-*"},
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            },
        )
    )
    resource = arn("client", "dev-1")
    assert evaluate(
        [doc], "iot:Connect", resource, RequestContext("dev-1", source_ip="10.0.0.1")
    ).allowed
    assert not evaluate(
        [doc], "iot:Connect", resource, RequestContext("gw-1", source_ip="10.0.0.1")
    ).allowed
    assert not evaluate(
        [doc], "iot:Connect", resource, RequestContext("dev-1", source_ip="11.0.0.1")
    ).allowed


def test_action_wildcards() -> None:
    doc = policy(allow("iot:*Publish", "*"), allow("iot:Get?etainedMessage", "*"))
    ctx = RequestContext("c")
    assert evaluate([doc], "iot:RetainPublish", arn("topic", "t"), ctx).allowed
    assert evaluate([doc], "iot:Publish", arn("topic", "t"), ctx).allowed
    assert evaluate([doc], "iot:GetRetainedMessage", arn("topic", "t"), ctx).allowed
    assert not evaluate([doc], "iot:Subscribe", arn("topicfilter", "t"), ctx).allowed
