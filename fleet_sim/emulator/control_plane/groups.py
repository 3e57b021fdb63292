"""Control-plane handlers for thing types and static thing groups.

CreateThingType, DescribeThingType, ListThingTypes, DeprecateThingType, DeleteThingType,
CreateThingGroup, DescribeThingGroup, ListThingGroups, DeleteThingGroup,
AddThingToThingGroup, RemoveThingFromThingGroup, ListThingsInThingGroup,
ListThingGroupsForThing. Rules are the registry's (``thing_types``, ``thing_groups``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.control_plane.paging import name_from, page_of
from fleet_sim.emulator.registry.models import ThingType
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE
from fleet_sim.errors import InvalidRequest

# ---------------------------------------------------------------------- thing types


def create_thing_type(ctx: HandlerContext, params: Params) -> Result:
    """CreateThingType."""
    properties = params.get("thingTypeProperties") or {}
    found = ctx.registry.thing_types.create(
        params["thingTypeName"],
        now=ctx.now(),
        description=properties.get("thingTypeDescription"),
        searchable_attributes=properties.get("searchableAttributes", ()),
    )
    return {
        "thingTypeName": found.name,
        "thingTypeArn": found.arn,
        "thingTypeId": found.thing_type_id,
    }


def _type_properties(found: ThingType) -> Result:
    return {
        "thingTypeProperties": {
            "thingTypeDescription": found.description,
            "searchableAttributes": list(found.searchable_attributes) or None,
        },
        "thingTypeMetadata": {
            "deprecated": found.deprecated,
            "deprecationDate": found.deprecation_date,
            "creationDate": found.created,
        },
    }


def describe_thing_type(ctx: HandlerContext, params: Params) -> Result:
    """DescribeThingType."""
    found = ctx.registry.thing_types.describe(params["thingTypeName"])
    return {
        "thingTypeName": found.name,
        "thingTypeId": found.thing_type_id,
        "thingTypeArn": found.arn,
        **_type_properties(found),
    }


def list_thing_types(ctx: HandlerContext, params: Params) -> Result:
    """ListThingTypes (optionally the one called ``thingTypeName``)."""
    name = params.get("thingTypeName")
    if name is not None:
        found = ctx.registry.thing_types.get(name)
        types, token = ([found] if found is not None else []), None
    else:
        page = ctx.registry.thing_types.list(
            marker=params.get("nextToken"),
            page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
        )
        types, token = list(page.items), page.next_marker
    return {
        "thingTypes": [
            {"thingTypeName": t.name, "thingTypeArn": t.arn, **_type_properties(t)} for t in types
        ],
        "nextToken": token,
    }


def deprecate_thing_type(ctx: HandlerContext, params: Params) -> Result:
    """DeprecateThingType (``undoDeprecate`` reverses it)."""
    ctx.registry.thing_types.deprecate(
        params["thingTypeName"], now=ctx.now(), undo=bool(params.get("undoDeprecate"))
    )
    return {}


def delete_thing_type(ctx: HandlerContext, params: Params) -> Result:
    """DeleteThingType (deprecated for 5 minutes and unused)."""
    ctx.registry.thing_types.delete(params["thingTypeName"], now=ctx.now())
    return {}


# ---------------------------------------------------------------------- thing groups


def create_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """CreateThingGroup."""
    properties = params.get("thingGroupProperties") or {}
    group = ctx.registry.thing_groups.create(
        params["thingGroupName"],
        now=ctx.now(),
        parent_group_name=params.get("parentGroupName"),
        description=properties.get("thingGroupDescription"),
        attributes=(properties.get("attributePayload") or {}).get("attributes"),
    )
    return {
        "thingGroupName": group.name,
        "thingGroupArn": group.arn,
        "thingGroupId": group.thing_group_id,
    }


def describe_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """DescribeThingGroup."""
    groups = ctx.registry.thing_groups
    group = groups.describe(params["thingGroupName"])
    ancestry: list[Result] = []
    parent = group.parent_group_name
    while parent is not None:
        found = groups.describe(parent)
        ancestry.insert(0, {"groupName": found.name, "groupArn": found.arn})
        parent = found.parent_group_name
    return {
        "thingGroupName": group.name,
        "thingGroupId": group.thing_group_id,
        "thingGroupArn": group.arn,
        "version": group.version,
        "thingGroupProperties": {
            "thingGroupDescription": group.description,
            "attributePayload": {"attributes": dict(group.attributes)},
        },
        "thingGroupMetadata": {
            "parentGroupName": group.parent_group_name,
            "rootToParentThingGroups": ancestry,
            "creationDate": group.created,
        },
    }


def list_thing_groups(ctx: HandlerContext, params: Params) -> Result:
    """ListThingGroups (``parentGroup`` filter; no name-prefix filter or recursion)."""
    if params.get("namePrefixFilter") is not None:
        raise InvalidRequest("namePrefixFilter is not supported by the emulator")
    page = ctx.registry.thing_groups.list(
        parent_group_name=params.get("parentGroup"),
        marker=params.get("nextToken"),
        page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
    )
    return {
        "thingGroups": [{"groupName": g.name, "groupArn": g.arn} for g in page.items],
        "nextToken": page.next_marker,
    }


def delete_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """DeleteThingGroup (a missing group is not an error)."""
    ctx.registry.thing_groups.delete(
        params["thingGroupName"], expected_version=params.get("expectedVersion")
    )
    return {}


def _membership(params: Params) -> tuple[str, str]:
    group = name_from(
        params.get("thingGroupName"), params.get("thingGroupArn"), "thinggroup", "thing group"
    )
    thing = name_from(params.get("thingName"), params.get("thingArn"), "thing", "thing")
    return group, thing


def add_thing_to_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """AddThingToThingGroup (by names or ARNs)."""
    ctx.registry.thing_groups.add_thing(*_membership(params))
    return {}


def remove_thing_from_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """RemoveThingFromThingGroup (by names or ARNs)."""
    ctx.registry.thing_groups.remove_thing(*_membership(params))
    return {}


def list_things_in_thing_group(ctx: HandlerContext, params: Params) -> Result:
    """ListThingsInThingGroup (direct members only)."""
    if params.get("recursive"):
        raise InvalidRequest("recursive listing is not supported by the emulator")
    page = ctx.registry.thing_groups.list_things(
        params["thingGroupName"],
        marker=params.get("nextToken"),
        page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
    )
    return {"things": list(page.items), "nextToken": page.next_marker}


def list_thing_groups_for_thing(ctx: HandlerContext, params: Params) -> Result:
    """ListThingGroupsForThing."""
    groups = ctx.registry.thing_groups.groups_of_thing(params["thingName"])
    items, token = page_of(groups, params.get("nextToken"), params.get("maxResults"))
    return {
        "thingGroups": [{"groupName": g.name, "groupArn": g.arn} for g in items],
        "nextToken": token,
    }


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "CreateThingType": create_thing_type,
        "DescribeThingType": describe_thing_type,
        "ListThingTypes": list_thing_types,
        "DeprecateThingType": deprecate_thing_type,
        "DeleteThingType": delete_thing_type,
        "CreateThingGroup": create_thing_group,
        "DescribeThingGroup": describe_thing_group,
        "ListThingGroups": list_thing_groups,
        "DeleteThingGroup": delete_thing_group,
        "AddThingToThingGroup": add_thing_to_thing_group,
        "RemoveThingFromThingGroup": remove_thing_from_thing_group,
        "ListThingsInThingGroup": list_things_in_thing_group,
        "ListThingGroupsForThing": list_thing_groups_for_thing,
    }
)
