"""Control-plane handlers for things.

CreateThing, DescribeThing, UpdateThing, ListThings, DeleteThing. State rules (idempotent
create, attribute limits, ``expectedVersion``, principals blocking deletion) are the
registry's (:mod:`fleet_sim.emulator.registry.things`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.registry.models import Thing
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE
from fleet_sim.errors import InvalidRequest, ResourceNotFound


def _no_billing_group(params: Params) -> None:
    name = params.get("billingGroupName")
    if name is not None:
        # The emulator has no billing groups, so none by that name exists.
        raise ResourceNotFound(f"billing group {name!r} does not exist")


def create_thing(ctx: HandlerContext, params: Params) -> Result:
    """CreateThing (idempotent for the same type and attributes)."""
    _no_billing_group(params)
    payload = params.get("attributePayload") or {}
    thing = ctx.registry.things.create(
        params["thingName"],
        thing_type_name=params.get("thingTypeName"),
        attributes=payload.get("attributes"),
    )
    return {"thingName": thing.name, "thingArn": thing.arn, "thingId": thing.thing_id}


def describe_thing(ctx: HandlerContext, params: Params) -> Result:
    """DescribeThing (``defaultClientId`` is the thing name, as AWS reports it)."""
    thing = ctx.registry.things.describe(params["thingName"])
    return {
        "defaultClientId": thing.name,
        "thingName": thing.name,
        "thingId": thing.thing_id,
        "thingArn": thing.arn,
        "thingTypeName": thing.thing_type_name,
        "attributes": dict(thing.attributes),
        "version": thing.version,
    }


def update_thing(ctx: HandlerContext, params: Params) -> Result:
    """UpdateThing (``attributePayload.merge``, ``removeThingType``, ``expectedVersion``)."""
    payload = params.get("attributePayload")
    ctx.registry.things.update(
        params["thingName"],
        thing_type_name=params.get("thingTypeName"),
        remove_thing_type=bool(params.get("removeThingType")),
        attributes=None if payload is None else payload.get("attributes", {}),
        merge=bool(payload and payload.get("merge")),
        expected_version=params.get("expectedVersion"),
    )
    return {}


def _listed(thing: Thing) -> Result:
    return {
        "thingName": thing.name,
        "thingTypeName": thing.thing_type_name,
        "thingArn": thing.arn,
        "attributes": dict(thing.attributes),
        "version": thing.version,
    }


def list_things(ctx: HandlerContext, params: Params) -> Result:
    """ListThings (``nextToken``/``maxResults``; attribute and type filters)."""
    if params.get("usePrefixAttributeValue"):
        raise InvalidRequest("usePrefixAttributeValue is not supported by the emulator")
    page = ctx.registry.things.list(
        marker=params.get("nextToken"),
        page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
        attribute_name=params.get("attributeName"),
        attribute_value=params.get("attributeValue"),
        thing_type_name=params.get("thingTypeName"),
    )
    return {"things": [_listed(thing) for thing in page.items], "nextToken": page.next_marker}


def delete_thing(ctx: HandlerContext, params: Params) -> Result:
    """DeleteThing (a missing thing is not an error)."""
    ctx.registry.things.delete(params["thingName"], expected_version=params.get("expectedVersion"))
    return {}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "CreateThing": create_thing,
        "DescribeThing": describe_thing,
        "UpdateThing": update_thing,
        "ListThings": list_things,
        "DeleteThing": delete_thing,
    }
)
