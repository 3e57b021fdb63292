"""The three resource types of provisioning templates: their properties and OverrideSettings.

* ``AWS::IoT::Thing``: ``ThingName`` (required), ``AttributePayload``, ``ThingTypeName``,
  ``ThingGroups``, ``BillingGroup``. (``PackageVersions``, in newer AWS docs, is refused: the
  emulator has no software packages.)
* ``AWS::IoT::Certificate``: exactly one of ``CertificateSigningRequest``, ``CertificateId``,
  ``CertificatePem``; ``CACertificatePem`` only with ``CertificatePem``; ``Status``.
* ``AWS::IoT::Policy``: exactly one of ``PolicyName``, ``PolicyDocument``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from fleet_sim.provisioning.plan import (
    CertificateMethod,
    CertificateOverrides,
    OverrideAction,
    ThingOverrides,
)
from fleet_sim.provisioning.values import Where, type_name

THING = "AWS::IoT::Thing"
CERTIFICATE = "AWS::IoT::Certificate"
POLICY = "AWS::IoT::Policy"
RESOURCE_TYPES = (THING, CERTIFICATE, POLICY)

_PROPERTIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        THING: ("ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup"),
        CERTIFICATE: (
            "CertificateSigningRequest",
            "CertificateId",
            "CertificatePem",
            "CACertificatePem",
            "Status",
        ),
        POLICY: ("PolicyName", "PolicyDocument"),
    }
)
_NOT_EMULATED = MappingProxyType({THING: ("PackageVersions",)})

#: Thing OverrideSettings keys (as in AWS's examples, and as spelled in its prose) → field.
_THING_OVERRIDES: Mapping[str, str] = MappingProxyType(
    {
        "AttributePayload": "attribute_payload",
        "ATTRIBUTE_PAYLOAD": "attribute_payload",
        "ThingTypeName": "thing_type_name",
        "THING_TYPE_NAME": "thing_type_name",
        "ThingGroups": "thing_groups",
        "THING_GROUPS": "thing_groups",
    }
)
_MERGEABLE = frozenset({"attribute_payload", "thing_groups"})


def check_resource_properties(kind: str, names: Collection[str], where: Where) -> None:
    """Check a resource's property names (not their values).

    Raises:
        TemplateError: an unknown or unsupported property, a missing required one, or a
            wrong combination.
    """
    allowed = _PROPERTIES[kind]
    for name in names:
        if name in _NOT_EMULATED.get(kind, ()):
            raise where.key("Properties").key(name).error(f"{name} is not emulated")
        if name not in allowed:
            raise (
                where.key("Properties")
                .key(name)
                .error(f"unknown {kind} property; expected one of {', '.join(allowed)}")
            )
    properties = where.key("Properties")
    if kind == THING and "ThingName" not in names:
        raise properties.key("ThingName").error("required")
    if kind == CERTIFICATE:
        methods = [m.value for m in CertificateMethod if m.value in names]
        if len(methods) != 1:
            found = ", ".join(methods) if methods else "none"
            raise properties.error(
                "a certificate needs exactly one of CertificateSigningRequest, CertificateId, "
                f"CertificatePem (found {found})"
            )
        if "CACertificatePem" in names and methods != [CertificateMethod.CERTIFICATE_PEM.value]:
            raise properties.key("CACertificatePem").error("only allowed with CertificatePem")
    if kind == POLICY and len({"PolicyName", "PolicyDocument"} & set(names)) != 1:
        raise properties.error("a policy needs exactly one of PolicyName, PolicyDocument")


def _action(value: Any, where: Where) -> OverrideAction:
    try:
        return OverrideAction(value)
    except ValueError:
        choices = ", ".join(a.value for a in OverrideAction)
        raise where.error(f"must be one of {choices}, got {value!r}") from None


def parse_overrides(
    kind: str, raw: Any, where: Where
) -> ThingOverrides | CertificateOverrides | None:
    """A resource's ``OverrideSettings`` (literal strings only), with the defaults filled in.

    Raises:
        TemplateError: OverrideSettings on a policy, an unknown key, an unknown action, or
            MERGE where it is not valid.
    """
    if kind == POLICY:
        if raw is not None:
            raise where.error("policies have no OverrideSettings")
        return None
    if raw is None:
        return ThingOverrides() if kind == THING else CertificateOverrides()
    if not isinstance(raw, Mapping):
        raise where.error(f"must be an object, got a {type_name(raw)}")
    if kind == CERTIFICATE:
        for key in raw:
            if key != "Status":
                raise where.key(key).error("a certificate can override only Status")
        if "Status" not in raw:
            return CertificateOverrides()
        action = _action(raw["Status"], where.key("Status"))
        if action is OverrideAction.MERGE:
            raise where.key("Status").error(
                "MERGE is valid only for a thing's AttributePayload and ThingGroups"
            )
        return CertificateOverrides(status=action)
    chosen: dict[str, OverrideAction] = {}
    for key, value in raw.items():
        field_name = _THING_OVERRIDES.get(key)
        if field_name is None:
            raise where.key(key).error(
                "a thing can override AttributePayload, ThingTypeName and ThingGroups"
            )
        if field_name in chosen:
            raise where.key(key).error("given twice (in both spellings)")
        action = _action(value, where.key(key))
        if action is OverrideAction.MERGE and field_name not in _MERGEABLE:
            raise where.key(key).error(
                "MERGE is valid only for a thing's AttributePayload and ThingGroups"
            )
        chosen[field_name] = action
    return ThingOverrides(**chosen)
