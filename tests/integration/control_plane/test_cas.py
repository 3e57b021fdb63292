"""CA certificates and the registration code through real boto3."""

from __future__ import annotations

import json
from datetime import timedelta

from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject
from tests.integration.control_plane.helpers import (
    ACCOUNT,
    REGION,
    ROLE_ARN,
    aws_error,
    new_ca,
    register_ca,
    unique,
)
from tests.support.devices import now_utc

TEMPLATE = json.dumps(
    {
        "Parameters": {"AWS::IoT::Certificate::CommonName": {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}},
            }
        },
    }
)


def test_registration_code_is_stable_until_deleted(iot) -> None:
    code = iot.get_registration_code()["registrationCode"]
    assert len(code) == 64
    assert iot.get_registration_code()["registrationCode"] == code
    iot.delete_registration_code()
    assert iot.get_registration_code()["registrationCode"] != code


def test_register_ca_default_mode_with_verification(iot) -> None:
    ca = new_ca()
    response = register_ca(
        iot,
        ca,
        setAsActive=True,
        allowAutoRegistration=True,
        registrationConfig={"templateBody": TEMPLATE, "roleArn": ROLE_ARN},
    )
    assert response["certificateId"] == ca.certificate_id
    assert (
        response["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{ca.certificate_id}"
    )
    described = iot.describe_ca_certificate(certificateId=ca.certificate_id)
    description = described["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["autoRegistrationStatus"] == "ENABLE"
    assert description["certificateMode"] == "DEFAULT"
    assert description["customerVersion"] == 1
    assert set(description["validity"]) == {"notBefore", "notAfter"}
    assert described["registrationConfig"] == {"templateBody": TEMPLATE, "roleArn": ROLE_ARN}


def test_register_ca_is_inactive_without_set_as_active(iot) -> None:
    ca = new_ca()
    register_ca(iot, ca)
    description = iot.describe_ca_certificate(certificateId=ca.certificate_id)
    assert description["certificateDescription"]["status"] == "INACTIVE"
    assert description["certificateDescription"]["autoRegistrationStatus"] == "DISABLE"
    assert "registrationConfig" not in description


def test_verification_certificate_with_the_wrong_cn_is_rejected(iot) -> None:
    ca = new_ca()
    verification = ca.verification_certificate("0" * 64, KeyType.EC_P256, now_utc())
    with aws_error("RegistrationCodeValidationException", 400):
        iot.register_ca_certificate(
            caCertificate=ca.certificate_pem().decode(),
            verificationCertificate=verification.certificate_pem.decode(),
        )


def test_verification_certificate_signed_by_another_ca_is_rejected(iot) -> None:
    ca, other = new_ca(), new_ca()
    code = iot.get_registration_code()["registrationCode"]
    verification = other.verification_certificate(code, KeyType.EC_P256, now_utc())
    with aws_error("CertificateValidationException", 400):
        iot.register_ca_certificate(
            caCertificate=ca.certificate_pem().decode(),
            verificationCertificate=verification.certificate_pem.decode(),
        )


def test_default_mode_needs_a_verification_certificate(iot) -> None:
    with aws_error("InvalidRequestException", 400):
        iot.register_ca_certificate(caCertificate=new_ca().certificate_pem().decode())


def test_sni_only_mode_needs_no_verification_certificate(iot) -> None:
    ca = new_ca()
    iot.register_ca_certificate(
        caCertificate=ca.certificate_pem().decode(), certificateMode="SNI_ONLY", setAsActive=True
    )
    description = iot.describe_ca_certificate(certificateId=ca.certificate_id)
    assert description["certificateDescription"]["certificateMode"] == "SNI_ONLY"


def test_sni_only_mode_refuses_a_verification_certificate(iot) -> None:
    ca = new_ca()
    code = iot.get_registration_code()["registrationCode"]
    verification = ca.verification_certificate(code, KeyType.EC_P256, now_utc())
    with aws_error("InvalidRequestException"):
        iot.register_ca_certificate(
            caCertificate=ca.certificate_pem().decode(),
            verificationCertificate=verification.certificate_pem.decode(),
            certificateMode="SNI_ONLY",
        )


def test_registering_a_ca_twice_is_resource_already_exists(iot) -> None:
    ca = new_ca()
    register_ca(iot, ca)
    with aws_error("ResourceAlreadyExistsException", 409):
        register_ca(iot, ca)


def test_a_registration_config_naming_a_missing_template_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        register_ca(iot, new_ca(), registrationConfig={"templateName": "no-such-template"})


def test_update_ca_certificate(iot) -> None:
    ca = new_ca()
    register_ca(iot, ca)
    iot.update_ca_certificate(
        certificateId=ca.certificate_id,
        newStatus="ACTIVE",
        newAutoRegistrationStatus="ENABLE",
        registrationConfig={"templateBody": TEMPLATE, "roleArn": ROLE_ARN},
    )
    described = iot.describe_ca_certificate(certificateId=ca.certificate_id)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert described["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"
    assert described["certificateDescription"]["customerVersion"] == 2
    assert described["registrationConfig"]["roleArn"] == ROLE_ARN
    iot.update_ca_certificate(certificateId=ca.certificate_id, removeAutoRegistration=True)
    assert "registrationConfig" not in iot.describe_ca_certificate(certificateId=ca.certificate_id)
    with aws_error("InvalidRequestException"):
        iot.update_ca_certificate(certificateId=ca.certificate_id, newStatus="REVOKED")


def test_update_unknown_ca_is_not_found(iot) -> None:
    with aws_error("ResourceNotFoundException", 404):
        iot.update_ca_certificate(certificateId="ef" * 32, newStatus="ACTIVE")


def test_delete_ca_certificate_rules(iot) -> None:
    ca = new_ca()
    register_ca(iot, ca, setAsActive=True)
    with aws_error("CertificateStateException", 406):
        iot.delete_ca_certificate(certificateId=ca.certificate_id)
    iot.update_ca_certificate(certificateId=ca.certificate_id, newStatus="INACTIVE")
    iot.delete_ca_certificate(certificateId=ca.certificate_id)
    with aws_error("ResourceNotFoundException", 404):
        iot.describe_ca_certificate(certificateId=ca.certificate_id)


def test_list_ca_certificates_pages(iot) -> None:
    registered = set()
    for _ in range(3):
        ca = new_ca()
        register_ca(iot, ca)
        registered.add(ca.certificate_id)
    pages = list(
        iot.get_paginator("list_ca_certificates").paginate(PaginationConfig={"PageSize": 2})
    )
    assert len(pages) >= 2
    listed = [c["certificateId"] for page in pages for c in page["certificates"]]
    assert registered <= set(listed)
    assert len(listed) == len(set(listed))
    assert set(pages[0]["certificates"][0]) == {
        "certificateArn",
        "certificateId",
        "status",
        "creationDate",
    }


def test_list_ca_certificates_by_template(iot) -> None:
    template = unique("jitp")
    iot.create_provisioning_template(
        templateName=template, templateBody=TEMPLATE, provisioningRoleArn=ROLE_ARN, type="JITP"
    )
    ca = new_ca()
    register_ca(iot, ca, registrationConfig={"templateName": template})
    listed = iot.list_ca_certificates(templateName=template)["certificates"]
    assert [c["certificateId"] for c in listed] == [ca.certificate_id]
    with aws_error("DeleteConflictException", 409):
        iot.delete_provisioning_template(templateName=template)


def test_an_expired_verification_certificate_is_rejected(iot) -> None:
    past = now_utc() - timedelta(days=30)
    ca = CertificateAuthority.create_root(
        DeviceSubject(common_name=unique("old-ca")), KeyType.EC_P256, 365, past
    )
    code = iot.get_registration_code()["registrationCode"]
    verification = ca.verification_certificate(code, KeyType.EC_P256, past, validity_days=1)
    with aws_error("CertificateValidationException", 400):
        iot.register_ca_certificate(
            caCertificate=ca.certificate_pem().decode(),
            verificationCertificate=verification.certificate_pem.decode(),
        )
