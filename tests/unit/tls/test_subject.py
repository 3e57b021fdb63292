from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from fleet_sim.errors import CertificateError
from fleet_sim.tls.subject import DeviceSubject

FULL = DeviceSubject(
    common_name="sensor-00001",
    country="DE",
    organization="Acme GmbH",
    organizational_unit="Sensors",
    state="Bavaria",
    locality="Munich",
    serial_number="SN-0001",
    dn_qualifier="plant.7",
)


def test_round_trip_every_field():
    assert DeviceSubject.from_name(FULL.to_name()) == FULL


def test_attributes_use_the_x520_oids_and_order():
    name = FULL.to_name()
    oids = [attribute.oid for attribute in name]
    assert oids == [
        NameOID.COUNTRY_NAME,
        NameOID.STATE_OR_PROVINCE_NAME,
        NameOID.LOCALITY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
        NameOID.SERIAL_NUMBER,
        NameOID.DN_QUALIFIER,
    ]
    serial = name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0]
    assert serial.oid.dotted_string == "2.5.4.5"
    assert serial._type is _ASN1Type.PrintableString


def test_absent_fields_are_left_out():
    name = DeviceSubject(common_name="only").to_name()
    assert name == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only")])
    assert DeviceSubject(common_name="only").to_dict() == {"common_name": "only"}


def test_from_name_ignores_other_attributes_and_takes_the_first_value():
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "first"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "second"),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    assert DeviceSubject.from_name(name) == DeviceSubject(
        common_name="x", organizational_unit="first"
    )


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        (DeviceSubject(country="USA"), "subject C must be 2 letters, got 3"),
        (DeviceSubject(common_name="x" * 65), "subject CN must be 1–64 chars, got 65"),
        (DeviceSubject(common_name=""), "subject CN must be 1–64 chars, got 0"),
        (DeviceSubject(serial_number="SN_1"), "serialNumber 'SN_1' has characters.*'_'"),
        (DeviceSubject(dn_qualifier="a@b"), "dnQualifier 'a@b' has characters.*'@'"),
        (DeviceSubject(state="s" * 129), "subject ST must be 1–128 chars"),
    ],
)
def test_invalid_fields_are_named(subject, message):
    with pytest.raises(CertificateError, match=message):
        subject.to_name()


def test_cn_of_64_chars_is_fine():
    DeviceSubject(common_name="a" * 64).validate()


def test_dict_round_trip_and_errors():
    assert DeviceSubject.from_dict(FULL.to_dict()) == FULL
    assert DeviceSubject.from_dict({"common_name": "x", "country": None}) == DeviceSubject("x")
    with pytest.raises(CertificateError, match="unknown subject field 'title'"):
        DeviceSubject.from_dict({"title": "Dr"})
    with pytest.raises(CertificateError, match="'country' must be a string"):
        DeviceSubject.from_dict({"country": 49})


def test_merge_and_with_common_name():
    base = DeviceSubject(common_name="a", organization="Acme")
    merged = base.merged_with(DeviceSubject(country="US", organization="Other"))
    assert merged == DeviceSubject(common_name="a", organization="Other", country="US")
    assert base.with_common_name("b").common_name == "b"


def test_openssl_spelling_escapes_slashes():
    subject = DeviceSubject(common_name="a/b", country="US", serial_number="1")
    assert subject.to_openssl() == "/C=US/CN=a\\/b/serialNumber=1"
    assert DeviceSubject().to_openssl() == "/"
