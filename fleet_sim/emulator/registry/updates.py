"""The update rules things and thing groups share: ``attributePayload`` and ``expectedVersion``.

AWS gives UpdateThing and UpdateThingGroup the same attribute semantics, and UpdateThing,
DeleteThing, UpdateThingGroup and DeleteThingGroup the same optimistic-concurrency check.
"""

from __future__ import annotations

from collections.abc import Mapping

from fleet_sim.errors import VersionConflict


def apply_attribute_payload(
    current: Mapping[str, str], given: Mapping[str, str] | None, *, merge: bool
) -> dict[str, str]:
    """The attributes after an ``attributePayload``.

    Args:
        current: the attributes now.
        given: the payload's (already validated) attributes, or None to keep ``current``.
        merge: ``attributePayload.merge``: add/overwrite the given names (True) or replace
            all attributes with them (False). Either way an empty value removes that attribute.
    """
    values = dict(current)
    if given is not None:
        values = {**values, **given} if merge else dict(given)
        values = {key: value for key, value in values.items() if value != ""}
    return values


def check_expected_version(what: str, current: int, expected: int | None) -> None:
    """Refuse a change made against a version other than the current one.

    Args:
        what: the resource, for the message (e.g. ``"thing 'sensor-1'"``).
        current: its version now.
        expected: the version the caller last saw, or None (no check).

    Raises:
        VersionConflict: ``expected`` is given and is not ``current``.
    """
    if expected is not None and expected != current:
        raise VersionConflict(f"{what} is at version {current}, not {expected}")
