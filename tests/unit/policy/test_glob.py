"""IAM-style glob: ``*`` and ``?`` only, MQTT ``+``/``#`` literal, parts, fast paths."""

from __future__ import annotations

import pytest

from fleet_sim.policy.glob import compile_glob, compile_glob_parts, glob_match, has_wildcards


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/B", False),  # case-sensitive
        ("a/*", "a/", True),  # * matches the empty run
        ("a/*", "a/b/c/d", True),  # * crosses '/'
        ("*", "", True),
        ("*", "anything/at:all", True),
        ("a/?", "a/b", True),
        ("a/?", "a/", False),  # ? needs exactly one character
        ("a/?", "a/bc", False),
        ("a?c", "a/c", True),  # ? matches '/' too
        ("a*c", "abc", True),
        ("a*c", "abcd", False),  # anchored at the end
        ("*c", "xabc", True),
        ("b*", "ab", False),  # anchored at the start
        ("a/#", "a/#", True),  # '#' literal
        ("a/#", "a/b", False),
        ("a/#", "a/b/c", False),
        ("some/*/topic", "some/+/topic", True),  # '+' literal, matched by '*'
        ("some/+/topic", "some/abc/topic", False),  # '+' is no wildcard
        ("some/+/topic", "some/+/topic", True),
        ("$aws/things/*/shadow", "$aws/things/t1/shadow", True),  # '$' literal
        ("a.b", "aXb", False),  # regex metacharacters are literal
        ("a[bc]", "ab", False),
        ("a[bc]", "a[bc]", True),
        ("a\\*", "a\\xyz", True),  # no backslash escapes in IAM globs
        ("x*y?z*", "xAAyBzCC", True),
        ("x*y?z*", "xAAyzCC", False),
        ("line*", "line\nbreak", True),  # '*' matches newlines as well
    ],
)
def test_glob_match(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


def test_literal_parts_are_not_wildcards() -> None:
    pattern = compile_glob_parts(((False, "client/"), (True, "*"), (False, "/x?")))
    assert pattern.matches("client/*/xy")
    assert not pattern.matches("client/abc/xy")
    assert pattern.source == "client/${*}/x?"


def test_literal_prefix_then_star_is_a_prefix_match() -> None:
    pattern = compile_glob_parts(((False, "t/"), (True, "?a"), (False, "*")))
    assert pattern.matches("t/?a/b")
    assert not pattern.matches("t/xa/b")


def test_compiled_patterns_are_cached() -> None:
    assert compile_glob("arn:aws:iot:*:*:topic/a/*/b") is compile_glob(
        "arn:aws:iot:*:*:topic/a/*/b"
    )


def test_empty_pattern_matches_only_the_empty_string() -> None:
    assert glob_match("", "")
    assert not glob_match("", "a")


def test_has_wildcards() -> None:
    assert has_wildcards("a*")
    assert has_wildcards("a?")
    assert not has_wildcards("a/+/#")
