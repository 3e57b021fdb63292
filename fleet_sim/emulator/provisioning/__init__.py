"""The emulator's provisioning services' shared core: applying a rendered provisioning
template (:mod:`fleet_sim.provisioning`) to the registry, for RegisterThing, JITP and fleet
provisioning alike (:mod:`.apply`)."""

from __future__ import annotations

from fleet_sim.emulator.provisioning.apply import Issuer, ProvisionedResources, apply_plan

__all__ = ["Issuer", "ProvisionedResources", "apply_plan"]
