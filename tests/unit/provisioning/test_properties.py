"""Hypothesis: rendering is deterministic, independent of the parameter dict's order, and
every Ref to a supplied parameter comes out verbatim (Defaults fill the others)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_sim.provisioning import parse_template, render_template

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True)
# Values may hold anything, including text that looks like Fn::Sub variables.
VALUES = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("${}!,/"), min_size=1)


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A template over some parameters, the values supplied, and the values expected."""
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    defaults = {name: draw(st.none() | VALUES) for name in names}
    values = {name: draw(VALUES) for name in names}
    supplied = {
        name: value
        for name, value in values.items()
        if defaults[name] is None or draw(st.booleans())
    }
    expected = {name: supplied.get(name, defaults[name] or "") for name in names}
    parameters: dict[str, Any] = {}
    for name in names:
        parameters[name] = {"Type": "String"}
        if defaults[name] is not None:
            parameters[name]["Default"] = defaults[name]
    configuration: dict[str, Any] = {}
    for i, name in enumerate(names):
        configuration[f"ref{i}"] = {"Ref": name}
        configuration[f"join{i}"] = {"Fn::Join": ["/", ["x", {"Ref": name}]]}
        configuration[f"sub{i}"] = {"Fn::Sub": f"<${{{name}}}>"}
    template = {
        "Parameters": parameters,
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Ref": names[0]},
                    "AttributePayload": {f"a{i}": {"Ref": n} for i, n in enumerate(names)},
                    "ThingGroups": [{"Ref": n} for n in names],
                },
            }
        },
        "DeviceConfiguration": configuration,
    }
    return template, supplied, expected


@settings(max_examples=200, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_rendering_is_deterministic_and_refs_come_out_verbatim(
    case: tuple[dict[str, Any], dict[str, str], dict[str, str]], rng: random.Random
) -> None:
    template_raw, supplied, expected = case
    template = parse_template(template_raw)
    plan = render_template(template, supplied)

    items = list(supplied.items())
    rng.shuffle(items)
    assert render_template(template, dict(items)) == plan
    assert render_template(template, dict(reversed(items))) == plan
    assert render_template(parse_template(template_raw), supplied) == plan

    names = list(expected)
    assert plan.thing is not None
    assert plan.thing.name == expected[names[0]]
    assert plan.thing.groups == tuple(expected[n] for n in names)
    assert dict(plan.thing.attributes or {}) == {f"a{i}": expected[n] for i, n in enumerate(names)}
    for i, name in enumerate(names):
        assert plan.device_configuration[f"ref{i}"] == expected[name]
        assert plan.device_configuration[f"join{i}"] == f"x/{expected[name]}"
        assert plan.device_configuration[f"sub{i}"] == f"<{expected[name]}>"
