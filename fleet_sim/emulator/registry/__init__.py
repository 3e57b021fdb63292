"""The emulator's registry: CAs, certificates, things, policies, provisioning templates and
their attachments, persisted in SQLite and shared by the gateway, the control plane and the
provisioning services. Start at :class:`Registry`.
"""

from __future__ import annotations

from fleet_sim.emulator.registry.events import (
    AttachmentChanged,
    AttachmentKind,
    CACertificateChanged,
    CertificateStatusChanged,
    Listener,
    PolicyChanged,
    ProvisioningTemplateChanged,
    RegistryEvent,
    ThingChanged,
)
from fleet_sim.emulator.registry.models import (
    AutoRegistrationStatus,
    CACertificate,
    CAStatus,
    Certificate,
    CertificateMode,
    CertificateStatus,
    Page,
    Policy,
    PolicyVersion,
    PreProvisioningHook,
    ProvisioningTemplate,
    RegistrationConfig,
    TemplateType,
    TemplateVersion,
    Thing,
    ThingGroup,
    ThingType,
)
from fleet_sim.emulator.registry.registry import Registry

__all__ = [
    "AttachmentChanged",
    "AttachmentKind",
    "AutoRegistrationStatus",
    "CACertificate",
    "CACertificateChanged",
    "CAStatus",
    "Certificate",
    "CertificateMode",
    "CertificateStatus",
    "CertificateStatusChanged",
    "Listener",
    "Page",
    "Policy",
    "PolicyChanged",
    "PolicyVersion",
    "PreProvisioningHook",
    "ProvisioningTemplate",
    "ProvisioningTemplateChanged",
    "RegistrationConfig",
    "Registry",
    "RegistryEvent",
    "TemplateType",
    "TemplateVersion",
    "Thing",
    "ThingChanged",
    "ThingGroup",
    "ThingType",
]
