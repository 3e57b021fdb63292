"""The values the template compiler works with: compiled-expression types, the
``AWS::NoValue`` marker, constants, and template locations (:class:`Where`) for errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fleet_sim.errors import TemplateError

Values = Mapping[str, str]
"""The parameter values a template is rendered with (declared ones already defaulted)."""

Expr = Callable[[Values], Any]
"""A compiled template value: parameter values in, rendered value out."""

Condition = Callable[[Values], bool]
"""A compiled condition (extension)."""

#: ``{"Ref": "AWS::NoValue"}`` (extension): removes the value it stands in.
NO_VALUE_REF: Final = "AWS::NoValue"


class _NoValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return NO_VALUE_REF


#: What ``{"Ref": "AWS::NoValue"}`` evaluates to; containers drop it.
NO_VALUE: Final = _NoValue()


@dataclass(frozen=True, slots=True)
class Where:
    """A location in a template, for error messages.

    Attributes:
        template_name: the template's name, or None.
        path: e.g. ``Resources.thing.Properties.ThingGroups[1]``.
        resource: the resource's logical name, when inside one.
        property_name: the resource property, when inside one.
    """

    template_name: str | None
    path: str = ""
    resource: str | None = None
    property_name: str | None = None

    def key(self, key: str) -> Where:
        """The location of member ``key`` of the object here."""
        path = f"{self.path}.{key}" if self.path else key
        return Where(self.template_name, path, self.resource, self.property_name)

    def index(self, index: int) -> Where:
        """The location of item ``index`` of the list here."""
        return Where(self.template_name, f"{self.path}[{index}]", self.resource, self.property_name)

    def error(self, problem: str) -> TemplateError:
        """A :class:`TemplateError` at this location (to raise)."""
        return TemplateError(
            problem,
            template_name=self.template_name,
            path=self.path,
            resource=self.resource,
            property_name=self.property_name,
        )


class Constant:
    """A compiled value that does not depend on parameters."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        """Wrap the already-rendered ``value``."""
        self.value = value

    def __call__(self, values: Values) -> Any:
        """The value (``values`` is ignored)."""
        return self.value


def type_name(value: Any) -> str:
    """A JSON-ish name of ``value``'s type, for error messages."""
    if value is None:
        return "null"
    if value is NO_VALUE:
        return NO_VALUE_REF
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
