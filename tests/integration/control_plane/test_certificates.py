"""Device-certificate operations through real boto3: success paths and AWS's errors."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from fleet_sim.tls.inspect import certificate_id
from tests.integration.control_plane.helpers import (
    ACCOUNT,
    REGION,
    allow_all_policy,
    aws_error,
    csr_pem,
    device,
    new_ca,
    register_ca,
    unique,
)


@pytest.fixture(scope="module")
def ca(iot):
    authority = new_ca("cert-tests")
    register_ca(iot, authority, setAsActive=True)
    return authority


def test_create_keys_and_certificate(iot, emu) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    cert = x509.load_pem_x509_certificate(created["certificatePem"].encode())
    assert created["certificateId"] == certificate_id(cert)
    assert (
        created["certificateArn"]
        == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{created['certificateId']}"
    )
    assert "PRIVATE KEY" in created["keyPair"]["PrivateKey"]
    assert "PUBLIC KEY" in created["keyPair"]["PublicKey"]
    assert cert.issuer == emu.emulator.pki.device_ca.certificate.subject
    assert cert.not_valid_after_utc.year == 2049
    described = iot.describe_certificate(certificateId=created["certificateId"])
    description = described["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert "caCertificateId" not in description
    assert description["ownedBy"] == ACCOUNT
    assert isinstance(description["creationDate"], dt.datetime)


def test_create_keys_and_certificate_is_inactive_by_default(iot) -> None:
    created = iot.create_keys_and_certificate()
    described = iot.describe_certificate(certificateId=created["certificateId"])
    assert described["certificateDescription"]["status"] == "INACTIVE"


def test_create_certificate_from_csr_keeps_the_subject(iot) -> None:
    created = iot.create_certificate_from_csr(
        certificateSigningRequest=csr_pem("csr-device"), setAsActive=True
    )
    cert = x509.load_pem_x509_certificate(created["certificatePem"].encode())
    assert cert.subject.rfc4514_string() == "CN=csr-device"
    status = iot.describe_certificate(certificateId=created["certificateId"])
    assert status["certificateDescription"]["status"] == "ACTIVE"


def test_create_certificate_from_a_bad_csr_is_invalid_request(iot) -> None:
    with aws_error("InvalidRequestException", 400):
        iot.create_certificate_from_csr(certificateSigningRequest="not a csr")


def test_register_certificate_with_its_ca(iot, ca) -> None:
    identity = device(ca, unique("registered"))
    response = iot.register_certificate(
        certificatePem=identity.certificate_pem.decode(),
        caCertificatePem=ca.certificate_pem().decode(),
        status="ACTIVE",
    )
    description = iot.describe_certificate(certificateId=response["certificateId"])[
        "certificateDescription"
    ]
    assert description["caCertificateId"] == ca.certificate_id
    assert description["status"] == "ACTIVE"
    assert description["certificateMode"] == "DEFAULT"
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca.certificate_id)["certificates"]
    assert response["certificateId"] in [c["certificateId"] for c in by_ca]


def test_register_certificate_finds_the_ca_by_issuer(iot, ca) -> None:
    identity = device(ca, unique("by-issuer"))
    response = iot.register_certificate(certificatePem=identity.certificate_pem.decode())
    description = iot.describe_certificate(certificateId=response["certificateId"])
    assert description["certificateDescription"]["status"] == "INACTIVE"


def test_register_certificate_twice_is_resource_already_exists(iot, ca) -> None:
    pem = device(ca, unique("twice")).certificate_pem.decode()
    iot.register_certificate(certificatePem=pem)
    with aws_error("ResourceAlreadyExistsException", 409):
        iot.register_certificate(certificatePem=pem)


def test_register_certificate_of_an_unknown_ca_fails_validation(iot) -> None:
    stranger = new_ca("unregistered")
    with aws_error("CertificateValidationException", 400):
        iot.register_certificate(certificatePem=device(stranger, "x").certificate_pem.decode())


def test_register_certificate_under_an_inactive_ca_is_certificate_state(iot) -> None:
    inactive = new_ca("inactive")
    register_ca(iot, inactive)  # INACTIVE unless setAsActive
    with aws_error("CertificateStateException", 406):
        iot.register_certificate(certificatePem=device(inactive, "x").certificate_pem.decode())


def test_register_certificate_without_ca_is_sni_only(iot) -> None:
    stranger = new_ca("no-ca")
    response = iot.register_certificate_without_ca(
        certificatePem=device(stranger, "sni").certificate_pem.decode(), status="ACTIVE"
    )
    description = iot.describe_certificate(certificateId=response["certificateId"])[
        "certificateDescription"
    ]
    assert description["certificateMode"] == "SNI_ONLY"
    assert description["status"] == "ACTIVE"


def test_update_certificate_status_rules(iot) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    cid = created["certificateId"]
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    description = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert description["status"] == "INACTIVE"
    assert description["customerVersion"] == 2
    with aws_error("InvalidRequestException"):
        iot.update_certificate(certificateId=cid, newStatus="PENDING_ACTIVATION")
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    with aws_error("CertificateStateException", 406):
        iot.update_certificate(certificateId=cid, newStatus="ACTIVE")


def test_update_unknown_certificate_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.update_certificate(certificateId="ab" * 32, newStatus="ACTIVE")


def test_describe_unknown_certificate_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.describe_certificate(certificateId="cd" * 32)


def test_delete_certificate_rules(iot) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    cid, arn = created["certificateId"], created["certificateArn"]
    with aws_error("CertificateStateException", 406):
        iot.delete_certificate(certificateId=cid)
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    policy = unique("cert-policy")
    iot.create_policy(policyName=policy, policyDocument=allow_all_policy())
    iot.attach_policy(policyName=policy, target=arn)
    with aws_error("DeleteConflictException", 409):
        iot.delete_certificate(certificateId=cid)
    thing = unique("cert-thing")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    with aws_error("DeleteConflictException", 409):
        iot.delete_certificate(certificateId=cid, forceDelete=True)
    iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.delete_certificate(certificateId=cid, forceDelete=True)
    with aws_error("ResourceNotFoundException"):
        iot.describe_certificate(certificateId=cid)
    assert iot.list_targets_for_policy(policyName=policy)["targets"] == []


def test_list_certificates_pages_with_marker(iot) -> None:
    created = {iot.create_keys_and_certificate()["certificateId"] for _ in range(5)}
    seen: list[str] = []
    first = iot.list_certificates(pageSize=2)
    assert len(first["certificates"]) == 2
    assert "nextMarker" in first
    marker = first["nextMarker"]
    seen += [c["certificateId"] for c in first["certificates"]]
    while marker:
        page = iot.list_certificates(pageSize=2, marker=marker)
        assert len(page["certificates"]) <= 2
        seen += [c["certificateId"] for c in page["certificates"]]
        marker = page.get("nextMarker")
    assert len(seen) == len(set(seen))
    assert created <= set(seen)
    summary = first["certificates"][0]
    assert set(summary) == {
        "certificateArn",
        "certificateId",
        "status",
        "certificateMode",
        "creationDate",
    }


def test_list_certificates_paginator_and_order(iot) -> None:
    pages = list(iot.get_paginator("list_certificates").paginate(PaginationConfig={"PageSize": 3}))
    ids = [c["certificateId"] for page in pages for c in page["certificates"]]
    assert len(pages) > 1
    assert len(ids) == len(set(ids))
    newest_first = iot.list_certificates(ascendingOrder=False, pageSize=250)["certificates"]
    dates = [c["creationDate"] for c in newest_first]
    assert dates == sorted(dates, reverse=True)


def test_list_certificates_rejects_a_bad_page_size(iot) -> None:
    with aws_error("InvalidRequestException"):
        iot.list_certificates(pageSize=251)
