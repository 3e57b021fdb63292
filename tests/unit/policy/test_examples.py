"""Decisions on AWS's documented policy examples and pitfalls (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_sim.policy import PolicyDocument, RequestContext, ThingInfo, evaluate, parse_policy
from fleet_sim.policy.arns import client_arn, topic_arn, topicfilter_arn

REGION, ACCOUNT = "us-east-1", "123456789012"
A = f"arn:aws:iot:{REGION}:{ACCOUNT}:"


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def policy(*statements: dict[str, Any], version: str = "2012-10-17") -> PolicyDocument:
    return parse_policy({"Version": version, "Statement": list(statements)}, name="p")


def thing(client_id: str = "dev-1", **kwargs: Any) -> RequestContext:
    return RequestContext(client_id, thing=ThingInfo(client_id, **kwargs))


def when(operator: str, key: str, values: str | list[str]) -> dict[str, Any]:
    return {"Condition": {operator: {key: values}}}


OU = "iot:Certificate.Subject.OrganizationalUnit.List"
CONNECT_OWN_ID = policy(allow("iot:Connect", A + "client/${iot:ClientId}"))
THING_GUARD = policy(
    allow(
        "iot:Connect",
        A + "client/${iot:Connection.Thing.ThingName}",
        **when("Bool", "iot:Connection.Thing.IsAttached", "true"),
    )
)
SHADOW_TOPIC = "$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"
SHADOW = policy(
    allow(["iot:Publish", "iot:Receive"], A + "topic/" + SHADOW_TOPIC),
    allow("iot:Subscribe", A + "topicfilter/" + SHADOW_TOPIC),
)
SUBJECT = policy(
    allow(
        "iot:Publish",
        A + "topic/${iot:Certificate.Subject.Organization}/${iot:Certificate.Subject.CommonName}/*",
    ),
    allow("iot:Publish", A + "topic/ou/${iot:Certificate.Subject.OrganizationalUnit.1}"),
)
CLAIM_TOPICS = ["$aws/certificates/create/*", "$aws/provisioning-templates/Fleet/provision/*"]
CLAIM = policy(  # §3.3: the fleet-provisioning claim certificate's policy
    allow("iot:Connect", "*"),
    allow(["iot:Publish", "iot:Receive"], [A + "topic/" + t for t in CLAIM_TOPICS]),
    allow("iot:Subscribe", [A + "topicfilter/" + t for t in CLAIM_TOPICS]),
)
WILDCARD_DENY = policy(
    allow("iot:*", "*"),
    deny(["iot:Publish", "iot:Subscribe"], [A + "topic/admin/*", A + "topicfilter/admin/*"]),
)
PLUS_PITFALL = policy(
    allow("iot:Connect", A + "client/*"),
    allow("iot:Subscribe", A + "topicfilter/my/${iot:ClientId}/topic"),
)
HASH = policy(allow("iot:Subscribe", [A + "topicfilter/a/#", A + "topicfilter/b/*"]))
CASES = policy(allow("iot:publish", A + "topic/Sensors/*"))
NOT_RES = policy(
    {"Effect": "Allow", "Action": "iot:Publish", "NotResource": A + "topic/$aws/*"},
    {"Effect": "Allow", "NotAction": ["iot:Publish", "iot:Connect"], "Resource": "*"},
)
DENY_NOT_RES = policy(
    allow("iot:*", "*"),
    {"Effect": "Deny", "Action": "iot:Publish", "NotResource": A + "topic/${iot:ClientId}/*"},
)
OU_LIST = policy(allow("iot:Connect", "*", **when("ForAllValues:StringEquals", OU, ["eng", "ops"])))
TYPE_IF = policy(
    allow(
        "iot:Connect",
        "*",
        **when("StringEqualsIfExists", "iot:Connection.Thing.ThingTypeName", "sensor"),
    )
)
SOURCE_IP = policy(
    allow("iot:Connect", "*"),
    deny("iot:Connect", "*", **when("NotIpAddress", "aws:SourceIp", ["10.0.0.0/8"])),
)
NO_LWT = policy(
    allow(
        "iot:Connect",
        "*",
        **when("ForAllValues:StringEquals", "iot:ConnectAttributes", ["PersistentConnect"]),
    )
)
LWT = policy(
    allow(
        "iot:Connect",
        "*",
        **when("ArnEquals", "iot:LastWillTopic", A + "topic/${iot:ClientId}/will"),
    )
)
V2008 = policy(allow("iot:Connect", A + "client/${iot:ClientId}"), version="2008-10-17")

DEV = thing()
BARE = RequestContext("dev-1")
C = RequestContext("c")
ORG = RequestContext(
    "c",
    subject={"Organization": "acme", "CommonName": "dev-1", "OrganizationalUnit": ("eng", "ops")},
)
OU_HR = RequestContext("c", subject={"OrganizationalUnit": ("eng", "hr")})
OU_ENG = RequestContext("c", subject={"OrganizationalUnit": ("eng",)})
WILL = RequestContext("c", connect_attributes=("PersistentConnect", "LastWill"))
PERSIST = RequestContext("c", connect_attributes=("PersistentConnect",))
WILL_OWN = RequestContext("c", last_will_topic="c/will", region=REGION, account_id=ACCOUNT)
WILL_OTHER = RequestContext("c", last_will_topic="x/will", region=REGION, account_id=ACCOUNT)

# Actions: C(onnect) on client/<name>, S(ubscribe) on topicfilter/<name>, P(ublish) and
# R(eceive) on topic/<name>.
ACTIONS = {"C": "iot:Connect", "S": "iot:Subscribe", "P": "iot:Publish", "R": "iot:Receive"}
ARNS = {"C": client_arn, "S": topicfilter_arn, "P": topic_arn, "R": topic_arn}

TABLE: list[tuple[str, PolicyDocument, RequestContext, str, str, bool]] = [
    ("connect own id", CONNECT_OWN_ID, BARE, "C", "dev-1", True),
    ("connect other id", CONNECT_OWN_ID, BARE, "C", "dev-2", False),
    ("thing guard attached", THING_GUARD, DEV, "C", "dev-1", True),
    ("thing guard no thing", THING_GUARD, BARE, "C", "dev-1", False),
    ("thing guard detached", THING_GUARD, thing(is_attached=False), "C", "dev-1", False),
    ("shadow own update", SHADOW, DEV, "P", "$aws/things/dev-1/shadow/update", True),
    ("shadow own named", SHADOW, DEV, "R", "$aws/things/dev-1/shadow/name/c/update/delta", True),
    ("shadow other thing", SHADOW, DEV, "P", "$aws/things/dev-2/shadow/update", False),
    ("shadow subscribe +", SHADOW, DEV, "S", "$aws/things/dev-1/shadow/+", True),
    ("shadow subscribe #", SHADOW, DEV, "S", "$aws/things/dev-1/shadow/#", True),
    ("shadow subscribe all", SHADOW, DEV, "S", "$aws/things/+/shadow/#", False),
    ("shadow no thing", SHADOW, BARE, "P", "$aws/things/dev-1/shadow/update", False),
    ("subject vars", SUBJECT, ORG, "P", "acme/dev-1/temp", True),
    ("subject other cn", SUBJECT, ORG, "P", "acme/dev-2/temp", False),
    ("subject second ou", SUBJECT, ORG, "P", "ou/ops", True),
    ("subject first ou", SUBJECT, ORG, "P", "ou/eng", False),
    ("claim connect", CLAIM, C, "C", "claim-1", True),
    ("claim create", CLAIM, C, "P", "$aws/certificates/create/json", True),
    ("claim csr", CLAIM, C, "P", "$aws/certificates/create-from-csr/json", False),
    ("claim accepted", CLAIM, C, "R", "$aws/certificates/create/json/accepted", True),
    ("claim subscribe", CLAIM, C, "S", "$aws/provisioning-templates/Fleet/provision/json/+", True),
    ("claim register", CLAIM, C, "P", "$aws/provisioning-templates/Fleet/provision/json", True),
    ("claim other template", CLAIM, C, "P", "$aws/provisioning-templates/X/provision/json", False),
    ("claim telemetry", CLAIM, C, "P", "dev/telemetry", False),
    ("wildcard allows", WILDCARD_DENY, C, "P", "dev/x", True),
    ("deny wins", WILDCARD_DENY, C, "P", "admin/reboot", False),
    ("deny wins filter", WILDCARD_DENY, C, "S", "admin/#", False),
    ("deny other action", WILDCARD_DENY, C, "R", "admin/reboot", True),
    # the documented pitfall: '+' is literal, so a client id of '+' grants the filter my/+/topic
    ("+ pitfall", PLUS_PITFALL, RequestContext("+"), "S", "my/+/topic", True),
    ("+ pitfall normal id", PLUS_PITFALL, BARE, "S", "my/+/topic", False),
    ("+ pitfall own", PLUS_PITFALL, BARE, "S", "my/dev-1/topic", True),
    ("# pitfall", PLUS_PITFALL, RequestContext("#"), "S", "my/#/topic", True),
    ("* client no wildcard", PLUS_PITFALL, RequestContext("*"), "S", "my/x/topic", False),
    ("* client literal", PLUS_PITFALL, RequestContext("*"), "S", "my/*/topic", True),
    ("? client no wildcard", PLUS_PITFALL, RequestContext("?"), "S", "my/x/topic", False),
    ("# literal exact", HASH, C, "S", "a/#", True),
    ("# literal no sub", HASH, C, "S", "a/b", False),
    ("# literal no +", HASH, C, "S", "a/+", False),
    ("# literal no deeper", HASH, C, "S", "a/b/#", False),
    ("* covers #", HASH, C, "S", "b/#", True),
    ("* covers +", HASH, C, "S", "b/+/x", True),
    ("resource case", CASES, C, "P", "sensors/x", False),
    ("action case", CASES, C, "P", "Sensors/x", True),
    ("not resource allowed", NOT_RES, C, "P", "a/b", True),
    ("not resource excluded", NOT_RES, C, "P", "$aws/things/x", False),
    ("not action allowed", NOT_RES, C, "S", "$aws/x", True),
    ("not action excluded", NOT_RES, C, "C", "c", False),
    ("deny not resource own", DENY_NOT_RES, RequestContext("d"), "P", "d/x", True),
    ("deny not resource other", DENY_NOT_RES, RequestContext("d"), "P", "e/x", False),
    ("deny not resource receive", DENY_NOT_RES, RequestContext("d"), "R", "e/x", True),
    ("ou list subset", OU_LIST, OU_ENG, "C", "c", True),
    ("ou list both", OU_LIST, ORG, "C", "c", True),
    ("ou list extra", OU_LIST, OU_HR, "C", "c", False),
    ("ou list absent", OU_LIST, C, "C", "c", True),  # the ForAllValues trap: no values pass
    ("ifexists match", TYPE_IF, thing(type_name="sensor"), "C", "dev-1", True),
    ("ifexists absent", TYPE_IF, DEV, "C", "dev-1", True),
    ("ifexists no thing", TYPE_IF, BARE, "C", "dev-1", True),
    ("ifexists mismatch", TYPE_IF, thing(type_name="gateway"), "C", "dev-1", False),
    ("ip inside", SOURCE_IP, RequestContext("c", source_ip="10.9.9.9"), "C", "c", True),
    ("ip outside", SOURCE_IP, RequestContext("c", source_ip="192.0.2.1"), "C", "c", False),
    ("ip unknown", SOURCE_IP, C, "C", "c", False),  # NotIpAddress on an absent key is true
    ("no will", NO_LWT, PERSIST, "C", "c", True),
    ("will refused", NO_LWT, WILL, "C", "c", False),
    ("will topic own", LWT, WILL_OWN, "C", "c", True),
    ("will topic other", LWT, WILL_OTHER, "C", "c", False),
    ("2008 no variables", V2008, BARE, "C", "dev-1", False),
    ("2008 literal", V2008, BARE, "C", "${iot:ClientId}", True),
]


@pytest.mark.parametrize(
    ("policy_doc", "context", "action", "name", "allowed"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_documented_example(
    policy_doc: PolicyDocument, context: RequestContext, action: str, name: str, allowed: bool
) -> None:
    resource = ARNS[action](REGION, ACCOUNT, name)
    decision = evaluate([policy_doc], ACTIONS[action], resource, context)
    assert decision.allowed is allowed, decision.explain()


def test_request_action_case_is_ignored() -> None:
    resource = topic_arn(REGION, ACCOUNT, "Sensors/x")
    assert evaluate([CASES], "IOT:PUBLISH", resource, C).allowed


# --------------------------------------------------------------------------- unresolvable variables


def test_unresolved_variable_stays_literal_and_denies() -> None:
    doc = policy(allow("iot:Publish", A + "topic/${iot:Connection.Thing.ThingName}/data"))
    assert not evaluate(
        [doc], "iot:Publish", topic_arn(REGION, ACCOUNT, "dev-1/data"), BARE
    ).allowed
    literal = topic_arn(REGION, ACCOUNT, "${iot:Connection.Thing.ThingName}/data")
    assert evaluate([doc], "iot:Publish", literal, BARE).allowed


def test_certificate_value_with_special_characters_is_not_substituted() -> None:
    doc = policy(allow("iot:Publish", A + "topic/${iot:Certificate.Subject.CommonName}/data"))
    hashed = RequestContext("c", subject={"CommonName": ("a#b",)})
    plain = RequestContext("c", subject={"CommonName": ("ab",)})
    assert not evaluate(
        [doc], "iot:Publish", topic_arn(REGION, ACCOUNT, "a#b/data"), hashed
    ).allowed
    assert evaluate([doc], "iot:Publish", topic_arn(REGION, ACCOUNT, "ab/data"), plain).allowed


def test_missing_thing_attribute_stays_literal() -> None:
    doc = policy(allow("iot:Publish", A + "topic/f/${iot:Connection.Thing.Attributes[Fleet]}/*"))
    resource = topic_arn(REGION, ACCOUNT, "f/blue/x")
    assert evaluate([doc], "iot:Publish", resource, thing(attributes={"Fleet": "blue"})).allowed
    assert not evaluate([doc], "iot:Publish", resource, DEV).allowed
