"""``Conditions``, ``Fn::If`` and resource ``Condition`` — an EXTENSION of the emulator.

AWS does not document conditions for IoT provisioning templates; these follow CloudFormation:
``Conditions`` maps names to ``{"Fn::Equals": [a, b]}``, ``{"Fn::Not": [c]}``,
``{"Fn::And": [c1, …]}`` / ``{"Fn::Or": [c1, …]}`` (2–10 conditions) or
``{"Condition": "OtherName"}``; ``a`` and ``b`` are values (``Ref``, ``Fn::FindInMap`` …).
A template using them may be refused by real AWS IoT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fleet_sim.provisioning.intrinsics import Scope, compile_value
from fleet_sim.provisioning.values import Condition, Constant, Values, Where, type_name

_MIN_OPERANDS = 2
_MAX_OPERANDS = 10


def compile_conditions(raw: Any, scope: Scope) -> dict[str, Condition]:
    """Compile a ``Conditions`` section (conditions may refer to each other, without cycles).

    Args:
        raw: the section.
        scope: parameters and mappings the conditions may use (its own ``conditions`` are
            ignored).

    Raises:
        TemplateError: a malformed condition, an unknown one referred to, or a cycle.
    """
    where = Where(scope.template_name, "Conditions")
    if not isinstance(raw, Mapping):
        raise where.error(f"must be an object, got a {type_name(raw)}")
    compiled: dict[str, Condition] = {}
    visiting: list[str] = []

    def named(name: str, at: Where) -> Condition:
        if name in compiled:
            return compiled[name]
        if name not in raw:
            raise at.error(f"no condition {name!r} in Conditions")
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise at.error(f"conditions refer to each other in a cycle: {cycle}")
        visiting.append(name)
        compiled[name] = condition(raw[name], where.key(name))
        visiting.pop()
        return compiled[name]

    def condition(node: Any, at: Where) -> Condition:
        if not isinstance(node, Mapping) or len(node) != 1:
            raise at.error(
                "a condition is one of Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition"
            )
        ((key, argument),) = node.items()
        inner = at.key(key)
        if key == "Condition":
            if not isinstance(argument, str):
                raise inner.error(f"Condition takes a condition name, got a {type_name(argument)}")
            return named(argument, inner)
        if key == "Fn::Equals":
            return _equals(argument, value_scope, inner)
        if key == "Fn::Not":
            if not isinstance(argument, list) or len(argument) != 1:
                raise inner.error("Fn::Not takes [condition]")
            operand = condition(argument[0], inner.index(0))
            return lambda values: not operand(values)
        if key in ("Fn::And", "Fn::Or"):
            if not isinstance(argument, list) or not (
                _MIN_OPERANDS <= len(argument) <= _MAX_OPERANDS
            ):
                raise inner.error(f"{key} takes {_MIN_OPERANDS} to {_MAX_OPERANDS} conditions")
            operands = tuple(condition(c, inner.index(i)) for i, c in enumerate(argument))
            combine: Callable[[Any], bool] = all if key == "Fn::And" else any
            return lambda values: combine(operand(values) for operand in operands)
        raise inner.error(f"{key} is not a condition function")

    value_scope = Scope(
        scope.template_name, scope.parameters, scope.implicit, scope.mappings, conditions={}
    )
    for name in raw:
        if not isinstance(name, str):
            raise where.error(f"condition names must be strings, got {name!r}")
        named(name, where.key(name))
    return compiled


def _equals(argument: Any, scope: Scope, where: Where) -> Condition:
    if not isinstance(argument, list) or len(argument) != 2:
        raise where.error("Fn::Equals takes [value, value]")
    left = compile_value(argument[0], scope, where.index(0))
    right = compile_value(argument[1], scope, where.index(1))
    if isinstance(left, Constant) and isinstance(right, Constant):
        same = left.value == right.value
        return lambda values: same

    def equals(values: Values) -> bool:
        return bool(left(values) == right(values))

    return equals
