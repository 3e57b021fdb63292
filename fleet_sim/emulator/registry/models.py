"""The registry's records: frozen values read from the database, and the status enums.

Every record carries its ARN, built from the registry's region and account. Times are epoch
seconds (floats) as the caller passed them in; nothing here reads a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from fleet_sim.tls.subject import DeviceSubject

T = TypeVar("T")


class CertificateStatus(enum.StrEnum):
    """A device certificate's status (AWS ``CertificateStatus``)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"
    PENDING_TRANSFER = "PENDING_TRANSFER"
    REGISTER_INACTIVE = "REGISTER_INACTIVE"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"


class CAStatus(enum.StrEnum):
    """A CA certificate's status (AWS ``CACertificateStatus``)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class AutoRegistrationStatus(enum.StrEnum):
    """Whether a CA auto-registers unknown device certificates it signed (JITR/JITP)."""

    ENABLE = "ENABLE"
    DISABLE = "DISABLE"


class CertificateMode(enum.StrEnum):
    """``DEFAULT`` (verification certificate, one account) or ``SNI_ONLY`` (multi-account)."""

    DEFAULT = "DEFAULT"
    SNI_ONLY = "SNI_ONLY"


class TemplateType(enum.StrEnum):
    """The kind of a provisioning template."""

    FLEET_PROVISIONING = "FLEET_PROVISIONING"
    JITP = "JITP"


def frozen_mapping(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy of ``values`` (records hold these instead of dicts)."""
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    """A CA's JITP configuration (AWS ``RegistrationConfig``): an inline template or a name.

    Attributes:
        template_body: the template JSON text (``templateBody``), or None.
        role_arn: the IAM role JITP assumes (``roleArn``), or None.
        template_name: a JITP provisioning template's name (``templateName``), or None.
    """

    template_body: str | None = None
    role_arn: str | None = None
    template_name: str | None = None


@dataclass(frozen=True, slots=True)
class CACertificate:
    """A registered CA certificate (``DescribeCACertificate``'s ``certificateDescription``).

    Attributes:
        certificate_id: SHA-256 of the DER, 64 lowercase hex.
        arn: ``arn:aws:iot:<region>:<account>:cacert/<id>``.
        pem: the certificate, PEM.
        status: ACTIVE or INACTIVE.
        auto_registration_status: ENABLE or DISABLE.
        registration_config: the JITP configuration, None when there is none (JITR).
        certificate_mode: DEFAULT or SNI_ONLY.
        subject: the subject DN, RFC 4514.
        issuer: the issuer DN, RFC 4514.
        owned_by: the account id.
        created: registration time, epoch seconds.
        last_modified: last update time, epoch seconds.
        generation_id: a fresh random id after every change.
        customer_version: 1, incremented on every change.
        not_before: start of validity, epoch seconds.
        not_after: end of validity, epoch seconds.
    """

    certificate_id: str
    arn: str
    pem: str
    status: CAStatus
    auto_registration_status: AutoRegistrationStatus
    registration_config: RegistrationConfig | None
    certificate_mode: CertificateMode
    subject: str
    issuer: str
    owned_by: str
    created: float
    last_modified: float
    generation_id: str
    customer_version: int
    not_before: float
    not_after: float


@dataclass(frozen=True, slots=True)
class Certificate:
    """A registered device certificate (``DescribeCertificate``'s ``certificateDescription``).

    Attributes:
        certificate_id: SHA-256 of the DER, 64 lowercase hex.
        arn: ``arn:aws:iot:<region>:<account>:cert/<id>``.
        pem: the certificate, PEM.
        status: one of :class:`CertificateStatus`.
        ca_certificate_id: the registered CA that signed it, None for emulator-issued
            certificates and ``RegisterCertificateWithoutCA``. May name a CA deleted since.
        certificate_mode: DEFAULT or SNI_ONLY (inherited from the CA).
        subject: the subject DN, RFC 4514.
        issuer: the issuer DN, RFC 4514.
        subject_fields: the subject attributes JITP and policy variables read.
        owned_by: the account id.
        created: registration time, epoch seconds.
        last_modified: last status change, epoch seconds.
        generation_id: a fresh random id after every change.
        customer_version: 1, incremented on every change.
        not_before: start of validity, epoch seconds.
        not_after: end of validity, epoch seconds.
    """

    certificate_id: str
    arn: str
    pem: str
    status: CertificateStatus
    ca_certificate_id: str | None
    certificate_mode: CertificateMode
    subject: str
    issuer: str
    subject_fields: DeviceSubject
    owned_by: str
    created: float
    last_modified: float
    generation_id: str
    customer_version: int
    not_before: float
    not_after: float


@dataclass(frozen=True, slots=True)
class Thing:
    """A thing (``DescribeThing``).

    Attributes:
        name: the thing name.
        arn: ``arn:aws:iot:<region>:<account>:thing/<name>``.
        thing_id: a random UUID given at creation.
        thing_type_name: its type, or None.
        attributes: name → value (read-only).
        version: 1 at creation, incremented by every update.
    """

    name: str
    arn: str
    thing_id: str
    thing_type_name: str | None
    attributes: Mapping[str, str]
    version: int


@dataclass(frozen=True, slots=True)
class ThingType:
    """A thing type (``DescribeThingType``).

    Attributes:
        name: the type name.
        arn: ``arn:aws:iot:<region>:<account>:thingtype/<name>``.
        thing_type_id: a random UUID given at creation.
        description: free text, or None.
        searchable_attributes: attribute names declared searchable.
        deprecated: whether it is deprecated (no new things may use it).
        deprecation_date: when it was last deprecated, epoch seconds, or None.
        created: creation time, epoch seconds.
    """

    name: str
    arn: str
    thing_type_id: str
    description: str | None
    searchable_attributes: tuple[str, ...]
    deprecated: bool
    deprecation_date: float | None
    created: float


@dataclass(frozen=True, slots=True)
class ThingGroup:
    """A static thing group (``DescribeThingGroup``).

    Attributes:
        name: the group name.
        arn: ``arn:aws:iot:<region>:<account>:thinggroup/<name>``.
        thing_group_id: a random UUID given at creation.
        parent_group_name: the parent group, or None for a root group.
        description: free text, or None.
        attributes: name → value (read-only).
        version: 1 at creation.
        created: creation time, epoch seconds.
    """

    name: str
    arn: str
    thing_group_id: str
    parent_group_name: str | None
    description: str | None
    attributes: Mapping[str, str]
    version: int
    created: float


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One version of a policy (``GetPolicyVersion``).

    Attributes:
        policy_name: the policy.
        policy_arn: the policy's ARN.
        version_id: ``"1"``, ``"2"`` … (never reused after deletion).
        document: the policy document, as the text it was created with.
        is_default: whether it is the version devices are evaluated against.
        created: creation time, epoch seconds.
    """

    policy_name: str
    policy_arn: str
    version_id: str
    document: str
    is_default: bool
    created: float


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy with all its versions (``GetPolicy`` plus ``ListPolicyVersions``).

    Attributes:
        name: the policy name.
        arn: ``arn:aws:iot:<region>:<account>:policy/<name>``.
        default_version_id: the version devices are evaluated against.
        document: the default version's document.
        versions: every version, oldest first.
        created: creation time, epoch seconds.
        last_modified: last time a version was added, removed or made default.
        generation_id: a fresh random id after every change.
    """

    name: str
    arn: str
    default_version_id: str
    document: str
    versions: tuple[PolicyVersion, ...]
    created: float
    last_modified: float
    generation_id: str


@dataclass(frozen=True, slots=True)
class PreProvisioningHook:
    """A fleet-provisioning template's pre-provisioning Lambda.

    Attributes:
        target_arn: the Lambda's ARN.
        payload_version: the hook payload version (AWS knows only ``2020-04-01``).
    """

    target_arn: str
    payload_version: str = "2020-04-01"


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """One version of a provisioning template (``DescribeProvisioningTemplateVersion``).

    Attributes:
        template_name: the template.
        version_id: 1, 2 … (never reused after deletion).
        body: the template JSON text.
        is_default: whether provisioning uses this version.
        created: creation time, epoch seconds.
    """

    template_name: str
    version_id: int
    body: str
    is_default: bool
    created: float


@dataclass(frozen=True, slots=True)
class ProvisioningTemplate:
    """A provisioning template with all its versions (``DescribeProvisioningTemplate``).

    Attributes:
        name: the template name.
        arn: ``arn:aws:iot:<region>:<account>:provisioningtemplate/<name>``.
        template_id: a random UUID given at creation.
        type: FLEET_PROVISIONING or JITP.
        enabled: whether fleet provisioning may use it.
        description: free text, or None.
        provisioning_role_arn: the IAM role provisioning assumes.
        pre_provisioning_hook: the hook, or None.
        default_version_id: the version provisioning uses.
        body: the default version's body.
        versions: every version, oldest first.
        created: creation time, epoch seconds.
        last_modified: last change, epoch seconds.
    """

    name: str
    arn: str
    template_id: str
    type: TemplateType
    enabled: bool
    description: str | None
    provisioning_role_arn: str
    pre_provisioning_hook: PreProvisioningHook | None
    default_version_id: int
    body: str
    versions: tuple[TemplateVersion, ...]
    created: float
    last_modified: float


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing.

    Attributes:
        items: the records on this page, in listing order.
        next_marker: pass as ``marker`` for the next page; None on the last page.
    """

    items: tuple[T, ...] = field(default=())
    next_marker: str | None = None
