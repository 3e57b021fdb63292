"""The AWS IoT policy a group's certificates get, and a load-time check of what it allows.

``policy`` is the name of an existing policy (``policy: SensorPolicy``) or an inline policy
document (a mapping with ``Version`` and ``Statement``, or ``{document: …}``). Inline
documents are validated with :func:`fleet_sim.policy.parse_policy` and kept as compact JSON
text, which is what ``CreatePolicy`` takes.

The default is :data:`DEFAULT_POLICY`: a device may connect only with its own thing
name as client id, and publish, receive and subscribe only on topics with its thing name as a
whole level (``dt/sensors/sensor-00001/telemetry``, ``cmd/sensor-00001/#``).

:func:`policy_problems` evaluates an inline policy for a group's first device with the
same policy engine the emulator uses, so a scenario whose policy forbids its own connects,
publishes or subscriptions fails at load time rather than ten thousand times at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Field, Tag, WithJsonSchema

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy import (
    RequestContext,
    ThingInfo,
    client_arn,
    evaluate,
    parse_policy,
    topic_arn,
    topicfilter_arn,
)
from fleet_sim.scenario.model_base import FrozenModel, Loc

__all__ = [
    "DEFAULT_POLICY",
    "DevicePolicy",
    "InlinePolicy",
    "NamedPolicy",
    "policy_problems",
]

_THING = "${iot:Connection.Thing.ThingName}"
_ARN = "arn:aws:iot:*:*:"


def _default_document() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{_ARN}client/{_THING}",
            },
            {
                "Sid": "OwnTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{_ARN}topic/*/{_THING}", f"{_ARN}topic/*/{_THING}/*"],
            },
            {
                "Sid": "OwnTopicFilters",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{_ARN}topicfilter/*/{_THING}", f"{_ARN}topicfilter/*/{_THING}/*"],
            },
        ],
    }


# Sample account for load-time evaluation; the ARNs above match any region and account.
_REGION = "us-east-1"
_ACCOUNT = "123456789012"


def _policy_json(value: Any) -> str:
    if not isinstance(value, str | Mapping):
        raise ValueError(f"must be a policy document (a mapping or JSON text); got {value!r}")
    try:
        parse_policy(value if isinstance(value, str) else dict(value))
    except MalformedPolicy as exc:
        raise ValueError(f"invalid policy document: {exc}") from None
    loaded = json.loads(value) if isinstance(value, str) else value
    return json.dumps(loaded, separators=(",", ":"), ensure_ascii=False)


PolicyJson = Annotated[
    str,
    BeforeValidator(_policy_json),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "required": ["Statement"]},
                {"type": "string", "description": "The document as JSON text."},
            ],
            "description": "An AWS IoT policy document.",
        }
    ),
]
"""A validated policy document, stored as compact JSON text."""


class NamedPolicy(FrozenModel):
    """An existing policy, by name."""

    name: str = Field(pattern=r"^[\w+=,.@-]{1,128}$", description="The policy's name.")


class InlinePolicy(FrozenModel):
    """A policy document fleetsim creates for the group."""

    document: PolicyJson = Field(description="The policy document.")

    @property
    def parsed(self) -> dict[str, Any]:
        """The document as JSON data."""
        loaded: dict[str, Any] = json.loads(self.document)
        return loaded


DEFAULT_POLICY = InlinePolicy(document=_policy_json(_default_document()))
"""The per-device policy used unless a group names another (see the module docstring)."""


def _policy_tag(value: Any) -> str | None:
    if isinstance(value, NamedPolicy) or (isinstance(value, dict) and "name" in value):
        return "named"
    if isinstance(value, InlinePolicy) or (isinstance(value, dict) and "document" in value):
        return "inline"
    return None


def _policy_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and ("Statement" in value or "Version" in value):
        return {"document": value}
    return value


DevicePolicy = Annotated[
    Annotated[NamedPolicy, Tag("named")] | Annotated[InlinePolicy, Tag("inline")],
    Discriminator(
        _policy_tag,
        custom_error_type="device_policy",
        custom_error_message=(
            "must be a policy name or a policy document (a mapping with Version and Statement)"
        ),
    ),
    BeforeValidator(_policy_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "The name of an existing policy."},
                {
                    "type": "object",
                    "required": ["Statement"],
                    "description": "An inline policy document.",
                },
                {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"document": {"type": "object"}},
                    "required": ["document"],
                    "additionalProperties": False,
                },
            ],
            "description": "An existing policy's name or an inline policy document.",
        }
    ),
]
"""An existing policy's name or an inline document."""


def _checkable(document: Mapping[str, Any]) -> bool:
    """Whether a load-time check can judge the document without a real certificate."""
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements or []
    text = json.dumps(document)
    return "Certificate." not in text and not any(
        isinstance(s, dict) and "Condition" in s for s in statements
    )


def policy_problems(
    policy: InlinePolicy,
    *,
    client_id: str,
    thing_name: str,
    publish: Sequence[tuple[Loc, str]] = (),
    subscribe: Sequence[tuple[Loc, str]] = (),
    client_id_loc: Loc = ("client_id",),
) -> list[tuple[Loc, str]]:
    """What one device's policy would deny it, evaluated as AWS IoT would.

    Policies with ``Condition`` elements or certificate variables are not checked (a sample
    device has no real certificate to judge them by).

    Args:
        policy: the group's inline policy.
        client_id: the device's client id.
        thing_name: its thing name (attached to its certificate).
        publish: ``(loc, topic)`` of the topics it publishes to.
        subscribe: ``(loc, filter)`` of the filters it subscribes to.
        client_id_loc: where a denied connect is reported.

    Returns:
        ``(loc, message)`` for each denied action; empty when all is allowed.
    """
    if not _checkable(policy.parsed):
        return []
    document = parse_policy(policy.document)
    context = RequestContext(
        client_id=client_id,
        thing=ThingInfo(name=thing_name) if client_id == thing_name else None,
        region=_REGION,
        account_id=_ACCOUNT,
    )
    which = "the default device policy" if policy == DEFAULT_POLICY else "the group's policy"
    problems: list[tuple[Loc, str]] = []
    connect = evaluate([document], "iot:Connect", client_arn(_REGION, _ACCOUNT, client_id), context)
    if not connect.allowed:
        hint = ""
        if client_id != thing_name:
            hint = (
                "; ${iot:Connection.Thing.ThingName} resolves only when the client id is "
                "the thing name (client_id: '{thing_name}')"
            )
        problems.append(
            (client_id_loc, f"{which} does not allow iot:Connect as {client_id!r}{hint}")
        )
        return problems
    for loc, topic in publish:
        arn = topic_arn(_REGION, _ACCOUNT, topic)
        if not evaluate([document], "iot:Publish", arn, context).allowed:
            problems.append((loc, f"{which} does not allow iot:Publish to {topic!r}"))
    for loc, topic_filter in subscribe:
        arn = topicfilter_arn(_REGION, _ACCOUNT, topic_filter)
        if not evaluate([document], "iot:Subscribe", arn, context).allowed:
            problems.append((loc, f"{which} does not allow iot:Subscribe to {topic_filter!r}"))
    if problems and policy == DEFAULT_POLICY:
        problems = [
            (loc, message + " (it allows only topics with the thing name as a whole level)")
            for loc, message in problems
        ]
    return problems
