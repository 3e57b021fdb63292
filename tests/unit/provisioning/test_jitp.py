"""JITP's built-in parameters: the eight documented names, filled only from the subject."""

from __future__ import annotations

import pytest

from fleet_sim.provisioning import JITP_PARAMETERS, jitp_parameters
from fleet_sim.tls.subject import DeviceSubject

CERT_ID = "0f" * 32


def test_the_eight_documented_names() -> None:
    assert JITP_PARAMETERS == (
        "AWS::IoT::Certificate::Country",
        "AWS::IoT::Certificate::Organization",
        "AWS::IoT::Certificate::OrganizationalUnit",
        "AWS::IoT::Certificate::DistinguishedNameQualifier",
        "AWS::IoT::Certificate::StateName",
        "AWS::IoT::Certificate::CommonName",
        "AWS::IoT::Certificate::SerialNumber",
        "AWS::IoT::Certificate::Id",
    )


def test_every_field_of_a_full_subject() -> None:
    subject = DeviceSubject(
        common_name="dev-1",
        country="DE",
        organization="Acme",
        organizational_unit="Lights",
        state="Bavaria",
        locality="Munich",
        serial_number="SN-1",
        dn_qualifier="q1",
    )
    assert jitp_parameters(CERT_ID, subject) == {
        "AWS::IoT::Certificate::Country": "DE",
        "AWS::IoT::Certificate::Organization": "Acme",
        "AWS::IoT::Certificate::OrganizationalUnit": "Lights",
        "AWS::IoT::Certificate::DistinguishedNameQualifier": "q1",
        "AWS::IoT::Certificate::StateName": "Bavaria",
        "AWS::IoT::Certificate::CommonName": "dev-1",
        "AWS::IoT::Certificate::SerialNumber": "SN-1",
        "AWS::IoT::Certificate::Id": CERT_ID,
    }


@pytest.mark.parametrize(
    ("subject", "names"),
    [
        (DeviceSubject(), {"AWS::IoT::Certificate::Id"}),
        (
            DeviceSubject(common_name="x", locality="Munich"),
            {"AWS::IoT::Certificate::Id", "AWS::IoT::Certificate::CommonName"},
        ),
    ],
)
def test_only_fields_the_certificate_has(subject: DeviceSubject, names: set[str]) -> None:
    """Locality is a policy variable, not a JITP parameter; absent fields give no value."""
    assert set(jitp_parameters(CERT_ID, subject)) == names
