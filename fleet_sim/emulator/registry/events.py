"""Change notifications: what the registry tells its listeners after a committed change.

Events are past-tense facts, emitted only once the transaction that made the change has
committed (never for a rolled-back one). They also travel through the database's change log so
that a registry in another process can replay them (:meth:`Registry.poll_changes`); hence
every field is a plain string, bool or None, and :func:`encode_event`/:func:`decode_event`
round-trip them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class AttachmentKind(enum.StrEnum):
    """Which kind of link an :class:`AttachmentChanged` is about."""

    POLICY = "policy"
    """``source`` is a policy name, ``target`` a certificate ARN, thing-group ARN or opaque id."""
    THING_PRINCIPAL = "thing_principal"
    """``source`` is a thing name, ``target`` a certificate ARN."""
    THING_GROUP = "thing_group"
    """``source`` is a thing-group name, ``target`` a thing name."""


@dataclass(frozen=True, slots=True)
class CertificateStatusChanged:
    """A device certificate appeared, changed status or disappeared.

    Attributes:
        certificate_id: the certificate.
        old_status: the status before, None when it was just registered.
        new_status: the status now, None when it was deleted.
    """

    certificate_id: str
    old_status: str | None
    new_status: str | None


@dataclass(frozen=True, slots=True)
class CACertificateChanged:
    """A CA certificate was registered, updated (status, auto-registration, config) or deleted.

    Attributes:
        ca_certificate_id: the CA.
        old_status: the status before, None when it was just registered.
        new_status: the status now, None when it was deleted.
    """

    ca_certificate_id: str
    old_status: str | None
    new_status: str | None


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """A policy's effective (default-version) document may have changed.

    Emitted on create, delete, a new default version, and ``set_default_version``.

    Attributes:
        policy_name: the policy.
        deleted: True when the policy no longer exists.
    """

    policy_name: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class AttachmentChanged:
    """A policy, thing principal or thing-group membership was attached or detached.

    Attributes:
        kind: which kind of link (see :class:`AttachmentKind` for source/target meanings).
        source: the policy, thing or thing-group name.
        target: the certificate ARN, target string or thing name.
        attached: True for attach, False for detach.
    """

    kind: str
    source: str
    target: str
    attached: bool


@dataclass(frozen=True, slots=True)
class ThingChanged:
    """A thing was created, updated (type, attributes) or deleted.

    Attributes:
        thing_name: the thing.
        deleted: True when the thing no longer exists.
    """

    thing_name: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ProvisioningTemplateChanged:
    """A provisioning template (or one of its versions) was created, updated or deleted.

    Attributes:
        template_name: the template.
        deleted: True when the template no longer exists.
    """

    template_name: str
    deleted: bool = False


RegistryEvent = (
    CertificateStatusChanged
    | CACertificateChanged
    | PolicyChanged
    | AttachmentChanged
    | ThingChanged
    | ProvisioningTemplateChanged
)
"""Any event the registry emits."""

Listener = Callable[[RegistryEvent], None]
"""Called synchronously, once per event, after the change committed."""

_EVENT_TYPES: dict[str, type[RegistryEvent]] = {
    cls.__name__: cls
    for cls in (
        CertificateStatusChanged,
        CACertificateChanged,
        PolicyChanged,
        AttachmentChanged,
        ThingChanged,
        ProvisioningTemplateChanged,
    )
}


def encode_event(event: RegistryEvent) -> tuple[str, str]:
    """The event's kind and JSON payload, for the change log."""
    return type(event).__name__, json.dumps(dataclasses.asdict(event), sort_keys=True)


def decode_event(kind: str, payload: str) -> RegistryEvent | None:
    """The event :func:`encode_event` wrote, or None for a kind this version does not know."""
    cls = _EVENT_TYPES.get(kind)
    if cls is None:
        return None
    fields: dict[str, Any] = json.loads(payload)
    return cls(**fields)
