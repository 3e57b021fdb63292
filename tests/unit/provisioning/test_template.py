"""Parsing: sections, resources, properties, OverrideSettings, Status, policy documents; every
error names the resource and the property."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from fleet_sim.errors import InvalidRequest, TemplateError
from fleet_sim.provisioning import (
    CertificateOverrides,
    OverrideAction,
    ThingOverrides,
    parse_template,
    render_template,
)
from tests.unit.provisioning.examples import JITP, JITP_VALUES

Edit = Callable[[dict[str, Any]], None]


def edited(edit: Edit) -> dict[str, Any]:
    template = copy.deepcopy(JITP)
    edit(template)
    return template


def thing(template: dict[str, Any]) -> Any:
    return template["Resources"]["thing"]


def cert(template: dict[str, Any]) -> Any:
    return template["Resources"]["certificate"]


def policy(template: dict[str, Any]) -> Any:
    return template["Resources"]["policy"]


def test_the_documented_message_format() -> None:
    def edit(t: dict[str, Any]) -> None:
        thing(t)["Properties"]["ThingName"] = {"Ref": "Serial"}

    with pytest.raises(TemplateError) as caught:
        parse_template(edited(edit), name="JITP")
    error = caught.value
    assert str(error) == (
        "template 'JITP': Resources.thing.Properties.ThingName: "
        "Ref to undeclared parameter 'Serial'"
    )
    assert (error.resource, error.property_name) == ("thing", "ThingName")
    assert isinstance(error, InvalidRequest)
    assert (error.aws_code, error.http_status, error.failure) == (
        "InvalidRequestException",
        400,
        "invalid_template",
    )


def _set(path: tuple[str, ...], value: Any) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        node = template
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _delete(path: tuple[str, ...]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        node = template
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


T = ("Resources", "thing")
C = ("Resources", "certificate")
PO = ("Resources", "policy")


@pytest.mark.parametrize(
    ("edit", "path", "resource", "prop", "problem"),
    [
        pytest.param(
            _set(("Resource",), {}),
            "Resource",
            None,
            None,
            "unknown section",
            id="unknown-section",
        ),
        pytest.param(
            _delete(("Resources",)), "Resources", None, None, "required", id="no-resources"
        ),
        pytest.param(
            _set(("Parameters", "X"), {"Type": "Number"}),
            "Parameters.X.Type",
            None,
            None,
            "only String parameters are supported, got 'Number'",
            id="parameter-type",
        ),
        pytest.param(
            _set(("Parameters", "X"), {"Type": "String", "Default": 3}),
            "Parameters.X.Default",
            None,
            None,
            "must be a string, got a number",
            id="parameter-default",
        ),
        pytest.param(
            _set(("Parameters", "X"), {"Type": "String", "AllowedValues": ["a"]}),
            "Parameters.X.AllowedValues",
            None,
            None,
            "unknown member",
            id="parameter-member",
        ),
        pytest.param(
            _set(("Parameters", "X"), {}), "Parameters.X.Type", None, None, "required", id="no-type"
        ),
        pytest.param(
            _set(("Mappings",), {"M": {"k": {"Ref": "X"}}}),
            "Mappings.M.k",
            None,
            None,
            "Mappings may not contain parameters or function calls",
            id="mappings-function",
        ),
        pytest.param(
            _set(("Mappings",), {"M": {"k": {"v": 1}}}),
            "Mappings.M.k.v",
            None,
            None,
            "must be a string, got a number",
            id="mappings-value",
        ),
        pytest.param(
            _set((*T, "Type"), "AWS::IoT::Thingy"),
            "Resources.thing.Type",
            "thing",
            None,
            "must be one of",
            id="resource-type",
        ),
        pytest.param(
            _set((*T, "DependsOn"), "x"),
            "Resources.thing.DependsOn",
            "thing",
            None,
            "unknown member",
            id="resource-member",
        ),
        pytest.param(
            _set(("Resources", "thing2"), {"Type": "AWS::IoT::Thing", "Properties": {}}),
            "Resources.thing2.Type",
            "thing2",
            None,
            "a template has at most one AWS::IoT::Thing (already 'thing')",
            id="two-things",
        ),
        pytest.param(
            _delete((*T, "Properties", "ThingName")),
            "Resources.thing.Properties.ThingName",
            "thing",
            None,
            "required",
            id="no-thing-name",
        ),
        pytest.param(
            _set((*T, "Properties", "ThingName"), ""),
            "Resources.thing.Properties.ThingName",
            "thing",
            "ThingName",
            "must not be empty",
            id="empty-thing-name",
        ),
        pytest.param(
            _set((*T, "Properties", "AttributePayload"), {"version": 1}),
            "Resources.thing.Properties.AttributePayload.version",
            "thing",
            "AttributePayload",
            "must be a string, got a number",
            id="attribute-number",
        ),
        pytest.param(
            _set((*T, "Properties", "ThingGroups"), "g1"),
            "Resources.thing.Properties.ThingGroups",
            "thing",
            "ThingGroups",
            "must be a list of strings, got a string",
            id="groups-not-a-list",
        ),
        pytest.param(
            _set((*T, "Properties", "PackageVersions"), {}),
            "Resources.thing.Properties.PackageVersions",
            "thing",
            None,
            "PackageVersions is not emulated",
            id="package-versions",
        ),
        pytest.param(
            _set((*C, "Properties", "CertificateID"), "x"),
            "Resources.certificate.Properties.CertificateID",
            "certificate",
            None,
            "unknown AWS::IoT::Certificate property",
            id="unknown-certificate-property",
        ),
        pytest.param(
            _set((*C, "Properties", "CertificatePem"), "x"),
            "Resources.certificate.Properties",
            "certificate",
            None,
            "exactly one of CertificateSigningRequest, CertificateId, CertificatePem "
            "(found CertificateId, CertificatePem)",
            id="two-certificate-methods",
        ),
        pytest.param(
            _set((*C, "Properties"), {"Status": "ACTIVE"}),
            "Resources.certificate.Properties",
            "certificate",
            None,
            "(found none)",
            id="no-certificate-method",
        ),
        pytest.param(
            _set((*C, "Properties", "CACertificatePem"), "x"),
            "Resources.certificate.Properties.CACertificatePem",
            "certificate",
            None,
            "only allowed with CertificatePem",
            id="ca-pem-without-pem",
        ),
        pytest.param(
            _set((*C, "Properties", "Status"), "ENABLED"),
            "Resources.certificate.Properties.Status",
            "certificate",
            "Status",
            "must be ACTIVE or INACTIVE, got 'ENABLED'",
            id="status",
        ),
        pytest.param(
            _set((*PO, "Properties", "PolicyName"), "p"),
            "Resources.policy.Properties",
            "policy",
            None,
            "a policy needs exactly one of PolicyName, PolicyDocument",
            id="policy-both",
        ),
        pytest.param(
            _set((*PO, "Properties"), {}),
            "Resources.policy.Properties",
            "policy",
            None,
            "a policy needs exactly one of PolicyName, PolicyDocument",
            id="policy-neither",
        ),
        pytest.param(
            _set((*PO, "Properties", "PolicyDocument"), "{not json"),
            "Resources.policy.Properties.PolicyDocument",
            "policy",
            "PolicyDocument",
            "not a valid policy",
            id="policy-not-json",
        ),
        pytest.param(
            _set((*PO, "Properties", "PolicyDocument"), {"Statement": [{"Effect": "allow"}]}),
            "Resources.policy.Properties.PolicyDocument",
            "policy",
            "PolicyDocument",
            "not a valid policy",
            id="policy-grammar",
        ),
        pytest.param(
            _set((*PO, "Properties", "PolicyDocument"), 12),
            "Resources.policy.Properties.PolicyDocument",
            "policy",
            "PolicyDocument",
            "must be a JSON string or an object, got a number",
            id="policy-number",
        ),
        pytest.param(
            _set((*T, "OverrideSettings", "ThingTypeName"), "MERGE"),
            "Resources.thing.OverrideSettings.ThingTypeName",
            "thing",
            None,
            "MERGE is valid only for a thing's AttributePayload and ThingGroups",
            id="override-merge-type",
        ),
        pytest.param(
            _set((*C, "OverrideSettings", "Status"), "MERGE"),
            "Resources.certificate.OverrideSettings.Status",
            "certificate",
            None,
            "MERGE is valid only",
            id="override-merge-status",
        ),
        pytest.param(
            _set((*T, "OverrideSettings", "AttributePayload"), "SKIP"),
            "Resources.thing.OverrideSettings.AttributePayload",
            "thing",
            None,
            "must be one of DO_NOTHING, REPLACE, FAIL, MERGE, got 'SKIP'",
            id="override-action",
        ),
        pytest.param(
            _set((*T, "OverrideSettings", "ThingName"), "REPLACE"),
            "Resources.thing.OverrideSettings.ThingName",
            "thing",
            None,
            "a thing can override AttributePayload, ThingTypeName and ThingGroups",
            id="override-key",
        ),
        pytest.param(
            _set((*T, "OverrideSettings", "ATTRIBUTE_PAYLOAD"), "REPLACE"),
            "Resources.thing.OverrideSettings.ATTRIBUTE_PAYLOAD",
            "thing",
            None,
            "given twice",
            id="override-twice",
        ),
        pytest.param(
            _set((*C, "OverrideSettings", "CertificateId"), "REPLACE"),
            "Resources.certificate.OverrideSettings.CertificateId",
            "certificate",
            None,
            "a certificate can override only Status",
            id="override-certificate-key",
        ),
        pytest.param(
            _set((*PO, "OverrideSettings"), {}),
            "Resources.policy.OverrideSettings",
            "policy",
            None,
            "policies have no OverrideSettings",
            id="override-policy",
        ),
        pytest.param(
            _set(("DeviceConfiguration",), {"a": {"b": "c"}}),
            "DeviceConfiguration.a",
            None,
            None,
            "nested objects are not supported",
            id="configuration-nested",
        ),
        pytest.param(
            _set(("DeviceConfiguration",), {"a": 1}),
            "DeviceConfiguration.a",
            None,
            None,
            "must be a string, got a number",
            id="configuration-number",
        ),
        pytest.param(
            _set((*T, "Condition"), "Nope"),
            "Resources.thing.Condition",
            "thing",
            None,
            "names no declared condition: 'Nope'",
            id="resource-condition",
        ),
    ],
)
def test_errors_name_resource_and_property(
    edit: Edit, path: str, resource: str | None, prop: str | None, problem: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(edited(edit), name="JITP")
    error = caught.value
    assert error.path == path
    assert (error.resource, error.property_name) == (resource, prop)
    assert problem in error.problem
    assert str(error).startswith(f"template 'JITP': {path}: ")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got a list"),
        ('{"Resources": []}', "Resources: must be an object, got a list"),
    ],
)
def test_bodies_that_are_not_templates(body: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        parse_template(body)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("ACTIVE", "ACTIVE"), ("Active", "ACTIVE"), ("active", "ACTIVE"), ("Inactive", "INACTIVE")],
)
def test_status_is_case_insensitive(status: str, expected: str) -> None:
    plan = render_template(
        parse_template(edited(_set((*C, "Properties", "Status"), status))), JITP_VALUES
    )
    assert plan.certificate is not None
    assert plan.certificate.status == expected


def test_status_defaults_to_active_and_a_dynamic_status_is_checked_when_rendering() -> None:
    plan = render_template(
        parse_template(edited(_delete((*C, "Properties", "Status")))), JITP_VALUES
    )
    assert plan.certificate is not None
    assert plan.certificate.status == "ACTIVE"

    def dynamic(t: dict[str, Any]) -> None:
        t["Parameters"]["State"] = {"Type": "String"}
        cert(t)["Properties"]["Status"] = {"Ref": "State"}

    template = parse_template(edited(dynamic), name="JITP")
    inactive = render_template(template, {**JITP_VALUES, "State": "inactive"})
    assert inactive.certificate is not None
    assert inactive.certificate.status == "INACTIVE"
    with pytest.raises(TemplateError) as caught:
        render_template(template, {**JITP_VALUES, "State": "REVOKED"})
    assert str(caught.value) == (
        "template 'JITP': Resources.certificate.Properties.Status: "
        "must be ACTIVE or INACTIVE, got 'REVOKED'"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, ThingOverrides()),
        (
            {"ATTRIBUTE_PAYLOAD": "REPLACE", "THING_TYPE_NAME": "FAIL", "THING_GROUPS": "MERGE"},
            ThingOverrides(OverrideAction.REPLACE, OverrideAction.FAIL, OverrideAction.MERGE),
        ),
        (
            {"ThingGroups": "REPLACE"},
            ThingOverrides(thing_groups=OverrideAction.REPLACE),
        ),
    ],
)
def test_thing_override_settings(settings: dict[str, str], expected: ThingOverrides) -> None:
    plan = render_template(
        parse_template(edited(_set((*T, "OverrideSettings"), settings))), JITP_VALUES
    )
    assert plan.thing is not None
    assert plan.thing.overrides == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (None, CertificateOverrides(OverrideAction.REPLACE)),
        ({}, CertificateOverrides(OverrideAction.REPLACE)),
        ({"Status": "FAIL"}, CertificateOverrides(OverrideAction.FAIL)),
        ({"Status": "DO_NOTHING"}, CertificateOverrides(OverrideAction.DO_NOTHING)),
    ],
)
def test_certificate_override_settings(
    settings: dict[str, str] | None, expected: CertificateOverrides
) -> None:
    edit = (
        _delete((*C, "OverrideSettings"))
        if settings is None
        else _set((*C, "OverrideSettings"), settings)
    )
    plan = render_template(parse_template(edited(edit)), JITP_VALUES)
    assert plan.certificate is not None
    assert plan.certificate.overrides == expected


DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
}


@pytest.mark.parametrize(
    ("document", "text"),
    [
        pytest.param(json.dumps(DOCUMENT), json.dumps(DOCUMENT), id="string-kept-verbatim"),
        pytest.param(
            DOCUMENT, json.dumps(DOCUMENT, sort_keys=True, separators=(",", ":")), id="object"
        ),
        pytest.param(
            dict(reversed(DOCUMENT.items())),
            json.dumps(DOCUMENT, sort_keys=True, separators=(",", ":")),
            id="object-key-order-does-not-matter",
        ),
    ],
)
def test_policy_document_as_string_or_object(document: Any, text: str) -> None:
    plan = render_template(
        parse_template(edited(_set((*PO, "Properties", "PolicyDocument"), document))), JITP_VALUES
    )
    (rendered,) = plan.policies
    assert rendered.document == text
    assert rendered.name == hashlib.sha256(text.encode()).hexdigest()


def test_policy_document_with_intrinsics_and_a_policy_named_by_parameter() -> None:
    def edit(t: dict[str, Any]) -> None:
        t["Parameters"]["PolicyName"] = {"Type": "String", "Default": "fleet-policy"}
        policy(t)["Properties"]["PolicyDocument"] = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": {
                        "Fn::Sub": "arn:aws:iot:*:*:topic/dt/${AWS::IoT::Certificate::CommonName}"
                    },
                }
            ],
        }
        t["Resources"]["named"] = {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyName": {"Ref": "PolicyName"}},
        }

    plan = render_template(parse_template(edited(edit)), JITP_VALUES)
    by_document, by_name = plan.policies
    assert by_document.document is not None
    assert "topic/dt/bulb-0001" in by_document.document
    assert (by_name.logical_name, by_name.name, by_name.document) == (
        "named",
        "fleet-policy",
        None,
    )


def test_ignored_sections_and_template_accessors() -> None:
    template = parse_template(
        edited(_set(("Description",), "lights")) | {"AWSTemplateFormatVersion": "2010-09-09"}
    )
    assert [r.logical_name for r in template.resource("AWS::IoT::Policy")] == ["policy"]
    assert list(template.parameters) == list(JITP["Parameters"])
    assert template.parameters["AWS::IoT::Certificate::Id"].default is None


def test_dynamic_property_values_are_checked_when_rendering() -> None:
    def edit(t: dict[str, Any]) -> None:
        thing(t)["Properties"]["AttributePayload"]["parts"] = {
            "Fn::Split": ["-", {"Ref": "AWS::IoT::Certificate::CommonName"}]
        }

    template = parse_template(edited(edit), name="JITP")
    with pytest.raises(TemplateError) as caught:
        render_template(template, JITP_VALUES)
    assert str(caught.value) == (
        "template 'JITP': Resources.thing.Properties.AttributePayload.parts: "
        "must be a string, got a list"
    )
    assert (caught.value.resource, caught.value.property_name) == ("thing", "AttributePayload")
