"""Every intrinsic function, table-driven: results, and failures with their location."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_sim.errors import MissingTemplateParameter, TemplateError
from fleet_sim.provisioning import parse_template, render_template

MAPPINGS = {
    "Region": {
        "eu": {"Url": "https://eu.example", "Zones": ["a", "b", "c"]},
        "us": {"Url": "https://us.example", "Zones": ["x"]},
    }
}
CONDITIONS = {
    "IsEu": {"Fn::Equals": [{"Ref": "Where"}, "eu"]},
    "NotEu": {"Fn::Not": [{"Condition": "IsEu"}]},
    "EuAndDebug": {"Fn::And": [{"Condition": "IsEu"}, {"Fn::Equals": [{"Ref": "B"}, "debug"]}]},
    "EuOrDebug": {"Fn::Or": [{"Condition": "IsEu"}, {"Fn::Equals": [{"Ref": "B"}, "debug"]}]},
}
PARAMETERS = ("A", "B", "Csv", "Where", "Index")


def template_for(expression: Any, *, conditions: bool = False) -> dict[str, Any]:
    template: dict[str, Any] = {
        "Parameters": {name: {"Type": "String", "Default": ""} for name in PARAMETERS},
        "Mappings": MAPPINGS,
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"ThingName": "t", "ThingGroups": {"Fn::Split": [",", "g"]}},
            }
        },
        "DeviceConfiguration": {"value": expression},
    }
    if conditions:
        template["Conditions"] = CONDITIONS
    return template


def render(expression: Any, values: dict[str, str], *, conditions: bool = False) -> str:
    template = parse_template(template_for(expression, conditions=conditions), name="t")
    return render_template(template, values).device_configuration["value"]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        pytest.param(ref("A"), {"A": "alpha"}, "alpha", id="Ref"),
        pytest.param("literal", {}, "literal", id="literal"),
        pytest.param({"Fn::Join": ["-", ["a", ref("A"), "c"]]}, {"A": "b"}, "a-b-c", id="Join"),
        pytest.param({"Fn::Join": ["", ["x", ref("A"), "z"]]}, {"A": "y"}, "xyz", id="Join-empty"),
        pytest.param({"Fn::Join": ["+", []]}, {}, "", id="Join-nothing"),
        pytest.param(
            {"Fn::Join": ["|", {"Fn::Split": [",", ref("Csv")]}]},
            {"Csv": "a,b,c"},
            "a|b|c",
            id="Join-of-Split",
        ),
        pytest.param({"Fn::Select": [1, ["a", "b", "c"]]}, {}, "b", id="Select"),
        pytest.param({"Fn::Select": ["2", ["a", "b", "c"]]}, {}, "c", id="Select-string-index"),
        pytest.param(
            {"Fn::Select": [ref("Index"), ["a", "b", "c"]]}, {"Index": "0"}, "a", id="Select-Ref"
        ),
        pytest.param(
            {"Fn::Select": [2, {"Fn::Split": ["/", ref("A")]}]},
            {"A": "dt/eu/sensor-7"},
            "sensor-7",
            id="Select-of-Split",
        ),
        pytest.param(
            {"Fn::Select": [0, {"Fn::Split": [",", ref("Csv")]}]},
            {"Csv": ""},
            "",
            id="Split-of-empty-string",
        ),
        pytest.param(
            {"Fn::FindInMap": ["Region", "eu", "Url"]}, {}, "https://eu.example", id="FindInMap"
        ),
        pytest.param(
            {"Fn::FindInMap": ["Region", ref("Where"), "Url"]},
            {"Where": "us"},
            "https://us.example",
            id="FindInMap-Ref",
        ),
        pytest.param(
            {"Fn::Select": [1, {"Fn::FindInMap": ["Region", ref("Where"), "Zones"]}]},
            {"Where": "eu"},
            "b",
            id="FindInMap-list",
        ),
        pytest.param({"Fn::Sub": "${A}-${B}"}, {"A": "x", "B": "y"}, "x-y", id="Sub"),
        pytest.param({"Fn::Sub": "${!A} is ${A}"}, {"A": "1"}, "${A} is 1", id="Sub-literal"),
        pytest.param({"Fn::Sub": "no variables"}, {}, "no variables", id="Sub-plain"),
        pytest.param({"Fn::Sub": "${unclosed"}, {}, "${unclosed", id="Sub-unclosed"),
        pytest.param(
            {"Fn::Sub": ["${Prefix}/${A}", {"Prefix": {"Fn::Join": ["", ["p", ref("B")]]}}]},
            {"A": "a", "B": "q"},
            "pq/a",
            id="Sub-variables",
        ),
        pytest.param(
            {"Fn::Sub": "cert ${AWS::IoT::Certificate::Id}"},
            {"AWS::IoT::Certificate::Id": "c0ffee"},
            "cert c0ffee",
            id="Sub-supplied-parameter",
        ),
        pytest.param(
            {"Fn::Sub": "${A}"}, {"A": "${B}"}, "${B}", id="Sub-values-are-not-re-expanded"
        ),
    ],
)
def test_intrinsic_results(expression: Any, values: dict[str, str], expected: str) -> None:
    assert render(expression, values) == expected


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("IsEu", {"Where": "eu"}, "yes"),
        ("IsEu", {"Where": "us"}, "no"),
        ("NotEu", {"Where": "us"}, "yes"),
        ("EuAndDebug", {"Where": "eu", "B": "debug"}, "yes"),
        ("EuAndDebug", {"Where": "eu", "B": ""}, "no"),
        ("EuOrDebug", {"Where": "us", "B": "debug"}, "yes"),
        ("EuOrDebug", {"Where": "us"}, "no"),
    ],
)
def test_fn_if_extension(condition: str, values: dict[str, str], expected: str) -> None:
    assert render({"Fn::If": [condition, "yes", "no"]}, values, conditions=True) == expected


def test_no_value_drops_an_entry_and_a_resource_condition_drops_a_resource() -> None:
    template = template_for({"Fn::If": ["IsEu", "eu", {"Ref": "AWS::NoValue"}]}, conditions=True)
    template["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Condition": "IsEu",
        "Properties": {"PolicyName": "eu-policy"},
    }
    template["Resources"]["thing"]["Properties"]["ThingTypeName"] = {
        "Fn::If": ["NotEu", "other", {"Ref": "AWS::NoValue"}]
    }
    parsed = parse_template(template)
    eu = render_template(parsed, {"Where": "eu"})
    us = render_template(parsed, {"Where": "us"})
    assert dict(eu.device_configuration) == {"value": "eu"}
    assert dict(us.device_configuration) == {}
    assert [p.name for p in eu.policies] == ["eu-policy"]
    assert us.policies == ()
    assert eu.thing is not None
    assert us.thing is not None
    assert (eu.thing.type_name, us.thing.type_name) == (None, "other")


P = "DeviceConfiguration.value"


@pytest.mark.parametrize(
    ("expression", "values", "path", "problem"),
    [
        pytest.param(
            {"Fn::Select": [5, ["a", "b"]]},
            None,
            f"{P}.Fn::Select",
            "index 5 is out of range for a list of 2",
            id="Select-literal-out-of-range-fails-at-parse",
        ),
        pytest.param(
            {"Fn::Select": [3, {"Fn::Split": [",", {"Ref": "Csv"}]}]},
            {"Csv": "a,b"},
            f"{P}.Fn::Select",
            "index 3 is out of range for a list of 2",
            id="Select-out-of-range-at-render",
        ),
        pytest.param(
            {"Fn::Select": [-1, ["a"]]},
            None,
            f"{P}.Fn::Select[0]",
            "the index must be a non-negative integer, got -1",
            id="Select-negative",
        ),
        pytest.param(
            {"Fn::Select": [{"Ref": "Index"}, ["a"]]},
            {"Index": "one"},
            f"{P}.Fn::Select[0]",
            "the index must be a non-negative integer, got 'one'",
            id="Select-not-a-number",
        ),
        pytest.param(
            {"Fn::Select": [0, [None]]}, None, f"{P}.Fn::Select", "item 0 is null", id="Select-null"
        ),
        pytest.param(
            {"Fn::Select": [0, "abc"]},
            None,
            f"{P}.Fn::Select[1]",
            "Fn::Select needs a list, got a string",
            id="Select-not-a-list",
        ),
        pytest.param(
            {"Fn::Select": [0, {"Ref": "A"}]},
            {"A": "x"},
            f"{P}.Fn::Select[1]",
            "Fn::Select needs a list, got a string",
            id="Select-of-a-Ref",
        ),
        pytest.param(
            {"Fn::Join": [1, ["a"]]},
            None,
            f"{P}.Fn::Join[0]",
            "the delimiter must be a string, got a number",
            id="Join-delimiter",
        ),
        pytest.param(
            {"Fn::Join": ["-", ["a", ["b"]]]},
            None,
            f"{P}.Fn::Join[1][1]",
            "Fn::Join needs a string, got a list",
            id="Join-nested-list",
        ),
        pytest.param(
            {"Fn::Join": ["-"]},
            None,
            f"{P}.Fn::Join",
            'Fn::Join takes ["delimiter", [values]]',
            id="Join-arity",
        ),
        pytest.param(
            {"Fn::Split": ["", "abc"]},
            None,
            f"{P}.Fn::Split[0]",
            "the delimiter must be a non-empty string",
            id="Split-empty-delimiter",
        ),
        pytest.param(
            {"Fn::FindInMap": ["Nope", "eu", "Url"]},
            None,
            f"{P}.Fn::FindInMap[0]",
            "no mapping 'Nope' in Mappings",
            id="FindInMap-unknown-map",
        ),
        pytest.param(
            {"Fn::FindInMap": ["Region", "eu", "Nope"]},
            None,
            f"{P}.Fn::FindInMap",
            "mapping 'Region' key 'eu' has no 'Nope'",
            id="FindInMap-unknown-second-key",
        ),
        pytest.param(
            {"Fn::Sub": "${Nope}"},
            None,
            f"{P}.Fn::Sub",
            "${} of undeclared parameter 'Nope'",
            id="Sub-undeclared",
        ),
        pytest.param(
            {"Fn::Sub": "${thing.Arn}"},
            None,
            f"{P}.Fn::Sub",
            "${thing.Arn}: resource attributes are not supported",
            id="Sub-GetAtt",
        ),
        pytest.param(
            {"Fn::GetAtt": ["thing", "Arn"]},
            None,
            P,
            "Fn::GetAtt is not supported in provisioning templates",
            id="GetAtt",
        ),
        pytest.param(
            {"Fn::Base64": "x"},
            None,
            P,
            "Fn::Base64 is not supported in provisioning templates",
            id="Base64",
        ),
        pytest.param(
            {"Ref": "A", "Other": 1}, None, P, "Ref must be the only key of its object", id="mixed"
        ),
        pytest.param(
            {"Ref": ["A"]}, None, P, "Ref takes a parameter name, got a list", id="Ref-not-a-name"
        ),
        pytest.param(
            {"Fn::If": ["Nope", "a", "b"]},
            None,
            f"{P}.Fn::If[0]",
            "Fn::If names no declared condition: 'Nope'",
            id="If-undeclared",
        ),
    ],
)
def test_intrinsic_failures_name_where(
    expression: Any, values: dict[str, str] | None, path: str, problem: str
) -> None:
    def run() -> None:
        parsed = parse_template(template_for(expression), name="t")
        assert values is not None, "expected the template itself to be refused"
        render_template(parsed, values)

    with pytest.raises(TemplateError) as caught:
        run()
    assert caught.value.path == path
    assert caught.value.problem == problem
    assert str(caught.value) == f"template 't': {path}: {problem}"


def test_a_supplied_parameter_that_is_missing_fails_at_render() -> None:
    parsed = parse_template(template_for({"Ref": "AWS::IoT::Certificate::CommonName"}))
    with pytest.raises(MissingTemplateParameter):
        render_template(parsed, {})


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        ({"A": {"Condition": "B"}, "B": {"Condition": "A"}}, "cycle: A -> B -> A"),
        ({"A": {"Fn::And": [{"Condition": "A"}]}}, "Fn::And takes 2 to 10 conditions"),
        ({"A": {"Fn::Equals": ["x"]}}, "Fn::Equals takes [value, value]"),
        ({"A": {"Condition": "Nope"}}, "no condition 'Nope' in Conditions"),
        ({"A": {"Fn::Bogus": []}}, "Fn::Bogus is not a condition function"),
        ({"A": "yes"}, "a condition is one of"),
    ],
)
def test_malformed_conditions(conditions: dict[str, Any], problem: str) -> None:
    template = template_for("x")
    template["Conditions"] = conditions
    with pytest.raises(TemplateError, match="Conditions") as caught:
        parse_template(template)
    assert problem in str(caught.value)
