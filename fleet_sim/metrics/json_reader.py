"""Typed, location-aware reading of parsed JSON, for loading saved runs.

Every accessor checks the JSON type and raises :class:`~fleet_sim.errors.RunFileError` naming
the location (``metrics.groups[0].phases.connect.p99``) and what was expected, so a broken or
hand-edited report fails with one precise line instead of a ``KeyError`` traceback.
"""

from __future__ import annotations

import math
from typing import Final

from fleet_sim.errors import RunFileError

__all__ = ["JsonReader"]


class _Missing:
    pass


_MISSING: Final = _Missing()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class JsonReader:
    """A JSON object and where it sits in the document."""

    __slots__ = ("_data", "path")

    def __init__(self, value: object, path: str = "") -> None:
        if not isinstance(value, dict):
            raise RunFileError(f"{path or 'the document'}: expected an object, got {_kind(value)}")
        self._data: dict[str, object] = value
        self.path = path

    def _where(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: object) -> object:
        if key in self._data:
            return self._data[key]
        if default is _MISSING:
            raise RunFileError(f"{self._where(key)}: missing")
        return default

    def _fail(self, where: str, expected: str, value: object) -> RunFileError:
        return RunFileError(f"{where}: expected {expected}, got {_kind(value)}")

    def names(self) -> list[str]:
        """The object's keys."""
        return list(self._data)

    def text(self, key: str, default: str | _Missing = _MISSING) -> str:
        """A string."""
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._fail(self._where(key), "a string", value)
        return value

    def integer(self, key: str, default: int | _Missing = _MISSING) -> int:
        """A whole number (``3`` or ``3.0``)."""
        value = self._get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._fail(self._where(key), "a whole number", value)
        if not float(value).is_integer():
            raise self._fail(self._where(key), "a whole number", value)
        return int(value)

    def optional_integer(self, key: str) -> int | None:
        """A whole number or null (absent: null)."""
        return None if self._get(key, None) is None else self.integer(key)

    def number(self, key: str, default: float | _Missing = _MISSING) -> float:
        """A finite number."""
        value = self._get(key, default)
        return self._number(self._where(key), value)

    def _number(self, where: str, value: object) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._fail(where, "a number", value)
        if not math.isfinite(value):
            raise self._fail(where, "a finite number", value)
        return float(value)

    def optional_number(self, key: str) -> float | None:
        """A finite number or null (absent: null)."""
        return None if self._get(key, None) is None else self.number(key)

    def boolean(self, key: str) -> bool:
        """true or false."""
        value = self._get(key, _MISSING)
        if not isinstance(value, bool):
            raise self._fail(self._where(key), "true or false", value)
        return value

    def child(self, key: str) -> JsonReader:
        """A nested object."""
        return JsonReader(self._get(key, _MISSING), self._where(key))

    def children(self, key: str) -> list[JsonReader]:
        """An array of objects."""
        value = self._get(key, _MISSING)
        if not isinstance(value, list):
            raise self._fail(self._where(key), "an array", value)
        where = self._where(key)
        return [JsonReader(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def texts(self, key: str) -> tuple[str, ...]:
        """An array of strings (absent: empty)."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self._fail(self._where(key), "an array of strings", value)
        where = self._where(key)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self._fail(f"{where}[{i}]", "a string", item)
        return tuple(value)

    def child_map(self, key: str) -> dict[str, JsonReader]:
        """An object whose values are objects."""
        inner = self.child(key)
        return {name: inner.child(name) for name in inner.names()}

    def text_map(self, key: str) -> dict[str, str]:
        """An object whose values are strings (absent: empty)."""
        if self._get(key, None) is None:
            return {}
        inner = self.child(key)
        return {name: inner.text(name) for name in inner.names()}

    def number_map(self, key: str) -> dict[str, float]:
        """An object whose values are numbers (absent: empty)."""
        if self._get(key, None) is None:
            return {}
        inner = self.child(key)
        return {name: inner.number(name) for name in inner.names()}

    def integer_map(self, key: str) -> dict[str, int]:
        """An object whose values are whole numbers (absent: empty)."""
        if self._get(key, None) is None:
            return {}
        inner = self.child(key)
        return {name: inner.integer(name) for name in inner.names()}

    def series_map(self, key: str, length: int) -> dict[str, tuple[float, ...]]:
        """An object whose values are arrays of ``length`` numbers (absent: empty)."""
        return self._series(key, length, whole=False)

    def count_series_map(self, key: str, length: int) -> dict[str, tuple[int, ...]]:
        """An object whose values are arrays of ``length`` whole numbers (absent: empty)."""
        return {
            name: tuple(int(v) for v in values)
            for name, values in self._series(key, length, whole=True).items()
        }

    def _series(self, key: str, length: int, *, whole: bool) -> dict[str, tuple[float, ...]]:
        if self._get(key, None) is None:
            return {}
        inner = self.child(key)
        series: dict[str, tuple[float, ...]] = {}
        for name in inner.names():
            where = inner._where(name)
            value = inner._data[name]
            if not isinstance(value, list):
                raise self._fail(where, "an array of numbers", value)
            if len(value) != length:
                raise RunFileError(f"{where}: expected {length} values, got {len(value)}")
            numbers = tuple(self._number(f"{where}[{i}]", v) for i, v in enumerate(value))
            if whole:
                for i, number in enumerate(numbers):
                    if not number.is_integer():
                        raise RunFileError(f"{where}[{i}]: expected a whole number, got {number}")
            series[name] = numbers
        return series
