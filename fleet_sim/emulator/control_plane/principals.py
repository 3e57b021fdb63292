"""Control-plane handlers for thing principals (certificates attached to things).

AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals, ListPrincipalThings. The
principal travels in the ``x-amzn-principal`` header; it must be one of this account's
certificate ARNs. ``thingPrincipalType`` (EXCLUSIVE_THING) is accepted but not enforced.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE


def attach_thing_principal(ctx: HandlerContext, params: Params) -> Result:
    """AttachThingPrincipal (idempotent)."""
    ctx.registry.attachments.attach_thing_principal(params["thingName"], params["principal"])
    return {}


def detach_thing_principal(ctx: HandlerContext, params: Params) -> Result:
    """DetachThingPrincipal (not attached is a no-op)."""
    ctx.registry.attachments.detach_thing_principal(params["thingName"], params["principal"])
    return {}


def list_thing_principals(ctx: HandlerContext, params: Params) -> Result:
    """ListThingPrincipals (``nextToken``/``maxResults``)."""
    page = ctx.registry.attachments.list_thing_principals(
        params["thingName"],
        marker=params.get("nextToken"),
        page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
    )
    return {"principals": list(page.items), "nextToken": page.next_marker}


def list_principal_things(ctx: HandlerContext, params: Params) -> Result:
    """ListPrincipalThings (``nextToken``/``maxResults``)."""
    page = ctx.registry.attachments.list_principal_things(
        params["principal"],
        marker=params.get("nextToken"),
        page_size=params.get("maxResults", DEFAULT_PAGE_SIZE),
    )
    return {"things": list(page.items), "nextToken": page.next_marker}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "AttachThingPrincipal": attach_thing_principal,
        "DetachThingPrincipal": detach_thing_principal,
        "ListThingPrincipals": list_thing_principals,
        "ListPrincipalThings": list_principal_things,
    }
)
