"""pydantic's validation errors → readable problems at YAML paths and lines.

pydantic locates an error by a ``loc`` such as ``("fleet", 1, "connect", "retry",
"jitter")``; discriminated unions add the chosen tag (``("target", "endpoint", "port")``).
:func:`problems_from_validation` follows the ``loc`` through the :class:`Located` tree,
skipping tags (a tag is never a key of the mapping it sits under), to find the path to show
and its line. Messages are rewritten for people who write YAML: ``must be one of none, full,
equal, decorrelated; got 'fulll'`` rather than ``Input should be 'none', 'full' …``, unknown
keys get a "did you mean" and the list of allowed keys, and a missing key is explained with
its field's description.

:class:`~fleet_sim.scenario.model_base.RuleViolation` (cross-field rules) carries locations
relative to the model that raised it; they are appended to the error's ``loc``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Tag, ValidationError
from pydantic.fields import FieldInfo

from fleet_sim.scenario.model_base import Loc, RuleViolation
from fleet_sim.scenario.yaml_source import Located, Problem

__all__ = ["locate", "problems_from_validation"]

_MAX_SHOWN = 60
_MAPPING_TYPES = {"model_type", "model_attributes_type", "dict_type", "mapping_type"}
_LIST_TYPES = {"tuple_type", "list_type", "iterable_type", "sequence_type"}


def locate(root: Located, loc: Sequence[str | int], *, missing: bool = False) -> tuple[Loc, int]:
    """The path to show for ``loc`` (union tags already removed) and its line.

    Parts found in the tree are followed; the rest (a missing key, or a key left at its
    default) is shown under the line of the deepest part found. Under a scalar (a shorthand
    such as ``arrival: 50/s``) the path stops at the scalar, unless a key is ``missing``
    (``provisioning: jitp`` lacks ``provisioning.ca``).
    """
    node = root
    shown: list[str | int] = []
    for position, part in enumerate(loc):
        if node.is_scalar:
            if missing:
                shown.extend(loc[position:])
            break
        child = node.children.get(part)
        if child is None:
            shown.extend(loc[position:])
            break
        node = child
        shown.append(part)
    return tuple(shown), node.line


# ----------------------------------------------------------------------------- model lookup


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    """The members of a union (each possibly Annotated), or [] if ``tp`` is none."""
    stripped = _strip(tp)
    if typing.get_origin(stripped) in (typing.Union, types.UnionType):
        return list(typing.get_args(stripped))
    return []


def _tags(member: Any) -> list[str]:
    if typing.get_origin(member) is typing.Annotated:
        for meta in typing.get_args(member)[1:]:
            if isinstance(meta, Tag):
                return [meta.tag]
    stripped = _strip(member)
    if isinstance(stripped, type) and issubclass(stripped, BaseModel):
        field = stripped.model_fields.get("type")
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return [str(arg) for arg in typing.get_args(field.annotation)]
    return []


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _step(tp: Any, part: str | int) -> tuple[Any, bool]:
    """The type under ``part`` of ``tp``, and whether ``part`` was consumed."""
    for member in _members(tp):
        if part in _tags(member):
            return member, True
    stripped = _strip(tp)
    if isinstance(stripped, type) and issubclass(stripped, BaseModel) and isinstance(part, str):
        field = _field(stripped, part)
        return (field.annotation if field is not None else None), True
    args = typing.get_args(stripped)
    if isinstance(part, int) and args:
        return args[0], True
    if isinstance(part, str) and len(args) == 2:  # a mapping: the values' type
        return args[1], True
    return None, True


def _without_tags(root: type[BaseModel], loc: Sequence[str | int]) -> Loc:
    """``loc`` without the union tags pydantic puts in it (``("target", "endpoint", …)``)."""
    tp: Any = root
    kept: list[str | int] = []
    for part in loc:
        member = next((m for m in _members(tp) if part in _tags(m)), None)
        if member is not None:
            tp = member
            continue
        kept.append(part)
        tp, _ = _step(tp, part) if tp is not None else (None, True)
    return tuple(kept)


def _type_at(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    tp: Any = root
    for part in loc:
        tp, _ = _step(tp, part)
        if tp is None:
            return None
    return tp


def _model_of(tp: Any) -> type[BaseModel] | None:
    stripped = _strip(tp)
    if isinstance(stripped, type) and issubclass(stripped, BaseModel):
        return stripped
    members = [_strip(m) for m in _members(tp)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    return models[0] if len(models) == 1 else None


def _keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _description(root: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    if not loc or not isinstance(loc[-1], str):
        return None
    parent = _model_of(_type_at(root, loc[:-1]))
    field = _field(parent, loc[-1]) if parent is not None else None
    return field.description if field is not None else None


# ----------------------------------------------------------------------------- messages


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _got(error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        return f"; got {_shown(value)}"
    return ""


def _choices(expected: str) -> str:
    return expected.replace("'", "").replace(" or ", ", ")


def _message(root: type[BaseModel], error: Mapping[str, Any], loc: Loc) -> tuple[Loc, str]:
    """The loc to locate and the message for one pydantic error."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        description = _description(root, loc)
        if not description:
            return loc, "required key is missing"
        if len(description) > 1 and description[1].islower():
            description = description[0].lower() + description[1:]
        return loc, f"required key is missing: {description.rstrip('.')}"
    if kind == "extra_forbidden":
        key = loc[-1]
        model = _model_of(_type_at(root, loc[:-1]))
        if model is None:
            return loc, f"unknown key {key!r}"
        allowed = _keys(model)
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return loc, f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"
    if kind in ("literal_error", "enum"):
        return loc, f"must be one of {_choices(str(ctx.get('expected', '')))}{_got(error)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "'type'")).strip("'")
        tags = [tag for member in _members(_type_at(root, loc)) for tag in _tags(member)]
        choices = ", ".join(tags) or _choices(str(ctx.get("expected_tags", "")))
        if kind == "union_tag_not_found":
            return loc, f"needs {discriminator}: one of {choices}"
        return (*loc, discriminator), f"must be one of {choices}; got {ctx.get('tag')!r}"
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        return loc, str(cause) if cause is not None else error["msg"]
    if kind in _MAPPING_TYPES:
        return loc, f"must be a mapping (key: value lines){_got(error)}"
    if kind in _LIST_TYPES:
        return loc, f"must be a list{_got(error)}"
    if kind == "too_short":
        return loc, f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return loc, f"takes at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return loc, f"does not match {ctx.get('pattern')}{_got(error)}"
    message = str(error["msg"])
    if message.startswith("Input should be "):
        message = "must be " + message[len("Input should be ") :]
    return loc, message + _got(error)


def _expand(error: Mapping[str, Any]) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    """One entry per problem: a RuleViolation may carry several."""
    loc: Loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, RuleViolation):
        for relative, message in cause.problems:
            yield (*loc, *relative), {"type": "value_error", "msg": message, "ctx": {}}
    else:
        yield loc, error


def problems_from_validation(
    root_model: type[BaseModel], exc: ValidationError, located: Located
) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into located problems.

    Args:
        root_model: the model that was validated (to look up allowed keys and field
            descriptions).
        exc: the error.
        located: the document's location tree.

    Returns:
        One problem per error, with the shown path and line.
    """
    errors = exc.errors(include_url=False)
    deeper = [tuple(error["loc"]) for error in errors]
    problems: list[Problem] = []
    for raw in errors:
        loc_here = tuple(raw["loc"])
        if raw["type"] == "too_short" and any(
            len(other) > len(loc_here) and other[: len(loc_here)] == loc_here for other in deeper
        ):
            continue  # items failed, so too few remained: the item errors say why
        for loc, error in _expand(raw):
            target, message = _message(root_model, error, loc)
            shown, line = locate(
                located, _without_tags(root_model, target), missing=error["type"] == "missing"
            )
            problems.append(Problem(shown, line, message))
    return problems
