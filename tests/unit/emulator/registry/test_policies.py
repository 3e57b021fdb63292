"""Policies, policy versions and attachments (policies to targets, things to principals)."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import AttachmentChanged, PolicyChanged
from fleet_sim.emulator.registry.attachments import MAX_POLICIES_PER_TARGET
from fleet_sim.errors import (
    DeleteConflict,
    InvalidRequest,
    LimitExceeded,
    MalformedPolicy,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionsLimitExceeded,
)
from tests.unit.emulator.registry.support import ACCOUNT, NOW, POLICY, POLICY_2, REGION, Pki

# ---------------------------------------------------------------------------- policies


def test_create_and_get(registry, events):
    policy = registry.policies.create("dev-policy", POLICY, now=NOW)
    assert policy.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/dev-policy"
    assert (policy.default_version_id, policy.document) == ("1", POLICY)
    assert [v.version_id for v in policy.versions] == ["1"]
    assert policy.versions[0].is_default
    assert (policy.created, policy.last_modified) == (NOW, NOW)
    assert registry.policies.describe("dev-policy") == policy
    assert events == [PolicyChanged("dev-policy")]


def test_create_keeps_the_text_exactly(registry):
    text = (
        '{\n  "Version": "2012-10-17",\n'
        '  "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}\n}'
    )
    assert registry.policies.create("p", text, now=NOW).document == text


def test_create_errors(registry, events):
    registry.policies.create("p", POLICY, now=NOW)
    events.clear()
    with pytest.raises(ResourceAlreadyExists):
        registry.policies.create("p", POLICY, now=NOW)
    with pytest.raises(InvalidRequest):
        registry.policies.create("bad name", POLICY, now=NOW)
    with pytest.raises(MalformedPolicy) as info:
        registry.policies.create("q", '{"Statement": ', now=NOW)
    assert (info.value.aws_code, info.value.http_status) == ("MalformedPolicyException", 400)
    with pytest.raises(MalformedPolicy):
        registry.policies.create("q", '{"Version": "2012-10-17"}', now=NOW)
    big = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", '
        '"Resource": [' + ",".join(f'"arn:aws:iot:*:*:topic/t{n}"' for n in range(100)) + "]}]}"
    )
    with pytest.raises(MalformedPolicy, match="2048"):
        registry.policies.create("q", big, now=NOW)
    assert registry.policies.get("q") is None
    assert events == []


def test_versions(registry, events):
    registry.policies.create("p", POLICY, now=NOW)
    events.clear()
    v2 = registry.policies.create_version("p", POLICY_2, now=NOW + 1)
    assert (v2.version_id, v2.is_default, v2.document) == ("2", False, POLICY_2)
    assert events == []  # the effective document did not change
    assert registry.policies.describe("p").document == POLICY
    v3 = registry.policies.create_version("p", POLICY_2, now=NOW + 2, set_as_default=True)
    assert v3.is_default
    assert registry.policies.describe("p").default_version_id == "3"
    assert events == [PolicyChanged("p")]
    assert [v.version_id for v in registry.policies.list_versions("p")] == ["1", "2", "3"]
    assert registry.policies.describe_version("p", "2") == v2
    policy = registry.policies.set_default_version("p", 1, now=NOW + 3)
    assert (policy.default_version_id, policy.document, policy.last_modified) == (
        "1",
        POLICY,
        NOW + 3,
    )
    registry.policies.delete_version("p", "3")
    v4 = registry.policies.create_version("p", POLICY, now=NOW + 4)
    assert v4.version_id == "4"  # ids are never reused


def test_at_most_five_versions(registry):
    registry.policies.create("p", POLICY, now=NOW)
    for _ in range(4):
        registry.policies.create_version("p", POLICY_2, now=NOW)
    with pytest.raises(VersionsLimitExceeded) as info:
        registry.policies.create_version("p", POLICY_2, now=NOW, set_as_default=True)
    assert (info.value.aws_code, info.value.http_status) == ("VersionsLimitExceededException", 409)
    assert registry.policies.describe("p").default_version_id == "1"


def test_version_errors(registry):
    registry.policies.create("p", POLICY, now=NOW)
    with pytest.raises(DeleteConflict, match="default version"):
        registry.policies.delete_version("p", 1)
    with pytest.raises(ResourceNotFound):
        registry.policies.describe_version("p", 9)
    with pytest.raises(ResourceNotFound):
        registry.policies.set_default_version("p", 9, now=NOW)
    with pytest.raises(ResourceNotFound):
        registry.policies.create_version("missing", POLICY, now=NOW)
    with pytest.raises(InvalidRequest):
        registry.policies.describe_version("p", "one")
    with pytest.raises(MalformedPolicy):
        registry.policies.create_version("p", "[]", now=NOW)


def test_delete_rules(registry, pki: Pki, events):
    registry.policies.create("p", POLICY, now=NOW)
    registry.policies.create_version("p", POLICY_2, now=NOW)
    with pytest.raises(DeleteConflict, match="versions other than"):
        registry.policies.delete("p")
    registry.policies.delete_version("p", 2)
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.attachments.attach_policy("p", cert.arn)
    with pytest.raises(DeleteConflict, match="attached"):
        registry.policies.delete("p")
    registry.attachments.detach_policy("p", cert.arn)
    events.clear()
    registry.policies.delete("p")
    assert registry.policies.get("p") is None
    assert events == [PolicyChanged("p", deleted=True)]
    with pytest.raises(ResourceNotFound):
        registry.policies.delete("p")


def test_list_paginates(registry):
    for n in range(5):
        registry.policies.create(f"p{n}", POLICY, now=NOW + n)
    first = registry.policies.list(page_size=3)
    rest = registry.policies.list(page_size=3, marker=first.next_marker)
    assert [p.name for p in first.items + rest.items] == [f"p{n}" for n in range(5)]
    assert rest.next_marker is None
    assert [p.name for p in registry.policies.list(ascending=False, page_size=2).items] == [
        "p4",
        "p3",
    ]


# ---------------------------------------------------------------------------- attachments


def test_attach_detach_and_listings(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
    registry.policies.create("a", POLICY, now=NOW)
    registry.policies.create("b", POLICY_2, now=NOW)
    events.clear()
    registry.attachments.attach_policy("b", cert.arn)
    registry.attachments.attach_policy("a", cert.arn)
    registry.attachments.attach_policy("a", cert.arn)  # idempotent
    assert [p.name for p in registry.attachments.list_attached_policies(cert.arn).items] == [
        "a",
        "b",
    ]
    assert registry.attachments.list_policy_targets("a").items == (cert.arn,)
    assert registry.policies_for_certificate(cert.certificate_id) == [
        ("a", POLICY),
        ("b", POLICY_2),
    ]
    registry.attachments.detach_policy("b", cert.arn)
    registry.attachments.detach_policy("b", cert.arn)  # not attached: no-op
    assert registry.policies_for_certificate(cert.certificate_id) == [("a", POLICY)]
    assert events == [
        AttachmentChanged("policy", "b", cert.arn, True),
        AttachmentChanged("policy", "a", cert.arn, True),
        AttachmentChanged("policy", "b", cert.arn, False),
    ]


def test_effective_policies_follow_the_default_version(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.policies.create("p", POLICY, now=NOW)
    registry.attachments.attach_policy("p", cert.arn)
    registry.policies.create_version("p", POLICY_2, now=NOW, set_as_default=True)
    assert registry.policies_for_certificate(cert.certificate_id) == [("p", POLICY_2)]
    assert registry.policies_for_certificate("ab" * 32) == []


def test_certificate_arns_are_canonicalised(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.policies.create("p", POLICY, now=NOW)
    upper = cert.arn.replace(cert.certificate_id, cert.certificate_id.upper())
    registry.attachments.attach_policy("p", upper)
    assert registry.attachments.list_policy_targets("p").items == (cert.arn,)
    assert len(registry.attachments.list_attached_policies(upper).items) == 1


def test_attach_errors(registry, pki: Pki, events):
    registry.policies.create("p", POLICY, now=NOW)
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    events.clear()
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_policy("missing", cert.arn)
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_policy("p", f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'0' * 64}")
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_policy("p", f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/none")
    with pytest.raises(InvalidRequest):
        registry.attachments.attach_policy("p", f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/short")
    with pytest.raises(InvalidRequest):
        registry.attachments.attach_policy("p", "")
    with pytest.raises(ResourceNotFound):
        registry.attachments.detach_policy("missing", cert.arn)
    assert events == []


def test_opaque_targets_are_kept_as_given(registry):
    registry.policies.create("p", POLICY, now=NOW)
    cognito = "us-east-1:0f5a2c3e-1111-2222-3333-444455556666"
    other_account = f"arn:aws:iot:{REGION}:999999999999:cert/{'ab' * 32}"
    registry.attachments.attach_policy("p", cognito)
    registry.attachments.attach_policy("p", other_account)
    assert registry.attachments.list_policy_targets("p").items == tuple(
        sorted([cognito, other_account])
    )


def test_at_most_ten_policies_per_target(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    for n in range(MAX_POLICIES_PER_TARGET + 1):
        registry.policies.create(f"p{n:02}", POLICY, now=NOW)
    for n in range(MAX_POLICIES_PER_TARGET):
        registry.attachments.attach_policy(f"p{n:02}", cert.arn)
    events.clear()
    registry.attachments.attach_policy("p00", cert.arn)  # already attached: still fine
    with pytest.raises(LimitExceeded) as info:
        registry.attachments.attach_policy("p10", cert.arn)
    assert (info.value.aws_code, info.value.http_status) == ("LimitExceededException", 410)
    assert len(registry.policies_for_certificate(cert.certificate_id)) == MAX_POLICIES_PER_TARGET
    assert events == []


def test_attachment_listings_paginate(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    for n in range(5):
        registry.policies.create(f"p{n}", POLICY, now=NOW)
        registry.attachments.attach_policy(f"p{n}", cert.arn)
    first = registry.attachments.list_attached_policies(cert.arn, page_size=2)
    second = registry.attachments.list_attached_policies(
        cert.arn, page_size=2, marker=first.next_marker
    )
    third = registry.attachments.list_attached_policies(
        cert.arn, page_size=2, marker=second.next_marker
    )
    assert [p.name for p in first.items + second.items + third.items] == [f"p{n}" for n in range(5)]
    assert third.next_marker is None


def test_thing_group_policies_reach_members_through_ancestors(registry):
    root = registry.thing_groups.create("root", now=NOW)
    registry.thing_groups.create("leaf", now=NOW, parent_group_name="root")
    registry.things.create("t")
    registry.thing_groups.add_thing("leaf", "t")
    registry.policies.create("fleet", POLICY, now=NOW)
    registry.attachments.attach_policy("fleet", root.arn)
    assert registry.attachments.policies_for_thing("t") == [("fleet", POLICY)]
    assert registry.attachments.policies_for_thing("nobody") == []


# ---------------------------------------------------------------------------- thing principals


def test_thing_principals(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.things.create("b")
    registry.things.create("a", attributes={"k": "v"})
    events.clear()
    registry.attachments.attach_thing_principal("b", cert.arn)
    registry.attachments.attach_thing_principal("a", cert.arn)
    registry.attachments.attach_thing_principal("a", cert.arn)  # idempotent
    assert registry.attachments.list_thing_principals("a").items == (cert.arn,)
    assert registry.attachments.list_principal_things(cert.arn).items == ("a", "b")
    things = registry.things_for_certificate(cert.certificate_id)
    assert [(t.name, dict(t.attributes)) for t in things] == [("a", {"k": "v"}), ("b", {})]
    registry.attachments.detach_thing_principal("b", cert.arn)
    registry.attachments.detach_thing_principal("b", cert.arn)  # no-op
    assert events == [
        AttachmentChanged("thing_principal", "b", cert.arn, True),
        AttachmentChanged("thing_principal", "a", cert.arn, True),
        AttachmentChanged("thing_principal", "b", cert.arn, False),
    ]


def test_thing_principal_errors(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.things.create("t")
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_thing_principal("missing", cert.arn)
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_thing_principal(
            "t", f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'1' * 64}"
        )
    with pytest.raises(InvalidRequest):
        registry.attachments.attach_thing_principal("t", "us-east-1:cognito-id")
    with pytest.raises(InvalidRequest):
        registry.attachments.attach_thing_principal("t", cert.arn.replace(ACCOUNT, "999999999999"))
    with pytest.raises(ResourceNotFound):
        registry.attachments.list_thing_principals("missing")
    with pytest.raises(ResourceNotFound):
        registry.attachments.list_principal_things(
            f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'1' * 64}"
        )
    assert registry.attachments.list_thing_principals("t").items == ()
