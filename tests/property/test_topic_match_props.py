"""Property tests: topic matching against a reference matcher, the trie against matches()."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_sim.mqtt.topic_tree import TopicTree
from fleet_sim.mqtt.topics import matches, topic_filter_error, topic_name_error

# A small alphabet so that filters and topics collide often.
LITERAL_LEVELS = st.sampled_from(["", "a", "b", "$x", "$aws", "é"])
topic_names = st.lists(LITERAL_LEVELS, min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def topic_filters(draw):
    levels = draw(st.lists(st.sampled_from(["", "a", "b", "$x", "$aws", "+"]), max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels) or "#"


def reference_matches(topic_filter: str, topic: str, *, aws: bool) -> bool:
    """An independent matcher: translate the filter to a regular expression."""
    if topic.startswith("$") and topic_filter[:1] in "+#":
        return False
    parts = topic_filter.split("/")
    pattern = ""
    for index, part in enumerate(parts):
        sep = "/" if index else ""
        if part == "#":
            # '#' = one or more further levels; the spec also allows zero (the parent level).
            if not index:
                pattern += ".*"
            elif aws:
                pattern += "/.*"
            else:
                pattern += "(?:/.*)?"
        elif part == "+":
            pattern += sep + "[^/]*"
        else:
            pattern += sep + re.escape(part)
    return re.fullmatch(pattern, topic, flags=re.DOTALL) is not None


@given(topic_filters(), topic_names, st.booleans())
def test_matches_agrees_with_reference(topic_filter, topic, aws):
    assert topic_filter_error(topic_filter) is None
    assert topic_name_error(topic) is None
    assert matches(topic_filter, topic, aws=aws) is reference_matches(topic_filter, topic, aws=aws)


@given(topic_names)
def test_topic_matches_itself_as_filter(topic):
    assert matches(topic, topic)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(topic_filters(), st.integers(0, 5)), max_size=30),
    st.lists(st.tuples(topic_filters(), st.integers(0, 5)), max_size=10),
    st.lists(topic_names, min_size=1, max_size=10),
    st.booleans(),
)
def test_tree_agrees_with_brute_force(adds, removes, topics, aws):
    tree: TopicTree[int, str] = TopicTree(aws=aws)
    model: dict[tuple[int, str], str] = {}
    for topic_filter, key in adds:
        value = f"{key}:{topic_filter}"
        tree.add(topic_filter, key, value)
        model[(key, topic_filter)] = value
    for topic_filter, key in removes:
        assert tree.remove(topic_filter, key) is ((key, topic_filter) in model)
        model.pop((key, topic_filter), None)
    assert len(tree) == len(model)
    for topic in topics:
        expected = sorted(
            (key, topic_filter, value)
            for (key, topic_filter), value in model.items()
            if matches(topic_filter, topic, aws=aws)
        )
        assert sorted(tree.match(topic)) == expected


@given(
    st.lists(st.tuples(topic_filters(), st.integers(0, 3)), max_size=30),
    st.integers(0, 3),
)
def test_remove_key_leaves_only_other_keys(adds, dropped):
    tree: TopicTree[int, None] = TopicTree()
    for topic_filter, key in adds:
        tree.add(topic_filter, key, None)
    expected_left = {(key, f) for f, key in adds if key != dropped}
    tree.remove_key(dropped)
    assert len(tree) == len(expected_left)
    assert dropped not in set(tree.keys())
    for _, key in adds:
        tree.remove_key(key)
    assert len(tree) == 0
    assert tree._root.is_empty()
