"""Policy ``Condition`` blocks: operators, validation and evaluation against a context.

Semantics follow IAM (AWS IoT says its policies "follow the same conventions"):

* Several keys under one operator, and several operators, are ANDed; several values for one
  key are ORed. Key names are case-insensitive; operator names are case-sensitive.
* A key absent from the context makes a positive operator false and a negated operator
  (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike`` …) **true**; ``…IfExists`` makes the
  condition true whatever the operator; ``ForAllValues:`` is true and ``ForAnyValue:`` false.
* ``ForAnyValue:`` is true when some context value satisfies the operator, ``ForAllValues:``
  when every one does. Without a prefix a multi-valued key behaves like ``ForAnyValue:`` for
  positive operators and requires that *no* context value match for negated ones.
* ``Null`` is true for ``"true"`` when the key is absent and for ``"false"`` when present. It
  takes neither a set prefix nor ``IfExists``.
* ``ArnEquals`` and ``ArnLike`` are the same operator in IAM: both compare the six
  colon-separated ARN components one by one, each with ``*``/``?`` globbing.
* Policy variables are substituted in string and ARN operator values only.
* Numbers are parsed as floats; dates as ISO 8601 (naive means UTC) or epoch seconds.
* ``Bool``/``Null`` values must be ``true``/``false`` (any case); numeric, date, IP and
  ``BinaryEquals`` values are validated when the policy is parsed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.glob import GlobPattern
from fleet_sim.policy.variables import (
    RequestContext,
    Template,
    normalize_key,
    parse_template,
)

__all__ = [
    "CONDITION_OPERATORS",
    "CompiledCondition",
    "Condition",
    "OperatorSpec",
    "parse_operator",
]

Kind = Literal[
    "string", "string_ci", "like", "arn", "numeric", "date", "bool", "binary", "ip", "null"
]
SetOperator = Literal["ForAnyValue", "ForAllValues"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}

#: Base operator name -> (kind, negated).
_BASES: dict[str, tuple[Kind, bool]] = {
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringEqualsIgnoreCase": ("string_ci", False),
    "StringNotEqualsIgnoreCase": ("string_ci", True),
    "StringLike": ("like", False),
    "StringNotLike": ("like", True),
    "ArnEquals": ("arn", False),
    "ArnLike": ("arn", False),
    "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    "Bool": ("bool", False),
    "BinaryEquals": ("binary", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
    "Null": ("null", False),
    **{f"Numeric{c}": ("numeric", c == "NotEquals") for c in _COMPARE},
    **{f"Date{c}": ("date", c == "NotEquals") for c in _COMPARE},
}
#: Every base condition operator this engine knows.
CONDITION_OPERATORS = frozenset(_BASES)


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A parsed condition operator such as ``ForAllValues:StringLikeIfExists``."""

    name: str
    base: str
    kind: Kind
    negated: bool
    set_operator: SetOperator | None
    if_exists: bool


def parse_operator(name: str) -> OperatorSpec:
    """Parse a condition operator name.

    Raises:
        MalformedPolicy: unknown operator, prefix or a combination IAM forbids.
    """
    prefix, colon, rest = name.partition(":")
    set_operator: SetOperator | None = None
    if colon:
        if prefix == "ForAnyValue":
            set_operator = "ForAnyValue"
        elif prefix == "ForAllValues":
            set_operator = "ForAllValues"
        else:
            raise MalformedPolicy(f"unknown condition operator {name!r}")
        base = rest
    else:
        base = name
    if_exists = base.endswith("IfExists") and base not in _BASES
    if if_exists:
        base = base.removesuffix("IfExists")
    if base not in _BASES:
        raise MalformedPolicy(f"unknown condition operator {name!r}")
    kind, negated = _BASES[base]
    if kind == "null" and (if_exists or set_operator is not None):
        raise MalformedPolicy(f"condition operator {name!r}: Null takes no prefix or IfExists")
    return OperatorSpec(name, base, kind, negated, set_operator, if_exists)


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_date(text: str) -> float | None:
    number = _parse_number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator → key → values`` entry of a statement's ``Condition`` block.

    Attributes:
        operator: the operator as written, e.g. ``ForAllValues:StringEqualsIfExists``.
        key: the condition key as written, e.g. ``iot:Connection.Thing.IsAttached``.
        values: the policy values (JSON booleans and numbers already turned into text).
    """

    operator: str
    key: str
    values: tuple[str, ...]
    spec: OperatorSpec = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        spec = parse_operator(self.operator)
        object.__setattr__(self, "spec", spec)
        where = f"condition {self.operator} {self.key!r}"
        if not self.key:
            raise MalformedPolicy(f"condition {self.operator}: empty condition key")
        if not self.values:
            raise MalformedPolicy(f"{where}: no values")
        checks: dict[Kind, tuple[Callable[[str], object], str]] = {
            "numeric": (_parse_number, "a number"),
            "date": (_parse_date, "a date (ISO 8601 or epoch seconds)"),
            "bool": (lambda v: v.lower() in ("true", "false") or None, "'true' or 'false'"),
            "null": (lambda v: v.lower() in ("true", "false") or None, "'true' or 'false'"),
            "ip": (_parse_network, "an IP address or CIDR block"),
            "binary": (_parse_binary, "base64"),
        }
        if spec.kind in checks:
            parse, expected = checks[spec.kind]
            for value in self.values:
                if parse(value) is None:
                    raise MalformedPolicy(f"{where}: value {value!r} is not {expected}")


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _split_arn(source: str) -> list[str]:
    """Split at the first five colons that are not inside ``${...}``."""
    pieces: list[str] = []
    start = depth = 0
    for i, char in enumerate(source):
        if char == "{" and i > 0 and source[i - 1] == "$":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ":" and not depth and len(pieces) < 5:
            pieces.append(source[start:i])
            start = i + 1
    pieces.append(source[start:])
    return pieces


Checker = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A :class:`Condition` ready to test contexts; build with :meth:`compile`."""

    condition: Condition
    key: str
    templates: tuple[tuple[Template, ...], ...] = ()
    numbers: tuple[float, ...] = ()
    literals: frozenset[str] = frozenset()
    blobs: frozenset[bytes] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def compile(cls, condition: Condition, *, variables: bool) -> CompiledCondition:
        """Prepare ``condition``; ``variables`` says whether ``${...}`` is substituted."""
        kind = condition.spec.kind
        key = normalize_key(condition.key)
        values = condition.values
        if kind in ("string", "string_ci", "like"):
            singles = tuple((parse_template(v, variables=variables),) for v in values)
            return cls(condition, key, templates=singles)
        if kind == "arn":
            split = (_split_arn(v) for v in values)
            templates = tuple(
                tuple(parse_template(piece, variables=variables) for piece in pieces)
                for pieces in split
            )
            return cls(condition, key, templates=templates)
        if kind == "numeric":
            return cls(condition, key, numbers=tuple(_parse_number(v) or 0.0 for v in values))
        if kind == "date":
            return cls(condition, key, numbers=tuple(_parse_date(v) or 0.0 for v in values))
        if kind == "ip":
            networks = tuple(n for n in map(_parse_network, values) if n is not None)
            return cls(condition, key, networks=networks)
        if kind == "binary":
            return cls(condition, key, blobs=frozenset(filter(None, map(_parse_binary, values))))
        return cls(condition, key, literals=frozenset(v.lower() for v in values))

    def test(self, context: RequestContext) -> bool:
        """Whether the condition holds for ``context``."""
        spec = self.condition.spec
        values = context.normalized_key_values(self.key)
        if spec.kind == "null":
            absent = not values
            return ("true" in self.literals and absent) or ("false" in self.literals and not absent)
        if not values:
            if spec.if_exists or spec.set_operator == "ForAllValues":
                return True
            if spec.set_operator == "ForAnyValue":
                return False
            return spec.negated
        check = self._checker(context)
        negated = spec.negated
        if spec.set_operator == "ForAllValues" or (spec.set_operator is None and negated):
            return all(check(value) != negated for value in values)
        return any(check(value) != negated for value in values)

    def _checker(self, context: RequestContext) -> Checker:
        """A predicate: does a context value match any policy value (positive sense)?"""
        spec = self.condition.spec
        kind = spec.kind
        if kind == "string":
            texts = {t[0].text(context) for t in self.templates}
            return texts.__contains__
        if kind == "string_ci":
            folded = {t[0].text(context).casefold() for t in self.templates}
            return lambda value: value.casefold() in folded
        if kind == "like":
            globs = [t[0].glob(context) for t in self.templates]
            return lambda value: any(g.matches(value) for g in globs)
        if kind == "arn":
            return _arn_checker([[t.glob(context) for t in ts] for ts in self.templates])
        if kind in ("numeric", "date"):
            compare = _COMPARE[spec.base.removeprefix("Numeric").removeprefix("Date")]
            parse = _parse_number if kind == "numeric" else _parse_date
            numbers = self.numbers

            def check_number(value: str) -> bool:
                number = parse(value)
                return number is not None and any(compare(number, n) for n in numbers)

            return check_number
        if kind == "ip":
            networks = self.networks

            def check_ip(value: str) -> bool:
                address = _parse_ip(value)
                return address is not None and any(address in n for n in networks)

            return check_ip
        if kind == "binary":
            blobs = self.blobs
            return lambda value: _parse_binary(value) in blobs
        return lambda value: value.lower() in self.literals


def _arn_checker(patterns: list[list[GlobPattern]]) -> Checker:
    def check(value: str) -> bool:
        pieces = value.split(":", 5)
        for components in patterns:
            if len(components) == 1:  # not an ARN ("*"): compare the whole value
                if components[0].matches(value):
                    return True
                continue
            if len(components) != len(pieces):
                continue
            if all(g.matches(p) for g, p in zip(components, pieces, strict=True)):
                return True
        return False

    return check
