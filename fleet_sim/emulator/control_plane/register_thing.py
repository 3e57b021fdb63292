"""RegisterThing: provision one thing from a template body and a parameter map.

The template is parsed and rendered by the provisioning-template engine
(:mod:`fleet_sim.provisioning`, shared with JITP and fleet provisioning) and the plan applied
to the registry in one transaction (:func:`fleet_sim.emulator.provisioning.apply_plan`): all
resources or none. A certificate from a ``CertificateSigningRequest`` is signed by the
emulator's device CA.

Errors, as AWS names them: a malformed template, a missing parameter or a failing intrinsic
is ``InvalidRequestException``; ``OverrideSettings`` FAIL meeting a differing resource is
``ResourceConflictsException`` (the Developer Guide's word); anything the registry refuses
while creating or binding resources (a missing thing group, policy or certificate, a bad
policy document …) is ``ResourceRegistrationFailureException``.

``resourceArns`` is keyed by the resources' logical names in the template, as AWS's example
response shows (``"thing"``, ``"certificate"``, ``"PolicyLogicalName"`` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.control_plane.issuing import csr_issuer
from fleet_sim.emulator.provisioning.apply import apply_plan
from fleet_sim.errors import (
    EmulatorError,
    InvalidRequest,
    ResourceConflicts,
    ResourceRegistrationFailure,
)
from fleet_sim.provisioning.render import render_template
from fleet_sim.provisioning.template import parse_template


def register_thing(ctx: HandlerContext, params: Params) -> Result:
    """RegisterThing: create the template's certificate, policies and thing, and bind them."""
    template = parse_template(params["templateBody"])
    plan = render_template(template, params.get("parameters") or {})
    try:
        provisioned = apply_plan(
            ctx.registry,
            plan,
            now=ctx.now(),
            issuer=csr_issuer(ctx.device_ca, ctx.now_utc),
        )
    except (InvalidRequest, ResourceRegistrationFailure, ResourceConflicts):
        raise
    except EmulatorError as error:
        raise ResourceRegistrationFailure(error.message) from None
    return {
        "certificatePem": provisioned.certificate_pem,
        "resourceArns": dict(provisioned.resource_arns),
    }


HANDLERS: Mapping[str, Handler] = MappingProxyType({"RegisterThing": register_thing})
