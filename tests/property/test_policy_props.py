"""Properties of the policy engine (Hypothesis)."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_sim.policy import (
    PolicyDocument,
    RequestContext,
    Statement,
    ThingInfo,
    evaluate,
    glob_match,
    parse_policy,
)

A = "arn:aws:iot:us-east-1:123456789012:"
ALPHABET = "ab+#/$*?"

segments = st.text(alphabet="ab+#$*?", min_size=0, max_size=3)
topics = st.lists(segments, min_size=1, max_size=4).map("/".join)
client_ids = st.sampled_from(["dev-1", "dev-2", "+", "#", "*", "a?b", "$x"])
actions = st.sampled_from(
    ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:RetainPublish"]
)
kinds = {"iot:Connect": "client", "iot:Subscribe": "topicfilter"}

resource_patterns = st.one_of(
    st.just("*"),
    topics.map(lambda t: A + "topic/" + t),
    topics.map(lambda t: A + "topicfilter/" + t),
    st.sampled_from(
        [
            A + "client/${iot:ClientId}",
            A + "topic/${iot:ClientId}/*",
            A + "topicfilter/${iot:ClientId}/#",
            A + "topic/$aws/things/${iot:Connection.Thing.ThingName}/*",
            A + "client/dev-?",
        ]
    ),
)
action_patterns = st.sampled_from(
    [
        "*",
        "iot:*",
        "iot:Publish",
        "iot:publish",
        "iot:Subscribe",
        "iot:Connect",
        "iot:*Publish",
        "iot:Receive",
    ]
)
conditions = st.sampled_from(
    [
        None,
        {"StringLike": {"iot:ClientId": "dev-*"}},
        {"StringNotEquals": {"iot:ClientId": "+"}},
        {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        {"StringEqualsIfExists": {"iot:Connection.Thing.ThingTypeName": "sensor"}},
    ]
)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    action_key = draw(st.sampled_from(["Action", "Action", "NotAction"]))
    resource_key = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    statement[action_key] = draw(st.lists(action_patterns, min_size=1, max_size=2))
    statement[resource_key] = draw(st.lists(resource_patterns, min_size=1, max_size=2))
    condition = draw(conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


def make_policy(stmts: list[dict[str, Any]], name: str = "p") -> PolicyDocument:
    return parse_policy({"Version": "2012-10-17", "Statement": stmts}, name=name)


contexts = st.builds(
    lambda cid, attached: RequestContext(cid, thing=ThingInfo(cid) if attached else None),
    client_ids,
    st.booleans(),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str]:
    action = draw(actions)
    kind = kinds.get(action, "topic")
    name = draw(st.one_of(topics, client_ids))
    return action, f"{A}{kind}/{name}"


policy_lists = st.lists(st.lists(statements(), min_size=1, max_size=4), min_size=0, max_size=3)


@settings(max_examples=200)
@given(policy_lists, statements(effect="Deny"), contexts, requests())
def test_adding_a_deny_never_turns_deny_into_allow(
    raw: list[list[dict[str, Any]]],
    extra: dict[str, Any],
    ctx: RequestContext,
    request: tuple[str, str],
) -> None:
    action, resource = request
    policies = [make_policy(stmts) for stmts in raw]
    before = evaluate(policies, action, resource, ctx)
    with_deny = [*policies, make_policy([extra], name="extra")]
    after = evaluate(with_deny, action, resource, ctx)
    if not before.allowed:
        assert not after.allowed
    if after.allowed:
        assert before.allowed


@settings(max_examples=200)
@given(st.sampled_from(["*", "iot:*"]), policy_lists, contexts, requests())
def test_allow_everything_without_deny_allows_every_request(
    action_pattern: str,
    raw: list[list[dict[str, Any]]],
    ctx: RequestContext,
    request: tuple[str, str],
) -> None:
    action, resource = request
    allows_only = [[s for s in stmts if s["Effect"] == "Allow"] for stmts in raw]
    policies = [make_policy(stmts) for stmts in allows_only if stmts]
    policies.append(make_policy([{"Effect": "Allow", "Action": action_pattern, "Resource": "*"}]))
    decision = evaluate(policies, action, resource, ctx)
    assert decision.allowed
    assert decision.reason == "allowed"


@settings(max_examples=200)
@given(policy_lists, contexts, requests(), st.randoms(use_true_random=False))
def test_evaluation_is_independent_of_order(
    raw: list[list[dict[str, Any]]], ctx: RequestContext, request: tuple[str, str], rnd: Any
) -> None:
    action, resource = request
    policies = [make_policy(stmts, name=f"p{i}") for i, stmts in enumerate(raw)]
    shuffled: list[PolicyDocument] = []
    for doc in policies:
        stmts = list(doc.statements)
        rnd.shuffle(stmts)
        shuffled.append(PolicyDocument(version=doc.version, statements=tuple(stmts), name=doc.name))
    rnd.shuffle(shuffled)
    first = evaluate(policies, action, resource, ctx)
    second = evaluate(shuffled, action, resource, ctx)
    assert (first.allowed, first.reason) == (second.allowed, second.reason)

    def deciding(
        doc_list: list[PolicyDocument], decision: Any
    ) -> set[tuple[str | None, Statement]]:
        by_name = {d.name: d for d in doc_list}
        return {
            (ref.policy_name, by_name[ref.policy_name].statements[ref.statement_number - 1])
            for ref in decision.statements
        }

    assert deciding(policies, first) == deciding(shuffled, second)


def reference_glob(pattern: str, text: str) -> bool:
    """fnmatch restricted to '*' and '?': escape '[' so character classes never form."""
    translated = fnmatch.translate(pattern.replace("[", "\0"))
    return re.fullmatch(translated, text.replace("[", "\0"), re.DOTALL) is not None


glob_text = st.text(alphabet=ALPHABET + "[].\\", max_size=10)


@settings(max_examples=1000)
@given(glob_text, glob_text)
def test_glob_agrees_with_a_reference_implementation(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) is reference_glob(pattern, text)


@settings(max_examples=200)
@given(glob_text)
def test_glob_matches_itself_with_wildcards_as_literals(pattern: str) -> None:
    assert glob_match(pattern, pattern)
