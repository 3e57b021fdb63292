"""The template language of topics, payloads, client ids and thing names.

Templates are Python ``str.format`` strings over a fixed set of names; nothing the user writes
is ever evaluated. ``{{`` and ``}}`` stand for literal braces (so a JSON payload is written
``'{{"t": {random.uniform(18, 25):.1f}}}'``). Every field may carry a format spec
(``{index:05d}``) and a conversion (``{thing_name!r}``).

Per-device values (which ones a template may use depends on where it is, see the ``*_FIELDS``
constants):

=================  ======  =======================================================
``index``          int     the device's number in its group (``first_index`` up)
``group``          str     the group's name
``thing_name``     str     the device's thing name
``client_id``      str     the device's MQTT client id
``seq``            int     the message's sequence number in its behaviour, from 0
``timestamp_ms``   int     the send time, milliseconds since the Unix epoch
=================  ======  =======================================================

Generated fields (only in message topics and payloads), drawn from the ``random.Random``
passed to :meth:`Template.render`, so a seeded run renders the same payloads:

* ``{uuid}``: a random (version 4) UUID;
* ``{random.uniform(a, b)}``: a float in [a, b]; ``{random.gauss(mu, sigma)}``: a normal
  variate; ``{random.randint(a, b)}``: an int in [a, b];
* ``{random.choice(x, y, z)}``: one of the (unquoted or quoted) words;
* ``{random.hex(n)}``: ``n`` random hex digits (1–64).

A template is compiled once (:func:`compile_template`) into a single format string and a
tuple of value getters, so rendering one message is one ``str.format`` call.
"""

from __future__ import annotations

import difflib
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "CLIENT_ID_FIELDS",
    "DEVICE_VALUES",
    "FILTER_FIELDS",
    "GENERATORS",
    "MESSAGE_FIELDS",
    "THING_NAME_FIELDS",
    "Template",
    "ValueGetter",
    "compile_template",
]

#: The per-device values and their types.
DEVICE_VALUES: Mapping[str, type] = MappingProxyType(
    {
        "index": int,
        "group": str,
        "thing_name": str,
        "client_id": str,
        "seq": int,
        "timestamp_ms": int,
    }
)

#: What a thing name may use.
THING_NAME_FIELDS = ("index", "group")
#: What a client id may use.
CLIENT_ID_FIELDS = ("index", "group", "thing_name")
#: What subscription filters and provisioning parameters may use.
FILTER_FIELDS = ("index", "group", "thing_name", "client_id")
#: What message topics and payloads may use (plus the generated fields).
MESSAGE_FIELDS = tuple(DEVICE_VALUES)

#: The generated fields and how they are written.
GENERATORS: Mapping[str, str] = MappingProxyType(
    {
        "uuid": "{uuid}",
        "random.uniform": "{random.uniform(a, b)}",
        "random.gauss": "{random.gauss(mu, sigma)}",
        "random.randint": "{random.randint(a, b)}",
        "random.choice": "{random.choice(x, y, ...)}",
        "random.hex": "{random.hex(n)}",
    }
)

ValueGetter = Callable[[Mapping[str, object], random.Random], object]
"""Computes one field's value from the device's values and the random generator."""

_FIELD = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
    r"(?:\((?P<args>[^()]*)\))?"
)
_MAX_HEX_DIGITS = 64


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; equal templates have equal source and allowed fields.

    Attributes:
        source: the template as written.
        allowed: the per-device values it was allowed to use.
        fields: the per-device values it uses (the caller must supply them).
        uses_random: whether it has generated fields (it then draws from the rng).
    """

    source: str
    allowed: frozenset[str]
    fields: frozenset[str]
    uses_random: bool
    _format: str = field(compare=False, repr=False)
    _getters: tuple[ValueGetter, ...] = field(compare=False, repr=False)

    @property
    def is_constant(self) -> bool:
        """Whether every rendering gives the same text."""
        return not self._getters

    def render(self, values: Mapping[str, object], rng: random.Random) -> str:
        """Render the template.

        Args:
            values: the per-device values named in :attr:`fields` (more are ignored).
            rng: where generated fields draw from.

        Returns:
            The text.

        Raises:
            KeyError: ``values`` lacks one of :attr:`fields`.
        """
        if not self._getters:
            return self._format
        return self._format.format(*[getter(values, rng) for getter in self._getters])

    def __str__(self) -> str:
        return self.source


def _value_getter(name: str) -> ValueGetter:
    def get(values: Mapping[str, object], rng: random.Random) -> object:
        return values[name]

    return get


def _numbers(name: str, args: list[str], count: int, example: str) -> list[float]:
    problem = f"{name} takes {count} numbers, e.g. {example}"
    if len(args) != count:
        raise ValueError(f"{problem}; got ({', '.join(args)})")
    try:
        numbers = [float(arg) for arg in args]
    except ValueError:
        raise ValueError(f"{problem}; got ({', '.join(args)})") from None
    if not all(number == number and abs(number) != float("inf") for number in numbers):
        raise ValueError(f"{problem}; got ({', '.join(args)})")
    return numbers


def _words(args: list[str]) -> tuple[str, ...]:
    words: list[str] = []
    for arg in args:
        if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\"":
            arg = arg[1:-1]
        words.append(arg)
    return tuple(words)


def _generator(name: str, raw_args: str | None) -> tuple[ValueGetter, object]:
    """The getter of a generated field and a sample value (to check the format spec)."""
    args = (
        [] if raw_args is None or not raw_args.strip() else [a.strip() for a in raw_args.split(",")]
    )
    if name == "uuid":
        if raw_args is not None:
            raise ValueError("uuid takes no arguments: write {uuid}")

        def new_uuid(values: Mapping[str, object], rng: random.Random) -> object:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        return new_uuid, "00000000-0000-4000-8000-000000000000"
    if raw_args is None:
        raise ValueError(f"{name} needs arguments: write {GENERATORS[name]}")
    if name == "random.uniform":
        low, high = _numbers(name, args, 2, "{random.uniform(18, 25):.1f}")
        return (lambda values, rng: rng.uniform(low, high)), low
    if name == "random.gauss":
        mu, sigma = _numbers(name, args, 2, "{random.gauss(20, 1.5):.2f}")
        if sigma < 0:
            raise ValueError(f"random.gauss: sigma must not be negative; got {sigma:g}")
        return (lambda values, rng: rng.gauss(mu, sigma)), mu
    if name == "random.randint":
        low_f, high_f = _numbers(name, args, 2, "{random.randint(0, 100)}")
        if low_f != int(low_f) or high_f != int(high_f) or low_f > high_f:
            raise ValueError(f"random.randint needs two integers a <= b; got ({', '.join(args)})")
        low_i, high_i = int(low_f), int(high_f)
        return (lambda values, rng: rng.randint(low_i, high_i)), low_i
    if name == "random.choice":
        words = _words(args)
        if not words or any(not word for word in words):
            raise ValueError(
                f"random.choice needs one or more non-empty words, e.g. "
                f"{{random.choice(on, off)}}; got ({raw_args})"
            )
        return (lambda values, rng: rng.choice(words)), words[0]
    if name == "random.hex":
        (digits_f,) = _numbers(name, args, 1, "{random.hex(8)}")
        digits = int(digits_f)
        if digits != digits_f or not 1 <= digits <= _MAX_HEX_DIGITS:
            raise ValueError(
                f"random.hex needs a whole number of digits from 1 to 64; got {args[0]}"
            )
        return (lambda values, rng: f"{rng.getrandbits(4 * digits):0{digits}x}"), "0" * digits
    raise AssertionError(name)  # pragma: no cover - callers pass GENERATORS keys only


def _describe(allowed: Iterable[str], generators: bool) -> str:
    names = [f"{{{name}}}" for name in allowed]
    if generators:
        names.append("{uuid} and {random.uniform|gauss|randint|choice|hex(...)}")
    if not names:
        return "no fields"
    return ", ".join(names)


def _unknown(
    name: str, allowed: tuple[str, ...], generators: bool, what: str, values: Mapping[str, type]
) -> ValueError:
    known = list(allowed) + (list(GENERATORS) if generators else [])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    if name in values or (name in GENERATORS and not generators):
        return ValueError(
            f"{{{name}}} is not available in a {what}; it can use {_describe(allowed, generators)}"
        )
    return ValueError(
        f"unknown template field {{{name}}}{hint}; a {what} can use "
        f"{_describe(allowed, generators)}"
    )


def compile_template(
    source: str,
    *,
    allowed: Iterable[str] = MESSAGE_FIELDS,
    generators: bool = True,
    what: str = "template",
    values: Mapping[str, type] = DEVICE_VALUES,
) -> Template:
    """Compile ``source`` once, checking every field and format spec.

    Args:
        source: the template text.
        allowed: the value names (keys of ``values``) it may use.
        generators: whether generated fields (``{uuid}``, ``{random.…}``) are allowed.
        what: what the template is, for messages (``"topic"``, ``"thing name"`` …).
        values: the value vocabulary and each value's type (to check format specs);
            :data:`DEVICE_VALUES` unless the template renders something else (report
            file names, say).

    Returns:
        The compiled template.

    Raises:
        ValueError: an unknown or unavailable field, bad generator arguments, a bad format
            spec, or unbalanced braces; the message says which and what is allowed.
    """
    allowed_names = tuple(allowed)
    unknown = [name for name in allowed_names if name not in values]
    if unknown:
        raise ValueError(f"not template values: {', '.join(unknown)}")
    try:
        pieces = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise ValueError(
            f"unbalanced braces ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
    parts: list[str] = []
    getters: list[ValueGetter] = []
    used: set[str] = set()
    uses_random = False
    for literal, field_name, spec, conversion in pieces:
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if field_name is None:
            continue
        match = _FIELD.fullmatch(field_name.strip())
        if match is None:
            if not field_name.strip() or field_name.strip().isdigit():
                raise ValueError(
                    f"{{{field_name}}}: positional fields are not supported; name a value, "
                    f"e.g. {{index}}"
                )
            raise ValueError(
                f"malformed template field {{{field_name}}} (literal braces are written "
                "{{ and }})"
            )
        name, raw_args = match.group("name"), match.group("args")
        if name in values and name in allowed_names and raw_args is None:
            getter = _value_getter(name)
            sample: object = values[name]()
            used.add(name)
        elif name in GENERATORS and generators:
            getter, sample = _generator(name, raw_args)
            uses_random = True
        else:
            raise _unknown(name, allowed_names, generators, what, values)
        if "{" in (spec or ""):
            raise ValueError(
                f"{{{field_name}:{spec}}}: nested fields in a format spec are not supported"
            )
        tail = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        try:
            ("{0" + tail).format(sample)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{{{field_name}{tail}: bad format spec or conversion ({exc})"
            ) from None
        parts.append("{" + str(len(getters)) + tail)
        getters.append(getter)
    text = "".join(parts)
    if not getters:
        text = text.format()  # undo the brace escaping: a constant renders as written
    return Template(
        source=source,
        allowed=frozenset(allowed_names),
        fields=frozenset(used),
        uses_random=uses_random,
        _format=text,
        _getters=tuple(getters),
    )
