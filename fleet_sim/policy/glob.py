"""IAM-style glob matching for AWS IoT policy actions, resources and ``*Like`` conditions.

The glob language has exactly two wildcards: ``*`` matches any run of characters (including
none, and including ``/`` and ``:``) and ``?`` matches exactly one character. Every other
character is literal, **including MQTT's** ``+`` **and** ``#``: ``topicfilter/a/#`` matches only
the filter string ``a/#``, and ``topicfilter/some/*/topic`` matches the filter ``some/+/topic``.
Matching is case-sensitive and anchored at both ends; callers fold case themselves where
AWS is case-insensitive (action names).

A pattern can also be built from *parts*, some of which are literal text whose ``*`` and
``?`` are not wildcards. That is how policy-variable values are spliced into a pattern without
turning a client id of ``*`` into a wildcard.

Compiled patterns are memoised in a bounded LRU cache (a pure function memo, not state that
changes any answer), so each distinct pattern is compiled once.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "GlobPart",
    "GlobPattern",
    "compile_glob",
    "compile_glob_parts",
    "glob_match",
    "has_wildcards",
]

#: One piece of a pattern: ``(is_literal, text)``. Literal text has no wildcards.
GlobPart = tuple[bool, str]

_EXACT = 0
_ANYTHING = 1
_PREFIX = 2
_REGEX = 3


def has_wildcards(text: str) -> bool:
    """Whether ``text`` contains a glob wildcard (``*`` or ``?``)."""
    return "*" in text or "?" in text


@dataclass(frozen=True, slots=True)
class GlobPattern:
    """A compiled glob; use :meth:`matches`.

    Attributes:
        source: the pattern as written, with literal wildcard characters shown as the policy
            escapes ``${*}`` and ``${?}``.
    """

    source: str
    _kind: int
    _text: str
    _regex: re.Pattern[str] | None

    def matches(self, text: str) -> bool:
        """Whether the whole of ``text`` matches this pattern (case-sensitive)."""
        kind = self._kind
        if kind == _EXACT:
            return text == self._text
        if kind == _ANYTHING:
            return True
        if kind == _PREFIX:
            return text.startswith(self._text)
        assert self._regex is not None
        return self._regex.fullmatch(text) is not None


def _normalise(parts: tuple[GlobPart, ...]) -> tuple[GlobPart, ...]:
    """Merge neighbours of the same kind, drop empty parts, and mark wildcard-free globs literal."""
    merged: list[GlobPart] = []
    for is_literal, text in parts:
        if not text:
            continue
        literal = is_literal or not has_wildcards(text)
        if merged and merged[-1][0] == literal:
            merged[-1] = (literal, merged[-1][1] + text)
        else:
            merged.append((literal, text))
    return tuple(merged)


def _display(parts: tuple[GlobPart, ...]) -> str:
    out: list[str] = []
    for is_literal, text in parts:
        if is_literal:
            text = text.replace("*", "${*}").replace("?", "${?}")
        out.append(text)
    return "".join(out)


def _regex_source(parts: tuple[GlobPart, ...]) -> str:
    out: list[str] = []
    for is_literal, text in parts:
        if is_literal:
            out.append(re.escape(text))
            continue
        run_start = 0
        for i, char in enumerate(text):
            if char in "*?":
                out.append(re.escape(text[run_start:i]))
                out.append(".*" if char == "*" else ".")
                run_start = i + 1
        out.append(re.escape(text[run_start:]))
    return "".join(out)


@functools.lru_cache(maxsize=8192)
def compile_glob_parts(parts: tuple[GlobPart, ...]) -> GlobPattern:
    """Compile a pattern made of glob parts and literal parts.

    Args:
        parts: ``(is_literal, text)`` pairs in order; in a literal part ``*`` and ``?`` are
            ordinary characters.

    Returns:
        The compiled pattern (cached: equal ``parts`` give the same object).
    """
    norm = _normalise(parts)
    source = _display(norm)
    if not norm:
        return GlobPattern(source, _EXACT, "", None)
    if len(norm) == 1 and norm[0][0]:
        return GlobPattern(source, _EXACT, norm[0][1], None)
    *head, (last_literal, last) = norm
    if not last_literal and all(is_literal for is_literal, _ in head):
        stem = last.rstrip("*")
        if stem != last and not has_wildcards(stem):
            prefix = "".join(text for _, text in head) + stem
            if not prefix:
                return GlobPattern(source, _ANYTHING, "", None)
            return GlobPattern(source, _PREFIX, prefix, None)
    regex = re.compile(_regex_source(norm), re.DOTALL)
    return GlobPattern(source, _REGEX, "", regex)


def compile_glob(pattern: str) -> GlobPattern:
    """Compile a plain glob (``*`` and ``?`` are wildcards, all else literal); cached."""
    return compile_glob_parts(((False, pattern),))


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the glob ``pattern`` as a whole (case-sensitive)."""
    return compile_glob(pattern).matches(text)
