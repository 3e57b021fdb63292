"""Provisioning templates as AWS documents them, for the rendering and apply tests."""

from __future__ import annotations

import json
from typing import Any

#: The JITP template of the Developer Guide (reference §1.5).
JITP: dict[str, Any] = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::SerialNumber": {"Type": "String"},
        "AWS::IoT::Certificate::Country": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "AttributePayload": {
                    "version": "v1",
                    "serialNumber": {"Ref": "AWS::IoT::Certificate::SerialNumber"},
                },
                "ThingTypeName": "lightBulb-versionA",
                "ThingGroups": ["v1-lightbulbs", {"Ref": "AWS::IoT::Certificate::Country"}],
            },
            "OverrideSettings": {
                "AttributePayload": "MERGE",
                "ThingTypeName": "REPLACE",
                "ThingGroups": "DO_NOTHING",
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "ACTIVE",
            },
            "OverrideSettings": {"Status": "DO_NOTHING"},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {
                "PolicyDocument": '{ "Version": "2012-10-17", "Statement": [{ "Effect": '
                '"Allow", "Action":["iot:Publish"], "Resource": '
                '["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"] }] }'
            },
        },
    },
}

#: The ``templateBody`` text of aws-samples/aws-iot-jitp-sample-scripts ``etc/regfile.tmp``.
SAMPLE_SCRIPTS_BODY = (
    '{ "Parameters" : { "AWS::IoT::Certificate::CommonName": { "Type": "String" }, '
    '"AWS::IoT::Certificate::SerialNumber": {  "Type": "String" }, '
    '"AWS::IoT::Certificate::Id": { "Type": "String" } }, "Resources": { "thing": { '
    '"Type": "AWS::IoT::Thing", "Properties": { "ThingName": {"Ref": '
    '"AWS::IoT::Certificate::CommonName"  }, "AttributePayload": {} }}, "certificate": { '
    '"Type": "AWS::IoT::Certificate", "Properties": { "CertificateId": {"Ref": '
    '"AWS::IoT::Certificate::Id" }, "Status": "ACTIVE" }}, "policy": { "Type": '
    '"AWS::IoT::Policy", "Properties": { "PolicyName": "IoTAccess" } }}}'
)

#: The Developer Guide's fleet provisioning example (its published JSON has one closing brace
#: too many; this is the evident intent).
FLEET: dict[str, Any] = {
    "Parameters": {
        "SerialNumber": {"Type": "String"},
        "DeviceLocation": {"Type": "String"},
    },
    "Mappings": {"LocationTable": {"Seattle": {"LocationUrl": "https://example.aws"}}},
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "AttributePayload": {"version": "v1", "serialNumber": "serialNumber"},
                "ThingName": {"Ref": "SerialNumber"},
                "ThingTypeName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                "ThingGroups": ["v1-lightbulbs", "WA"],
                "BillingGroup": "LightBulbBillingGroup",
            },
            "OverrideSettings": {
                "AttributePayload": "MERGE",
                "ThingTypeName": "REPLACE",
                "ThingGroups": "DO_NOTHING",
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "Active",
            },
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["iot:Publish"],
                            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"],
                        }
                    ],
                }
            },
        },
    },
    "DeviceConfiguration": {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": {
            "Fn::FindInMap": ["LocationTable", {"Ref": "DeviceLocation"}, "LocationUrl"]
        },
    },
}

#: The Developer Guide's bulk-registration example (CSR, a Default), with a ThingName added
#: (the published example has none, and a thing cannot be created without one).
BULK: dict[str, Any] = {
    "Parameters": {
        "ThingName": {"Type": "String"},
        "SerialNumber": {"Type": "String"},
        "Location": {"Type": "String", "Default": "WA"},
        "CSR": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "ThingName"},
                "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}},
                "ThingTypeName": "lightBulb-versionA",
                "ThingGroups": ["v1-lightbulbs", {"Ref": "Location"}],
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {
                "PolicyDocument": JITP["Resources"]["policy"]["Properties"]["PolicyDocument"]
            },
        },
    },
}

CERT_ID = "ab" * 32

#: One JITP device's parameters (all four fields of the §1.5 template).
JITP_VALUES = {
    "AWS::IoT::Certificate::CommonName": "bulb-0001",
    "AWS::IoT::Certificate::SerialNumber": "SN-0001",
    "AWS::IoT::Certificate::Country": "DE",
    "AWS::IoT::Certificate::Id": CERT_ID,
}


def body(template: dict[str, Any]) -> str:
    """The template as JSON text (what RegisterThing and CAs carry)."""
    return json.dumps(template)
