"""The table of implemented control-plane operations: operation name → handler."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane import (
    cas,
    certificates,
    groups,
    misc,
    policies,
    principals,
    register_thing,
    templates,
    things,
)
from fleet_sim.emulator.control_plane.context import Handler

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        **cas.HANDLERS,
        **certificates.HANDLERS,
        **things.HANDLERS,
        **groups.HANDLERS,
        **policies.HANDLERS,
        **principals.HANDLERS,
        **templates.HANDLERS,
        **register_thing.HANDLERS,
        **misc.HANDLERS,
    }
)
"""Every operation the emulator answers, by AWS operation name."""
