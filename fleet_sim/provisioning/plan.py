"""What rendering a provisioning template for one device yields: a :class:`ProvisioningPlan`
of plain values (no intrinsics left), which the emulator applies to its registry.

Values only; nothing here touches a registry. ``None`` always means "the template does not
give this property", which matters for ``OverrideSettings`` (they act only on properties the
template gives).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class OverrideAction(enum.StrEnum):
    """What to do with a property of a resource that exists already (``OverrideSettings``)."""

    DO_NOTHING = "DO_NOTHING"
    REPLACE = "REPLACE"
    FAIL = "FAIL"
    MERGE = "MERGE"


class CertificateMethod(enum.StrEnum):
    """How a template's certificate resource names its certificate (exactly one per template)."""

    CERTIFICATE_ID = "CertificateId"
    CERTIFICATE_PEM = "CertificatePem"
    CSR = "CertificateSigningRequest"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ThingOverrides:
    """``OverrideSettings`` of a thing resource. Unset properties are ``DO_NOTHING``: an
    existing thing is kept as it is unless the template says otherwise.

    Attributes:
        attribute_payload: for ``AttributePayload`` (any action).
        thing_type_name: for ``ThingTypeName`` (not MERGE).
        thing_groups: for ``ThingGroups`` (any action).
    """

    attribute_payload: OverrideAction = OverrideAction.DO_NOTHING
    thing_type_name: OverrideAction = OverrideAction.DO_NOTHING
    thing_groups: OverrideAction = OverrideAction.DO_NOTHING


@dataclass(frozen=True, slots=True)
class CertificateOverrides:
    """``OverrideSettings`` of a certificate resource (only ``Status`` can be overridden).

    Attributes:
        status: for ``Status`` (not MERGE). Unset, it is ``REPLACE``: the template's Status
            (ACTIVE unless given) is applied to an existing certificate, which is what
            ``RegisterThing`` with a ``CertificateId`` and ``"Status": "ACTIVE"`` is for.
            A certificate still ``PENDING_ACTIVATION`` (JITP, fleet provisioning) always gets
            the template's Status, whatever this says.
    """

    status: OverrideAction = OverrideAction.REPLACE


@dataclass(frozen=True, slots=True)
class ThingPlan:
    """The thing to create (or reconcile with an existing one).

    Attributes:
        logical_name: the resource's name in the template (``resourceArns`` key).
        name: ``ThingName``.
        attributes: ``AttributePayload`` (read-only), or None when not given.
        type_name: ``ThingTypeName``, or None.
        groups: ``ThingGroups``, or None when not given.
        billing_group: ``BillingGroup``, or None.
        overrides: its ``OverrideSettings``.
    """

    logical_name: str
    name: str
    attributes: Mapping[str, str] | None = None
    type_name: str | None = None
    groups: tuple[str, ...] | None = None
    billing_group: str | None = None
    overrides: ThingOverrides = field(default_factory=ThingOverrides)


@dataclass(frozen=True, slots=True)
class CertificatePlan:
    """The certificate to register, issue or look up; exactly one of ``certificate_id``,
    ``certificate_pem`` and ``csr`` is set.

    Attributes:
        logical_name: the resource's name in the template.
        certificate_id: ``CertificateId`` of an existing certificate.
        certificate_pem: ``CertificatePem`` of a certificate to register.
        csr: ``CertificateSigningRequest`` (PEM) to issue a certificate for.
        ca_certificate_pem: ``CACertificatePem`` (only with ``certificate_pem``), or None.
        status: ``"ACTIVE"`` (the default) or ``"INACTIVE"``, upper case.
        overrides: its ``OverrideSettings``.
    """

    logical_name: str
    certificate_id: str | None = None
    certificate_pem: str | None = None
    csr: str | None = None
    ca_certificate_pem: str | None = None
    status: str = "ACTIVE"
    overrides: CertificateOverrides = field(default_factory=CertificateOverrides)

    @property
    def method(self) -> CertificateMethod:
        """Which of the three ways names the certificate."""
        if self.certificate_id is not None:
            return CertificateMethod.CERTIFICATE_ID
        if self.certificate_pem is not None:
            return CertificateMethod.CERTIFICATE_PEM
        return CertificateMethod.CSR


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """A policy to attach to the certificate.

    Attributes:
        logical_name: the resource's name in the template.
        name: ``PolicyName``; for a ``PolicyDocument`` the SHA-256 hex of the document text
            (AWS: "defaults to a hash of the policy document").
        document: the ``PolicyDocument`` text (an object is written as compact JSON with
            sorted keys), or None when the policy is named and must exist.
    """

    logical_name: str
    name: str
    document: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisioningPlan:
    """Everything one device's provisioning does, with every parameter and intrinsic resolved.

    Attributes:
        thing: the thing, or None when the template has none.
        certificate: the certificate, or None.
        policies: the policies, in template order.
        device_configuration: ``DeviceConfiguration`` (a flat string map; read-only).
    """

    thing: ThingPlan | None = None
    certificate: CertificatePlan | None = None
    policies: tuple[PolicyPlan, ...] = ()
    device_configuration: Mapping[str, str] = field(default_factory=_empty)
