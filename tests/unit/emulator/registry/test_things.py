"""Things, thing types and thing groups."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import AttachmentChanged, ThingChanged
from fleet_sim.errors import (
    InvalidRequest,
    LimitExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionConflict,
)
from tests.unit.emulator.registry.support import ACCOUNT, NOW, POLICY, REGION, Pki

# ---------------------------------------------------------------------------- things


def test_create_and_describe(registry, events):
    thing = registry.things.create("sensor-1", attributes={"model": "x1", "fw": "1.0"})
    assert thing.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-1"
    assert (thing.version, thing.thing_type_name) == (1, None)
    assert thing.attributes == {"model": "x1", "fw": "1.0"}
    assert len(thing.thing_id) == 36
    assert registry.things.describe("sensor-1") == thing
    assert registry.thing("sensor-1") == thing
    assert events == [ThingChanged("sensor-1")]


def test_records_are_read_only(registry):
    thing = registry.things.create("t", attributes={"a": "1"})
    with pytest.raises(TypeError):
        thing.attributes["a"] = "2"


def test_create_is_idempotent_for_the_same_configuration(registry, events):
    first = registry.things.create("t", attributes={"a": "1"})
    events.clear()
    assert registry.things.create("t", attributes={"a": "1"}) == first
    assert events == []
    with pytest.raises(ResourceAlreadyExists):
        registry.things.create("t", attributes={"a": "2"})


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "slash/no"])
def test_bad_thing_names(registry, name):
    with pytest.raises(InvalidRequest):
        registry.things.create(name)


@pytest.mark.parametrize(
    "attributes", [{"bad key": "v"}, {"k": "has space"}, {"k": "x" * 801}, {"k" * 129: "v"}]
)
def test_bad_attributes(registry, attributes):
    with pytest.raises(InvalidRequest):
        registry.things.create("t", attributes=attributes)


def test_three_attributes_without_a_type_fifty_with_one(registry):
    four = {f"a{n}": "v" for n in range(4)}
    with pytest.raises(InvalidRequest, match="at most 3"):
        registry.things.create("t", attributes=four)
    registry.thing_types.create("model", now=NOW)
    assert (
        len(registry.things.create("t", thing_type_name="model", attributes=four).attributes) == 4
    )
    with pytest.raises(InvalidRequest, match="at most 50"):
        registry.things.update("t", attributes={f"b{n}": "v" for n in range(47)}, merge=True)
    with pytest.raises(InvalidRequest, match="at most 3"):
        registry.things.update("t", remove_thing_type=True)


def test_type_must_exist_and_not_be_deprecated(registry):
    with pytest.raises(ResourceNotFound):
        registry.things.create("t", thing_type_name="missing")
    registry.thing_types.create("old", now=NOW)
    registry.thing_types.deprecate("old", now=NOW)
    with pytest.raises(InvalidRequest, match="deprecated"):
        registry.things.create("t", thing_type_name="old")


def test_update_merge_and_replace(registry, events):
    registry.things.create("t", attributes={"a": "1", "b": "2"})
    merged = registry.things.update("t", attributes={"b": "20", "c": "3"}, merge=True)
    assert merged.attributes == {"a": "1", "b": "20", "c": "3"}
    assert merged.version == 2
    removed = registry.things.update("t", attributes={"a": ""}, merge=True)
    assert removed.attributes == {"b": "20", "c": "3"}
    replaced = registry.things.update("t", attributes={"z": "9"})
    assert replaced.attributes == {"z": "9"}
    untouched = registry.things.update("t")
    assert (untouched.attributes, untouched.version) == ({"z": "9"}, 5)
    assert events[-1] == ThingChanged("t")


def test_update_type_and_remove_it(registry):
    registry.thing_types.create("model", now=NOW)
    registry.things.create("t")
    assert registry.things.update("t", thing_type_name="model").thing_type_name == "model"
    assert registry.things.update("t", attributes={"k": "v"}).thing_type_name == "model"
    assert registry.things.update("t", remove_thing_type=True).thing_type_name is None
    with pytest.raises(InvalidRequest):
        registry.things.update("t", thing_type_name="model", remove_thing_type=True)


def test_update_expected_version(registry):
    registry.things.create("t")
    registry.things.update("t", attributes={"a": "1"}, expected_version=1)
    with pytest.raises(VersionConflict) as info:
        registry.things.update("t", attributes={"a": "2"}, expected_version=1)
    assert (info.value.aws_code, info.value.http_status) == ("VersionConflictException", 409)
    assert registry.thing("t").attributes == {"a": "1"}


def test_update_missing_thing(registry):
    with pytest.raises(ResourceNotFound):
        registry.things.update("missing", attributes={"a": "1"})


def test_delete(registry, pki: Pki, events):
    registry.things.create("t")
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.attachments.attach_thing_principal("t", cert.arn)
    with pytest.raises(InvalidRequest, match="still attached to one or more principals"):
        registry.things.delete("t")
    registry.attachments.detach_thing_principal("t", cert.arn)
    with pytest.raises(VersionConflict):
        registry.things.delete("t", expected_version=7)
    events.clear()
    registry.things.delete("t", expected_version=1)
    assert registry.thing("t") is None
    assert events == [ThingChanged("t", deleted=True)]
    registry.things.delete("t")  # AWS: deleting a missing thing succeeds
    with pytest.raises(ResourceNotFound):
        registry.things.describe("t")


def test_list_filters_and_paginates(registry):
    registry.thing_types.create("model", now=NOW)
    for n in range(5):
        registry.things.create(
            f"t{n}",
            attributes={"color": "red" if n % 2 else "blue", "n": str(n)},
            thing_type_name="model" if n < 2 else None,
        )
    first = registry.things.list(page_size=3)
    second = registry.things.list(page_size=3, marker=first.next_marker)
    assert [t.name for t in first.items + second.items] == [f"t{n}" for n in range(5)]
    assert second.next_marker is None
    red = registry.things.list(attribute_name="color", attribute_value="red")
    assert [t.name for t in red.items] == ["t1", "t3"]
    assert len(registry.things.list(attribute_name="n").items) == 5
    assert registry.things.list(attribute_name="missing").items == ()
    assert [t.name for t in registry.things.list(thing_type_name="model").items] == ["t0", "t1"]


# ---------------------------------------------------------------------------- thing types


def test_thing_type_lifecycle(registry):
    created = registry.thing_types.create(
        "model", now=NOW, description="a model", searchable_attributes=["serial"]
    )
    assert created.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:thingtype/model"
    assert created.searchable_attributes == ("serial",)
    assert (
        registry.thing_types.create(
            "model", now=NOW + 1, description="a model", searchable_attributes=["serial"]
        )
        == created
    )
    with pytest.raises(ResourceAlreadyExists):
        registry.thing_types.create("model", now=NOW, description="other")
    assert [t.name for t in registry.thing_types.list().items] == ["model"]
    deprecated = registry.thing_types.deprecate("model", now=NOW + 10)
    assert (deprecated.deprecated, deprecated.deprecation_date) == (True, NOW + 10)
    undone = registry.thing_types.deprecate("model", now=NOW + 20, undo=True)
    assert undone.deprecated is False
    assert registry.thing_types.describe("model") == undone


def test_thing_type_delete_rules(registry):
    registry.thing_types.create("model", now=NOW)
    with pytest.raises(InvalidRequest, match="deprecated"):
        registry.thing_types.delete("model", now=NOW)
    registry.things.create("t", thing_type_name="model")
    registry.thing_types.deprecate("model", now=NOW)
    with pytest.raises(InvalidRequest, match="5 minutes"):
        registry.thing_types.delete("model", now=NOW + 299)
    with pytest.raises(InvalidRequest, match="still associated"):
        registry.thing_types.delete("model", now=NOW + 300)
    registry.things.update("t", remove_thing_type=True)
    registry.thing_types.delete("model", now=NOW + 300)
    assert registry.thing_types.get("model") is None
    with pytest.raises(ResourceNotFound):
        registry.thing_types.delete("model", now=NOW + 300)


# ---------------------------------------------------------------------------- thing groups


def test_thing_group_create_describe_list(registry):
    root = registry.thing_groups.create("fleet", now=NOW, description="all", attributes={"a": "1"})
    assert root.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
    child = registry.thing_groups.create("eu", now=NOW, parent_group_name="fleet")
    assert child.parent_group_name == "fleet"
    assert registry.thing_groups.create("eu", now=NOW, parent_group_name="fleet") == child
    with pytest.raises(ResourceAlreadyExists):
        registry.thing_groups.create("eu", now=NOW)
    with pytest.raises(ResourceNotFound):
        registry.thing_groups.create("x", now=NOW, parent_group_name="missing")
    assert [g.name for g in registry.thing_groups.list().items] == ["eu", "fleet"]
    assert [g.name for g in registry.thing_groups.list(parent_group_name="fleet").items] == ["eu"]
    assert registry.thing_groups.describe("fleet") == root


def test_thing_group_depth_limit(registry):
    registry.thing_groups.create("g0", now=NOW)
    for n in range(1, 7):
        registry.thing_groups.create(f"g{n}", now=NOW, parent_group_name=f"g{n - 1}")
    with pytest.raises(LimitExceeded):
        registry.thing_groups.create("g7", now=NOW, parent_group_name="g6")


def test_thing_group_update(registry):
    registry.thing_groups.create("g", now=NOW, attributes={"a": "1"})
    updated = registry.thing_groups.update("g", description="d", attributes={"b": "2"}, merge=True)
    assert (updated.description, updated.attributes, updated.version) == (
        "d",
        {"a": "1", "b": "2"},
        2,
    )
    with pytest.raises(VersionConflict):
        registry.thing_groups.update("g", attributes={}, expected_version=1)


def test_membership(registry, events):
    registry.thing_groups.create("g", now=NOW)
    registry.things.create("t")
    events.clear()
    registry.thing_groups.add_thing("g", "t")
    registry.thing_groups.add_thing("g", "t")
    assert registry.thing_groups.list_things("g").items == ("t",)
    assert [g.name for g in registry.thing_groups.groups_of_thing("t")] == ["g"]
    registry.thing_groups.remove_thing("g", "t")
    registry.thing_groups.remove_thing("g", "t")
    assert registry.thing_groups.list_things("g").items == ()
    assert events == [
        AttachmentChanged("thing_group", "g", "t", True),
        AttachmentChanged("thing_group", "g", "t", False),
    ]
    with pytest.raises(ResourceNotFound):
        registry.thing_groups.add_thing("g", "missing")
    with pytest.raises(ResourceNotFound):
        registry.thing_groups.add_thing("missing", "t")


def test_a_thing_is_in_at_most_ten_groups(registry):
    registry.things.create("t")
    for n in range(10):
        registry.thing_groups.create(f"g{n}", now=NOW)
        registry.thing_groups.add_thing(f"g{n}", "t")
    registry.thing_groups.create("g10", now=NOW)
    with pytest.raises(LimitExceeded):
        registry.thing_groups.add_thing("g10", "t")


def test_thing_group_delete(registry, events):
    group = registry.thing_groups.create("g", now=NOW)
    registry.thing_groups.create("child", now=NOW, parent_group_name="g")
    registry.things.create("t")
    registry.thing_groups.add_thing("g", "t")
    registry.policies.create("p", POLICY, now=NOW)
    registry.attachments.attach_policy("p", group.arn)
    with pytest.raises(InvalidRequest, match="child"):
        registry.thing_groups.delete("g")
    registry.thing_groups.delete("child")
    events.clear()
    registry.thing_groups.delete("g")
    assert registry.thing_groups.get("g") is None
    assert registry.thing_groups.groups_of_thing("t") == []
    assert registry.attachments.list_policy_targets("p").items == ()
    assert events == [
        AttachmentChanged("policy", "p", group.arn, False),
        AttachmentChanged("thing_group", "g", "t", False),
    ]
    registry.thing_groups.delete("g")  # missing: no error


def test_deleting_a_thing_leaves_its_groups(registry):
    registry.thing_groups.create("g", now=NOW)
    registry.things.create("t")
    registry.thing_groups.add_thing("g", "t")
    registry.things.delete("t")
    assert registry.thing_groups.list_things("g").items == ()
