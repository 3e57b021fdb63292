"""Things: create, update (attribute merge, expected version), describe, list, delete.

Rules (AWS's where documented, else the choice noted):

* Names match ``[a-zA-Z0-9:_-]{1,128}``; attribute names and values match AWS's patterns.
* A thing has at most 3 attributes without a thing type, 50 with one (:class:`InvalidRequest`).
* CreateThing is idempotent: the same name with the same type and attributes returns the
  existing thing; a different configuration is :class:`ResourceAlreadyExists`.
* The thing type must exist (:class:`ResourceNotFound`) and not be deprecated
  (:class:`InvalidRequest`).
* UpdateThing: ``attributes`` with ``merge=True`` adds/overwrites the given names; with
  ``merge=False`` replaces them all. Either way an empty value removes that attribute.
  ``expected_version`` must equal the current version (:class:`VersionConflict`). Every
  update increments the version.
* DeleteThing: a missing thing is not an error; a thing with principals attached is
  :class:`InvalidRequest` ("Cannot delete. Thing … is still attached to one or more
  principals"); its group memberships go with it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import ThingChanged
from fleet_sim.emulator.registry.models import Page, Thing, frozen_mapping
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.store import Tx
from fleet_sim.emulator.registry.updates import apply_attribute_payload, check_expected_version
from fleet_sim.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound

MAX_ATTRIBUTES_WITHOUT_TYPE = 3
MAX_ATTRIBUTES_WITH_TYPE = 50

_SELECT = "SELECT name, id, type_name, attributes, version FROM things"


class Things:
    """Things: create, update, describe, list, delete."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    def create(
        self,
        name: str,
        *,
        thing_type_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Thing:
        """Create a thing (CreateThing).

        Raises:
            InvalidRequest, ResourceNotFound, ResourceAlreadyExists: see the module docstring.
        """
        validation.thing_name(name)
        values = validation.attributes(attributes or {})
        with self._ctx.store.write() as tx:
            if thing_type_name is not None:
                self._check_type(tx, thing_type_name)
            self._check_count(values, thing_type_name)
            existing = load_thing(self._ctx, tx.conn, name)
            if existing is not None:
                if existing.thing_type_name == thing_type_name and existing.attributes == values:
                    return existing
                raise ResourceAlreadyExists(
                    f"thing {name!r} already exists with a different configuration"
                )
            tx.conn.execute(
                "INSERT INTO things (name, id, type_name, attributes, version) "
                "VALUES (?, ?, ?, ?, 1)",
                (name, self._ctx.new_uuid(), thing_type_name, json.dumps(values, sort_keys=True)),
            )
            tx.emit(ThingChanged(name))
            return self._require(tx.conn, name)

    def update(
        self,
        name: str,
        *,
        thing_type_name: str | None = None,
        remove_thing_type: bool = False,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> Thing:
        """Update a thing's type and attributes (UpdateThing).

        Args:
            name: the thing.
            thing_type_name: the new type, or None to keep it.
            remove_thing_type: drop the type (not together with ``thing_type_name``).
            attributes: the attribute payload, or None to keep the attributes.
            merge: ``attributePayload.merge``.
            expected_version: the version the caller last saw, or None.

        Raises:
            ResourceNotFound, InvalidRequest, VersionConflict: see the module docstring.
        """
        if remove_thing_type and thing_type_name is not None:
            raise InvalidRequest("removeThingType cannot be combined with a thingTypeName")
        given = validation.attributes(attributes) if attributes is not None else None
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, name)
            check_expected_version(f"thing {name!r}", old.version, expected_version)
            type_name = None if remove_thing_type else (thing_type_name or old.thing_type_name)
            if thing_type_name is not None and thing_type_name != old.thing_type_name:
                self._check_type(tx, thing_type_name)
            values = apply_attribute_payload(old.attributes, given, merge=merge)
            self._check_count(values, type_name)
            tx.conn.execute(
                "UPDATE things SET type_name = ?, attributes = ?, version = version + 1 "
                "WHERE name = ?",
                (type_name, json.dumps(values, sort_keys=True), name),
            )
            tx.emit(ThingChanged(name))
            return self._require(tx.conn, name)

    def delete(self, name: str, *, expected_version: int | None = None) -> None:
        """Delete a thing (DeleteThing); a missing thing is not an error.

        Raises:
            VersionConflict: ``expected_version`` is not the current version.
            InvalidRequest: principals are still attached.
        """
        with self._ctx.store.write() as tx:
            old = load_thing(self._ctx, tx.conn, name)
            if old is None:
                return
            check_expected_version(f"thing {name!r}", old.version, expected_version)
            if tx.conn.execute(
                "SELECT 1 FROM thing_principals WHERE thing_name = ? LIMIT 1", (name,)
            ).fetchone():
                raise InvalidRequest(
                    f"Cannot delete. Thing {name} is still attached to one or more principals"
                )
            tx.conn.execute("DELETE FROM things WHERE name = ?", (name,))
            tx.emit(ThingChanged(name, deleted=True))

    def _check_type(self, tx: Tx, type_name: str) -> None:
        row = tx.conn.execute(
            "SELECT deprecated FROM thing_types WHERE name = ?", (type_name,)
        ).fetchone()
        if row is None:
            raise ResourceNotFound(f"thing type {type_name!r} does not exist")
        if row["deprecated"]:
            raise InvalidRequest(f"thing type {type_name!r} is deprecated")

    @staticmethod
    def _check_count(values: Mapping[str, str], type_name: str | None) -> None:
        limit = MAX_ATTRIBUTES_WITH_TYPE if type_name is not None else MAX_ATTRIBUTES_WITHOUT_TYPE
        if len(values) > limit:
            kind = "with" if type_name is not None else "without"
            raise InvalidRequest(
                f"a thing {kind} a thing type can have at most {limit} attributes, "
                f"got {len(values)}"
            )

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> Thing | None:
        """The thing called ``name``, or None."""
        with self._ctx.store.read() as conn:
            return load_thing(self._ctx, conn, name)

    def describe(self, name: str) -> Thing:
        """The thing called ``name`` (DescribeThing).

        Raises:
            ResourceNotFound: no such thing.
        """
        with self._ctx.store.read() as conn:
            return self._require(conn, name)

    def list(
        self,
        *,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        attribute_name: str | None = None,
        attribute_value: str | None = None,
        thing_type_name: str | None = None,
    ) -> Page[Thing]:
        """Things by name (ListThings), optionally those with an attribute (and value) or
        of a type."""
        where: list[str] = []
        params: list[str] = []
        if attribute_name is not None:
            if attribute_value is None:
                where.append("EXISTS (SELECT 1 FROM json_each(things.attributes) WHERE key = ?)")
                params.append(attribute_name)
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM json_each(things.attributes) "
                    "WHERE key = ? AND value = ?)"
                )
                params.extend([attribute_name, attribute_value])
        if thing_type_name is not None:
            where.append("type_name = ?")
            params.append(thing_type_name)
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select=_SELECT,
                where=where,
                params=params,
                key=("name",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(thing_from_row(self._ctx, row) for row in rows), next_marker)

    def _require(self, conn: sqlite3.Connection, name: str) -> Thing:
        found = load_thing(self._ctx, conn, name)
        if found is None:
            raise ResourceNotFound(f"thing {name!r} does not exist")
        return found


def load_thing(ctx: Context, conn: sqlite3.Connection, name: str) -> Thing | None:
    """The thing called ``name`` as seen on ``conn``, or None."""
    row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
    return None if row is None else thing_from_row(ctx, row)


def require_thing_exists(conn: sqlite3.Connection, name: str) -> None:
    """Check that a thing called ``name`` exists, as seen on ``conn``.

    Raises:
        ResourceNotFound: it does not.
    """
    if not conn.execute("SELECT 1 FROM things WHERE name = ?", (name,)).fetchone():
        raise ResourceNotFound(f"thing {name!r} does not exist")


def thing_from_row(ctx: Context, row: sqlite3.Row) -> Thing:
    """The record for a ``things`` row (selected with this module's columns)."""
    return Thing(
        name=row["name"],
        arn=ctx.arn(f"thing/{row['name']}"),
        thing_id=row["id"],
        thing_type_name=row["type_name"],
        attributes=frozen_mapping(json.loads(row["attributes"])),
        version=row["version"],
    )
