"""Parsing and validating a provisioning template: :func:`parse_template`.

What is checked when a template is parsed (before any device is rendered with it):

* The body is a JSON object with ``Resources`` (required), ``Parameters``, ``Mappings``,
  ``DeviceConfiguration`` and ``Conditions`` (extension); ``Description`` and
  ``AWSTemplateFormatVersion`` are allowed and ignored; any other section is an error (a
  typo like ``Resource`` would otherwise silently do nothing).
* ``Parameters``: each ``{"Type": "String", "Default": "…"}`` (``Description`` allowed);
  ``String`` is the only type AWS documents.
* ``Mappings``: map → key → key → string or list of strings; no parameters or functions.
* ``Resources``: at most one ``AWS::IoT::Thing`` and one ``AWS::IoT::Certificate``, any number
  of ``AWS::IoT::Policy``; only the documented properties (``PackageVersions`` is refused:
  not emulated); a thing needs ``ThingName``; a certificate exactly one of
  ``CertificateSigningRequest``, ``CertificateId``, ``CertificatePem`` (``CACertificatePem``
  only beside ``CertificatePem``); a policy exactly one of ``PolicyName``, ``PolicyDocument``.
* ``OverrideSettings``: things ``AttributePayload``/``ThingTypeName``/``ThingGroups`` (or the
  prose spellings ``ATTRIBUTE_PAYLOAD``/``THING_TYPE_NAME``/``THING_GROUPS``), certificates
  ``Status``; values ``DO_NOTHING``, ``REPLACE``, ``FAIL``, and ``MERGE`` (thing
  ``AttributePayload`` and ``ThingGroups`` only); none on policies.
* Every ``Ref``/``${…}`` names a declared parameter, or one of the eight
  ``AWS::IoT::Certificate::*`` names the service supplies (fleet templates use
  ``AWS::IoT::Certificate::Id`` without declaring it).
* Constant properties are checked as rendering would (a literal Status, a literal policy
  document's grammar, an ``Fn::Select`` over literals …).

Errors are :class:`TemplateError` naming the template, the resource and the property.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fleet_sim.provisioning import properties as props
from fleet_sim.provisioning.conditions import compile_conditions
from fleet_sim.provisioning.intrinsics import Scope, compile_value, function_name
from fleet_sim.provisioning.jitp import JITP_PARAMETERS
from fleet_sim.provisioning.plan import (
    CertificateMethod,
    CertificateOverrides,
    ThingOverrides,
)
from fleet_sim.provisioning.resources import (
    CERTIFICATE,
    POLICY,
    RESOURCE_TYPES,
    THING,
    check_resource_properties,
    parse_overrides,
)
from fleet_sim.provisioning.values import (
    NO_VALUE,
    Condition,
    Constant,
    Expr,
    Values,
    Where,
    type_name,
)

_SECTIONS = ("Parameters", "Mappings", "Conditions", "Resources", "DeviceConfiguration")
_IGNORED_SECTIONS = ("Description", "AWSTemplateFormatVersion")
_PARAMETER_KEYS = ("Type", "Default", "Description")
_RESOURCE_KEYS = ("Type", "Properties", "OverrideSettings", "Condition")


@dataclass(frozen=True, slots=True)
class Parameter:
    """A declared parameter.

    Attributes:
        name: its name.
        type: ``String``.
        default: its ``Default``, or None.
    """

    name: str
    type: str = "String"
    default: str | None = None


@dataclass(frozen=True, slots=True)
class BoundProperty:
    """A compiled property (or ``DeviceConfiguration`` entry) with its check and location."""

    name: str
    expr: Expr
    coerce: props.Coerce
    where: Where

    def render(self, values: Values) -> Any:
        """The checked value, or :data:`NO_VALUE` when ``AWS::NoValue`` dropped it."""
        value = self.expr(values)
        if value is NO_VALUE:
            return NO_VALUE
        return self.coerce(value, self.where)


@dataclass(frozen=True, slots=True)
class Resource:
    """One entry of ``Resources``, compiled.

    Attributes:
        logical_name: its key in ``Resources``.
        type: ``AWS::IoT::Thing``, ``AWS::IoT::Certificate`` or ``AWS::IoT::Policy``.
        properties: its compiled properties, in template order.
        overrides: its ``OverrideSettings`` (None for policies).
        condition_name: its ``Condition`` (extension), or None.
        condition: the compiled condition, or None.
        where: its location (for errors found while rendering).
    """

    logical_name: str
    type: str
    properties: tuple[BoundProperty, ...]
    overrides: ThingOverrides | CertificateOverrides | None = None
    condition_name: str | None = None
    condition: Condition | None = None
    where: Where = field(default_factory=lambda: Where(None))

    def property_names(self) -> frozenset[str]:
        """The properties the template gives."""
        return frozenset(p.name for p in self.properties)


@dataclass(frozen=True, slots=True)
class ProvisioningTemplate:
    """A parsed, validated and compiled provisioning template; render it for each device
    with :func:`fleet_sim.provisioning.render.render_template`.

    Attributes:
        name: the template's name (for messages), or None.
        parameters: the declared parameters by name, in template order.
        resources: the resources, in template order.
        device_configuration: the compiled ``DeviceConfiguration`` entries.
        conditions: the compiled ``Conditions`` (extension) by name.
        mappings: ``Mappings`` (read-only values as parsed).
        implicit_parameters: undeclared names the template refers to that the service
            supplies (e.g. ``AWS::IoT::Certificate::Id``).
    """

    name: str | None
    parameters: Mapping[str, Parameter]
    resources: tuple[Resource, ...]
    device_configuration: tuple[BoundProperty, ...] = ()
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    implicit_parameters: frozenset[str] = frozenset()

    @property
    def certificate_method(self) -> CertificateMethod | None:
        """How the certificate resource names its certificate, or None without one (JITP and
        fleet provisioning require ``CertificateId``)."""
        for resource in self.resources:
            if resource.type == CERTIFICATE:
                for method in CertificateMethod:
                    if method.value in resource.property_names():
                        return method
        return None

    def resource(self, kind: str) -> tuple[Resource, ...]:
        """The resources of type ``kind`` (e.g. ``"AWS::IoT::Policy"``)."""
        return tuple(r for r in self.resources if r.type == kind)


def parse_template(
    body: str | bytes | Mapping[str, Any], *, name: str | None = None
) -> ProvisioningTemplate:
    """Parse, validate and compile a provisioning template.

    Args:
        body: the template JSON text, or the already-decoded object.
        name: the template's name, used in error messages.

    Raises:
        TemplateError: anything wrong with the template, naming the resource and property.
    """
    top = Where(name)
    document = _load(body, top)
    for section in document:
        if section not in _SECTIONS and section not in _IGNORED_SECTIONS:
            raise top.key(str(section)).error(
                "unknown section; expected " + ", ".join(_SECTIONS + _IGNORED_SECTIONS)
            )
    parameters = _parameters(document.get("Parameters", {}), top.key("Parameters"))
    mappings = _mappings(document.get("Mappings", {}), top.key("Mappings"))
    implicit = frozenset(JITP_PARAMETERS) - parameters.keys()
    scope = Scope(name, frozenset(parameters), implicit, mappings)
    conditions: Mapping[str, Condition] = {}
    if "Conditions" in document:
        conditions = compile_conditions(document["Conditions"], scope)
        scope = Scope(name, scope.parameters, implicit, mappings, conditions)
    if "Resources" not in document:
        raise top.key("Resources").error("required")
    resources = _resources(document["Resources"], scope, top.key("Resources"))
    configuration = _device_configuration(
        document.get("DeviceConfiguration", {}), scope, top.key("DeviceConfiguration")
    )
    return ProvisioningTemplate(
        name=name,
        parameters=MappingProxyType(parameters),
        resources=resources,
        device_configuration=configuration,
        conditions=MappingProxyType(dict(conditions)),
        mappings=MappingProxyType(mappings),
        implicit_parameters=implicit,
    )


def _load(body: str | bytes | Mapping[str, Any], where: Where) -> Mapping[str, Any]:
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError as error:
            raise where.error(f"not valid JSON: {error}") from None
    if not isinstance(body, Mapping):
        raise where.error(f"must be a JSON object, got a {type_name(body)}")
    return body


def _object(raw: Any, where: Where) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise where.error(f"must be an object, got a {type_name(raw)}")
    return raw


def _parameters(raw: Any, where: Where) -> dict[str, Parameter]:
    declared: dict[str, Parameter] = {}
    for key, spec in _object(raw, where).items():
        at = where.key(key)
        for member in _object(spec, at):
            if member not in _PARAMETER_KEYS:
                raise at.key(member).error("unknown member; expected Type, Default, Description")
        kind = spec.get("Type")
        if kind is None:
            raise at.key("Type").error("required")
        if kind != "String":
            raise at.key("Type").error(f"only String parameters are supported, got {kind!r}")
        default = spec.get("Default")
        if default is not None and not isinstance(default, str):
            raise at.key("Default").error(f"must be a string, got a {type_name(default)}")
        declared[key] = Parameter(key, kind, default)
    return declared


def _mappings(raw: Any, where: Where) -> dict[str, Any]:
    """Two levels of keys, then strings or lists of strings; nothing dynamic."""

    def plain(node: Any, at: Where) -> Mapping[str, Any]:
        table = _object(node, at)
        if function_name(table, at) is not None:
            raise at.error("Mappings may not contain parameters or function calls")
        return table

    result: dict[str, Any] = {}
    for map_name, table in plain(raw, where).items():
        at = where.key(map_name)
        result[map_name] = {}
        for top_key, entry in plain(table, at).items():
            at_top = at.key(top_key)
            values: dict[str, Any] = {}
            for second_key, value in plain(entry, at_top).items():
                at_value = at_top.key(second_key)
                if isinstance(value, list):
                    values[second_key] = tuple(props.string(v, at_value) for v in value)
                else:
                    values[second_key] = props.string(value, at_value)
            result[map_name][top_key] = MappingProxyType(values)
        result[map_name] = MappingProxyType(result[map_name])
    return result


def _resources(raw: Any, scope: Scope, where: Where) -> tuple[Resource, ...]:
    resources: list[Resource] = []
    seen: dict[str, str] = {}
    for logical, spec in _object(raw, where).items():
        at = Where(where.template_name, f"{where.path}.{logical}", resource=logical)
        spec = _object(spec, at)
        for member in spec:
            if member not in _RESOURCE_KEYS:
                raise at.key(member).error("unknown member; expected " + ", ".join(_RESOURCE_KEYS))
        kind = spec.get("Type")
        if kind not in RESOURCE_TYPES:
            raise at.key("Type").error(f"must be one of {', '.join(RESOURCE_TYPES)}, got {kind!r}")
        if kind in (THING, CERTIFICATE) and kind in seen:
            raise at.key("Type").error(
                f"a template has at most one {kind} (already {seen[kind]!r})"
            )
        seen.setdefault(kind, logical)
        resources.append(_resource(logical, kind, spec, scope, at))
    return tuple(resources)


def _resource(
    logical: str, kind: str, spec: Mapping[str, Any], scope: Scope, at: Where
) -> Resource:
    if "Properties" not in spec:
        raise at.key("Properties").error("required")
    raw_properties = _object(spec["Properties"], at.key("Properties"))
    check_resource_properties(kind, raw_properties.keys(), at)
    bound = tuple(_bind(key, value, kind, scope, at) for key, value in raw_properties.items())
    overrides = parse_overrides(kind, spec.get("OverrideSettings"), at.key("OverrideSettings"))
    condition_name = spec.get("Condition")
    condition = None
    if condition_name is not None:
        if not isinstance(condition_name, str) or condition_name not in scope.conditions:
            raise at.key("Condition").error(f"names no declared condition: {condition_name!r}")
        condition = scope.conditions[condition_name]
    return Resource(logical, kind, bound, overrides, condition_name, condition, at)


_COERCE: Mapping[str, Mapping[str, props.Coerce]] = MappingProxyType(
    {
        THING: {
            "ThingName": props.name,
            "AttributePayload": props.string_map,
            "ThingTypeName": props.name,
            "ThingGroups": props.string_list,
            "BillingGroup": props.name,
        },
        CERTIFICATE: {
            "CertificateSigningRequest": props.name,
            "CertificateId": props.name,
            "CertificatePem": props.name,
            "CACertificatePem": props.name,
            "Status": props.status,
        },
        POLICY: {"PolicyName": props.name, "PolicyDocument": props.policy_document},
    }
)


def _bind(key: str, raw: Any, kind: str, scope: Scope, resource: Where) -> BoundProperty:
    where = Where(
        resource.template_name,
        f"{resource.path}.Properties.{key}",
        resource=resource.resource,
        property_name=key,
    )
    expr = compile_value(raw, scope, where)
    coerce = _COERCE[kind][key]
    if isinstance(expr, Constant):
        if expr.value is NO_VALUE:
            return BoundProperty(key, expr, props.anything, where)
        check = props.checked_policy_document if coerce is props.policy_document else coerce
        return BoundProperty(key, Constant(check(expr.value, where)), props.anything, where)
    return BoundProperty(key, expr, coerce, where)


def _device_configuration(raw: Any, scope: Scope, where: Where) -> tuple[BoundProperty, ...]:
    entries: list[BoundProperty] = []
    for key, value in _object(raw, where).items():
        at = where.key(key)
        if isinstance(value, Mapping) and function_name(value, at) is None:
            raise at.error("DeviceConfiguration is a flat map; nested objects are not supported")
        expr = compile_value(value, scope, at)
        if isinstance(expr, Constant) and expr.value is not NO_VALUE:
            expr = Constant(props.configuration_value(expr.value, at))
            entries.append(BoundProperty(key, expr, props.anything, at))
        else:
            entries.append(BoundProperty(key, expr, props.configuration_value, at))
    return tuple(entries)
