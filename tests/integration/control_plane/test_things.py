"""Things, thing types and thing groups through real boto3."""

from __future__ import annotations

import pytest

from tests.integration.control_plane.helpers import ACCOUNT, REGION, aws_error, unique


def test_create_and_describe_thing(iot) -> None:
    name = unique("thing")
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"color": "red"}})
    assert created["thingName"] == name
    assert created["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"
    described = iot.describe_thing(thingName=name)
    assert described["thingId"] == created["thingId"]
    assert described["defaultClientId"] == name
    assert described["attributes"] == {"color": "red"}
    assert described["version"] == 1
    assert "thingTypeName" not in described


def test_create_thing_is_idempotent_but_not_for_another_configuration(iot) -> None:
    name = unique("idem")
    first = iot.create_thing(thingName=name)
    assert iot.create_thing(thingName=name)["thingId"] == first["thingId"]
    with aws_error("ResourceAlreadyExistsException", 409):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "b"}})


def test_create_thing_with_unknown_type_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.create_thing(thingName=unique("typed"), thingTypeName="no-such-type")


def test_create_thing_with_a_bad_name_or_too_many_attributes_is_invalid(iot) -> None:
    with aws_error("InvalidRequestException", 400):
        iot.create_thing(thingName="bad name!")
    attributes = {f"a{i}": "v" for i in range(4)}
    with aws_error("InvalidRequestException", 400):
        iot.create_thing(thingName=unique("many"), attributePayload={"attributes": attributes})


def test_thing_type_allows_more_attributes(iot) -> None:
    type_name = unique("type")
    created = iot.create_thing_type(
        thingTypeName=type_name,
        thingTypeProperties={"thingTypeDescription": "sensors", "searchableAttributes": ["a0"]},
    )
    assert created["thingTypeArn"].endswith(f":thingtype/{type_name}")
    assert created["thingTypeId"]
    attributes = {f"a{i}": "v" for i in range(10)}
    name = unique("typed")
    iot.create_thing(
        thingName=name, thingTypeName=type_name, attributePayload={"attributes": attributes}
    )
    described = iot.describe_thing(thingName=name)
    assert described["thingTypeName"] == type_name
    assert len(described["attributes"]) == 10
    type_description = iot.describe_thing_type(thingTypeName=type_name)
    assert type_description["thingTypeProperties"]["thingTypeDescription"] == "sensors"
    assert type_description["thingTypeMetadata"]["deprecated"] is False
    listed = iot.list_things(thingTypeName=type_name)["things"]
    assert [t["thingName"] for t in listed] == [name]


def test_update_thing_merges_and_checks_the_version(iot) -> None:
    name = unique("upd")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(
        thingName=name,
        attributePayload={"attributes": {"b": "", "c": "3"}, "merge": True},
        expectedVersion=1,
    )
    described = iot.describe_thing(thingName=name)
    assert described["attributes"] == {"a": "1", "c": "3"}
    assert described["version"] == 2
    with aws_error("VersionConflictException", 409):
        iot.update_thing(thingName=name, attributePayload={"attributes": {}}, expectedVersion=1)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"z": "9"}})
    assert iot.describe_thing(thingName=name)["attributes"] == {"z": "9"}


def test_update_unknown_thing_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.update_thing(thingName=unique("ghost"), attributePayload={"attributes": {}})


def test_errors_are_botocores_modeled_exceptions(iot) -> None:
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=unique("ghost"))
    name = unique("modeled")
    iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing(thingName=name, expectedVersion=5)


def test_delete_thing(iot) -> None:
    name = unique("del")
    iot.create_thing(thingName=name)
    with aws_error("VersionConflictException", 409):
        iot.delete_thing(thingName=name, expectedVersion=7)
    certificate = iot.create_keys_and_certificate()
    iot.attach_thing_principal(thingName=name, principal=certificate["certificateArn"])
    with aws_error("InvalidRequestException", 400):
        iot.delete_thing(thingName=name)
    iot.detach_thing_principal(thingName=name, principal=certificate["certificateArn"])
    iot.delete_thing(thingName=name)
    with aws_error("ResourceNotFoundException", 404):
        iot.describe_thing(thingName=name)
    iot.delete_thing(thingName=name)  # deleting a missing thing is not an error


def test_list_things_pages_with_next_token(iot) -> None:
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(7)]
    for name in names:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": prefix}})
    first = iot.list_things(maxResults=3, attributeName="batch", attributeValue=prefix)
    assert [t["thingName"] for t in first["things"]] == names[:3]
    assert set(first["things"][0]) == {"thingName", "thingArn", "attributes", "version"}
    second = iot.list_things(
        maxResults=3, attributeName="batch", attributeValue=prefix, nextToken=first["nextToken"]
    )
    assert [t["thingName"] for t in second["things"]] == names[3:6]
    paginator = iot.get_paginator("list_things")
    pages = list(
        paginator.paginate(
            attributeName="batch", attributeValue=prefix, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 4
    assert [t["thingName"] for page in pages for t in page["things"]] == names
    assert "nextToken" not in pages[-1]


def test_list_things_with_a_bad_token_is_invalid(iot) -> None:
    with aws_error("InvalidRequestException"):
        iot.list_things(nextToken="not-a-token")


def test_thing_groups(iot) -> None:
    parent, child, thing = unique("parent"), unique("child"), unique("member")
    created = iot.create_thing_group(thingGroupName=parent)
    assert created["thingGroupArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{parent}"
    iot.create_thing_group(
        thingGroupName=child,
        parentGroupName=parent,
        thingGroupProperties={
            "thingGroupDescription": "kids",
            "attributePayload": {"attributes": {"k": "v"}},
        },
    )
    described = iot.describe_thing_group(thingGroupName=child)
    assert described["thingGroupMetadata"]["parentGroupName"] == parent
    assert described["thingGroupMetadata"]["rootToParentThingGroups"] == [
        {"groupName": parent, "groupArn": created["thingGroupArn"]}
    ]
    iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=thing)
    iot.add_thing_to_thing_group(
        thingGroupArn=created["thingGroupArn"],
        thingArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}",
    )
    assert iot.list_things_in_thing_group(thingGroupName=child)["things"] == [thing]
    groups = iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == sorted([parent, child])
    iot.remove_thing_from_thing_group(thingGroupName=child, thingName=thing)
    assert iot.list_things_in_thing_group(thingGroupName=child)["things"] == []


def test_thing_group_errors(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.create_thing_group(thingGroupName=unique("orphan"), parentGroupName="no-such-group")
    with aws_error("ResourceNotFoundException", 404):
        iot.add_thing_to_thing_group(thingGroupName="no-such-group", thingName="nothing")
    group = unique("group")
    iot.create_thing_group(thingGroupName=group)
    with aws_error("ResourceAlreadyExistsException", 409):
        iot.create_thing_group(
            thingGroupName=group, thingGroupProperties={"thingGroupDescription": "other"}
        )
    with aws_error("ResourceNotFoundException", 404):
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=unique("nothing"))
    with aws_error("InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingName="x")
