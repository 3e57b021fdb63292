"""Policies and their versions: create, get, list, delete, versions, default version.

Rules (AWS's):

* Names match ``[\\w+=,.@-]{1,128}``; documents must parse as AWS IoT policies
  (:func:`fleet_sim.policy.parse.parse_policy`, which also enforces the 2048-character limit:
  :class:`MalformedPolicy`). The text is stored exactly as given.
* A policy keeps at most 5 versions (:class:`VersionsLimitExceeded`); version ids count up
  and are never reused.
* The default version cannot be deleted with DeletePolicyVersion (:class:`DeleteConflict`).
* DeletePolicy is refused while the policy is attached to any target or has versions other
  than the default (:class:`DeleteConflict`).
"""

from __future__ import annotations

import sqlite3

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import PolicyChanged
from fleet_sim.emulator.registry.models import Page, Policy, PolicyVersion
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.store import Tx
from fleet_sim.errors import (
    DeleteConflict,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionsLimitExceeded,
)
from fleet_sim.policy.parse import parse_policy

#: AWS: a policy keeps at most 5 versions.
MAX_POLICY_VERSIONS = 5

_SELECT = (
    "SELECT name, default_version, next_version, created, modified, generation_id FROM policies"
)


def _version_number(version_id: str | int) -> int:
    try:
        number = int(version_id)
    except ValueError:
        raise InvalidRequest(f"policy version id must be a number, got {version_id!r}") from None
    if number < 1:
        raise InvalidRequest(f"policy version id must be positive, got {version_id!r}")
    return number


class Policies:
    """Policies and policy versions."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    def create(self, name: str, document: str, *, now: float) -> Policy:
        """Create a policy with version 1 as default (CreatePolicy).

        Raises:
            InvalidRequest: a bad name.
            MalformedPolicy: a bad document.
            ResourceAlreadyExists: the name is taken.
        """
        validation.policy_name(name)
        parse_policy(document, name=name)
        with self._ctx.store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM policies WHERE name = ?", (name,)).fetchone():
                raise ResourceAlreadyExists(f"policy {name!r} already exists")
            tx.conn.execute(
                "INSERT INTO policies (name, default_version, next_version, created, modified, "
                "generation_id) VALUES (?, 1, 2, ?, ?, ?)",
                (name, now, now, self._ctx.new_uuid()),
            )
            tx.conn.execute(
                "INSERT INTO policy_versions (policy, version, document, created) "
                "VALUES (?, 1, ?, ?)",
                (name, document, now),
            )
            tx.emit(PolicyChanged(name))
            return self._require(tx.conn, name)

    def delete(self, name: str) -> None:
        """Delete a policy (DeletePolicy).

        Raises:
            ResourceNotFound: no such policy.
            DeleteConflict: it is attached, or has non-default versions.
        """
        with self._ctx.store.write() as tx:
            policy = self._require(tx.conn, name)
            if tx.conn.execute(
                "SELECT 1 FROM policy_targets WHERE policy = ? LIMIT 1", (name,)
            ).fetchone():
                raise DeleteConflict(
                    "The policy cannot be deleted as the policy is attached to one or more "
                    f"principals (name={name})"
                )
            if len(policy.versions) > 1:
                raise DeleteConflict(
                    "The policy cannot be deleted as versions other than the default version "
                    f"exist (name={name})"
                )
            tx.conn.execute("DELETE FROM policies WHERE name = ?", (name,))
            tx.emit(PolicyChanged(name, deleted=True))

    def create_version(
        self, name: str, document: str, *, now: float, set_as_default: bool = False
    ) -> PolicyVersion:
        """Add a version (CreatePolicyVersion).

        Raises:
            ResourceNotFound: no such policy.
            MalformedPolicy: a bad document.
            VersionsLimitExceeded: it has 5 versions already.
        """
        parse_policy(document, name=name)
        with self._ctx.store.write() as tx:
            policy = self._require(tx.conn, name)
            if len(policy.versions) >= MAX_POLICY_VERSIONS:
                raise VersionsLimitExceeded(
                    f"policy {name!r} already has the maximum number of versions "
                    f"({MAX_POLICY_VERSIONS})"
                )
            (number,) = tx.conn.execute(
                "SELECT next_version FROM policies WHERE name = ?", (name,)
            ).fetchone()
            tx.conn.execute(
                "INSERT INTO policy_versions (policy, version, document, created) "
                "VALUES (?, ?, ?, ?)",
                (name, number, document, now),
            )
            tx.conn.execute(
                "UPDATE policies SET next_version = next_version + 1, modified = ?, "
                "generation_id = ? WHERE name = ?",
                (now, self._ctx.new_uuid(), name),
            )
            if set_as_default:
                self._set_default(tx, name, number)
            return self._version(tx.conn, name, number)

    def set_default_version(self, name: str, version_id: str | int, *, now: float) -> Policy:
        """Make a version the default (SetDefaultPolicyVersion).

        Raises:
            ResourceNotFound: no such policy or version.
        """
        number = _version_number(version_id)
        with self._ctx.store.write() as tx:
            policy = self._require(tx.conn, name)
            self._version(tx.conn, name, number)
            if policy.default_version_id != str(number):
                tx.conn.execute(
                    "UPDATE policies SET modified = ?, generation_id = ? WHERE name = ?",
                    (now, self._ctx.new_uuid(), name),
                )
                self._set_default(tx, name, number)
            return self._require(tx.conn, name)

    def delete_version(self, name: str, version_id: str | int) -> None:
        """Delete a non-default version (DeletePolicyVersion).

        Raises:
            ResourceNotFound: no such policy or version.
            DeleteConflict: it is the default version.
        """
        number = _version_number(version_id)
        with self._ctx.store.write() as tx:
            policy = self._require(tx.conn, name)
            self._version(tx.conn, name, number)
            if policy.default_version_id == str(number):
                raise DeleteConflict(
                    f"cannot delete the default version of policy {name!r}; use DeletePolicy"
                )
            tx.conn.execute(
                "DELETE FROM policy_versions WHERE policy = ? AND version = ?", (name, number)
            )

    def _set_default(self, tx: Tx, name: str, number: int) -> None:
        tx.conn.execute("UPDATE policies SET default_version = ? WHERE name = ?", (number, name))
        tx.emit(PolicyChanged(name))

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> Policy | None:
        """The policy called ``name``, or None."""
        with self._ctx.store.read() as conn:
            return load_policy(self._ctx, conn, name)

    def describe(self, name: str) -> Policy:
        """The policy called ``name`` with all its versions (GetPolicy).

        Raises:
            ResourceNotFound: no such policy.
        """
        with self._ctx.store.read() as conn:
            return self._require(conn, name)

    def describe_version(self, name: str, version_id: str | int) -> PolicyVersion:
        """One version of a policy (GetPolicyVersion).

        Raises:
            ResourceNotFound: no such policy or version.
        """
        number = _version_number(version_id)
        with self._ctx.store.read() as conn:
            self._require(conn, name)
            return self._version(conn, name, number)

    def list_versions(self, name: str) -> list[PolicyVersion]:
        """Every version of a policy, oldest first (ListPolicyVersions).

        Raises:
            ResourceNotFound: no such policy.
        """
        return list(self.describe(name).versions)

    def list(
        self,
        *,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        ascending: bool = True,
    ) -> Page[Policy]:
        """Policies by creation time (ListPolicies)."""
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select="SELECT name, created FROM policies",
                key=("created", "name"),
                marker=marker,
                page_size=page_size,
                ascending=ascending,
            )
            policies = tuple(self._require(conn, row["name"]) for row in rows)
        return Page(policies, next_marker)

    def _require(self, conn: sqlite3.Connection, name: str) -> Policy:
        return require_policy(self._ctx, conn, name)

    def _version(self, conn: sqlite3.Connection, name: str, number: int) -> PolicyVersion:
        policy = self._require(conn, name)
        for version in policy.versions:
            if version.version_id == str(number):
                return version
        raise ResourceNotFound(f"policy {name!r} has no version {number}")


def require_policy(ctx: Context, conn: sqlite3.Connection, name: str) -> Policy:
    """The policy called ``name`` with its versions, as seen on ``conn``.

    Raises:
        ResourceNotFound: no such policy.
    """
    found = load_policy(ctx, conn, name)
    if found is None:
        raise ResourceNotFound(f"policy {name!r} does not exist")
    return found


def load_policy(ctx: Context, conn: sqlite3.Connection, name: str) -> Policy | None:
    """The policy called ``name`` with its versions, as seen on ``conn``, or None."""
    row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    arn = ctx.arn(f"policy/{name}")
    default = row["default_version"]
    versions = tuple(
        PolicyVersion(
            policy_name=name,
            policy_arn=arn,
            version_id=str(version["version"]),
            document=version["document"],
            is_default=version["version"] == default,
            created=version["created"],
        )
        for version in conn.execute(
            "SELECT version, document, created FROM policy_versions WHERE policy = ? "
            "ORDER BY version",
            (name,),
        )
    )
    document = next(version.document for version in versions if version.is_default)
    return Policy(
        name=name,
        arn=arn,
        default_version_id=str(default),
        document=document,
        versions=versions,
        created=row["created"],
        last_modified=row["modified"],
        generation_id=row["generation_id"],
    )
