"""The route table, request parser and output renderer built from botocore's IoT model."""

from __future__ import annotations

import inspect

import pytest

from fleet_sim import errors
from fleet_sim.emulator.control_plane import HANDLERS
from fleet_sim.emulator.control_plane.service_model import load_iot_api
from fleet_sim.errors import InvalidRequest


@pytest.fixture(scope="module")
def api():
    return load_iot_api()


@pytest.mark.parametrize(
    ("method", "path", "operation", "labels"),
    [
        ("POST", "/things", "RegisterThing", {}),
        ("POST", "/things/dev-1", "CreateThing", {"thingName": "dev-1"}),
        ("GET", "/things/dev-1/principals", "ListThingPrincipals", {"thingName": "dev-1"}),
        ("PUT", "/thing-groups/addThingToThingGroup", "AddThingToThingGroup", {}),
        (
            "PATCH",
            "/thing-groups/addThingToThingGroup",
            "UpdateThingGroup",
            {"thingGroupName": "addThingToThingGroup"},
        ),
        ("GET", "/certificates", "ListCertificates", {}),
        ("PUT", "/certificates/abc", "UpdateCertificate", {"certificateId": "abc"}),
        (
            "POST",
            "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A1%3Acert%2Fab",
            "ListAttachedPolicies",
            {"target": "arn:aws:iot:us-east-1:1:cert/ab"},
        ),
        (
            "GET",
            "/destinations/arn:aws:iot:r:1:ruledestination/a/b",
            "GetTopicRuleDestination",
            {"arn": "arn:aws:iot:r:1:ruledestination/a/b"},
        ),
        (
            "GET",
            "/provisioning-templates/t/versions/3",
            "DescribeProvisioningTemplateVersion",
            {"templateName": "t", "versionId": "3"},
        ),
    ],
)
def test_routes(api, method, path, operation, labels) -> None:
    assert api.match(method, path) == (operation, labels)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/no-such-thing"), ("DELETE", "/things"), ("GET", "/things//x")]
)
def test_unknown_routes(api, method, path) -> None:
    assert api.match(method, path) is None


def test_request_members_come_from_their_locations(api) -> None:
    params = api.parse_request(
        "ListPrincipalThings",
        labels={},
        query={"maxResults": ["5"], "nextToken": ["t"]},
        headers={"X-Amzn-Principal": "arn:p"},
        body=b"",
    )
    assert params == {"maxResults": 5, "nextToken": "t", "principal": "arn:p"}
    params = api.parse_request(
        "UpdateCACertificate",
        labels={"caCertificateId": "ab"},
        query={"newStatus": ["ACTIVE"]},
        headers={},
        body=b'{"registrationConfig": {"roleArn": "r"}, "removeAutoRegistration": false}',
    )
    assert params == {
        "certificateId": "ab",
        "newStatus": "ACTIVE",
        "registrationConfig": {"roleArn": "r"},
        "removeAutoRegistration": False,
    }


@pytest.mark.parametrize(
    ("operation", "query", "body"),
    [
        ("ListThings", {"maxResults": ["many"]}, b""),
        ("CreateKeysAndCertificate", {"setAsActive": ["yes"]}, b""),
        ("CreatePolicy", {}, b"[1]"),
        ("CreatePolicy", {}, b"{not json"),
        ("CreatePolicy", {}, b'{"policyDocument": 5}'),
        ("CreatePolicy", {}, b"{}"),  # policyName is required
    ],
)
def test_malformed_requests_are_invalid(api, operation, query, body) -> None:
    with pytest.raises(InvalidRequest):
        api.parse_request(operation, labels={}, query=query, headers={}, body=body)


def test_output_rendering(api) -> None:
    rendered = api.render_output(
        "GetPolicy",
        {
            "policyName": "p",
            "creationDate": 1700000000.25,
            "lastModifiedDate": 5.0,
            "generationId": None,
        },
    )
    assert rendered == {"policyName": "p", "creationDate": 1700000000.25, "lastModifiedDate": 5}
    with pytest.raises(ValueError, match="no member"):
        api.render_output("GetPolicy", {"policyNme": "typo"})


def test_every_handler_names_a_model_operation(api) -> None:
    assert set(HANDLERS) <= set(api.operation_names)


def test_emulator_errors_use_the_models_http_status(api) -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.EmulatorError)
    ]
    checked = 0
    for cls in classes:
        status = api.error_status(cls.aws_code)
        if status is not None:
            assert cls.http_status == status, cls.__name__
            checked += 1
    assert checked >= 15
