"""The intrinsic functions of provisioning templates, compiled once per template.

A template value (a property, a list item, a ``DeviceConfiguration`` entry) is compiled into
an :data:`Expr`: a function of the parameter values that returns the rendered value. Constant
sub-trees are evaluated once at compile time (so an ``Fn::Select`` out of range over literals
fails when the template is parsed), which leaves little to do per device.

Documented for AWS IoT provisioning templates, and implemented as AWS describes them:

* ``{"Ref": "Param"}``: the parameter's value.
* ``{"Fn::Join": ["delimiter", [values]]}``: an empty delimiter concatenates.
* ``{"Fn::Select": [index, [values]]}``: an index out of range, or a null item, fails.
* ``{"Fn::Split": ["delimiter", "string"]}``: a list of strings.
* ``{"Fn::FindInMap": ["Map", "TopKey", "SecondKey"]}``: a lookup in ``Mappings``.
* ``{"Fn::Sub": "text ${Param} ${!Literal}"}`` or ``{"Fn::Sub": ["text ${Var}", {"Var":
  value}]}``: ``${!Name}`` is the literal ``${Name}``.

An **extension** (CloudFormation's, not documented for AWS IoT, so not known to work on AWS):
``{"Fn::If": ["Condition", then, else]}`` with ``Conditions`` (:mod:`.conditions`), and
``{"Ref": "AWS::NoValue"}``, which drops the property, list item or map entry it stands in.

Other ``Fn::`` functions (``Fn::GetAtt``, ``Fn::Base64`` …) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fleet_sim.errors import MissingTemplateParameter
from fleet_sim.provisioning.values import (
    NO_VALUE,
    NO_VALUE_REF,
    Condition,
    Constant,
    Expr,
    Values,
    Where,
    type_name,
)

_EMPTY: Values = {}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class Scope:
    """What compiling a value may refer to.

    Attributes:
        template_name: for error messages.
        parameters: the declared parameters.
        implicit: names that may be referenced without being declared (the service supplies
            them, e.g. ``AWS::IoT::Certificate::Id`` in fleet templates); rendering fails if
            no value is supplied.
        mappings: ``Mappings``: map → top-level key → second-level key → string or strings.
        conditions: the compiled ``Conditions`` (extension).
    """

    template_name: str | None
    parameters: frozenset[str] = frozenset()
    implicit: frozenset[str] = frozenset()
    mappings: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    conditions: Mapping[str, Condition] = field(default_factory=dict)


def function_name(raw: Mapping[str, Any], where: Where) -> str | None:
    """The function ``raw`` calls (``Ref`` or ``Fn::…``), or None for a plain object.

    Raises:
        TemplateError: an unknown function, or a function key beside other keys.
    """
    calls = [key for key in raw if key == "Ref" or key.startswith("Fn::")]
    if not calls:
        return None
    if len(raw) != 1:
        raise where.error(f"{calls[0]} must be the only key of its object")
    name = calls[0]
    if name not in _FUNCTIONS:
        raise where.error(f"{name} is not supported in provisioning templates")
    return name


def compile_value(raw: Any, scope: Scope, where: Where) -> Expr:
    """Compile one template value (any JSON value, with intrinsics anywhere inside).

    Raises:
        TemplateError: a malformed or unsupported function, or a reference to something
            undeclared.
    """
    if isinstance(raw, Mapping):
        name = function_name(raw, where)
        if name is not None:
            # A Ref's errors belong to the value it stands in; a function's to its arguments.
            at = where if name == "Ref" else where.key(name)
            return _FUNCTIONS[name](raw[name], scope, at)
        return _mapping({key: compile_value(v, scope, where.key(key)) for key, v in raw.items()})
    if isinstance(raw, list | tuple):
        return _sequence([compile_value(v, scope, where.index(i)) for i, v in enumerate(raw)])
    if raw is None or isinstance(raw, str | int | float | bool):
        return Constant(raw)
    raise where.error(f"unsupported value of type {type(raw).__name__}")


def parameter(name: str, scope: Scope, where: Where, *, usage: str = "Ref to") -> Expr:
    """The value of parameter ``name`` (declared, or one the service supplies).

    Raises:
        TemplateError: ``name`` is neither.
    """
    if name in scope.parameters:

        def declared(values: Values) -> Any:
            return values[name]

        return declared
    if name in scope.implicit:
        template_name = scope.template_name

        def supplied(values: Values) -> Any:
            try:
                return values[name]
            except KeyError:
                raise MissingTemplateParameter(name, template_name=template_name) from None

        return supplied
    raise where.error(f"{usage} undeclared parameter {name!r}")


def _fold(evaluate: Expr, *inputs: Expr) -> Expr:
    if all(isinstance(item, Constant) for item in inputs):
        return Constant(evaluate(_EMPTY))
    return evaluate


def _mapping(items: Mapping[str, Expr]) -> Expr:
    pairs = tuple(items.items())
    if all(isinstance(expr, Constant) for _, expr in pairs):
        return Constant(
            {key: expr.value for key, expr in pairs if expr.value is not NO_VALUE}  # type: ignore[attr-defined]
        )

    def evaluate(values: Values) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, expr in pairs:
            value = expr(values)
            if value is not NO_VALUE:
                out[key] = value
        return out

    return evaluate


def _sequence(items: Sequence[Expr]) -> Expr:
    exprs = tuple(items)
    if all(isinstance(expr, Constant) for expr in exprs):
        return Constant([e.value for e in exprs if e.value is not NO_VALUE])  # type: ignore[attr-defined]

    def evaluate(values: Values) -> list[Any]:
        return [value for expr in exprs if (value := expr(values)) is not NO_VALUE]

    return evaluate


def _compile_list(raw: Any, scope: Scope, where: Where, usage: str) -> Expr:
    """A list argument: a literal list, or a function that returns one (checked when run)."""
    if isinstance(raw, list | tuple):
        return compile_value(raw, scope, where)
    if isinstance(raw, Mapping) and function_name(raw, where) is not None:
        inner = compile_value(raw, scope, where)

        def checked(values: Values) -> Any:
            value = inner(values)
            if not isinstance(value, list | tuple):
                raise where.error(f"{usage} needs a list, got a {type_name(value)}")
            return value

        return _fold(checked, inner)
    raise where.error(f"{usage} needs a list, got a {type_name(raw)}")


def _string(value: Any, where: Where, usage: str) -> str:
    if not isinstance(value, str):
        raise where.error(f"{usage} needs a string, got a {type_name(value)}")
    return value


def _arguments(raw: Any, count: int, where: Where, usage: str) -> list[Any]:
    if not isinstance(raw, list | tuple) or len(raw) != count:
        raise where.error(usage)
    return list(raw)


# ---------------------------------------------------------------------- the functions


def _ref(raw: Any, scope: Scope, where: Where) -> Expr:
    if not isinstance(raw, str):
        raise where.error(f"Ref takes a parameter name, got a {type_name(raw)}")
    if raw == NO_VALUE_REF:
        return Constant(NO_VALUE)
    return parameter(raw, scope, where)


def _join(raw: Any, scope: Scope, where: Where) -> Expr:
    delimiter, items = _arguments(raw, 2, where, 'Fn::Join takes ["delimiter", [values]]')
    if not isinstance(delimiter, str):
        raise where.index(0).error(f"the delimiter must be a string, got a {type_name(delimiter)}")
    parts = _compile_list(items, scope, where.index(1), "Fn::Join")

    def evaluate(values: Values) -> str:
        strings = parts(values)
        for index, item in enumerate(strings):
            _string(item, where.index(1).index(index), "Fn::Join")
        return delimiter.join(strings)

    return _fold(evaluate, parts)


def _index(value: Any, where: Where) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise where.error(f"the index must be a non-negative integer, got {value!r}")


def _select(raw: Any, scope: Scope, where: Where) -> Expr:
    index_raw, items = _arguments(raw, 2, where, "Fn::Select takes [index, [values]]")
    index = compile_value(index_raw, scope, where.index(0))
    listed = _compile_list(items, scope, where.index(1), "Fn::Select")

    def evaluate(values: Values) -> Any:
        position = _index(index(values), where.index(0))
        chosen = listed(values)
        if position >= len(chosen):
            raise where.error(f"index {position} is out of range for a list of {len(chosen)}")
        value = chosen[position]
        if value is None:
            raise where.error(f"item {position} is null")
        return value

    return _fold(evaluate, index, listed)


def _split(raw: Any, scope: Scope, where: Where) -> Expr:
    delimiter, source_raw = _arguments(raw, 2, where, 'Fn::Split takes ["delimiter", "string"]')
    if not isinstance(delimiter, str) or not delimiter:
        raise where.index(0).error("the delimiter must be a non-empty string")
    source = compile_value(source_raw, scope, where.index(1))

    def evaluate(values: Values) -> list[str]:
        return _string(source(values), where.index(1), "Fn::Split").split(delimiter)

    return _fold(evaluate, source)


def _find_in_map(raw: Any, scope: Scope, where: Where) -> Expr:
    usage = 'Fn::FindInMap takes ["MapName", "TopLevelKey", "SecondLevelKey"]'
    keys = [
        compile_value(k, scope, where.index(i))
        for i, k in enumerate(_arguments(raw, 3, where, usage))
    ]
    map_name = keys[0]
    if isinstance(map_name, Constant) and map_name.value not in scope.mappings:
        raise where.index(0).error(f"no mapping {map_name.value!r} in Mappings")
    mappings = scope.mappings

    def evaluate(values: Values) -> Any:
        name, top, second = (
            _string(key(values), where.index(i), "Fn::FindInMap") for i, key in enumerate(keys)
        )
        table = mappings.get(name)
        if table is None:
            raise where.error(f"no mapping {name!r} in Mappings")
        entry = table.get(top)
        if entry is None:
            raise where.error(f"mapping {name!r} has no key {top!r}")
        if second not in entry:
            raise where.error(f"mapping {name!r} key {top!r} has no {second!r}")
        return entry[second]

    return _fold(evaluate, *keys)


def _sub(raw: Any, scope: Scope, where: Where) -> Expr:
    if isinstance(raw, str):
        text, variables = raw, {}
    else:
        text, variables = _arguments(raw, 2, where, 'Fn::Sub takes "text" or ["text", {variables}]')
        if not isinstance(text, str):
            raise where.index(0).error(f"the text must be a string, got a {type_name(text)}")
        if not isinstance(variables, Mapping):
            raise where.index(1).error(
                f"the variables must be an object, got a {type_name(variables)}"
            )
    local = {
        name: compile_value(value, scope, where.index(1).key(name))
        for name, value in variables.items()
    }
    pieces: list[str | Expr] = []
    start = 0
    for match in _SUB_VARIABLE.finditer(text):
        pieces.append(text[start : match.start()])
        start = match.end()
        name = match.group(1)
        if name.startswith("!"):
            pieces.append("${" + name[1:] + "}")
        elif name in local:
            pieces.append(local[name])
        elif "." in name:
            raise where.error(f"${{{name}}}: resource attributes are not supported")
        else:
            pieces.append(parameter(name, scope, where, usage="${} of"))
    pieces.append(text[start:])
    parts = tuple(piece for piece in pieces if piece != "")

    def evaluate(values: Values) -> str:
        return "".join(
            piece if isinstance(piece, str) else _string(piece(values), where, "Fn::Sub")
            for piece in parts
        )

    return _fold(evaluate, *(piece for piece in parts if not isinstance(piece, str)))


def _if(raw: Any, scope: Scope, where: Where) -> Expr:
    name, then_raw, else_raw = _arguments(
        raw, 3, where, 'Fn::If takes ["Condition", value if true, value if false]'
    )
    if not isinstance(name, str) or name not in scope.conditions:
        raise where.index(0).error(f"Fn::If names no declared condition: {name!r}")
    condition = scope.conditions[name]
    then = compile_value(then_raw, scope, where.index(1))
    otherwise = compile_value(else_raw, scope, where.index(2))

    def evaluate(values: Values) -> Any:
        return then(values) if condition(values) else otherwise(values)

    return evaluate


_FUNCTIONS: Mapping[str, Callable[[Any, Scope, Where], Expr]] = MappingProxyType(
    {
        "Ref": _ref,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::FindInMap": _find_in_map,
        "Fn::Sub": _sub,
        "Fn::If": _if,
    }
)
