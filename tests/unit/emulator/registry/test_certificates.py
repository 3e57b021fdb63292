"""Device certificates: registration, status rules, deletion, listing."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import (
    AttachmentChanged,
    CertificateStatusChanged,
)
from fleet_sim.errors import (
    CertificateConflict,
    CertificateState,
    CertificateValidation,
    DeleteConflict,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.emulator.registry.support import (
    ACCOUNT,
    NOW,
    POLICY,
    REGION,
    Pki,
    register_sni_ca,
)


def test_register_with_ca_pem(registry, pki: Pki, events):
    ca_id = register_sni_ca(registry, pki)
    events.clear()
    leaf = pki.leaf("sensor-1", serial_number="SN1", country="DE", organization="Acme")
    cert = registry.certificates.register(
        leaf, now=NOW, ca_certificate_pem=pki.pem(pki.ca), status="ACTIVE"
    )
    assert cert.certificate_id == pki.id_of(leaf)
    assert cert.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert.certificate_id}"
    assert cert.status == "ACTIVE"
    assert cert.ca_certificate_id == ca_id
    assert cert.certificate_mode == "SNI_ONLY"
    assert cert.subject_fields == DeviceSubject(
        common_name="sensor-1", serial_number="SN1", country="DE", organization="Acme"
    )
    assert cert.issuer == "CN=Registry Test CA,O=Acme,C=US"
    assert cert.pem == leaf
    assert (cert.created, cert.last_modified, cert.customer_version) == (NOW, NOW, 1)
    assert events == [CertificateStatusChanged(cert.certificate_id, None, "ACTIVE")]


def test_register_defaults_to_inactive_and_finds_the_ca_by_issuer(registry, pki: Pki):
    ca_id = register_sni_ca(registry, pki)
    register_sni_ca(registry, pki, pki.other)
    cert = registry.certificates.register(pki.leaf(), now=NOW)
    assert (cert.status, cert.ca_certificate_id) == ("INACTIVE", ca_id)


def test_default_mode_ca_gives_default_mode_certificates(registry, pki: Pki):
    code = registry.cas.get_registration_code()
    registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        verification_pem=pki.verification(pki.ca, code),
        set_as_active=True,
    )
    assert registry.certificates.register(pki.leaf(), now=NOW).certificate_mode == "DEFAULT"


def test_twin_cas_are_told_apart_by_signature(registry, pki: Pki):
    register_sni_ca(registry, pki)
    twin_id = register_sni_ca(registry, pki, pki.twin)
    cert = registry.certificates.register(pki.leaf(ca=pki.twin), now=NOW)
    assert cert.ca_certificate_id == twin_id


def test_two_registered_copies_of_a_signer_conflict(registry, pki: Pki):
    # Two registered CA certificates with the same subject and key (a re-issued CA):
    # both verify the leaf, so AWS cannot tell which one signed it.
    from fleet_sim.tls.ca import CertificateAuthority
    from fleet_sim.tls.keys import KeyType
    from tests.unit.emulator.registry.support import ISSUED_AT

    reissued = CertificateAuthority.create_root(
        pki.ca.certificate.subject,
        KeyType.EC_P256,
        100,
        ISSUED_AT,
        private_key=pki.ca.private_key,
    )
    register_sni_ca(registry, pki)
    register_sni_ca(registry, pki, reissued)
    leaf = pki.leaf()
    with pytest.raises(CertificateConflict) as info:
        registry.certificates.register(leaf, now=NOW)
    assert (info.value.aws_code, info.value.http_status) == ("CertificateConflictException", 409)
    cert = registry.certificates.register(leaf, now=NOW, ca_certificate_pem=pki.pem(reissued))
    assert cert.ca_certificate_id == pki.id_of(pki.pem(reissued))


def test_register_needs_a_registered_signing_ca(registry, pki: Pki):
    with pytest.raises(CertificateValidation, match="registered CA"):
        registry.certificates.register(pki.leaf(), now=NOW)
    with pytest.raises(CertificateValidation, match="not registered"):
        registry.certificates.register(pki.leaf(), now=NOW, ca_certificate_pem=pki.pem(pki.ca))
    register_sni_ca(registry, pki, pki.other)
    with pytest.raises(CertificateValidation, match="not signed"):
        registry.certificates.register(pki.leaf(), now=NOW, ca_certificate_pem=pki.pem(pki.other))


def test_register_needs_an_active_ca(registry, pki: Pki):
    registry.cas.register(pki.pem(pki.ca), now=NOW, certificate_mode="SNI_ONLY")
    with pytest.raises(CertificateState, match="not ACTIVE"):
        registry.certificates.register(pki.leaf(), now=NOW)


def test_register_twice_is_resource_already_exists(registry, pki: Pki):
    register_sni_ca(registry, pki)
    leaf = pki.leaf()
    registry.certificates.register(leaf, now=NOW)
    with pytest.raises(ResourceAlreadyExists, match="already provisioned or registered"):
        registry.certificates.register(leaf, now=NOW)
    with pytest.raises(ResourceAlreadyExists):
        registry.certificates.register_without_ca(leaf, now=NOW)


@pytest.mark.parametrize("status", ["PENDING_TRANSFER", "REGISTER_INACTIVE", "BOGUS"])
def test_register_rejects_statuses_callers_cannot_pick(registry, pki: Pki, status):
    register_sni_ca(registry, pki)
    with pytest.raises(InvalidRequest):
        registry.certificates.register(pki.leaf(), now=NOW, status=status)


def test_register_pending_activation_for_jitr(registry, pki: Pki):
    register_sni_ca(registry, pki)
    cert = registry.certificates.register(pki.leaf(), now=NOW, status="PENDING_ACTIVATION")
    assert cert.status == "PENDING_ACTIVATION"


def test_register_without_ca_is_sni_only(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
    assert (cert.ca_certificate_id, cert.certificate_mode, cert.status) == (
        None,
        "SNI_ONLY",
        "ACTIVE",
    )


def test_create_records_an_emulator_issued_certificate(registry, pki: Pki):
    leaf = pki.leaf(ca=pki.other)
    cert = registry.certificates.create(leaf, now=NOW, status="PENDING_ACTIVATION")
    assert (cert.status, cert.ca_certificate_id, cert.certificate_mode) == (
        "PENDING_ACTIVATION",
        None,
        "DEFAULT",
    )
    with pytest.raises(ResourceAlreadyExists):
        registry.certificates.create(leaf, now=NOW)


def test_more_than_one_certificate_in_the_pem_is_refused(registry, pki: Pki):
    with pytest.raises(CertificateValidation, match="expected one certificate"):
        registry.certificates.register_without_ca(pki.leaf() + pki.pem(pki.ca), now=NOW)


def test_update_status_and_events(registry, pki: Pki, events):
    register_sni_ca(registry, pki)
    cert = registry.certificates.register(pki.leaf(), now=NOW, status="PENDING_ACTIVATION")
    events.clear()
    active = registry.certificates.update_status(cert.certificate_id, "ACTIVE", now=NOW + 1)
    assert (active.status, active.last_modified, active.customer_version) == ("ACTIVE", NOW + 1, 2)
    assert active.generation_id != cert.generation_id
    registry.certificates.update_status(cert.certificate_id, "INACTIVE", now=NOW + 2)
    assert events == [
        CertificateStatusChanged(cert.certificate_id, "PENDING_ACTIVATION", "ACTIVE"),
        CertificateStatusChanged(cert.certificate_id, "ACTIVE", "INACTIVE"),
    ]


def test_update_to_the_same_status_is_a_no_op(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
    events.clear()
    same = registry.certificates.update_status(cert.certificate_id, "ACTIVE", now=NOW + 5)
    assert same == cert
    assert events == []


@pytest.mark.parametrize(
    "status", ["PENDING_TRANSFER", "PENDING_ACTIVATION", "REGISTER_INACTIVE", "nope"]
)
def test_update_refuses_internal_and_deprecated_statuses(registry, pki: Pki, status):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    with pytest.raises(InvalidRequest) as info:
        registry.certificates.update_status(cert.certificate_id, status, now=NOW)
    assert info.value.aws_code == "InvalidRequestException"


def test_revoked_is_final(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
    registry.certificates.update_status(cert.certificate_id, "REVOKED", now=NOW)
    events.clear()
    for status in ("ACTIVE", "INACTIVE"):
        with pytest.raises(CertificateState):
            registry.certificates.update_status(cert.certificate_id, status, now=NOW)
    assert registry.certificates.update_status(cert.certificate_id, "REVOKED", now=NOW).status == (
        "REVOKED"
    )
    assert events == []


def test_update_missing_certificate(registry):
    with pytest.raises(ResourceNotFound):
        registry.certificates.update_status("ab" * 32, "ACTIVE", now=NOW)


def test_delete_rules(registry, pki: Pki, events):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
    registry.policies.create("p", POLICY, now=NOW)
    registry.attachments.attach_policy("p", cert.arn)
    registry.things.create("thing")
    registry.attachments.attach_thing_principal("thing", cert.arn)
    with pytest.raises(CertificateState, match="deactivated"):
        registry.certificates.delete(cert.certificate_id)
    registry.certificates.update_status(cert.certificate_id, "INACTIVE", now=NOW)
    with pytest.raises(DeleteConflict, match="thing") as info:
        registry.certificates.delete(cert.certificate_id, force=True)
    assert (info.value.aws_code, info.value.http_status) == ("DeleteConflictException", 409)
    registry.attachments.detach_thing_principal("thing", cert.arn)
    with pytest.raises(DeleteConflict, match="policies"):
        registry.certificates.delete(cert.certificate_id)
    events.clear()
    registry.certificates.delete(cert.certificate_id, force=True)
    assert registry.certificate_by_id(cert.certificate_id) is None
    assert registry.attachments.list_policy_targets("p").items == ()
    assert events == [
        AttachmentChanged("policy", "p", cert.arn, False),
        CertificateStatusChanged(cert.certificate_id, "INACTIVE", None),
    ]
    with pytest.raises(ResourceNotFound):
        registry.certificates.delete(cert.certificate_id)


def test_delete_a_plain_inactive_certificate(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    registry.certificates.delete(cert.certificate_id)
    assert registry.certificates.get(cert.certificate_id) is None


def test_list_paginates_by_creation_time(registry, pki: Pki):
    ids = [
        registry.certificates.register_without_ca(pki.leaf(f"d{n}"), now=NOW + n).certificate_id
        for n in range(5)
    ]
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        page = registry.certificates.list(page_size=2, marker=marker)
        seen += [cert.certificate_id for cert in page.items]
        pages += 1
        if page.next_marker is None:
            break
        marker = page.next_marker
    assert (seen, pages) == (ids, 3)
    assert [c.certificate_id for c in registry.certificates.list(ascending=False).items] == ids[
        ::-1
    ]


def test_pagination_is_stable_when_rows_are_deleted_between_pages(registry, pki: Pki):
    ids = [
        registry.certificates.register_without_ca(pki.leaf(f"d{n}"), now=NOW).certificate_id
        for n in range(4)
    ]
    ordered = sorted(ids)  # equal creation times: ordered by id
    first = registry.certificates.list(page_size=2)
    registry.certificates.delete(ordered[0])
    rest = registry.certificates.list(page_size=2, marker=first.next_marker)
    assert [c.certificate_id for c in rest.items] == ordered[2:]


def test_list_by_ca(registry, pki: Pki):
    ca_id = register_sni_ca(registry, pki)
    other_id = register_sni_ca(registry, pki, pki.other)
    mine = [registry.certificates.register(pki.leaf(f"m{n}"), now=NOW + n) for n in range(3)]
    registry.certificates.register(pki.leaf(ca=pki.other), now=NOW)
    page = registry.certificates.list_by_ca(ca_id, page_size=2)
    rest = registry.certificates.list_by_ca(ca_id, page_size=2, marker=page.next_marker)
    assert [c.certificate_id for c in page.items + rest.items] == [c.certificate_id for c in mine]
    assert len(registry.certificates.list_by_ca(other_id).items) == 1


@pytest.mark.parametrize("page_size", [0, 251])
def test_page_size_limits(registry, page_size):
    with pytest.raises(InvalidRequest):
        registry.certificates.list(page_size=page_size)


@pytest.mark.parametrize("marker", ["!!!", "bm90IGpzb24", "WzFd", "eyJhIjogMX0"])
def test_bad_markers_are_invalid_request(registry, marker):
    with pytest.raises(InvalidRequest, match="marker"):
        registry.certificates.list(marker=marker)


def test_find_by_common_name(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf("serial-42"), now=NOW)
    registry.certificates.register_without_ca(pki.leaf("serial-43"), now=NOW)
    assert registry.certificates.find_by_common_name("serial-42") == [cert]


def test_describe_and_lookup(registry, pki: Pki):
    cert = registry.certificates.register_without_ca(pki.leaf(), now=NOW)
    assert registry.certificates.describe(cert.certificate_id.upper()) == cert
    assert registry.certificate_by_id("not-an-id") is None
    with pytest.raises(ResourceNotFound):
        registry.certificates.describe("ef" * 32)
    with pytest.raises(InvalidRequest):
        registry.certificates.describe("short")
