"""Durations, rates and percentages as scenario files write them, and as pydantic field types.

* **Durations** (seconds, ``float``): ``30s``, ``500ms``, ``2m``, ``1h``, ``1d``, compounds such
  as ``1h30m`` or ``1m 30s``, and plain numbers (``30``, ``0.5``) meaning seconds.
* **Rates** (events per second, ``float``): ``50``, ``50/s``, ``600/m`` (or ``/min``),
  ``3600/h``.
* **Percentages** (fractions, ``float`` in [0, 1]): ``0.1%`` is ``0.001``; a plain number is
  already a fraction (``0.25`` is 25 %).

The ``parse_*`` functions raise :class:`ValueError` with a message that says what is expected;
pydantic reports it at the field's YAML path. Decimal arithmetic keeps ``500ms`` exactly
``0.5`` and ``0.1%`` exactly ``0.001`` (as exact as a float can be).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "DURATION_PATTERN",
    "PERCENT_PATTERN",
    "RATE_PATTERN",
    "Duration",
    "NonNegativeRate",
    "Percent",
    "PositiveDuration",
    "Rate",
    "format_duration",
    "format_percent",
    "format_rate",
    "parse_duration",
    "parse_percent",
    "parse_rate",
]

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_DURATION_UNITS["d"] = Decimal(86400)
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h|d)\s*")
_RATE = re.compile(rf"\s*({_NUMBER})\s*(?:/\s*(s|sec|m|min|h))?\s*")
_RATE_UNITS = {"s": Decimal(1), "sec": Decimal(1), "m": Decimal(60), "min": Decimal(60)}
_RATE_UNITS["h"] = Decimal(3600)
_PERCENT = re.compile(rf"\s*({_NUMBER})\s*(%?)\s*")

#: JSON Schema patterns for editors (they mirror the parsers; numbers are accepted as well).
DURATION_PATTERN = (
    r"^\s*(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|s|m|h|d)\s*)+$|^\s*(?:\d+(?:\.\d*)?|\.\d+)\s*$"
)
RATE_PATTERN = r"^\s*(?:\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(?:s|sec|m|min|h))?\s*$"
PERCENT_PATTERN = r"^\s*(?:\d+(?:\.\d*)?|\.\d+)\s*%?\s*$"

_DURATION_HELP = "a duration such as 30s, 500ms, 2m, 1h or 1h30m, or a number of seconds"
_RATE_HELP = "a rate such as 50, 50/s, 600/m or 3600/h (a plain number is per second)"
_PERCENT_HELP = "a percentage such as 0.1% or 99%, or a fraction between 0 and 1"


def _finite_number(value: object) -> float | None:
    """``value`` as a float if it is an int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number; got {value!r}")
    return number


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regexes only let decimals through
        raise ValueError(f"{text!r} is not a number") from None


def parse_duration(value: object) -> float:
    """Parse a duration into seconds.

    Args:
        value: a number of seconds, or text such as ``"30s"``, ``"500ms"``, ``"1h30m"``,
            ``"30"``.

    Returns:
        The duration in seconds (never negative).

    Raises:
        ValueError: ``value`` is not a duration.
    """
    number = _finite_number(value)
    if number is not None:
        if number < 0:
            raise ValueError(f"must not be negative; got {value!r}")
        return number
    if not isinstance(value, str):
        raise ValueError(f"must be {_DURATION_HELP}; got {value!r}")
    text = value.strip()
    plain = re.fullmatch(_NUMBER, text)
    if plain is not None:
        return float(_decimal(text))
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += _decimal(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(value):
        raise ValueError(f"must be {_DURATION_HELP}; got {value!r}")
    return float(total)


def parse_rate(value: object) -> float:
    """Parse a rate into events per second.

    Args:
        value: a number (per second), or text such as ``"50"``, ``"50/s"``, ``"600/m"``.

    Returns:
        Events per second (never negative).

    Raises:
        ValueError: ``value`` is not a rate.
    """
    number = _finite_number(value)
    if number is not None:
        if number < 0:
            raise ValueError(f"must not be negative; got {value!r}")
        return number
    match = _RATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be {_RATE_HELP}; got {value!r}")
    per = _RATE_UNITS[match.group(2) or "s"]
    return float(_decimal(match.group(1)) / per)


def parse_percent(value: object) -> float:
    """Parse a percentage into a fraction in [0, 1].

    Args:
        value: ``"0.1%"``, ``"99 %"``, or a fraction as a number or text (``0.25``).

    Returns:
        The fraction.

    Raises:
        ValueError: ``value`` is not a percentage or lies outside 0–100 %.
    """
    number = _finite_number(value)
    if number is None:
        match = _PERCENT.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"must be {_PERCENT_HELP}; got {value!r}")
        amount = _decimal(match.group(1))
        number = float(amount / 100) if match.group(2) else float(amount)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"must be between 0% and 100%; got {value!r}")
    return number


def _trim(number: float) -> str:
    """Up to six decimals, no exponent (the parsers read no exponents), no trailing zeros."""
    return f"{number:.6f}".rstrip("0").rstrip(".") or "0"


def format_duration(seconds: float) -> str:
    """Render seconds the way a scenario would write them (``"500ms"``, ``"2s"``, ``"1.5m"``)."""
    if seconds != 0 and abs(seconds) < 1:
        return f"{_trim(seconds * 1000)}ms"
    if abs(seconds) < 120:
        return f"{_trim(seconds)}s"
    if abs(seconds) < 7200:
        return f"{_trim(seconds / 60)}m"
    return f"{_trim(seconds / 3600)}h"


def format_rate(per_second: float) -> str:
    """Render a rate as ``"<n>/s"``."""
    return f"{_trim(per_second)}/s"


def format_percent(fraction: float) -> str:
    """Render a fraction as a percentage (``0.001`` → ``"0.1%"``)."""
    return f"{_trim(fraction * 100)}%"


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _positive_rate(per_second: float) -> float:
    if per_second <= 0:
        raise ValueError("must be more than 0/s")
    return per_second


def _number_or_pattern(
    pattern: str, description: str, examples: list[Any], *, maximum: float | None = None
) -> WithJsonSchema:
    number: dict[str, Any] = {"type": "number", "minimum": 0}
    if maximum is not None:
        number["maximum"] = maximum
    return WithJsonSchema(
        {
            "anyOf": [number, {"type": "string", "pattern": pattern}],
            "description": description,
            "examples": examples,
        }
    )


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, when_used="json"),
    _number_or_pattern(
        DURATION_PATTERN,
        "A duration: 30s, 500ms, 2m, 1h, 1h30m, or a plain number of seconds.",
        ["30s", "500ms", "2m"],
    ),
]
"""A duration in seconds, zero or more."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A duration in seconds, more than zero."""

NonNegativeRate = Annotated[
    float,
    BeforeValidator(parse_rate),
    PlainSerializer(format_rate, when_used="json"),
    _number_or_pattern(
        RATE_PATTERN,
        "A rate: 50, 50/s, 600/m or 3600/h (a plain number is per second).",
        ["50/s", "600/m"],
    ),
]
"""A rate in events per second, zero or more."""

Rate = Annotated[NonNegativeRate, AfterValidator(_positive_rate)]
"""A rate in events per second, more than zero."""

Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    PlainSerializer(format_percent, when_used="json"),
    _number_or_pattern(
        PERCENT_PATTERN,
        "A percentage (0.1%, 99%) or a fraction between 0 and 1.",
        ["0.1%", "99%"],
        maximum=1,
    ),
]
"""A fraction in [0, 1], written as a percentage or a fraction."""
