"""Control-plane handlers for CA certificates and the registration code.

GetRegistrationCode, DeleteRegistrationCode, RegisterCACertificate (with the verification
certificate check, DEFAULT and SNI_ONLY modes, ``allowAutoRegistration`` and
``registrationConfig``; an expired CA or verification certificate is
``CertificateValidationException``), UpdateCACertificate, DescribeCACertificate, ListCACertificates,
DeleteCACertificate. The state rules are the registry's (:mod:`fleet_sim.emulator.registry.cas`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.registry.models import CACertificate, CertificateMode, RegistrationConfig
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE
from fleet_sim.errors import CertificateError, CertificateValidation
from fleet_sim.tls.inspect import check_validity, load_pem_certificates


def registration_config(value: Mapping[str, Any] | None) -> RegistrationConfig | None:
    """A ``registrationConfig`` request member as the registry's value."""
    if value is None:
        return None
    return RegistrationConfig(
        template_body=value.get("templateBody"),
        role_arn=value.get("roleArn"),
        template_name=value.get("templateName"),
    )


def _config_out(config: RegistrationConfig | None) -> Result | None:
    if config is None:
        return None
    return {
        "templateBody": config.template_body,
        "roleArn": config.role_arn,
        "templateName": config.template_name,
    }


def get_registration_code(ctx: HandlerContext, params: Params) -> Result:
    """GetRegistrationCode."""
    return {"registrationCode": ctx.registry.cas.get_registration_code()}


def delete_registration_code(ctx: HandlerContext, params: Params) -> Result:
    """DeleteRegistrationCode: the next GetRegistrationCode makes a new one."""
    ctx.registry.cas.delete_registration_code()
    return {}


def _check_in_validity(ctx: HandlerContext, pem: str | None, what: str) -> None:
    """An expired (or not yet valid) CA or verification certificate is refused; anything
    unparsable is left to the registry, which names the problem."""
    if not pem:
        return
    try:
        certificates = load_pem_certificates(pem.encode("utf-8"), source=what)
    except CertificateError:
        return
    try:
        for cert in certificates[:1]:
            check_validity(cert, ctx.now_utc(), what=what)
    except CertificateError as error:
        raise CertificateValidation(error.message) from None


def register_ca_certificate(ctx: HandlerContext, params: Params) -> Result:
    """RegisterCACertificate (both certificates must be within their validity period)."""
    _check_in_validity(ctx, params.get("caCertificate"), "the CA certificate")
    _check_in_validity(ctx, params.get("verificationCertificate"), "the verification certificate")
    record = ctx.registry.cas.register(
        params["caCertificate"],
        now=ctx.now(),
        verification_pem=params.get("verificationCertificate"),
        set_as_active=params.get("setAsActive", False),
        allow_auto_registration=params.get("allowAutoRegistration", False),
        registration_config=registration_config(params.get("registrationConfig")),
        certificate_mode=params.get("certificateMode", CertificateMode.DEFAULT),
    )
    return {"certificateArn": record.arn, "certificateId": record.certificate_id}


def update_ca_certificate(ctx: HandlerContext, params: Params) -> Result:
    """UpdateCACertificate."""
    ctx.registry.cas.update(
        params["certificateId"],
        now=ctx.now(),
        new_status=params.get("newStatus"),
        new_auto_registration_status=params.get("newAutoRegistrationStatus"),
        registration_config=registration_config(params.get("registrationConfig")),
        remove_auto_registration=params.get("removeAutoRegistration", False),
    )
    return {}


def describe_ca_certificate(ctx: HandlerContext, params: Params) -> Result:
    """DescribeCACertificate."""
    ca = ctx.registry.cas.describe(params["certificateId"])
    return {
        "certificateDescription": {
            "certificateArn": ca.arn,
            "certificateId": ca.certificate_id,
            "status": ca.status.value,
            "certificatePem": ca.pem,
            "ownedBy": ca.owned_by,
            "creationDate": ca.created,
            "autoRegistrationStatus": ca.auto_registration_status.value,
            "lastModifiedDate": ca.last_modified,
            "customerVersion": ca.customer_version,
            "generationId": ca.generation_id,
            "validity": {"notBefore": ca.not_before, "notAfter": ca.not_after},
            "certificateMode": ca.certificate_mode.value,
        },
        "registrationConfig": _config_out(ca.registration_config),
    }


def _summary(ca: CACertificate) -> Result:
    return {
        "certificateArn": ca.arn,
        "certificateId": ca.certificate_id,
        "status": ca.status.value,
        "creationDate": ca.created,
    }


def list_ca_certificates(ctx: HandlerContext, params: Params) -> Result:
    """ListCACertificates (``marker``/``pageSize``, ``ascendingOrder``, ``templateName``)."""
    page = ctx.registry.cas.list(
        marker=params.get("marker"),
        page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
        ascending=params.get("ascendingOrder", True),
        template_name=params.get("templateName"),
    )
    return {"certificates": [_summary(ca) for ca in page.items], "nextMarker": page.next_marker}


def delete_ca_certificate(ctx: HandlerContext, params: Params) -> Result:
    """DeleteCACertificate."""
    ctx.registry.cas.delete(params["certificateId"])
    return {}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "GetRegistrationCode": get_registration_code,
        "DeleteRegistrationCode": delete_registration_code,
        "RegisterCACertificate": register_ca_certificate,
        "UpdateCACertificate": update_ca_certificate,
        "DescribeCACertificate": describe_ca_certificate,
        "ListCACertificates": list_ca_certificates,
        "DeleteCACertificate": delete_ca_certificate,
    }
)
