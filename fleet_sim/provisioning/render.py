"""Rendering a parsed template for one device: :func:`render_template`.

Parameter values come from the caller (the RegisterThing ``parameters``, the JITP
certificate fields of :func:`fleet_sim.provisioning.jitp.jitp_parameters`, the fleet
provisioning request plus ``AWS::IoT::Certificate::Id`` …); a declared parameter the caller
does not give takes its ``Default``, and one with neither fails the whole rendering with
:class:`MissingTemplateParameter` — whether or not a resource uses it, as AWS documents for
JITP. Values the template does not declare are ignored unless it refers to them (the
``AWS::IoT::Certificate::*`` names the service supplies).

Rendering is cheap: the template was compiled once by
:func:`fleet_sim.provisioning.template.parse_template`; this evaluates its compiled
expressions and packs the result into a :class:`ProvisioningPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet_sim.errors import MissingTemplateParameter, TemplateError
from fleet_sim.provisioning.plan import (
    CertificateOverrides,
    CertificatePlan,
    PolicyPlan,
    ProvisioningPlan,
    ThingOverrides,
    ThingPlan,
)
from fleet_sim.provisioning.properties import policy_hash_name
from fleet_sim.provisioning.resources import CERTIFICATE, THING
from fleet_sim.provisioning.template import ProvisioningTemplate, Resource
from fleet_sim.provisioning.values import NO_VALUE, Values, Where, type_name


def resolve_parameters(
    template: ProvisioningTemplate, parameters: Mapping[str, str]
) -> Mapping[str, str]:
    """The values to render with: ``parameters`` plus the ``Default`` of every declared
    parameter they lack.

    Raises:
        TemplateError: a value is not a string.
        MissingTemplateParameter: a declared parameter has no value and no Default.
    """
    for key, value in parameters.items():
        if not isinstance(value, str):
            raise TemplateError(
                f"must be a string, got a {type_name(value)}",
                template_name=template.name,
                path=f"Parameters.{key}",
            )
    values: dict[str, str] | None = None
    for declared in template.parameters.values():
        if declared.name in parameters:
            continue
        if declared.default is None:
            raise MissingTemplateParameter(declared.name, template_name=template.name)
        if values is None:
            values = dict(parameters)
        values[declared.name] = declared.default
    return parameters if values is None else values


def render_template(
    template: ProvisioningTemplate, parameters: Mapping[str, str]
) -> ProvisioningPlan:
    """Render ``template`` for one device.

    Args:
        template: a parsed template (parse once, render for many devices).
        parameters: the device's parameter values by name.

    Returns:
        The plan: the thing, certificate, policies and device configuration, all resolved.

    Raises:
        MissingTemplateParameter: a declared parameter has no value and no Default, or a
            supplied one the template uses (``AWS::IoT::Certificate::Id``) is absent.
        TemplateError: a function fails on these values (``Fn::Select`` out of range, a
            missing ``Fn::FindInMap`` key …) or a property gets a value of the wrong kind.
    """
    values = resolve_parameters(template, parameters)
    thing: ThingPlan | None = None
    certificate: CertificatePlan | None = None
    policies: list[PolicyPlan] = []
    for resource in template.resources:
        if resource.condition is not None and not resource.condition(values):
            continue
        rendered = _properties(resource, values)
        if resource.type == THING:
            thing = _thing(resource, rendered)
        elif resource.type == CERTIFICATE:
            certificate = _certificate(resource, rendered)
        else:
            policies.append(_policy(resource, rendered))
    configuration = {}
    for entry in template.device_configuration:
        value = entry.render(values)
        if value is not NO_VALUE:
            configuration[entry.name] = value
    return ProvisioningPlan(
        thing=thing,
        certificate=certificate,
        policies=tuple(policies),
        device_configuration=MappingProxyType(configuration),
    )


def _properties(resource: Resource, values: Values) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for bound in resource.properties:
        value = bound.render(values)
        if value is not NO_VALUE:
            rendered[bound.name] = value
    return rendered


def _required(resource: Resource, rendered: Mapping[str, Any], name: str) -> Any:
    if name not in rendered:
        at = resource.where
        where = Where(at.template_name, f"{at.path}.Properties.{name}", at.resource, name)
        raise where.error("required, but AWS::NoValue removed it")
    return rendered[name]


def _thing(resource: Resource, rendered: Mapping[str, Any]) -> ThingPlan:
    overrides = resource.overrides
    assert isinstance(overrides, ThingOverrides)
    return ThingPlan(
        logical_name=resource.logical_name,
        name=_required(resource, rendered, "ThingName"),
        attributes=rendered.get("AttributePayload"),
        type_name=rendered.get("ThingTypeName"),
        groups=rendered.get("ThingGroups"),
        billing_group=rendered.get("BillingGroup"),
        overrides=overrides,
    )


def _certificate(resource: Resource, rendered: Mapping[str, Any]) -> CertificatePlan:
    overrides = resource.overrides
    assert isinstance(overrides, CertificateOverrides)
    plan = CertificatePlan(
        logical_name=resource.logical_name,
        certificate_id=rendered.get("CertificateId"),
        certificate_pem=rendered.get("CertificatePem"),
        csr=rendered.get("CertificateSigningRequest"),
        ca_certificate_pem=rendered.get("CACertificatePem"),
        status=rendered.get("Status", "ACTIVE"),
        overrides=overrides,
    )
    if plan.certificate_id is None and plan.certificate_pem is None and plan.csr is None:
        _required(resource, rendered, "CertificateId")
    return plan


def _policy(resource: Resource, rendered: Mapping[str, Any]) -> PolicyPlan:
    document = rendered.get("PolicyDocument")
    if document is not None:
        return PolicyPlan(resource.logical_name, policy_hash_name(document), document)
    return PolicyPlan(resource.logical_name, _required(resource, rendered, "PolicyName"))
