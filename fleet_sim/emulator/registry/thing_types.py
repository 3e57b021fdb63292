"""Thing types: create, describe, list, deprecate (and undo), delete.

Rules: creating an existing type with the same description and searchable attributes returns
it, otherwise :class:`ResourceAlreadyExists`. A deprecated type takes no new things. Deleting
needs the type deprecated for at least 5 minutes and no thing using it
(:class:`InvalidRequest`), as AWS documents.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.models import Page, ThingType
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound

#: AWS: a thing type can be deleted 5 minutes after it was deprecated.
DELETE_AFTER_DEPRECATION = 300.0

_SELECT = (
    "SELECT name, id, description, searchable_attributes, deprecated, deprecation_date, created "
    "FROM thing_types"
)


class ThingTypes:
    """Thing types: create, describe, list, deprecate, delete."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    def create(
        self,
        name: str,
        *,
        now: float,
        description: str | None = None,
        searchable_attributes: Sequence[str] = (),
    ) -> ThingType:
        """Create a thing type (CreateThingType).

        Raises:
            InvalidRequest: a bad name or description.
            ResourceAlreadyExists: it exists with other properties.
        """
        validation.thing_name(name, "thing type name")
        if description is not None and len(description) > 2028:
            raise InvalidRequest("thing type description is longer than 2028 characters")
        searchable = tuple(searchable_attributes)
        validation.attributes(dict.fromkeys(searchable, ""))
        with self._ctx.store.write() as tx:
            existing = self._get(tx.conn, name)
            if existing is not None:
                if (existing.description, existing.searchable_attributes) == (
                    description,
                    searchable,
                ):
                    return existing
                raise ResourceAlreadyExists(f"thing type {name!r} already exists")
            tx.conn.execute(
                "INSERT INTO thing_types (name, id, description, searchable_attributes, "
                "deprecated, deprecation_date, created) VALUES (?, ?, ?, ?, 0, NULL, ?)",
                (name, self._ctx.new_uuid(), description, json.dumps(list(searchable)), now),
            )
            return self._require(tx.conn, name)

    def deprecate(self, name: str, *, now: float, undo: bool = False) -> ThingType:
        """Deprecate a thing type, or undo that (DeprecateThingType).

        Raises:
            ResourceNotFound: no such type.
        """
        with self._ctx.store.write() as tx:
            self._require(tx.conn, name)
            if undo:
                tx.conn.execute("UPDATE thing_types SET deprecated = 0 WHERE name = ?", (name,))
            else:
                tx.conn.execute(
                    "UPDATE thing_types SET deprecated = 1, deprecation_date = ? WHERE name = ?",
                    (now, name),
                )
            return self._require(tx.conn, name)

    def delete(self, name: str, *, now: float) -> None:
        """Delete a thing type (DeleteThingType).

        Raises:
            ResourceNotFound: no such type.
            InvalidRequest: not deprecated for 5 minutes yet, or things still use it.
        """
        with self._ctx.store.write() as tx:
            found = self._require(tx.conn, name)
            if not found.deprecated or found.deprecation_date is None:
                raise InvalidRequest(f"thing type {name!r} must be deprecated before deletion")
            if now - found.deprecation_date < DELETE_AFTER_DEPRECATION:
                raise InvalidRequest(
                    f"thing type {name!r} can be deleted 5 minutes after its deprecation"
                )
            if tx.conn.execute(
                "SELECT 1 FROM things WHERE type_name = ? LIMIT 1", (name,)
            ).fetchone():
                raise InvalidRequest(f"things are still associated with thing type {name!r}")
            tx.conn.execute("DELETE FROM thing_types WHERE name = ?", (name,))

    def get(self, name: str) -> ThingType | None:
        """The thing type called ``name``, or None."""
        with self._ctx.store.read() as conn:
            return self._get(conn, name)

    def describe(self, name: str) -> ThingType:
        """The thing type called ``name`` (DescribeThingType).

        Raises:
            ResourceNotFound: no such type.
        """
        with self._ctx.store.read() as conn:
            return self._require(conn, name)

    def list(
        self, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[ThingType]:
        """Thing types by name (ListThingTypes)."""
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select=_SELECT,
                key=("name",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(self._record(row) for row in rows), next_marker)

    def _get(self, conn: sqlite3.Connection, name: str) -> ThingType | None:
        row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._record(row)

    def _require(self, conn: sqlite3.Connection, name: str) -> ThingType:
        found = self._get(conn, name)
        if found is None:
            raise ResourceNotFound(f"thing type {name!r} does not exist")
        return found

    def _record(self, row: sqlite3.Row) -> ThingType:
        return ThingType(
            name=row["name"],
            arn=self._ctx.arn(f"thingtype/{row['name']}"),
            thing_type_id=row["id"],
            description=row["description"],
            searchable_attributes=tuple(json.loads(row["searchable_attributes"])),
            deprecated=bool(row["deprecated"]),
            deprecation_date=row["deprecation_date"],
            created=row["created"],
        )
