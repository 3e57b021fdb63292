"""The subscription trie."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.topic_tree import TopicTree


def matched(tree: TopicTree[Any, Any], topic: str) -> list[tuple[Any, str, Any]]:
    return sorted((key, topic_filter, value) for key, topic_filter, value in tree.match(topic))


def test_exact_and_wildcards():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/b", "c1", 0)
    tree.add("a/+", "c2", 1)
    tree.add("a/#", "c3", 1)
    tree.add("#", "c4", 0)
    tree.add("x/y", "c5", 0)
    assert matched(tree, "a/b") == [
        ("c1", "a/b", 0),
        ("c2", "a/+", 1),
        ("c3", "a/#", 1),
        ("c4", "#", 0),
    ]
    assert matched(tree, "a/c/d") == [("c3", "a/#", 1), ("c4", "#", 0)]
    assert matched(tree, "q") == [("c4", "#", 0)]


def test_aws_hash_rule_and_spec_rule():
    aws: TopicTree[str, None] = TopicTree()
    spec: TopicTree[str, None] = TopicTree(aws=False)
    for tree in (aws, spec):
        tree.add("sensor/#", "k", None)
    assert aws.match("sensor") == []
    assert aws.match("sensor/") == [("k", "sensor/#", None)]
    assert spec.match("sensor") == [("k", "sensor/#", None)]
    assert spec.match("sensor/x/y") == [("k", "sensor/#", None)]


def test_dollar_topics_hidden_from_leading_wildcards():
    tree: TopicTree[str, None] = TopicTree()
    tree.add("#", "all", None)
    tree.add("+/things/+", "plus", None)
    tree.add("$aws/things/+", "aws", None)
    assert tree.match("$aws/things/t1") == [("aws", "$aws/things/+", None)]
    assert {key for key, _, _ in tree.match("x/things/t1")} == {"all", "plus"}


def test_same_key_same_filter_replaces_value():
    tree: TopicTree[str, int] = TopicTree()
    assert tree.add("a/b", "c1", 0) is True
    assert tree.add("a/b", "c1", 1) is False
    assert len(tree) == 1
    assert tree.match("a/b") == [("c1", "a/b", 1)]


def test_one_key_many_filters_reported_per_filter():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/b", "c1", 0)
    tree.add("a/+", "c1", 1)
    assert len(tree) == 2
    assert matched(tree, "a/b") == [("c1", "a/+", 1), ("c1", "a/b", 0)]
    assert tree.filters("c1") == {"a/b", "a/+"}


def test_remove():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/+/c", "c1", 0)
    tree.add("a/+/c", "c2", 0)
    assert tree.remove("a/+/c", "c1") is True
    assert tree.remove("a/+/c", "c1") is False
    assert tree.remove("nope", "c2") is False
    assert tree.match("a/b/c") == [("c2", "a/+/c", 0)]
    assert len(tree) == 1


def test_remove_prunes_empty_levels():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/b/c/#", "c1", 0)
    tree.add("a/+", "c1", 0)
    tree.remove("a/b/c/#", "c1")
    tree.remove("a/+", "c1")
    assert tree._root.is_empty()
    assert len(tree) == 0
    assert list(tree.keys()) == []


def test_remove_keeps_shared_prefix():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/b", "c1", 0)
    tree.add("a/b/c", "c2", 0)
    tree.remove("a/b", "c1")
    assert tree.match("a/b/c") == [("c2", "a/b/c", 0)]
    assert tree.match("a/b") == []


def test_remove_key():
    tree: TopicTree[str, int] = TopicTree()
    for topic_filter in ("a", "a/#", "+/b", "#"):
        tree.add(topic_filter, "gone", 0)
    tree.add("a", "stays", 0)
    assert tree.remove_key("gone") == 4
    assert tree.remove_key("gone") == 0
    assert tree.match("a") == [("stays", "a", 0)]
    assert tree.match("x/b") == []
    assert len(tree) == 1
    assert tree.filters("gone") == frozenset()


def test_invalid_filter_rejected():
    tree: TopicTree[str, int] = TopicTree()
    with pytest.raises(LocalProtocolError):
        tree.add("a/#/b", "c", 0)
    with pytest.raises(LocalProtocolError):
        tree.add("", "c", 0)
    assert len(tree) == 0


def test_invalid_topic_with_plus_does_not_hit_plus_twice():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("a/+", "c", 0)
    assert tree.match("a/+") == [("c", "a/+", 0)]


def test_empty_levels():
    tree: TopicTree[str, int] = TopicTree()
    tree.add("/", "c1", 0)
    tree.add("+/+", "c2", 0)
    tree.add("a//b", "c3", 0)
    assert {key for key, _, _ in tree.match("/")} == {"c1", "c2"}
    assert tree.match("a//b") == [("c3", "a//b", 0)]


def test_match_does_not_scan_all_subscriptions():
    """10k devices each on their own shadow topics: a match touches a handful of nodes."""
    tree: TopicTree[int, int] = TopicTree()
    for device in range(10_000):
        tree.add(f"$aws/things/dev{device}/shadow/update/delta", device, 1)
        tree.add(f"$aws/things/dev{device}/shadow/+/accepted", device, 1)
        tree.add(f"cmd/dev{device}/#", device, 1)
    tree.add("cmd/+/#", -1, 0)
    assert len(tree) == 30_001
    started = time.perf_counter()
    for _ in range(2_000):
        hits = tree.match("$aws/things/dev4242/shadow/update/accepted")
    elapsed = time.perf_counter() - started
    assert hits == [(4242, "$aws/things/dev4242/shadow/+/accepted", 1)]
    assert sorted(tree.match("cmd/dev7/reboot")) == [(-1, "cmd/+/#", 0), (7, "cmd/dev7/#", 1)]
    # A linear scan of 30k filters would take ~seconds for 2k matches; the trie takes ms.
    assert elapsed < 0.5
