"""Provisioning templates (with versions) and RegisterThing through real boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509

from tests.integration.control_plane.helpers import (
    ACCOUNT,
    REGION,
    ROLE_ARN,
    allow_all_policy,
    aws_error,
    csr_pem,
    device,
    new_ca,
    register_ca,
    unique,
)

BODY = json.dumps(
    {
        "Parameters": {"SerialNumber": {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": {"Ref": "SerialNumber"}},
            }
        },
    }
)


def test_provisioning_template_lifecycle(iot) -> None:
    name = unique("tmpl")
    created = iot.create_provisioning_template(
        templateName=name,
        templateBody=BODY,
        provisioningRoleArn=ROLE_ARN,
        enabled=True,
        description="fleet",
        preProvisioningHook={"targetArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
    )
    assert created["templateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/{name}"
    assert created["defaultVersionId"] == 1
    described = iot.describe_provisioning_template(templateName=name)
    assert described["type"] == "FLEET_PROVISIONING"
    assert described["enabled"] is True
    assert described["templateBody"] == BODY
    assert described["preProvisioningHook"]["payloadVersion"] == "2020-04-01"
    iot.update_provisioning_template(
        templateName=name, enabled=False, description="changed", removePreProvisioningHook=True
    )
    described = iot.describe_provisioning_template(templateName=name)
    assert (described["enabled"], described["description"]) == (False, "changed")
    assert "preProvisioningHook" not in described
    listed = iot.list_provisioning_templates()["templates"]
    assert name in [t["templateName"] for t in listed]
    iot.delete_provisioning_template(templateName=name)
    with aws_error("ResourceNotFoundException", 404):
        iot.describe_provisioning_template(templateName=name)


def test_provisioning_template_versions(iot) -> None:
    name = unique("versioned")
    iot.create_provisioning_template(
        templateName=name, templateBody=BODY, provisioningRoleArn=ROLE_ARN
    )
    second = iot.create_provisioning_template_version(
        templateName=name, templateBody=BODY.replace("SerialNumber", "Serial"), setAsDefault=True
    )
    assert (second["versionId"], second["isDefaultVersion"]) == (2, True)
    assert iot.describe_provisioning_template(templateName=name)["defaultVersionId"] == 2
    for _ in range(3):
        iot.create_provisioning_template_version(templateName=name, templateBody=BODY)
    with aws_error("VersionsLimitExceededException", 409):
        iot.create_provisioning_template_version(templateName=name, templateBody=BODY)
    first = iot.describe_provisioning_template_version(templateName=name, versionId=1)
    assert (first["versionId"], first["isDefaultVersion"]) == (1, False)
    assert first["templateBody"] == BODY
    page = iot.list_provisioning_template_versions(templateName=name, maxResults=2)
    rest = iot.list_provisioning_template_versions(
        templateName=name, maxResults=10, nextToken=page["nextToken"]
    )
    assert [v["versionId"] for v in page["versions"] + rest["versions"]] == [1, 2, 3, 4, 5]
    with aws_error("DeleteConflictException", 409):
        iot.delete_provisioning_template_version(templateName=name, versionId=2)
    iot.delete_provisioning_template_version(templateName=name, versionId=1)
    with aws_error("ResourceNotFoundException", 404):
        iot.describe_provisioning_template_version(templateName=name, versionId=1)
    iot.update_provisioning_template(templateName=name, defaultVersionId=3)
    assert iot.describe_provisioning_template(templateName=name)["defaultVersionId"] == 3


def test_provisioning_template_errors(iot) -> None:
    name = unique("errs")
    iot.create_provisioning_template(
        templateName=name, templateBody=BODY, provisioningRoleArn=ROLE_ARN
    )
    with aws_error("ResourceAlreadyExistsException", 409):
        iot.create_provisioning_template(
            templateName=name, templateBody=BODY, provisioningRoleArn=ROLE_ARN
        )
    with aws_error("InvalidRequestException", 400):
        iot.create_provisioning_template(
            templateName=unique("bad"), templateBody="not json", provisioningRoleArn=ROLE_ARN
        )
    with aws_error("InvalidRequestException", 400):
        iot.create_provisioning_template(
            templateName=unique("role"),
            templateBody=BODY,
            provisioningRoleArn="arn:aws:iam::1234:user/nobody",
        )
    with aws_error("ResourceNotFoundException", 404):
        iot.update_provisioning_template(templateName=unique("ghost"), enabled=True)


def test_list_provisioning_templates_pages(iot) -> None:
    names = sorted(unique("paged") for _ in range(3))
    for name in names:
        iot.create_provisioning_template(
            templateName=name, templateBody=BODY, provisioningRoleArn=ROLE_ARN
        )
    pages = list(
        iot.get_paginator("list_provisioning_templates").paginate(PaginationConfig={"PageSize": 2})
    )
    listed = [t["templateName"] for page in pages for t in page["templates"]]
    assert len(pages) >= 2
    assert set(names) <= set(listed)
    assert listed == sorted(listed)


TEMPLATE = {
    "Parameters": {
        "ThingName": {"Type": "String"},
        "Prefix": {"Type": "String", "Default": "dev"},
        "Csr": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Fn::Join": ["-", [{"Ref": "Prefix"}, {"Ref": "ThingName"}]]},
                "AttributePayload": {"model": "m1"},
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateSigningRequest": {"Ref": "Csr"}, "Status": "Active"},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyDocument": json.loads(allow_all_policy())},
        },
    },
}


def test_register_thing_with_a_csr(iot) -> None:
    serial = unique("serial")
    response = iot.register_thing(
        templateBody=json.dumps(TEMPLATE), parameters={"ThingName": serial, "Csr": csr_pem(serial)}
    )
    arns = response["resourceArns"]
    thing = f"dev-{serial}"
    assert arns["thing"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"
    cert = x509.load_pem_x509_certificate(response["certificatePem"].encode())
    assert cert.subject.rfc4514_string() == f"CN={serial}"
    assert iot.describe_thing(thingName=thing)["attributes"] == {"model": "m1"}
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arns["certificate"]]
    cert_id = arns["certificate"].rsplit("/", 1)[1]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    attached = iot.list_attached_policies(target=arns["certificate"])["policies"]
    assert [p["policyArn"] for p in attached] == [arns["policy"]]


def test_register_thing_with_a_certificate_pem_and_a_named_policy(iot) -> None:
    ca = new_ca("register-thing")
    register_ca(iot, ca, setAsActive=True)
    policy = unique("named")
    iot.create_policy(policyName=policy, policyDocument=allow_all_policy())
    name = unique("pem-thing")
    template = {
        "Parameters": {"Name": {"Type": "String"}, "Pem": {"Type": "String"}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Name"}}},
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificatePem": {"Ref": "Pem"}, "Status": "INACTIVE"},
            },
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": policy}},
        },
    }
    pem = device(ca, name).certificate_pem.decode()
    response = iot.register_thing(
        templateBody=json.dumps(template), parameters={"Name": name, "Pem": pem}
    )
    cert_id = response["resourceArns"]["certificate"].rsplit("/", 1)[1]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "INACTIVE"
    assert description["caCertificateId"] == ca.certificate_id
    assert iot.list_principal_things(principal=response["resourceArns"]["certificate"])[
        "things"
    ] == [name]


def test_register_thing_fails_as_a_whole(iot) -> None:
    name = unique("atomic")
    template = {
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": name}},
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateSigningRequest": csr_pem(name)},
            },
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "no-such-policy"}},
        }
    }
    with aws_error("ResourceRegistrationFailureException", 400):
        iot.register_thing(templateBody=json.dumps(template))
    with aws_error("ResourceNotFoundException"):
        iot.describe_thing(thingName=name)


@pytest.mark.parametrize(
    "template",
    [
        "not json",
        json.dumps({"Resources": {"x": {"Type": "AWS::IoT::Nope", "Properties": {}}}}),
        json.dumps(
            {
                "Resources": {
                    "t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "P"}}}
                }
            }
        ),
    ],
)
def test_register_thing_rejects_bad_templates(iot, template) -> None:
    with aws_error("InvalidRequestException", 400):
        iot.register_thing(templateBody=template)


def test_register_thing_with_mappings_and_override_settings(iot) -> None:
    """Mappings/Fn::FindInMap and OverrideSettings (refused by the interim renderer) work;
    resourceArns are keyed by the template's logical names, as in AWS's example."""
    group = unique("fleet")
    iot.create_thing_group(thingGroupName=group)
    name = unique("mapped")
    template: dict[str, Any] = {
        "Parameters": {"Name": {"Type": "String"}, "Model": {"Type": "String"}},
        "Mappings": {"Models": {"m1": {"Firmware": "1.0"}, "m2": {"Firmware": "2.0"}}},
        "Resources": {
            "Lamp": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Ref": "Name"},
                    "AttributePayload": {
                        "firmware": {"Fn::FindInMap": ["Models", {"Ref": "Model"}, "Firmware"]}
                    },
                    "ThingGroups": [group],
                },
                "OverrideSettings": {"AttributePayload": "MERGE", "ThingGroups": "DO_NOTHING"},
            },
            "Access": {
                "Type": "AWS::IoT::Policy",
                "Properties": {"PolicyDocument": allow_all_policy()},
            },
        },
    }
    first = iot.register_thing(
        templateBody=json.dumps(template), parameters={"Name": name, "Model": "m1"}
    )
    assert set(first["resourceArns"]) == {"Lamp", "Access"}
    assert first["resourceArns"]["Lamp"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"
    iot.update_thing(
        thingName=name, attributePayload={"attributes": {"owner": "ops"}, "merge": True}
    )
    iot.register_thing(templateBody=json.dumps(template), parameters={"Name": name, "Model": "m2"})
    attributes = iot.describe_thing(thingName=name)["attributes"]
    assert attributes == {"firmware": "2.0", "owner": "ops"}
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == [name]

    template["Resources"]["Lamp"]["OverrideSettings"] = {"AttributePayload": "FAIL"}
    with aws_error("ResourceConflictsException", 409):
        iot.register_thing(
            templateBody=json.dumps(template), parameters={"Name": name, "Model": "m1"}
        )
    with aws_error("InvalidRequestException", 400):
        iot.register_thing(
            templateBody=json.dumps(template), parameters={"Name": name, "Model": "m9"}
        )


def test_register_thing_missing_parameter_is_invalid_request(iot) -> None:
    template = {
        "Parameters": {"Name": {"Type": "String"}, "Country": {"Type": "String"}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Name"}}}
        },
    }
    with aws_error("InvalidRequestException", 400) as info:
        iot.register_thing(templateBody=json.dumps(template), parameters={"Name": unique("n")})
    assert "no value for parameter 'Country' and no Default" in str(info.value)
