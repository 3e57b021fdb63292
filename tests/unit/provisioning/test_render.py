"""Rendering the documented example templates, Defaults, missing parameters, many devices."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from fleet_sim.errors import MissingTemplateParameter, TemplateError
from fleet_sim.provisioning import (
    CertificateMethod,
    CertificateOverrides,
    OverrideAction,
    ThingOverrides,
    jitp_parameters,
    parse_template,
    render_template,
)
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.provisioning.examples import (
    BULK,
    CERT_ID,
    FLEET,
    JITP,
    JITP_VALUES,
    SAMPLE_SCRIPTS_BODY,
    body,
)

CN = "AWS::IoT::Certificate::CommonName"
SERIAL = "AWS::IoT::Certificate::SerialNumber"
COUNTRY = "AWS::IoT::Certificate::Country"
ID = "AWS::IoT::Certificate::Id"

JITP_POLICY_TEXT = JITP["Resources"]["policy"]["Properties"]["PolicyDocument"]
FLEET_POLICY_TEXT = json.dumps(
    FLEET["Resources"]["policy"]["Properties"]["PolicyDocument"],
    sort_keys=True,
    separators=(",", ":"),
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def without(values: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in values.items() if key not in names}


def test_jitp_template_of_the_developer_guide() -> None:
    plan = render_template(parse_template(body(JITP), name="JITP"), JITP_VALUES)
    assert plan.thing is not None
    assert plan.thing.logical_name == "thing"
    assert plan.thing.name == "bulb-0001"
    assert dict(plan.thing.attributes or {}) == {"version": "v1", "serialNumber": "SN-0001"}
    assert plan.thing.type_name == "lightBulb-versionA"
    assert plan.thing.groups == ("v1-lightbulbs", "DE")
    assert plan.thing.billing_group is None
    assert plan.thing.overrides == ThingOverrides(
        OverrideAction.MERGE, OverrideAction.REPLACE, OverrideAction.DO_NOTHING
    )
    assert plan.certificate is not None
    assert plan.certificate.method is CertificateMethod.CERTIFICATE_ID
    assert plan.certificate.certificate_id == CERT_ID
    assert plan.certificate.status == "ACTIVE"
    assert plan.certificate.overrides == CertificateOverrides(OverrideAction.DO_NOTHING)
    (policy,) = plan.policies
    assert policy.document == JITP_POLICY_TEXT
    assert policy.name == sha256(JITP_POLICY_TEXT)
    assert dict(plan.device_configuration) == {}


def test_jitp_from_a_certificate_subject() -> None:
    subject = DeviceSubject(common_name="bulb-7", serial_number="SN-7", country="FR")
    plan = render_template(parse_template(JITP), jitp_parameters(CERT_ID, subject))
    assert plan.thing is not None
    assert (plan.thing.name, plan.thing.groups) == ("bulb-7", ("v1-lightbulbs", "FR"))
    assert plan.certificate is not None
    assert plan.certificate.certificate_id == CERT_ID


def test_jitp_certificate_without_a_declared_field_fails_as_on_aws() -> None:
    """AWS: provisioning fails if the certificate lacks a value for a declared parameter."""
    subject = DeviceSubject(common_name="bulb-7", serial_number="SN-7")  # no C=
    template = parse_template(JITP, name="JITP")
    with pytest.raises(MissingTemplateParameter) as caught:
        render_template(template, jitp_parameters(CERT_ID, subject))
    assert caught.value.parameter == COUNTRY
    assert str(caught.value) == (
        "template 'JITP': Parameters.AWS::IoT::Certificate::Country: "
        "no value for parameter 'AWS::IoT::Certificate::Country' and no Default"
    )
    assert caught.value.failure == "missing_template_parameter"
    assert caught.value.aws_code == "InvalidRequestException"


def test_a_declared_but_unused_parameter_is_still_required() -> None:
    template = copy.deepcopy(JITP)
    template["Parameters"]["AWS::IoT::Certificate::Organization"] = {"Type": "String"}
    with pytest.raises(MissingTemplateParameter, match="Organization"):
        render_template(parse_template(template), JITP_VALUES)


def test_sample_scripts_minimal_template() -> None:
    template = parse_template(SAMPLE_SCRIPTS_BODY)
    values = {CN: "dev-1", SERIAL: "42", ID: CERT_ID}
    plan = render_template(template, values)
    assert plan.thing is not None
    assert plan.thing.name == "dev-1"
    assert plan.thing.attributes == {}
    assert plan.certificate is not None
    assert (plan.certificate.certificate_id, plan.certificate.status) == (CERT_ID, "ACTIVE")
    (policy,) = plan.policies
    assert (policy.name, policy.document) == ("IoTAccess", None)
    with pytest.raises(MissingTemplateParameter, match="SerialNumber"):
        render_template(template, without(values, SERIAL))


def test_fleet_provisioning_example_with_mappings_and_device_configuration() -> None:
    template = parse_template(FLEET, name="fleet")
    assert template.certificate_method is CertificateMethod.CERTIFICATE_ID
    assert ID in template.implicit_parameters
    plan = render_template(
        template, {"SerialNumber": "SN1", "DeviceLocation": "Seattle", ID: CERT_ID}
    )
    assert plan.thing is not None
    assert plan.thing.name == "SN1"
    assert plan.thing.type_name == "ThingPrefix_SN1"
    assert plan.thing.billing_group == "LightBulbBillingGroup"
    assert plan.thing.groups == ("v1-lightbulbs", "WA")
    assert plan.certificate is not None
    assert plan.certificate.status == "ACTIVE"  # "Active" in the template
    assert plan.certificate.overrides == CertificateOverrides(OverrideAction.REPLACE)
    (policy,) = plan.policies
    assert policy.document == FLEET_POLICY_TEXT
    assert policy.name == sha256(FLEET_POLICY_TEXT)
    assert dict(plan.device_configuration) == {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": "https://example.aws",
    }


def test_fleet_template_needs_the_certificate_id_the_service_supplies() -> None:
    template = parse_template(FLEET, name="fleet")
    with pytest.raises(MissingTemplateParameter) as caught:
        render_template(template, {"SerialNumber": "SN1", "DeviceLocation": "Seattle"})
    assert caught.value.parameter == ID


def test_fleet_template_with_an_unmapped_location_fails() -> None:
    template = parse_template(FLEET, name="fleet")
    with pytest.raises(TemplateError) as caught:
        render_template(template, {"SerialNumber": "S", "DeviceLocation": "Paris", ID: CERT_ID})
    assert str(caught.value) == (
        "template 'fleet': DeviceConfiguration.LocationUrl.Fn::FindInMap: "
        "mapping 'LocationTable' has no key 'Paris'"
    )


@pytest.mark.parametrize(
    ("given", "groups"),
    [
        pytest.param({}, ("v1-lightbulbs", "WA"), id="default"),
        pytest.param({"Location": "OR"}, ("v1-lightbulbs", "OR"), id="given"),
        pytest.param({"Location": ""}, None, id="empty-given-is-a-value"),
    ],
)
def test_defaults_fill_missing_parameters(given: dict[str, str], groups: Any) -> None:
    template = parse_template(BULK)
    values = {"ThingName": "t1", "SerialNumber": "1", "CSR": "-----BEGIN…", **given}
    if groups is None:
        with pytest.raises(TemplateError, match=r"ThingGroups\[1\]: must not be empty"):
            render_template(template, values)
        return
    plan = render_template(template, values)
    assert plan.thing is not None
    assert plan.thing.groups == groups
    assert plan.certificate is not None
    assert plan.certificate.method is CertificateMethod.CSR
    assert plan.certificate.csr == "-----BEGIN…"


def test_one_template_renders_many_devices() -> None:
    template = parse_template(JITP)
    plans = [
        render_template(template, {**JITP_VALUES, CN: f"bulb-{i}", SERIAL: f"SN-{i}"})
        for i in range(50)
    ]
    assert [p.thing.name for p in plans if p.thing] == [f"bulb-{i}" for i in range(50)]
    assert {p.policies[0].name for p in plans} == {sha256(JITP_POLICY_TEXT)}
    again = render_template(template, {**JITP_VALUES, CN: "bulb-3", SERIAL: "SN-3"})
    assert again == plans[3]


def test_extra_parameters_are_ignored_and_values_must_be_strings() -> None:
    template = parse_template(JITP, name="JITP")
    plan = render_template(template, {**JITP_VALUES, "Unrelated": "x"})
    assert plan.thing is not None
    with pytest.raises(TemplateError) as caught:
        render_template(template, {**JITP_VALUES, SERIAL: 7})  # type: ignore[dict-item]
    assert caught.value.path == f"Parameters.{SERIAL}"
    assert "must be a string, got a number" in str(caught.value)


def test_template_without_resources_renders_an_empty_plan() -> None:
    plan = render_template(parse_template('{"Resources": {}}'), {})
    assert (plan.thing, plan.certificate, plan.policies) == (None, None, ())
