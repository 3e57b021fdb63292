"""Parse and validate AWS IoT policy JSON into :class:`~fleet_sim.policy.document.PolicyDocument`.

Every problem raises :class:`~fleet_sim.errors.MalformedPolicy` whose message names the policy
(when named), the statement (1-based number and Sid) and the problem. Besides the model's own
rules (see :mod:`fleet_sim.policy.document`) this checks the JSON shape:

* invalid JSON is reported with line and column;
* a document may hold at most 2048 characters, not counting whitespace (AWS quota);
* element names are case-sensitive and unknown elements are rejected (``Principal`` too: AWS
  IoT policies are attached to principals and name none);
* ``Statement`` is an object or a non-empty list of objects; ``Action``/``Resource`` are a
  string or a non-empty list of strings;
* ``Version`` may be missing; IAM then means ``2008-10-17``, under which policy variables are
  **not** substituted;
* condition values are strings, booleans or numbers (or lists of them); booleans become
  ``"true"``/``"false"``;
* a key repeated within one JSON object is rejected. **[deviation]** AWS's JSON reader keeps
  the last one silently; an emulator that predicts policies should rather flag the mistake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.conditions import Condition
from fleet_sim.policy.document import POLICY_VERSIONS, PolicyDocument, Statement

__all__ = ["MAX_POLICY_CHARACTERS", "parse_policy", "policy_size"]

#: AWS's limit on a policy document, whitespace excluded.
MAX_POLICY_CHARACTERS = 2048

_TOP_ELEMENTS = ("Version", "Id", "Statement")
_STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_IMPLICIT_VERSION = "2008-10-17"


def policy_size(text: str) -> int:
    """The number of characters AWS counts against the 2048 limit (whitespace excluded)."""
    return len("".join(text.split()))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedPolicy(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _load(document: str | bytes | Mapping[str, Any], name: str | None) -> Any:
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPolicy(f"policy is not UTF-8: {exc}", policy_name=name) from None
    if isinstance(document, str):
        text = document
        try:
            loaded = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise MalformedPolicy(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                policy_name=name,
            ) from None
        except MalformedPolicy as exc:
            raise MalformedPolicy(exc.problem, policy_name=name) from None
    else:
        loaded = document
        try:
            text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise MalformedPolicy(f"policy is not JSON data: {exc}", policy_name=name) from None
    size = policy_size(text)
    if size > MAX_POLICY_CHARACTERS:
        raise MalformedPolicy(
            f"policy is {size} characters long excluding whitespace; "
            f"the limit is {MAX_POLICY_CHARACTERS}",
            policy_name=name,
        )
    return loaded


def _strings(raw: Mapping[str, Any], element: str) -> tuple[str, ...] | None:
    if element not in raw:
        return None
    value = raw[element]
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise MalformedPolicy(f"{element} must be a string or a list of strings, got {value!r}")


def _condition_value(operator: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    raise MalformedPolicy(
        f"condition {operator} {key!r}: values must be strings, booleans or numbers, got {value!r}"
    )


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict) or not raw:
        raise MalformedPolicy(f"Condition must be a non-empty object, got {raw!r}")
    conditions: list[Condition] = []
    for operator, block in raw.items():
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(
                f"condition {operator}: must map condition keys to values, got {block!r}"
            )
        for key, value in block.items():
            items = value if isinstance(value, list) else [value]
            values = tuple(_condition_value(operator, key, item) for item in items)
            conditions.append(Condition(operator, key, values))
    return tuple(conditions)


def _statement(raw: Any) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"statement must be a JSON object, got {raw!r}")
    for element in raw:
        if element not in _STATEMENT_ELEMENTS:
            hint = " (AWS IoT policies name no Principal)" if "Principal" in element else ""
            raise MalformedPolicy(
                f"unknown element {element!r}{hint}; expected one of "
                + ", ".join(_STATEMENT_ELEMENTS)
            )
    sid = raw.get("Sid")
    if "Sid" in raw and not isinstance(sid, str):
        raise MalformedPolicy(f"Sid must be a string, got {sid!r}")
    if "Effect" not in raw:
        raise MalformedPolicy("Effect is missing")
    return Statement(
        sid=sid,
        effect=raw["Effect"],
        actions=_strings(raw, "Action"),
        not_actions=_strings(raw, "NotAction"),
        resources=_strings(raw, "Resource"),
        not_resources=_strings(raw, "NotResource"),
        conditions=_conditions(raw["Condition"]) if "Condition" in raw else (),
    )


def parse_policy(
    document: str | bytes | Mapping[str, Any], *, name: str | None = None
) -> PolicyDocument:
    """Parse and validate a policy document.

    Args:
        document: the JSON text (``str`` or UTF-8 ``bytes``) or the already-decoded object.
        name: the policy's name, used in error messages and decisions.

    Returns:
        The validated, compiled document.

    Raises:
        MalformedPolicy: the document is not valid JSON or breaks the policy grammar.
    """
    loaded = _load(document, name)
    if not isinstance(loaded, dict):
        raise MalformedPolicy("policy document must be a JSON object", policy_name=name)
    for element in loaded:
        if element not in _TOP_ELEMENTS:
            raise MalformedPolicy(
                f"unknown top-level element {element!r}; expected one of "
                + ", ".join(_TOP_ELEMENTS),
                policy_name=name,
            )
    version = loaded.get("Version", _IMPLICIT_VERSION)
    if not isinstance(version, str):
        raise MalformedPolicy(f"Version must be a string, got {version!r}", policy_name=name)
    if version not in POLICY_VERSIONS:
        raise MalformedPolicy(
            f"Version must be one of {', '.join(POLICY_VERSIONS)}, got {version!r}",
            policy_name=name,
        )
    policy_id = loaded.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy(f"Id must be a string, got {policy_id!r}", policy_name=name)
    if "Statement" not in loaded:
        raise MalformedPolicy("Statement is missing", policy_name=name)
    raw_statements = loaded["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise MalformedPolicy(
            "Statement must be an object or a non-empty list of objects", policy_name=name
        )
    statements: list[Statement] = []
    for number, raw in enumerate(raw_statements, start=1):
        sid = raw.get("Sid") if isinstance(raw, dict) else None
        try:
            statements.append(_statement(raw))
        except MalformedPolicy as exc:
            raise MalformedPolicy(
                exc.problem,
                policy_name=name,
                statement_number=number,
                sid=sid if isinstance(sid, str) else None,
            ) from None
    return PolicyDocument(version=version, statements=tuple(statements), name=name, id=policy_id)
