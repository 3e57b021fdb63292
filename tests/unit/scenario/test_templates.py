"""The template language: fields, generated values, escaping, load-time errors."""

from __future__ import annotations

import json
import random
import re
import uuid
from typing import Any

import pytest

from fleet_sim.scenario.templates import (
    CLIENT_ID_FIELDS,
    FILTER_FIELDS,
    THING_NAME_FIELDS,
    compile_template,
)

VALUES = {
    "index": 7,
    "group": "sensors",
    "thing_name": "sensor-00007",
    "client_id": "c7",
    "seq": 3,
    "timestamp_ms": 1_700_000_000_123,
}


def render(source: str, **kwargs: Any) -> str:
    return compile_template(source, **kwargs).render(VALUES, random.Random(1))


def test_device_values_and_format_specs():
    assert render("{group}/{thing_name}/{client_id}/{index:05d}/{seq}") == (
        "sensors/sensor-00007/c7/00007/3"
    )
    assert render("{timestamp_ms}") == "1700000000123"
    assert render("{thing_name!r:>16}") == "  'sensor-00007'"


def test_doubled_braces_are_literal_so_json_payloads_work():
    payload = render('{{"seq": {seq}, "t": {random.uniform(18, 25):.1f}, "id": "{uuid}"}}')
    data = json.loads(payload)
    assert data["seq"] == 3
    assert 18 <= data["t"] <= 25
    assert uuid.UUID(data["id"]).version == 4


def test_constant_templates_render_as_written():
    template = compile_template("a/{{b}}/c")
    assert template.is_constant
    assert template.render({}, random.Random(0)) == "a/{b}/c"
    assert template.fields == frozenset()
    assert not template.uses_random


def test_generated_fields_stay_in_range():
    rng = random.Random(5)
    template = compile_template(
        "{random.randint(0, 3)}|{random.choice(on, 'off', \"idle\")}|{random.hex(6)}"
        "|{random.gauss(10, 0)}"
    )
    assert template.uses_random
    for _ in range(200):
        number, word, digits, gauss = template.render(VALUES, rng).split("|")
        assert int(number) in range(4)
        assert word in {"on", "off", "idle"}
        assert len(digits) == 6
        int(digits, 16)
        assert float(gauss) == 10.0


def test_same_rng_state_renders_the_same_payloads():
    template = compile_template("{uuid} {random.uniform(0, 1)} {random.choice(a, b, c)}")
    first = [template.render(VALUES, r) for r in [random.Random(42)] for _ in range(20)]
    rng = random.Random(42)
    second = [template.render(VALUES, rng) for _ in range(20)]
    assert first == second
    assert len(set(first)) == 20


def test_fields_lists_the_values_a_template_needs():
    template = compile_template("dt/{group}/{thing_name}/{seq}/{uuid}")
    assert template.fields == {"group", "thing_name", "seq"}
    with pytest.raises(KeyError):
        template.render({"group": "g"}, random.Random(0))


def test_templates_compare_by_source_and_context():
    assert compile_template("a/{index}") == compile_template("a/{index}")
    assert compile_template("a/{index}") != compile_template("a/{index}", allowed=THING_NAME_FIELDS)
    assert str(compile_template("x{seq}")) == "x{seq}"


@pytest.mark.parametrize(
    ("source", "allowed", "generators", "message"),
    [
        (
            "{thng}",
            FILTER_FIELDS,
            False,
            "unknown template field {thng} (did you mean {thing_name}?)",
        ),
        ("{seq}", THING_NAME_FIELDS, False, "{seq} is not available in a thing name"),
        ("{uuid}", CLIENT_ID_FIELDS, False, "{uuid} is not available in a client id"),
        ("{}", FILTER_FIELDS, False, "positional fields are not supported"),
        ("{0}", FILTER_FIELDS, False, "positional fields are not supported"),
        ("{index[0]}", FILTER_FIELDS, False, "malformed template field"),
        ("{index.real}", FILTER_FIELDS, False, "unknown template field {index.real}"),
        ("{index:05q}", FILTER_FIELDS, False, "bad format spec"),
        ("{index!x}", FILTER_FIELDS, False, "bad format spec or conversion"),
        ("{index:{w}}", FILTER_FIELDS, False, "nested fields"),
        ("a}", FILTER_FIELDS, False, "unbalanced braces"),
        ("{a", FILTER_FIELDS, False, "unbalanced braces"),
        ("{random.uniform(1)}", FILTER_FIELDS, True, "random.uniform takes 2 numbers"),
        ("{random.uniform(a, b)}", FILTER_FIELDS, True, "random.uniform takes 2 numbers"),
        ("{random.uniform(1, inf)}", FILTER_FIELDS, True, "random.uniform takes 2 numbers"),
        ("{random.randint(5, 1)}", FILTER_FIELDS, True, "two integers a <= b"),
        ("{random.randint(1.5, 3)}", FILTER_FIELDS, True, "two integers a <= b"),
        ("{random.gauss(0, -1)}", FILTER_FIELDS, True, "sigma must not be negative"),
        ("{random.choice()}", FILTER_FIELDS, True, "one or more non-empty words"),
        ("{random.choice(a,,b)}", FILTER_FIELDS, True, "one or more non-empty words"),
        ("{random.hex(100)}", FILTER_FIELDS, True, "from 1 to 64"),
        ("{random.uniform}", FILTER_FIELDS, True, "needs arguments"),
        ("{uuid()}", FILTER_FIELDS, True, "uuid takes no arguments"),
        ("{random.shuffle(a)}", FILTER_FIELDS, True, "unknown template field {random.shuffle}"),
        ("{__import__}", FILTER_FIELDS, True, "unknown template field {__import__}"),
    ],
)
def test_bad_templates_are_refused_at_compile_time(source, allowed, generators, message):
    what = {THING_NAME_FIELDS: "thing name", CLIENT_ID_FIELDS: "client id"}.get(allowed, "x")
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_template(source, allowed=allowed, generators=generators, what=what)


def test_nothing_user_written_is_evaluated():
    # attribute access and calls that are not generators never run
    for source in ["{index.__class__}", "{group.upper()}", "{random.seed(1)}"]:
        with pytest.raises(ValueError, match=r"unknown template field|malformed"):
            compile_template(source)


def test_values_vocabulary_can_be_replaced():
    template = compile_template(
        "r/{name}-{timestamp}",
        allowed=("name", "timestamp"),
        generators=False,
        values={"name": str, "timestamp": str},
    )
    assert template.render({"name": "n", "timestamp": "t"}, random.Random(0)) == "r/n-t"
    with pytest.raises(ValueError, match="not template values"):
        compile_template("x", allowed=("nope",))
