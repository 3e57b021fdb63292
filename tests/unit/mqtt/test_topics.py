"""Topic name/filter validation, AWS limits, shared filters and matching."""

from __future__ import annotations

import pytest

from fleet_sim.mqtt.topics import (
    aws_topic_limit_error,
    matches,
    parse_shared,
    topic_filter_error,
    topic_name_error,
)


@pytest.mark.parametrize(
    "topic", ["a", "a/b", "/", "a//b", "$aws/things/t/shadow/update", " ", "é/ü", "a/"]
)
def test_valid_topic_names(topic):
    assert topic_name_error(topic) is None


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("", "empty"),
        ("a/+/b", "wildcard"),
        ("a/#", "wildcard"),
        ("a+", "wildcard"),
        ("a\x00b", "U+0000"),
        ("a\ud800", "UTF-8"),
        ("x" * 65536, "65535"),
    ],
)
def test_invalid_topic_names(topic, fragment):
    error = topic_name_error(topic)
    assert error is not None
    assert fragment in error


def test_topic_name_at_size_limit_is_valid():
    assert topic_name_error("x" * 65535) is None
    # Multi-byte characters count in bytes, not characters.
    assert topic_name_error("é" * 32768) is not None


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "+", "a/#", "a/+", "+/+", "+/a/#", "a//b", "/#", "$share/g/a/#", "$share/g/+", "a/"],
)
def test_valid_filters(topic_filter):
    assert topic_filter_error(topic_filter) is None


@pytest.mark.parametrize(
    "topic_filter",
    [
        "",
        "a#",
        "a/#/b",
        "#/a",
        "a/b#",
        "a+/b",
        "a/+b",
        "++",
        "a\x00",
        "$share/",
        "$share/g",
        "$share/g/",
        "$share//a",
        "$share/g+/a",
        "$share/g/a#",
    ],
)
def test_invalid_filters(topic_filter):
    assert topic_filter_error(topic_filter) is not None


def test_parse_shared():
    assert parse_shared("$share/group/a/b/#") == ("group", "a/b/#")
    assert parse_shared("a/b") == (None, "a/b")
    assert parse_shared("$share/g") == (None, "$share/g")
    assert parse_shared("$sharex/g/a") == (None, "$sharex/g/a")


def test_aws_topic_size_limit():
    assert aws_topic_limit_error("x" * 256) is None
    assert "256" in (aws_topic_limit_error("x" * 257) or "")
    assert aws_topic_limit_error("é" * 128) is None
    assert aws_topic_limit_error("é" * 129) is not None


def test_aws_slash_limit():
    assert aws_topic_limit_error("a/b/c/d/e/f/g/h") is None  # 7 slashes
    assert "slashes" in (aws_topic_limit_error("a/b/c/d/e/f/g/h/i") or "")


def test_aws_limits_skip_basic_ingest_and_share_prefixes():
    seven = "a/b/c/d/e/f/g/h"
    assert aws_topic_limit_error(f"$aws/rules/my_rule/{seven}") is None
    assert aws_topic_limit_error(f"$share/group/{seven}") is None
    assert aws_topic_limit_error("$aws/rules/r/" + "x" * 256) is None
    assert aws_topic_limit_error("$aws/rules/r/" + "x" * 257) is not None
    # Other $aws topics are counted whole.
    assert aws_topic_limit_error(f"$aws/things/{seven}") is not None


def test_aws_limits_are_configurable():
    assert aws_topic_limit_error("a/b/c", max_slashes=1) is not None
    assert aws_topic_limit_error("abcd", max_bytes=3) is not None


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/", True),
        ("a/+", "a", False),
        ("a/+", "a/b/c", False),
        ("+/+", "/x", True),
        ("+", "/", False),
        ("/+", "/", True),
        ("a/#", "a/b/c", True),
        ("a/#", "a/", True),
        ("a/#", "b/c", False),
        ("#", "a/b", True),
        ("#", "/", True),
        ("+/#", "a/b", True),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        # "$" topics are invisible to a leading wildcard.
        ("#", "$aws/things", False),
        ("+/things", "$aws/things", False),
        ("$aws/#", "$aws/things", True),
        ("$aws/+", "$aws/things", True),
        ("a/#", "a/$x", True),
    ],
)
def test_matches_common(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected
    assert matches(topic_filter, topic, aws=False) is expected


def test_aws_hash_does_not_match_parent():
    assert matches("sensor/#", "sensor") is False
    assert matches("sensor/#", "sensor/") is True
    assert matches("sensor/#", "sensor/x/y") is True
    assert matches("a/+/#", "a/b") is False
    assert matches("+/#", "a") is False


def test_spec_hash_matches_parent():
    assert matches("sensor/#", "sensor", aws=False) is True
    assert matches("a/+/#", "a/b", aws=False) is True
    assert matches("+/#", "a", aws=False) is True
    assert matches("a/+/#", "a", aws=False) is False
    assert matches("$SYS/#", "$SYS", aws=False) is True
