"""The AWS IoT policy document model: frozen statements, validated and compiled once.

:class:`PolicyDocument` and :class:`Statement` are plain values; building them validates
them (raising :class:`~fleet_sim.errors.MalformedPolicy`) and compiles every action pattern,
resource template and condition once, so evaluation never re-parses anything. Parsing JSON
lives in :mod:`fleet_sim.policy.parse`.

Validation follows IAM where IoT is silent, strictly where IAM is strict:

* ``Effect`` is case-sensitive: exactly ``Allow`` or ``Deny``.
* Exactly one of ``Action``/``NotAction`` and one of ``Resource``/``NotResource``.
* An action is ``*`` or ``iot:<Name>`` (prefix and name case-insensitive, ``*``/``?`` allowed);
  matching folds case (IAM: action names are case-insensitive).
* A resource is ``*`` or an ARN (``arn:`` and five colons); matching is case-sensitive.
* ``Version`` is ``2012-10-17`` or ``2008-10-17``; under ``2008-10-17`` ``${...}`` is plain
  text (IAM), so policy variables work only with ``2012-10-17``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.conditions import CompiledCondition, Condition
from fleet_sim.policy.glob import GlobPattern, compile_glob
from fleet_sim.policy.variables import RequestContext, Template, parse_template

__all__ = [
    "POLICY_VERSIONS",
    "CompiledStatement",
    "Effect",
    "PolicyDocument",
    "Statement",
    "StatementRef",
]

Effect = Literal["Allow", "Deny"]
#: Accepted ``Version`` values; the first is current.
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")

_ACTION = re.compile(r"(?i:iot):[A-Za-z0-9*?]+")


def _check_action(action: str) -> None:
    if action != "*" and _ACTION.fullmatch(action) is None:
        raise MalformedPolicy(
            f"Action {action!r} is not an AWS IoT action (expected 'iot:<Name>' or '*')"
        )


def _check_resource(resource: str) -> None:
    if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
        raise MalformedPolicy(
            f"Resource {resource!r} must be '*' or an ARN "
            "such as 'arn:aws:iot:<region>:<account>:topic/<name>'"
        )


def _exactly_one(element: str, value: object, other: object) -> None:
    if value is None and other is None:
        raise MalformedPolicy(f"statement needs {element} or Not{element}")
    if value is not None and other is not None:
        raise MalformedPolicy(f"statement has both {element} and Not{element}")
    chosen = value if value is not None else other
    if not chosen:
        name = element if value is not None else f"Not{element}"
        raise MalformedPolicy(f"{name} must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One policy statement.

    Attributes:
        sid: the statement id, if any.
        effect: ``"Allow"`` or ``"Deny"``.
        actions: the ``Action`` patterns, or None when the statement uses ``NotAction``.
        not_actions: the ``NotAction`` patterns, or None.
        resources: the ``Resource`` patterns, or None when it uses ``NotResource``.
        not_resources: the ``NotResource`` patterns, or None.
        conditions: the ``Condition`` entries, all of which must hold.

    Raises:
        MalformedPolicy: on construction, if the statement breaks the grammar.
    """

    sid: str | None = None
    effect: Effect
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        for name in ("actions", "not_actions", "resources", "not_resources", "conditions"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            elif value is not None:
                value = tuple(value)
            object.__setattr__(self, name, value)  # lists are accepted, stored as tuples
        if self.effect not in ("Allow", "Deny"):
            raise MalformedPolicy(f"Effect must be 'Allow' or 'Deny', got {self.effect!r}")
        _exactly_one("Action", self.actions, self.not_actions)
        _exactly_one("Resource", self.resources, self.not_resources)
        for action in self.actions or self.not_actions or ():
            _check_action(action)
        for resource in self.resources or self.not_resources or ():
            _check_resource(resource)


@dataclass(frozen=True, slots=True)
class StatementRef:
    """Which statement of which policy (``statement_number`` is 1-based)."""

    policy_name: str | None
    statement_number: int
    sid: str | None

    def __str__(self) -> str:
        text = f"statement {self.statement_number}"
        if self.sid is not None:
            text += f" (Sid {self.sid!r})"
        if self.policy_name is not None:
            text = f"policy {self.policy_name!r} {text}"
        return text


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """A statement with its patterns compiled; :meth:`applies` is the hot path."""

    statement: Statement
    ref: StatementRef
    deny: bool
    action_globs: tuple[GlobPattern, ...]
    not_action: bool
    resource_templates: tuple[Template, ...]
    not_resource: bool
    conditions: tuple[CompiledCondition, ...]

    @classmethod
    def compile(
        cls, statement: Statement, ref: StatementRef, *, variables: bool
    ) -> CompiledStatement:
        """Compile ``statement``; ``variables`` says whether ``${...}`` is substituted."""
        actions = statement.actions if statement.actions is not None else statement.not_actions
        resources = (
            statement.resources if statement.resources is not None else statement.not_resources
        )
        assert actions is not None
        assert resources is not None
        return cls(
            statement=statement,
            ref=ref,
            deny=statement.effect == "Deny",
            action_globs=tuple(compile_glob(a.lower()) for a in actions),
            not_action=statement.actions is None,
            resource_templates=tuple(parse_template(r, variables=variables) for r in resources),
            not_resource=statement.resources is None,
            conditions=tuple(
                CompiledCondition.compile(c, variables=variables) for c in statement.conditions
            ),
        )

    def applies(self, action_lower: str, resource: str, context: RequestContext) -> bool:
        """Whether this statement covers the request (``action_lower`` already lowercased)."""
        hit = False
        for glob in self.action_globs:
            if glob.matches(action_lower):
                hit = True
                break
        if hit == self.not_action:
            return False
        hit = False
        for template in self.resource_templates:
            if template.glob(context).matches(resource):
                hit = True
                break
        if hit == self.not_resource:
            return False
        return all(condition.test(context) for condition in self.conditions)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDocument:
    """A whole policy: its statements, compiled once on construction.

    Attributes:
        version: ``2012-10-17`` (variables substituted) or ``2008-10-17`` (not).
        statements: the statements, in document order.
        name: the policy's name (used in errors and decisions), if known.
        id: the document's optional ``Id`` element.

    Raises:
        MalformedPolicy: on construction, for an unknown version or no statements.
    """

    version: str = "2012-10-17"
    statements: tuple[Statement, ...]
    name: str | None = None
    id: str | None = None
    compiled: tuple[CompiledStatement, ...] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "statements", tuple(self.statements))
        if self.version not in POLICY_VERSIONS:
            raise MalformedPolicy(
                f"Version must be one of {', '.join(POLICY_VERSIONS)}, got {self.version!r}",
                policy_name=self.name,
            )
        if not self.statements:
            raise MalformedPolicy("policy has no statements", policy_name=self.name)
        variables = self.version == POLICY_VERSIONS[0]
        compiled = tuple(
            CompiledStatement.compile(
                statement, StatementRef(self.name, number, statement.sid), variables=variables
            )
            for number, statement in enumerate(self.statements, start=1)
        )
        object.__setattr__(self, "compiled", compiled)
