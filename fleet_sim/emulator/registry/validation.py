"""Checks of names, ids and ARNs the registry takes in, with AWS's patterns and limits."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import TypeVar

from fleet_sim.errors import InvalidRequest

E = TypeVar("E", bound=enum.StrEnum)

_CERT_ID = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_TEMPLATE_NAME = re.compile(r"[0-9A-Za-z_-]{1,36}")
_ATTRIBUTE_NAME = re.compile(r"[a-zA-Z0-9_.,@/:#-]{1,128}")
_ATTRIBUTE_VALUE = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}")
_ROLE_ARN = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")


def certificate_id(value: str) -> str:
    """``value`` as a canonical certificate id (64 lowercase hex; ``0x`` prefix allowed).

    Raises:
        InvalidRequest: it is not 64 hex digits.
    """
    match = _CERT_ID.fullmatch(value)
    if match is None:
        raise InvalidRequest(f"certificate id must be 64 hex characters, got {value!r}")
    return match.group(1).lower()


def _name(value: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if pattern.fullmatch(value) is None:
        raise InvalidRequest(f"{what} {value!r} must match {rule}")
    return value


def thing_name(value: str, what: str = "thing name") -> str:
    """A thing, thing-type or thing-group name: ``[a-zA-Z0-9:_-]``, 1–128 characters."""
    return _name(value, _THING_NAME, what, "[a-zA-Z0-9:_-]{1,128}")


def policy_name(value: str) -> str:
    """A policy name: ``[\\w+=,.@-]``, 1–128 characters."""
    return _name(value, _POLICY_NAME, "policy name", r"[\w+=,.@-]{1,128}")


def template_name(value: str) -> str:
    """A provisioning template name: ``[0-9A-Za-z_-]``, 1–36 characters."""
    return _name(value, _TEMPLATE_NAME, "template name", "[0-9A-Za-z_-]{1,36}")


def role_arn(value: str, what: str = "role ARN") -> str:
    """An IAM role ARN, 20–2048 characters."""
    if not 20 <= len(value) <= 2048 or _ROLE_ARN.fullmatch(value) is None:
        raise InvalidRequest(f"{what} {value!r} is not an IAM role ARN")
    return value


def attributes(values: Mapping[str, str]) -> dict[str, str]:
    """Thing or group attributes, each name and value checked against AWS's patterns."""
    checked: dict[str, str] = {}
    for name, value in values.items():
        if not isinstance(name, str) or _ATTRIBUTE_NAME.fullmatch(name) is None:
            raise InvalidRequest(f"attribute name {name!r} must match [a-zA-Z0-9_.,@/:#-]{{1,128}}")
        if not isinstance(value, str) or _ATTRIBUTE_VALUE.fullmatch(value) is None:
            raise InvalidRequest(
                f"attribute {name!r} value {value!r} must match [a-zA-Z0-9_.,@/:#=\\[\\]-]{{0,800}}"
            )
        checked[name] = value
    return checked


def json_object(text: str, what: str, *, max_length: int) -> str:
    """``text`` when it is a JSON object of at most ``max_length`` characters.

    Raises:
        InvalidRequest: it is longer, not JSON, or not an object.
    """
    if len(text) > max_length:
        raise InvalidRequest(f"{what} is {len(text)} characters, more than {max_length}")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return text


def enum_value(cls: type[E], value: str, what: str) -> E:
    """``value`` as a member of ``cls``.

    Raises:
        InvalidRequest: it is not one, naming the allowed values.
    """
    try:
        return cls(value)
    except ValueError:
        allowed = " | ".join(member.value for member in cls)
        raise InvalidRequest(f"{what} must be {allowed}, got {value!r}") from None
