"""Checks and conversions of rendered resource properties into plan values.

Each function takes a rendered value and its location and returns the plan's value, or raises
a :class:`TemplateError` naming the resource and property. The parser runs them on constant
properties (so a literal ``"Status": "ENABLED"`` fails when the template is parsed) and the
renderer on the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.parse import parse_policy
from fleet_sim.provisioning.values import Where, type_name

Coerce = Callable[[Any, Where], Any]
"""A property's check: rendered value and location in, plan value out."""

#: The certificate statuses a template may set (AWS accepts them in any case, e.g. "Active").
CERTIFICATE_STATUSES = ("ACTIVE", "INACTIVE")


def anything(value: Any, where: Where) -> Any:
    """No check (for values already checked)."""
    return value


def string(value: Any, where: Where) -> str:
    """A string."""
    if not isinstance(value, str):
        raise where.error(f"must be a string, got a {type_name(value)}")
    return value


def name(value: Any, where: Where) -> str:
    """A non-empty string (a resource name)."""
    text = string(value, where)
    if not text:
        raise where.error("must not be empty")
    return text


def string_map(value: Any, where: Where) -> Mapping[str, str]:
    """An object of strings (``AttributePayload``), read-only."""
    if not isinstance(value, Mapping):
        raise where.error(f"must be an object of strings, got a {type_name(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise where.key(key).error(f"must be a string, got a {type_name(item)}")
    return MappingProxyType(dict(value))


def string_list(value: Any, where: Where) -> tuple[str, ...]:
    """A list of non-empty strings (``ThingGroups``)."""
    if not isinstance(value, list | tuple):
        raise where.error(f"must be a list of strings, got a {type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            name(item, where.index(index))  # raises, naming the item
    return tuple(value)


def status(value: Any, where: Where) -> str:
    """A certificate ``Status``: ACTIVE or INACTIVE in any case, returned upper case."""
    upper = string(value, where).upper()
    if upper not in CERTIFICATE_STATUSES:
        raise where.error(f"must be ACTIVE or INACTIVE, got {value!r}")
    return upper


def policy_document(value: Any, where: Where) -> str:
    """A ``PolicyDocument``: a JSON string kept as it is, or an object written as compact JSON
    with sorted keys (so the same object always gets the same hash name)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    raise where.error(f"must be a JSON string or an object, got a {type_name(value)}")


def checked_policy_document(value: Any, where: Where) -> str:
    """:func:`policy_document`, also parsed as an AWS IoT policy (for literal documents)."""
    text = policy_document(value, where)
    try:
        parse_policy(text)
    except MalformedPolicy as error:
        raise where.error(f"not a valid policy: {error.message}") from None
    return text


def policy_hash_name(document: str) -> str:
    """The name of a policy given only by its document: the SHA-256 hex of the text.

    AWS says only that the name "defaults to a hash of the policy document"; its own example
    shows 40 upper-case hex digits, for an undocumented hash. The emulator's is stable across
    runs and processes, so the same document always maps to the same policy.
    """
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def configuration_value(value: Any, where: Where) -> str:
    """A ``DeviceConfiguration`` value: a string (the map is flat)."""
    if isinstance(value, Mapping):
        raise where.error("DeviceConfiguration is a flat map; nested objects are not supported")
    return string(value, where)
