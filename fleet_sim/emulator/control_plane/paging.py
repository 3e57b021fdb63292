"""Paging of short in-memory listings (a template's ≤ 5 versions, a thing's ≤ 10 groups) and
name lookups from ARNs given in place of names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, check_page_size
from fleet_sim.errors import InvalidRequest
from fleet_sim.policy.arns import parse_arn

T = TypeVar("T")


def page_of(
    items: Sequence[T], token: str | None, max_results: int | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` after ``token`` (an offset this function handed out).

    Raises:
        InvalidRequest: a token it did not hand out, or a page size outside 1–250.
    """
    size = check_page_size(DEFAULT_PAGE_SIZE if max_results is None else max_results)
    start = 0
    if token is not None:
        if not token.isdigit() or int(token) > len(items):
            raise InvalidRequest(f"invalid nextToken {token!r}")
        start = int(token)
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else None)


def name_from(name: str | None, arn: str | None, resource_type: str, what: str) -> str:
    """A resource name given directly or as the last part of its ARN.

    Raises:
        InvalidRequest: neither is given, or the ARN is not a ``resource_type`` ARN.
    """
    if name is not None:
        return name
    if arn is None:
        raise InvalidRequest(f"either the {what} name or its ARN is required")
    try:
        parsed = parse_arn(arn)
    except ValueError:
        raise InvalidRequest(f"{arn!r} is not an ARN") from None
    if parsed.resource_type != resource_type or not parsed.resource_name:
        raise InvalidRequest(f"{arn!r} is not a {what} ARN")
    return parsed.resource_name
