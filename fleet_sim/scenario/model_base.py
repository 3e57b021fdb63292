"""What every scenario model shares: the frozen base class and cross-field rule errors.

* :class:`FrozenModel`: pydantic's ``frozen=True, extra="forbid"``; unknown keys are errors.
* :class:`RuleViolation`: what a model validator raises when fields that are each valid do
  not fit together. It names the offending keys relative to the model, so the loader can
  report ``fleet[0].provisioning.ca`` and its line instead of just ``fleet[0]``; one
  violation may carry several problems.
* :class:`AlsoAccepts`: documents a shorthand (``target: local``) in the JSON Schema next to
  the full form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = ["AlsoAccepts", "FrozenModel", "Loc", "RuleViolation", "format_loc"]

Loc = tuple[str | int, ...]
"""A location in the scenario, as pydantic writes it: keys and list indices."""


class FrozenModel(BaseModel):
    """Base of every scenario model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a location the way errors show it: ``fleet[1].connect.retry.jitter``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class RuleViolation(ValueError):
    """Valid fields that do not fit together.

    Attributes:
        problems: ``(loc, message)`` pairs; ``loc`` is relative to the model that raised,
            e.g. ``("provisioning", "ca")``.
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(f"{format_loc(loc)}: {msg}" if loc else msg for loc, msg in self.problems)
        )

    @classmethod
    def at(cls, loc: Loc, message: str) -> RuleViolation:
        """One problem at ``loc``."""
        return cls([(loc, message)])


@dataclass(frozen=True, slots=True)
class AlsoAccepts:
    """Annotation metadata: the JSON Schema also accepts ``schema`` (a shorthand form).

    Attributes:
        schema: the shorthand's JSON Schema, e.g. ``{"const": "local"}``.
    """

    schema: dict[str, Any]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        full = handler(core_schema)
        return {"anyOf": [self.schema, full]}
