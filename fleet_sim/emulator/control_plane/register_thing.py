"""RegisterThing — an INTERIM, minimal provisioning-template renderer.

This module is a stop-gap until the full provisioning-template engine (shared by JITP, fleet
provisioning and RegisterThing) exists; that engine replaces :func:`render` and the resource
steps below. What it understands now:

* ``Parameters`` with ``Default``; values come from the request's ``parameters`` map first.
* ``{"Ref": "<parameter>"}`` and ``{"Fn::Join": ["<delimiter>", [...]]}``; any other
  ``Fn::`` function, ``Conditions``, ``Mappings`` and ``OverrideSettings`` are refused
  (:class:`InvalidRequest`) rather than half-done.
* ``AWS::IoT::Certificate``: exactly one of ``CertificateSigningRequest`` (signed by the
  emulator's CA), ``CertificatePem`` (+ optional ``CACertificatePem``; registered, or reused
  when already registered) or ``CertificateId`` (must exist); ``Status`` ACTIVE (default) or
  INACTIVE, case-insensitive.
* ``AWS::IoT::Policy``: ``PolicyName`` (must exist) or ``PolicyDocument`` (text or object;
  created under the SHA-256 hex of the document text, or reused); attached to the
  certificate.
* ``AWS::IoT::Thing``: ``ThingName``, ``AttributePayload``, ``ThingTypeName``,
  ``ThingGroups`` (must exist). An existing thing is kept as it is (AWS's DO_NOTHING); it is
  still put into the groups and attached to the certificate.

Everything happens in one registry transaction: all resources or none. Failures while
creating or binding resources are ``ResourceRegistrationFailureException``, as AWS reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.control_plane.issuing import issue_from_csr
from fleet_sim.emulator.registry.models import Certificate, CertificateStatus
from fleet_sim.emulator.registry.parsing import parse_certificate
from fleet_sim.errors import EmulatorError, InvalidRequest, ResourceRegistrationFailure

RESOURCE_TYPES = ("AWS::IoT::Certificate", "AWS::IoT::Policy", "AWS::IoT::Thing")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template with every intrinsic resolved: properties by resource type."""

    certificate: Mapping[str, Any] | None = None
    policies: tuple[Mapping[str, Any], ...] = ()
    thing: Mapping[str, Any] | None = None


def render(template_body: str, parameters: Mapping[str, str]) -> Rendered:
    """Resolve ``template_body`` with ``parameters``.

    Raises:
        InvalidRequest: not a JSON object, an unknown resource type or function, a missing
            parameter, or more than one certificate or thing.
    """
    try:
        template = json.loads(template_body)
    except ValueError as error:
        raise InvalidRequest(f"templateBody is not valid JSON: {error}") from None
    if not isinstance(template, dict):
        raise InvalidRequest("templateBody must be a JSON object")
    for section in ("Conditions", "Mappings"):
        if section in template:
            raise InvalidRequest(f"{section} are not supported by the interim template renderer")
    declared = template.get("Parameters") or {}
    values = _parameter_values(declared, parameters)
    resources = template.get("Resources") or {}
    if not isinstance(resources, dict):
        raise InvalidRequest("Resources must be an object")
    found: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in RESOURCE_TYPES}
    for logical, resource in resources.items():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if kind not in found:
            raise InvalidRequest(f"resource {logical!r} has an unsupported Type {kind!r}")
        if "OverrideSettings" in resource:
            raise InvalidRequest("OverrideSettings are not supported by the interim renderer")
        properties = _resolve(resource.get("Properties") or {}, values)
        if not isinstance(properties, dict):
            raise InvalidRequest(f"resource {logical!r}: Properties must be an object")
        found[kind].append(properties)
    certificates, things = found["AWS::IoT::Certificate"], found["AWS::IoT::Thing"]
    if len(certificates) > 1 or len(things) > 1:
        raise InvalidRequest("a template may hold at most one certificate and one thing")
    return Rendered(
        certificate=certificates[0] if certificates else None,
        policies=tuple(found["AWS::IoT::Policy"]),
        thing=things[0] if things else None,
    )


def _parameter_values(declared: Any, given: Mapping[str, str]) -> dict[str, str | None]:
    if not isinstance(declared, dict):
        raise InvalidRequest("Parameters must be an object")
    values: dict[str, str | None] = {}
    for name, spec in declared.items():
        default = spec.get("Default") if isinstance(spec, dict) else None
        values[name] = given.get(name, default)
    return values


def _resolve(value: Any, values: Mapping[str, str | None]) -> Any:
    if isinstance(value, list):
        return [_resolve(item, values) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            if argument not in values:
                raise InvalidRequest(f"Ref to undeclared parameter {argument!r}")
            resolved = values[argument]
            if resolved is None:
                raise InvalidRequest(f"parameter {argument!r} has no value and no Default")
            return resolved
        if key == "Fn::Join":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise InvalidRequest("Fn::Join takes [delimiter, [values]]")
            delimiter, parts = argument[0], _resolve(argument[1], values)
            return str(delimiter).join(str(part) for part in parts)
        if key.startswith("Fn::"):
            raise InvalidRequest(f"{key} is not supported by the interim template renderer")
    return {key: _resolve(item, values) for key, item in value.items()}


# ---------------------------------------------------------------------- resources


def _status(properties: Mapping[str, Any]) -> CertificateStatus:
    text = str(properties.get("Status", "ACTIVE")).upper()
    if text not in ("ACTIVE", "INACTIVE"):
        raise InvalidRequest(f"certificate Status must be ACTIVE or INACTIVE, got {text!r}")
    return CertificateStatus(text)


def _certificate(ctx: HandlerContext, properties: Mapping[str, Any]) -> Certificate:
    methods = [
        key
        for key in ("CertificateSigningRequest", "CertificatePem", "CertificateId")
        if key in properties
    ]
    if len(methods) != 1:
        raise InvalidRequest(
            "a certificate resource needs exactly one of CertificateSigningRequest, "
            "CertificatePem or CertificateId"
        )
    status = _status(properties)
    certificates = ctx.registry.certificates
    if methods == ["CertificateSigningRequest"]:
        return issue_from_csr(ctx, properties["CertificateSigningRequest"], status=status)
    if methods == ["CertificateId"]:
        cert = certificates.describe(properties["CertificateId"])
    else:
        pem = properties["CertificatePem"]
        existing = certificates.get(parse_certificate(pem).certificate_id)
        if existing is not None:
            return existing
        return certificates.register(
            pem, now=ctx.now(), ca_certificate_pem=properties.get("CACertificatePem"), status=status
        )
    if "Status" in properties and cert.status != status:
        cert = certificates.update_status(cert.certificate_id, status, now=ctx.now())
    return cert


def _policy(ctx: HandlerContext, properties: Mapping[str, Any]) -> str:
    policies = ctx.registry.policies
    if "PolicyName" in properties:
        return policies.describe(properties["PolicyName"]).name
    document = properties.get("PolicyDocument")
    if document is None:
        raise InvalidRequest("a policy resource needs PolicyName or PolicyDocument")
    text = document if isinstance(document, str) else json.dumps(document)
    name = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if policies.get(name) is None:
        policies.create(name, text, now=ctx.now())
    return name


def _thing(ctx: HandlerContext, properties: Mapping[str, Any]) -> str:
    name = properties.get("ThingName")
    if not isinstance(name, str):
        raise InvalidRequest("a thing resource needs a ThingName")
    if properties.get("BillingGroup") is not None:
        raise ResourceRegistrationFailure("billing groups are not emulated")
    registry = ctx.registry
    if registry.thing(name) is None:
        attributes = properties.get("AttributePayload") or {}
        registry.things.create(
            name,
            thing_type_name=properties.get("ThingTypeName"),
            attributes={str(k): str(v) for k, v in attributes.items()},
        )
    for group in properties.get("ThingGroups") or []:
        registry.thing_groups.add_thing(group, name)
    return name


def register_thing(ctx: HandlerContext, params: Params) -> Result:
    """RegisterThing: create the template's certificate, policies and thing, and bind them."""
    rendered = render(params["templateBody"], params.get("parameters") or {})
    registry = ctx.registry
    arns: dict[str, str] = {}
    cert: Certificate | None = None
    try:
        with registry.transaction():
            if rendered.certificate is not None:
                cert = _certificate(ctx, rendered.certificate)
                arns["certificate"] = cert.arn
            for properties in rendered.policies:
                name = _policy(ctx, properties)
                arns["policy"] = ctx.arn(f"policy/{name}")
                if cert is not None:
                    registry.attachments.attach_policy(name, cert.arn)
            if rendered.thing is not None:
                thing = _thing(ctx, rendered.thing)
                arns["thing"] = ctx.arn(f"thing/{thing}")
                if cert is not None:
                    registry.attachments.attach_thing_principal(thing, cert.arn)
    except (InvalidRequest, ResourceRegistrationFailure):
        raise
    except EmulatorError as error:
        raise ResourceRegistrationFailure(error.message) from None
    return {"certificatePem": cert.pem if cert is not None else None, "resourceArns": arns}


HANDLERS: Mapping[str, Handler] = MappingProxyType({"RegisterThing": register_thing})
