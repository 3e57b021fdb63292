"""CA certificates and the registration code."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import (
    CACertificateChanged,
    RegistrationConfig,
)
from fleet_sim.emulator.registry.cas import MAX_CAS_PER_SUBJECT
from fleet_sim.errors import (
    CertificateState,
    CertificateValidation,
    InvalidRequest,
    LimitExceeded,
    RegistrationCodeValidation,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.emulator.registry.support import (
    ACCOUNT,
    ISSUED_AT,
    NOW,
    REGION,
    ROLE,
    TEMPLATE,
    Pki,
    open_registry,
    register_sni_ca,
)


def test_registration_code_is_64_hex_stable_and_rotates(registry):
    code = registry.cas.get_registration_code()
    assert len(code) == 64
    int(code, 16)
    assert registry.cas.get_registration_code() == code
    registry.cas.delete_registration_code()
    assert registry.cas.get_registration_code() != code


def test_registration_code_comes_from_the_injected_randomness():
    first = open_registry(":memory:", seed=3)
    second = open_registry(":memory:", seed=3)
    try:
        assert first.cas.get_registration_code() == second.cas.get_registration_code()
    finally:
        first.close()
        second.close()


def test_register_default_mode_with_verification_certificate(registry, pki: Pki, events):
    code = registry.cas.get_registration_code()
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        verification_pem=pki.verification(pki.ca, code),
        set_as_active=True,
        allow_auto_registration=True,
    )
    assert ca.certificate_id == pki.id_of(pki.pem(pki.ca))
    assert ca.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{ca.certificate_id}"
    assert ca.status == "ACTIVE"
    assert ca.auto_registration_status == "ENABLE"
    assert ca.certificate_mode == "DEFAULT"
    assert ca.registration_config is None
    assert ca.subject == "CN=Registry Test CA,O=Acme,C=US"
    assert ca.issuer == ca.subject
    assert ca.owned_by == ACCOUNT
    assert (ca.created, ca.last_modified, ca.customer_version) == (NOW, NOW, 1)
    assert ca.not_after > ca.not_before
    assert events == [CACertificateChanged(ca.certificate_id, None, "ACTIVE")]


def test_register_defaults_to_inactive_and_disabled(registry, pki: Pki):
    ca = registry.cas.register(pki.pem(pki.ca), now=NOW, certificate_mode="SNI_ONLY")
    assert (ca.status, ca.auto_registration_status) == ("INACTIVE", "DISABLE")
    assert ca.certificate_mode == "SNI_ONLY"


def test_default_mode_requires_a_verification_certificate(registry, pki: Pki):
    with pytest.raises(InvalidRequest, match="verification"):
        registry.cas.register(pki.pem(pki.ca), now=NOW)


def test_sni_only_mode_refuses_a_verification_certificate(registry, pki: Pki):
    code = registry.cas.get_registration_code()
    with pytest.raises(InvalidRequest, match="SNI_ONLY"):
        registry.cas.register(
            pki.pem(pki.ca),
            now=NOW,
            verification_pem=pki.verification(pki.ca, code),
            certificate_mode="SNI_ONLY",
        )


def test_verification_cn_must_be_the_registration_code(registry, pki: Pki):
    registry.cas.get_registration_code()
    with pytest.raises(RegistrationCodeValidation) as info:
        registry.cas.register(
            pki.pem(pki.ca), now=NOW, verification_pem=pki.verification(pki.ca, "ab" * 32)
        )
    assert info.value.aws_code == "RegistrationCodeValidationException"
    assert info.value.http_status == 400


def test_verification_needs_an_existing_registration_code(registry, pki: Pki):
    with pytest.raises(RegistrationCodeValidation):
        registry.cas.register(
            pki.pem(pki.ca), now=NOW, verification_pem=pki.verification(pki.ca, "ab" * 32)
        )


def test_verification_must_be_signed_by_the_ca(registry, pki: Pki):
    code = registry.cas.get_registration_code()
    with pytest.raises(CertificateValidation) as info:
        registry.cas.register(
            pki.pem(pki.ca), now=NOW, verification_pem=pki.verification(pki.twin, code)
        )
    assert info.value.aws_code == "CertificateValidationException"


def test_a_leaf_cannot_be_registered_as_ca(registry, pki: Pki):
    with pytest.raises(CertificateValidation, match="not a CA"):
        registry.cas.register(pki.leaf(), now=NOW, certificate_mode="SNI_ONLY")


def test_garbage_pem_is_a_certificate_validation_error(registry):
    with pytest.raises(CertificateValidation):
        registry.cas.register("not a pem", now=NOW, certificate_mode="SNI_ONLY")


def test_bad_certificate_mode_is_invalid_request(registry, pki: Pki):
    with pytest.raises(InvalidRequest, match=r"DEFAULT \| SNI_ONLY"):
        registry.cas.register(pki.pem(pki.ca), now=NOW, certificate_mode="BOTH")


def test_registering_twice_is_resource_already_exists(registry, pki: Pki, events):
    register_sni_ca(registry, pki)
    events.clear()
    with pytest.raises(ResourceAlreadyExists) as info:
        register_sni_ca(registry, pki)
    assert info.value.http_status == 409
    assert events == []


def test_at_most_ten_cas_with_one_subject(registry):
    subject = DeviceSubject(common_name="Crowded CA")
    for _ in range(MAX_CAS_PER_SUBJECT):
        ca = CertificateAuthority.create_root(subject, KeyType.EC_P256, 30, ISSUED_AT)
        registry.cas.register(ca.certificate_pem().decode(), now=NOW, certificate_mode="SNI_ONLY")
    extra = CertificateAuthority.create_root(subject, KeyType.EC_P256, 30, ISSUED_AT)
    with pytest.raises(LimitExceeded) as info:
        registry.cas.register(
            extra.certificate_pem().decode(), now=NOW, certificate_mode="SNI_ONLY"
        )
    assert (info.value.aws_code, info.value.http_status) == ("LimitExceededException", 410)
    assert len(registry.cas_by_subject("CN=Crowded CA")) == MAX_CAS_PER_SUBJECT


def test_cas_by_subject_accepts_a_name_and_finds_twins(registry, pki: Pki):
    first = register_sni_ca(registry, pki)
    second = register_sni_ca(registry, pki, pki.twin)
    register_sni_ca(registry, pki, pki.other)
    found = registry.cas_by_subject(pki.ca.certificate.subject)
    assert sorted(ca.certificate_id for ca in found) == sorted([first, second])
    assert registry.cas_by_subject("CN=nobody") == []


def test_registration_config_inline_template(registry, pki: Pki):
    config = RegistrationConfig(template_body=TEMPLATE, role_arn=ROLE)
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        certificate_mode="SNI_ONLY",
        allow_auto_registration=True,
        registration_config=config,
    )
    assert ca.registration_config == config
    assert registry.cas.describe(ca.certificate_id).registration_config == config


def test_registration_config_template_must_exist_and_be_jitp(registry, pki: Pki):
    with pytest.raises(ResourceNotFound):
        registry.cas.register(
            pki.pem(pki.ca),
            now=NOW,
            certificate_mode="SNI_ONLY",
            registration_config=RegistrationConfig(template_name="missing"),
        )
    registry.templates.create("fleet", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    with pytest.raises(InvalidRequest, match="JITP"):
        registry.cas.register(
            pki.pem(pki.ca),
            now=NOW,
            certificate_mode="SNI_ONLY",
            registration_config=RegistrationConfig(template_name="fleet"),
        )
    registry.templates.create("jitp", TEMPLATE, now=NOW, provisioning_role_arn=ROLE, type="JITP")
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        certificate_mode="SNI_ONLY",
        registration_config=RegistrationConfig(template_name="jitp"),
    )
    assert ca.registration_config == RegistrationConfig(template_name="jitp")


@pytest.mark.parametrize(
    "config",
    [
        RegistrationConfig(role_arn="arn:aws:iam::123:role/x"),
        RegistrationConfig(template_body="[1, 2]"),
        RegistrationConfig(template_body="{"),
        RegistrationConfig(template_name="bad name!"),
    ],
)
def test_malformed_registration_config_is_invalid_request(registry, pki: Pki, config):
    with pytest.raises(InvalidRequest):
        registry.cas.register(
            pki.pem(pki.ca), now=NOW, certificate_mode="SNI_ONLY", registration_config=config
        )


def test_update_status_auto_registration_and_config(registry, pki: Pki, events):
    ca_id = registry.cas.register(
        pki.pem(pki.ca), now=NOW, certificate_mode="SNI_ONLY"
    ).certificate_id
    events.clear()
    config = RegistrationConfig(template_body=TEMPLATE, role_arn=ROLE)
    updated = registry.cas.update(
        ca_id,
        now=NOW + 10,
        new_status="ACTIVE",
        new_auto_registration_status="ENABLE",
        registration_config=config,
    )
    assert (updated.status, updated.auto_registration_status) == ("ACTIVE", "ENABLE")
    assert updated.registration_config == config
    assert (updated.last_modified, updated.customer_version, updated.created) == (NOW + 10, 2, NOW)
    assert events == [CACertificateChanged(ca_id, "INACTIVE", "ACTIVE")]
    removed = registry.cas.update(ca_id, now=NOW + 20, remove_auto_registration=True)
    assert removed.registration_config is None
    assert removed.auto_registration_status == "ENABLE"
    assert removed.generation_id != updated.generation_id


def test_update_without_changes_is_a_no_op(registry, pki: Pki, events):
    ca_id = register_sni_ca(registry, pki)
    events.clear()
    same = registry.cas.update(ca_id, now=NOW + 5, new_status="ACTIVE")
    assert (same.last_modified, same.customer_version) == (NOW, 1)
    assert events == []


def test_update_rejects_bad_input(registry, pki: Pki):
    ca_id = register_sni_ca(registry, pki)
    with pytest.raises(InvalidRequest):
        registry.cas.update(ca_id, now=NOW, new_status="REVOKED")
    with pytest.raises(InvalidRequest):
        registry.cas.update(ca_id, now=NOW, new_auto_registration_status="MAYBE")
    with pytest.raises(InvalidRequest):
        registry.cas.update(
            ca_id,
            now=NOW,
            remove_auto_registration=True,
            registration_config=RegistrationConfig(role_arn=ROLE),
        )
    with pytest.raises(ResourceNotFound):
        registry.cas.update("ab" * 32, now=NOW, new_status="ACTIVE")
    with pytest.raises(InvalidRequest):
        registry.cas.update("xyz", now=NOW, new_status="ACTIVE")


def test_describe_accepts_uppercase_and_0x_ids(registry, pki: Pki):
    ca_id = register_sni_ca(registry, pki)
    assert registry.cas.describe("0x" + ca_id.upper()).certificate_id == ca_id
    assert registry.ca_by_id(ca_id.upper()).certificate_id == ca_id
    assert registry.ca_by_id("nonsense") is None
    with pytest.raises(ResourceNotFound):
        registry.cas.describe("cd" * 32)


def test_delete_refused_while_active(registry, pki: Pki, events):
    ca_id = register_sni_ca(registry, pki)
    events.clear()
    with pytest.raises(CertificateState) as info:
        registry.cas.delete(ca_id)
    assert (info.value.aws_code, info.value.http_status) == ("CertificateStateException", 406)
    assert events == []
    registry.cas.update(ca_id, now=NOW, new_status="INACTIVE")
    registry.cas.delete(ca_id)
    assert registry.ca_by_id(ca_id) is None
    assert events[-1] == CACertificateChanged(ca_id, "INACTIVE", None)
    with pytest.raises(ResourceNotFound):
        registry.cas.delete(ca_id)


def test_delete_keeps_device_certificates_with_their_ca_id(registry, pki: Pki):
    ca_id = register_sni_ca(registry, pki)
    cert = registry.certificates.register(pki.leaf(), now=NOW)
    registry.cas.update(ca_id, now=NOW, new_status="INACTIVE")
    registry.cas.delete(ca_id)
    assert registry.certificate_by_id(cert.certificate_id).ca_certificate_id == ca_id
    assert [c.certificate_id for c in registry.certificates.list_by_ca(ca_id).items] == [
        cert.certificate_id
    ]


def test_list_paginates_in_registration_order(registry, pki: Pki):
    ids = [
        registry.cas.register(pki.pem(ca), now=NOW + n, certificate_mode="SNI_ONLY").certificate_id
        for n, ca in enumerate([pki.ca, pki.twin, pki.other])
    ]
    first = registry.cas.list(page_size=2)
    assert [ca.certificate_id for ca in first.items] == ids[:2]
    assert first.next_marker is not None
    second = registry.cas.list(page_size=2, marker=first.next_marker)
    assert [ca.certificate_id for ca in second.items] == ids[2:]
    assert second.next_marker is None
    descending = registry.cas.list(ascending=False)
    assert [ca.certificate_id for ca in descending.items] == ids[::-1]


def test_list_by_template_name(registry, pki: Pki):
    registry.templates.create("jitp", TEMPLATE, now=NOW, provisioning_role_arn=ROLE, type="JITP")
    register_sni_ca(registry, pki, pki.other)
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        certificate_mode="SNI_ONLY",
        registration_config=RegistrationConfig(template_name="jitp"),
    )
    assert [c.certificate_id for c in registry.cas.list(template_name="jitp").items] == [
        ca.certificate_id
    ]
