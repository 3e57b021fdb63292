"""Static thing groups: create, update, describe, list, delete, and their members.

Rules (AWS's where documented, else the choice noted):

* The parent must exist (:class:`ResourceNotFound`); a hierarchy is at most 7 levels deep and
  a thing belongs to at most 10 groups (:class:`LimitExceeded`).
* Creating an existing group with the same parent, description and attributes returns it,
  otherwise :class:`ResourceAlreadyExists`.
* Deleting a group with child groups is :class:`InvalidRequest` (the emulator's choice);
  its members leave it and policies attached to it are detached in the same transaction.
  Deleting a missing group is not an error.
* Adding a member twice, or removing a non-member, is a no-op.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Mapping

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import AttachmentChanged, AttachmentKind
from fleet_sim.emulator.registry.models import Page, ThingGroup, frozen_mapping
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.things import require_thing_exists
from fleet_sim.emulator.registry.updates import apply_attribute_payload, check_expected_version
from fleet_sim.errors import InvalidRequest, LimitExceeded, ResourceAlreadyExists, ResourceNotFound

MAX_DEPTH = 7
MAX_GROUPS_PER_THING = 10

_SELECT = "SELECT name, id, parent, description, attributes, version, created FROM thing_groups"


class ThingGroups:
    """Static thing groups and their membership."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    def create(
        self,
        name: str,
        *,
        now: float,
        parent_group_name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> ThingGroup:
        """Create a thing group (CreateThingGroup).

        Raises:
            InvalidRequest, ResourceNotFound, LimitExceeded, ResourceAlreadyExists.
        """
        validation.thing_name(name, "thing group name")
        values = validation.attributes(attributes or {})
        with self._ctx.store.write() as tx:
            existing = self._get(tx.conn, name)
            if existing is not None:
                if (existing.parent_group_name, existing.description, existing.attributes) == (
                    parent_group_name,
                    description,
                    values,
                ):
                    return existing
                raise ResourceAlreadyExists(f"thing group {name!r} already exists")
            if parent_group_name is not None:
                self._require(tx.conn, parent_group_name)
                if len(self._ancestry(tx.conn, parent_group_name)) >= MAX_DEPTH:
                    raise LimitExceeded(f"thing group hierarchies are at most {MAX_DEPTH} deep")
            tx.conn.execute(
                "INSERT INTO thing_groups (name, id, parent, description, attributes, version, "
                "created) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (
                    name,
                    self._ctx.new_uuid(),
                    parent_group_name,
                    description,
                    json.dumps(values, sort_keys=True),
                    now,
                ),
            )
            return self._require(tx.conn, name)

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> ThingGroup:
        """Update a group's description and attributes (UpdateThingGroup; same attribute
        rules as UpdateThing).

        Raises:
            ResourceNotFound, InvalidRequest, VersionConflict.
        """
        given = validation.attributes(attributes) if attributes is not None else None
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, name)
            check_expected_version(f"thing group {name!r}", old.version, expected_version)
            values = apply_attribute_payload(old.attributes, given, merge=merge)
            tx.conn.execute(
                "UPDATE thing_groups SET description = ?, attributes = ?, version = version + 1 "
                "WHERE name = ?",
                (
                    old.description if description is None else description,
                    json.dumps(values, sort_keys=True),
                    name,
                ),
            )
            return self._require(tx.conn, name)

    def delete(self, name: str, *, expected_version: int | None = None) -> None:
        """Delete a thing group (DeleteThingGroup); a missing group is not an error.

        Raises:
            VersionConflict: ``expected_version`` is not the current version.
            InvalidRequest: it has child groups.
        """
        with self._ctx.store.write() as tx:
            old = self._get(tx.conn, name)
            if old is None:
                return
            check_expected_version(f"thing group {name!r}", old.version, expected_version)
            if tx.conn.execute(
                "SELECT 1 FROM thing_groups WHERE parent = ? LIMIT 1", (name,)
            ).fetchone():
                raise InvalidRequest(f"thing group {name!r} has child groups")
            policies = [
                row[0]
                for row in tx.conn.execute(
                    "SELECT policy FROM policy_targets WHERE group_name = ? ORDER BY policy",
                    (name,),
                )
            ]
            members = [
                row[0]
                for row in tx.conn.execute(
                    "SELECT thing_name FROM thing_group_members WHERE group_name = ? "
                    "ORDER BY thing_name",
                    (name,),
                )
            ]
            tx.conn.execute("DELETE FROM policy_targets WHERE group_name = ?", (name,))
            tx.conn.execute("DELETE FROM thing_groups WHERE name = ?", (name,))
            for policy in policies:
                tx.emit(AttachmentChanged(AttachmentKind.POLICY, policy, old.arn, False))
            for thing in members:
                tx.emit(AttachmentChanged(AttachmentKind.THING_GROUP, name, thing, False))

    def add_thing(self, group_name: str, thing_name: str) -> None:
        """Put a thing into a group (AddThingToThingGroup).

        Raises:
            ResourceNotFound: no such group or thing.
            LimitExceeded: the thing is in 10 groups already.
        """
        with self._ctx.store.write() as tx:
            self._require(tx.conn, group_name)
            require_thing_exists(tx.conn, thing_name)
            if tx.conn.execute(
                "SELECT 1 FROM thing_group_members WHERE group_name = ? AND thing_name = ?",
                (group_name, thing_name),
            ).fetchone():
                return
            (count,) = tx.conn.execute(
                "SELECT COUNT(*) FROM thing_group_members WHERE thing_name = ?", (thing_name,)
            ).fetchone()
            if count >= MAX_GROUPS_PER_THING:
                raise LimitExceeded(
                    f"thing {thing_name!r} is in {MAX_GROUPS_PER_THING} thing groups already"
                )
            tx.conn.execute(
                "INSERT INTO thing_group_members (group_name, thing_name) VALUES (?, ?)",
                (group_name, thing_name),
            )
            tx.emit(AttachmentChanged(AttachmentKind.THING_GROUP, group_name, thing_name, True))

    def remove_thing(self, group_name: str, thing_name: str) -> None:
        """Take a thing out of a group (RemoveThingFromThingGroup).

        Raises:
            ResourceNotFound: no such group or thing.
        """
        with self._ctx.store.write() as tx:
            self._require(tx.conn, group_name)
            require_thing_exists(tx.conn, thing_name)
            cursor = tx.conn.execute(
                "DELETE FROM thing_group_members WHERE group_name = ? AND thing_name = ?",
                (group_name, thing_name),
            )
            if cursor.rowcount:
                tx.emit(
                    AttachmentChanged(AttachmentKind.THING_GROUP, group_name, thing_name, False)
                )

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> ThingGroup | None:
        """The group called ``name``, or None."""
        with self._ctx.store.read() as conn:
            return self._get(conn, name)

    def describe(self, name: str) -> ThingGroup:
        """The group called ``name`` (DescribeThingGroup).

        Raises:
            ResourceNotFound: no such group.
        """
        with self._ctx.store.read() as conn:
            return self._require(conn, name)

    def list(
        self,
        *,
        parent_group_name: str | None = None,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[ThingGroup]:
        """Groups by name (ListThingGroups), optionally the children of one group."""
        where = ["parent = ?"] if parent_group_name is not None else []
        params = [parent_group_name] if parent_group_name is not None else []
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
        return Page(tuple(self._record(row) for row in rows), next_marker)

    def list_things(
        self, group_name: str, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[str]:
        """The names of a group's things (ListThingsInThingGroup, not recursive).

        Raises:
            ResourceNotFound: no such group.
        """
        with self._ctx.store.read() as conn:
            self._require(conn, group_name)
            rows, next_marker = fetch_page(
                conn,
                select="SELECT thing_name FROM thing_group_members",
                where=["group_name = ?"],
                params=[group_name],
                key=("thing_name",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(row["thing_name"] for row in rows), next_marker)

    def groups_of_thing(self, thing_name: str) -> builtins.list[ThingGroup]:
        """The groups a thing is directly in, by name (ListThingGroupsForThing).

        Raises:
            ResourceNotFound: no such thing.
        """
        with self._ctx.store.read() as conn:
            require_thing_exists(conn, thing_name)
            rows = conn.execute(
                f"{_SELECT} JOIN thing_group_members m ON m.group_name = thing_groups.name "
                "WHERE m.thing_name = ? ORDER BY name",
                (thing_name,),
            ).fetchall()
        return [self._record(row) for row in rows]

    def _ancestry(self, conn: sqlite3.Connection, name: str) -> builtins.list[str]:
        chain = [name]
        while True:
            row = conn.execute("SELECT parent FROM thing_groups WHERE name = ?", (chain[-1],))
            parent = row.fetchone()
            if parent is None or parent[0] is None or parent[0] in chain:
                return chain
            chain.append(parent[0])

    def _get(self, conn: sqlite3.Connection, name: str) -> ThingGroup | None:
        row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._record(row)

    def _require(self, conn: sqlite3.Connection, name: str) -> ThingGroup:
        found = self._get(conn, name)
        if found is None:
            raise ResourceNotFound(f"thing group {name!r} does not exist")
        return found

    def _record(self, row: sqlite3.Row) -> ThingGroup:
        return ThingGroup(
            name=row["name"],
            arn=self._ctx.arn(f"thinggroup/{row['name']}"),
            thing_group_id=row["id"],
            parent_group_name=row["parent"],
            description=row["description"],
            attributes=frozen_mapping(json.loads(row["attributes"])),
            version=row["version"],
            created=row["created"],
        )
