"""Scenario YAML → plain data plus where every value came from (line numbers).

PyYAML's composer gives every node a ``start_mark``; :func:`read_yaml` walks the node tree
itself (with ``SafeLoader``'s scalar constructors, so ``yes``/``1.5``/``~`` mean what YAML
says) and records a :class:`Located` tree next to the data, which lets errors found later by
pydantic name the line. On the way it:

* rejects duplicate keys (PyYAML silently keeps the last one) and non-string keys;
* expands merge keys (``<<: *defaults``) and aliases, refusing recursive ones and
  documents that expand beyond :data:`MAX_NODES` values (the "billion laughs");
* interpolates environment variables in string values: ``${NAME}``, ``${NAME:-default}``
  (the default also replaces an empty value, as in the shell), and ``$${`` for a literal
  ``${``. Names are ``[A-Za-z_][A-Za-z0-9_]*``, so AWS policy variables such as
  ``${iot:Connection.Thing.ThingName}`` pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from fleet_sim.scenario.model_base import Loc

__all__ = ["MAX_NODES", "Located", "Problem", "YamlData", "interpolate", "read_yaml"]

#: Largest number of values a document may expand to (aliases included).
MAX_NODES = 2_000_000

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a scenario.

    Attributes:
        loc: where, as keys and indices from the top (``("fleet", 1, "count")``).
        line: the 1-based line, when known.
        message: what is wrong.
    """

    loc: Loc
    line: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Located:
    """Where a value sits in the file.

    Attributes:
        line: 1-based line of the value, or of its key when it is a mapping entry.
        children: the located entries of a mapping (by key) or sequence (by index).
        is_scalar: whether the value is a scalar (a shorthand may stand for a mapping).
    """

    line: int
    children: Mapping[str | int, Located] = field(default_factory=dict)
    is_scalar: bool = False


@dataclass(frozen=True, slots=True)
class YamlData:
    """A read document.

    Attributes:
        data: the plain data (dicts, lists, scalars), variables interpolated.
        root: the location tree, parallel to ``data``.
        problems: what went wrong while reading (the data is still as complete as
            possible, so validation can report further problems).
    """

    data: Any
    root: Located
    problems: tuple[Problem, ...]


def interpolate(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``${NAME}``, ``${NAME:-default}`` and ``$${`` in ``text``.

    Args:
        text: a string value from the file.
        env: the environment.

    Returns:
        The text, and the names of undefined variables without a default (those are left
        as written).
    """
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return match.group(0)
        return value

    return _ENV.sub(replace, text), missing


class _Reader:
    def __init__(self, loader: yaml.SafeLoader, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.env = env
        self.problems: list[Problem] = []
        self.nodes = 0
        self.active: set[int] = set()

    def convert(self, node: yaml.Node, loc: Loc, line: int) -> tuple[Any, Located]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(line)
        if id(node) in self.active:
            self.problems.append(Problem(loc, line, "recursive alias"))
            return None, Located(line, is_scalar=True)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc, line)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items: list[Any] = []
                located: dict[str | int, Located] = {}
                for index, item in enumerate(node.value):
                    value, where = self.convert(item, (*loc, index), item.start_mark.line + 1)
                    items.append(value)
                    located[index] = where
                return items, Located(line, located)
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, loc, line)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, loc: Loc, line: int) -> tuple[Any, Located]:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(Problem(loc, line, str(exc.problem or exc)))
            return None, Located(line, is_scalar=True)
        if isinstance(value, str) and node.tag == _STR_TAG and "${" in value:
            value, missing = interpolate(value, self.env)
            for name in missing:
                self.problems.append(
                    Problem(
                        loc,
                        node.start_mark.line + 1,
                        f"environment variable {name} is not set "
                        f"(write ${{{name}:-default}} to give a default)",
                    )
                )
        return value, Located(line, is_scalar=True)

    def _merged(self, node: yaml.Node, loc: Loc) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problems.append(
                    Problem(loc, source.start_mark.line + 1, "<< must merge a mapping")
                )
                continue
            for key_node, value_node in source.value:
                if key_node.tag == _MERGE_TAG:
                    pairs.extend(self._merged(value_node, loc))
                else:
                    pairs.append((key_node, value_node))
        return pairs

    def _mapping(self, node: yaml.MappingNode, loc: Loc, line: int) -> tuple[Any, Located]:
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merged(value_node, loc))
            else:
                own.append((key_node, value_node))
        data: dict[str, Any] = {}
        located: dict[str | int, Located] = {}
        own_lines: dict[str, int] = {}
        # keys written here win over merged ones; among merged ones, the first wins
        for is_own, pairs in ((True, own), (False, merged)):
            for key_node, value_node in pairs:
                key_line = key_node.start_mark.line + 1
                key = self._key(key_node, loc, key_line)
                if key is None:
                    continue
                if is_own and key in own_lines:
                    self.problems.append(
                        Problem(
                            (*loc, key),
                            key_line,
                            f"duplicate key {key!r} (first at line {own_lines[key]})",
                        )
                    )
                    continue
                if not is_own and key in data:
                    continue
                if is_own:
                    own_lines[key] = key_line
                value, where = self.convert(value_node, (*loc, key), key_line)
                data[key] = value
                located[key] = Located(key_line, where.children, where.is_scalar)
        return data, Located(line, located)

    def _key(self, key_node: yaml.Node, loc: Loc, line: int) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self.problems.append(Problem(loc, line, "a key must be a plain string"))
            return None
        raw = str(key_node.value)
        try:
            key = self.loader.construct_object(key_node)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(Problem((*loc, raw), line, str(exc.problem or exc)))
            return None
        if not isinstance(key, str):
            self.problems.append(
                Problem((*loc, raw), line, f"key {key!r} must be a string (quote it: '{raw}')")
            )
            return None
        return key


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def read_yaml(text: str, *, env: Mapping[str, str]) -> YamlData:
    """Read one YAML document with locations.

    Args:
        text: the document.
        env: the environment for ``${NAME}`` interpolation.

    Returns:
        The data, its locations and any problems found while reading.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            message = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
            return YamlData(None, Located(line or 1), (Problem((), line, message),))
        except yaml.YAMLError as exc:
            return YamlData(None, Located(1), (Problem((), None, str(exc)),))
        if node is None:
            return YamlData(None, Located(1), (Problem((), 1, "the scenario is empty"),))
        reader = _Reader(loader, env)
        try:
            data, root = reader.convert(node, (), node.start_mark.line + 1)
        except _TooLarge as exc:
            message = f"the document expands to more than {MAX_NODES} values"
            return YamlData(None, Located(1), (Problem((), exc.line, message),))
        return YamlData(data, root, tuple(reader.problems))
    finally:
        loader.dispose()
