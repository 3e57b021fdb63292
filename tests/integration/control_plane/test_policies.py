"""Policies, policy versions, policy attachments and thing principals through real boto3."""

from __future__ import annotations

import json

from tests.integration.control_plane.helpers import (
    ACCOUNT,
    REGION,
    allow_all_policy,
    aws_error,
    unique,
)


def document(action: str = "iot:Connect") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        }
    )


def test_create_and_get_policy(iot) -> None:
    name = unique("policy")
    created = iot.create_policy(policyName=name, policyDocument=document())
    assert created == {
        "ResponseMetadata": created["ResponseMetadata"],
        "policyName": name,
        "policyArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/{name}",
        "policyDocument": document(),
        "policyVersionId": "1",
    }
    got = iot.get_policy(policyName=name)
    assert got["defaultVersionId"] == "1"
    assert got["policyDocument"] == document()
    assert {"creationDate", "lastModifiedDate", "generationId"} <= set(got)


def test_create_policy_errors(iot) -> None:
    name = unique("dup")
    iot.create_policy(policyName=name, policyDocument=document())
    with aws_error("ResourceAlreadyExistsException", 409):
        iot.create_policy(policyName=name, policyDocument=document())
    with aws_error("MalformedPolicyException", 400):
        iot.create_policy(policyName=unique("bad"), policyDocument='{"Statement": "nope"}')
    with aws_error("ResourceNotFoundException", 404):
        iot.get_policy(policyName=unique("missing"))


def test_policy_versions(iot) -> None:
    name = unique("versions")
    iot.create_policy(policyName=name, policyDocument=document())
    second = iot.create_policy_version(
        policyName=name, policyDocument=document("iot:Publish"), setAsDefault=True
    )
    assert second["policyVersionId"] == "2"
    assert second["isDefaultVersion"] is True
    assert iot.get_policy(policyName=name)["policyDocument"] == document("iot:Publish")
    for action in ("iot:Subscribe", "iot:Receive", "iot:RetainPublish"):
        created = iot.create_policy_version(policyName=name, policyDocument=document(action))
        assert created["isDefaultVersion"] is False
    with aws_error("VersionsLimitExceededException", 409):
        iot.create_policy_version(policyName=name, policyDocument=document())
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [v["versionId"] for v in versions] == ["5", "4", "3", "2", "1"]
    assert iot.get_policy_version(policyName=name, policyVersionId="1")["isDefaultVersion"] is False
    with aws_error("DeleteConflictException", 409):
        iot.delete_policy_version(policyName=name, policyVersionId="2")
    iot.set_default_policy_version(policyName=name, policyVersionId="1")
    with aws_error("DeleteConflictException", 409):
        iot.delete_policy(policyName=name)  # non-default versions exist
    for version in ("2", "3", "4", "5"):
        iot.delete_policy_version(policyName=name, policyVersionId=version)
    iot.delete_policy(policyName=name)
    with aws_error("ResourceNotFoundException", 404):
        iot.get_policy(policyName=name)


def test_create_policy_version_of_unknown_policy_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.create_policy_version(policyName=unique("ghost"), policyDocument=document())


def test_attach_detach_and_list_policy_targets(iot) -> None:
    name = unique("attached")
    iot.create_policy(policyName=name, policyDocument=allow_all_policy())
    certificate = iot.create_keys_and_certificate()
    arn = certificate["certificateArn"]
    iot.attach_policy(policyName=name, target=arn)
    iot.attach_policy(policyName=name, target=arn)  # attaching twice is a no-op
    attached = iot.list_attached_policies(target=arn)["policies"]
    assert attached == [
        {"policyName": name, "policyArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/{name}"}
    ]
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [arn]
    with aws_error("DeleteConflictException", 409):
        iot.delete_policy(policyName=name)
    iot.detach_policy(policyName=name, target=arn)
    assert iot.list_attached_policies(target=arn)["policies"] == []
    iot.delete_policy(policyName=name)


def test_attach_policy_errors(iot) -> None:
    certificate = iot.create_keys_and_certificate()
    with aws_error("ResourceNotFoundException", 404):
        iot.attach_policy(policyName=unique("ghost"), target=certificate["certificateArn"])
    name = unique("limit")
    iot.create_policy(policyName=name, policyDocument=allow_all_policy())
    with aws_error("ResourceNotFoundException", 404):
        iot.attach_policy(policyName=name, target=f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'0' * 64}")
    for _ in range(10):
        other = unique("ten")
        iot.create_policy(policyName=other, policyDocument=allow_all_policy())
        iot.attach_policy(policyName=other, target=certificate["certificateArn"])
    with aws_error("LimitExceededException", 410):
        iot.attach_policy(policyName=name, target=certificate["certificateArn"])


def test_list_policies_pages_with_marker(iot) -> None:
    created = [unique("listed") for _ in range(5)]
    for name in created:
        iot.create_policy(policyName=name, policyDocument=document())
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"pageSize": 2} if marker is None else {"pageSize": 2, "marker": marker}
        page = iot.list_policies(**kwargs)
        assert len(page["policies"]) <= 2
        seen += [p["policyName"] for p in page["policies"]]
        marker = page.get("nextMarker")
        if marker is None:
            break
    assert set(created) <= set(seen)
    assert len(seen) == len(set(seen))
    paged = iot.get_paginator("list_policies").paginate(PaginationConfig={"PageSize": 3})
    assert [p["policyName"] for page in paged for p in page["policies"]] == seen


def test_list_attached_policies_and_targets_page(iot) -> None:
    certificate = iot.create_keys_and_certificate()
    arn = certificate["certificateArn"]
    names = sorted(unique("multi") for _ in range(3))
    for name in names:
        iot.create_policy(policyName=name, policyDocument=document())
        iot.attach_policy(policyName=name, target=arn)
    first = iot.list_attached_policies(target=arn, pageSize=2)
    second = iot.list_attached_policies(target=arn, pageSize=2, marker=first["nextMarker"])
    assert [p["policyName"] for p in first["policies"] + second["policies"]] == names
    assert "nextMarker" not in second


def test_thing_principals(iot) -> None:
    thing = unique("principal-thing")
    iot.create_thing(thingName=thing)
    certificates = [iot.create_keys_and_certificate()["certificateArn"] for _ in range(3)]
    for arn in certificates:
        iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_thing_principal(thingName=thing, principal=certificates[0])  # idempotent
    listed = iot.list_thing_principals(thingName=thing)["principals"]
    assert sorted(listed) == sorted(certificates)
    first = iot.list_thing_principals(thingName=thing, maxResults=2)
    second = iot.list_thing_principals(thingName=thing, maxResults=2, nextToken=first["nextToken"])
    assert sorted(first["principals"] + second["principals"]) == sorted(certificates)
    assert iot.list_principal_things(principal=certificates[1])["things"] == [thing]
    iot.detach_thing_principal(thingName=thing, principal=certificates[1])
    assert iot.list_principal_things(principal=certificates[1])["things"] == []


def test_thing_principal_errors(iot) -> None:
    certificate = iot.create_keys_and_certificate()["certificateArn"]
    with aws_error("ResourceNotFoundException", 404):
        iot.attach_thing_principal(thingName=unique("ghost"), principal=certificate)
    thing = unique("real")
    iot.create_thing(thingName=thing)
    with aws_error("InvalidRequestException", 400):
        iot.attach_thing_principal(thingName=thing, principal="not-a-certificate-arn")
    with aws_error("ResourceNotFoundException", 404):
        iot.attach_thing_principal(
            thingName=thing, principal=f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'1' * 64}"
        )
    with aws_error("ResourceNotFoundException", 404):
        iot.list_thing_principals(thingName=unique("ghost"))
