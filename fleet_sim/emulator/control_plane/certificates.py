"""Control-plane handlers for device certificates.

RegisterCertificate, RegisterCertificateWithoutCA, CreateKeysAndCertificate,
CreateCertificateFromCsr, UpdateCertificate, DescribeCertificate, ListCertificates,
ListCertificatesByCA, DeleteCertificate. State rules are the registry's
(:mod:`fleet_sim.emulator.registry.certificates`); a status change reaches the data plane
through the registry's listeners (a certificate leaving ACTIVE is disconnected at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.control_plane.issuing import (
    create_keys_and_certificate as issue_keys,
)
from fleet_sim.emulator.control_plane.issuing import issue_from_csr, status_from_flag
from fleet_sim.emulator.registry.models import Certificate, CertificateStatus, Page
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE


def _registration_status(params: Params) -> CertificateStatus | str:
    # ``status`` wins; the deprecated ``setAsActive`` query flag is the fallback.
    status = params.get("status")
    return status if status is not None else status_from_flag(params.get("setAsActive"))


def _created(cert: Certificate) -> Result:
    return {"certificateArn": cert.arn, "certificateId": cert.certificate_id}


def register_certificate(ctx: HandlerContext, params: Params) -> Result:
    """RegisterCertificate: a device certificate signed by a registered, ACTIVE CA."""
    cert = ctx.registry.certificates.register(
        params["certificatePem"],
        now=ctx.now(),
        ca_certificate_pem=params.get("caCertificatePem"),
        status=_registration_status(params),
    )
    return _created(cert)


def register_certificate_without_ca(ctx: HandlerContext, params: Params) -> Result:
    """RegisterCertificateWithoutCA (the certificate is in SNI_ONLY mode)."""
    cert = ctx.registry.certificates.register_without_ca(
        params["certificatePem"], now=ctx.now(), status=params.get("status", "INACTIVE")
    )
    return _created(cert)


def create_keys_and_certificate(ctx: HandlerContext, params: Params) -> Result:
    """CreateKeysAndCertificate: a fresh key pair and a certificate from the emulator's CA."""
    issued = issue_keys(ctx, active=bool(params.get("setAsActive")))
    return {
        **_created(issued.certificate),
        "certificatePem": issued.certificate.pem,
        "keyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem},
    }


def create_certificate_from_csr(ctx: HandlerContext, params: Params) -> Result:
    """CreateCertificateFromCsr: the emulator's CA signs the CSR (its subject is kept)."""
    cert = issue_from_csr(
        ctx,
        params["certificateSigningRequest"],
        status=status_from_flag(params.get("setAsActive")),
    )
    return {**_created(cert), "certificatePem": cert.pem}


def update_certificate(ctx: HandlerContext, params: Params) -> Result:
    """UpdateCertificate: ACTIVE, INACTIVE or REVOKED."""
    ctx.registry.certificates.update_status(
        params["certificateId"], params["newStatus"], now=ctx.now()
    )
    return {}


def describe_certificate(ctx: HandlerContext, params: Params) -> Result:
    """DescribeCertificate."""
    cert = ctx.registry.certificates.describe(params["certificateId"])
    return {
        "certificateDescription": {
            "certificateArn": cert.arn,
            "certificateId": cert.certificate_id,
            "caCertificateId": cert.ca_certificate_id,
            "status": cert.status.value,
            "certificatePem": cert.pem,
            "ownedBy": cert.owned_by,
            "creationDate": cert.created,
            "lastModifiedDate": cert.last_modified,
            "customerVersion": cert.customer_version,
            "transferData": {},  # no transfers in the emulator; AWS sends the empty object
            "generationId": cert.generation_id,
            "validity": {"notBefore": cert.not_before, "notAfter": cert.not_after},
            "certificateMode": cert.certificate_mode.value,
        }
    }


def _listing(page: Page[Certificate]) -> Result:
    return {
        "certificates": [
            {
                "certificateArn": cert.arn,
                "certificateId": cert.certificate_id,
                "status": cert.status.value,
                "certificateMode": cert.certificate_mode.value,
                "creationDate": cert.created,
            }
            for cert in page.items
        ],
        "nextMarker": page.next_marker,
    }


def list_certificates(ctx: HandlerContext, params: Params) -> Result:
    """ListCertificates (``marker``/``pageSize``, ``ascendingOrder``)."""
    return _listing(
        ctx.registry.certificates.list(
            marker=params.get("marker"),
            page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
            ascending=params.get("ascendingOrder", True),
        )
    )


def list_certificates_by_ca(ctx: HandlerContext, params: Params) -> Result:
    """ListCertificatesByCA."""
    return _listing(
        ctx.registry.certificates.list_by_ca(
            params["caCertificateId"],
            marker=params.get("marker"),
            page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
            ascending=params.get("ascendingOrder", True),
        )
    )


def delete_certificate(ctx: HandlerContext, params: Params) -> Result:
    """DeleteCertificate (``forceDelete`` detaches policies too)."""
    ctx.registry.certificates.delete(params["certificateId"], force=bool(params.get("forceDelete")))
    return {}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "RegisterCertificate": register_certificate,
        "RegisterCertificateWithoutCA": register_certificate_without_ca,
        "CreateKeysAndCertificate": create_keys_and_certificate,
        "CreateCertificateFromCsr": create_certificate_from_csr,
        "UpdateCertificate": update_certificate,
        "DescribeCertificate": describe_certificate,
        "ListCertificates": list_certificates,
        "ListCertificatesByCA": list_certificates_by_ca,
        "DeleteCertificate": delete_certificate,
    }
)
