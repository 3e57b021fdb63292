"""Provisioning templates and their versions (CreateProvisioningTemplate and friends).

Rules (AWS's where documented, else the choice noted):

* Names match ``[0-9A-Za-z_-]{1,36}``; a body is a JSON object of at most 10240 characters;
  the provisioning role is an IAM role ARN; a description is at most 500 characters
  (:class:`InvalidRequest`).
* Only FLEET_PROVISIONING templates take a pre-provisioning hook (:class:`InvalidRequest`).
* At most 5 versions (:class:`VersionsLimitExceeded`); version ids count up from 1 and are
  never reused; the default version cannot be deleted (:class:`DeleteConflict`).
* Deleting a template that a CA's registration config names is :class:`DeleteConflict` (the
  emulator's choice: JITP would otherwise break silently).
"""

from __future__ import annotations

import sqlite3

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import ProvisioningTemplateChanged
from fleet_sim.emulator.registry.models import (
    Page,
    PreProvisioningHook,
    ProvisioningTemplate,
    TemplateType,
    TemplateVersion,
)
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.errors import (
    DeleteConflict,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionsLimitExceeded,
)

#: AWS: a provisioning template keeps at most 5 versions.
MAX_TEMPLATE_VERSIONS = 5
MAX_BODY_CHARACTERS = 10240
MAX_DESCRIPTION_CHARACTERS = 500

_SELECT = (
    "SELECT name, id, type, enabled, description, role_arn, hook_target_arn, "
    "hook_payload_version, default_version, next_version, created, modified FROM templates"
)
_INSERT = (
    "INSERT INTO templates (name, id, type, enabled, description, role_arn, hook_target_arn, "
    "hook_payload_version, default_version, next_version, created, modified) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 2, ?, ?)"
)


def _check_body(body: str) -> str:
    return validation.json_object(body, "template body", max_length=MAX_BODY_CHARACTERS)


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION_CHARACTERS:
        raise InvalidRequest(
            f"template description is longer than {MAX_DESCRIPTION_CHARACTERS} characters"
        )


class ProvisioningTemplates:
    """Provisioning templates and template versions."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    def create(
        self,
        name: str,
        body: str,
        *,
        now: float,
        provisioning_role_arn: str,
        type: TemplateType | str = TemplateType.FLEET_PROVISIONING,
        enabled: bool = False,
        description: str | None = None,
        pre_provisioning_hook: PreProvisioningHook | None = None,
    ) -> ProvisioningTemplate:
        """Create a template with version 1 as default (CreateProvisioningTemplate).

        Raises:
            InvalidRequest: see the module docstring.
            ResourceAlreadyExists: the name is taken.
        """
        validation.template_name(name)
        _check_body(body)
        validation.role_arn(provisioning_role_arn, "provisioningRoleArn")
        kind = validation.enum_value(TemplateType, type, "type")
        _check_description(description)
        if pre_provisioning_hook is not None and kind is not TemplateType.FLEET_PROVISIONING:
            raise InvalidRequest("only FLEET_PROVISIONING templates take a pre-provisioning hook")
        hook = pre_provisioning_hook
        with self._ctx.store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM templates WHERE name = ?", (name,)).fetchone():
                raise ResourceAlreadyExists(f"provisioning template {name!r} already exists")
            tx.conn.execute(
                _INSERT,
                (
                    name,
                    self._ctx.new_uuid(),
                    kind.value,
                    enabled,
                    description,
                    provisioning_role_arn,
                    hook.target_arn if hook else None,
                    hook.payload_version if hook else None,
                    now,
                    now,
                ),
            )
            tx.conn.execute(
                "INSERT INTO template_versions (template, version, body, created) "
                "VALUES (?, 1, ?, ?)",
                (name, body, now),
            )
            tx.emit(ProvisioningTemplateChanged(name))
            return self._require(tx.conn, name)

    def update(
        self,
        name: str,
        *,
        now: float,
        description: str | None = None,
        enabled: bool | None = None,
        default_version_id: int | None = None,
        provisioning_role_arn: str | None = None,
        pre_provisioning_hook: PreProvisioningHook | None = None,
        remove_pre_provisioning_hook: bool = False,
    ) -> ProvisioningTemplate:
        """Change a template's properties or default version (UpdateProvisioningTemplate);
        None leaves a property as it is.

        Raises:
            ResourceNotFound: no such template or version.
            InvalidRequest: see the module docstring, or a hook given with
                ``remove_pre_provisioning_hook``.
        """
        _check_description(description)
        if provisioning_role_arn is not None:
            validation.role_arn(provisioning_role_arn, "provisioningRoleArn")
        if pre_provisioning_hook is not None and remove_pre_provisioning_hook:
            raise InvalidRequest("a pre-provisioning hook cannot be both set and removed")
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, name)
            if default_version_id is not None:
                self._version(old, default_version_id)
            hook = old.pre_provisioning_hook
            if remove_pre_provisioning_hook:
                hook = None
            elif pre_provisioning_hook is not None:
                if old.type is not TemplateType.FLEET_PROVISIONING:
                    raise InvalidRequest(
                        "only FLEET_PROVISIONING templates take a pre-provisioning hook"
                    )
                hook = pre_provisioning_hook
            tx.conn.execute(
                "UPDATE templates SET description = ?, enabled = ?, default_version = ?, "
                "role_arn = ?, hook_target_arn = ?, hook_payload_version = ?, modified = ? "
                "WHERE name = ?",
                (
                    old.description if description is None else description,
                    old.enabled if enabled is None else enabled,
                    old.default_version_id if default_version_id is None else default_version_id,
                    provisioning_role_arn or old.provisioning_role_arn,
                    hook.target_arn if hook else None,
                    hook.payload_version if hook else None,
                    now,
                    name,
                ),
            )
            tx.emit(ProvisioningTemplateChanged(name))
            return self._require(tx.conn, name)

    def delete(self, name: str) -> None:
        """Delete a template and all its versions (DeleteProvisioningTemplate).

        Raises:
            ResourceNotFound: no such template.
            DeleteConflict: a CA's registration config names it.
        """
        with self._ctx.store.write() as tx:
            self._require(tx.conn, name)
            row = tx.conn.execute(
                "SELECT id FROM ca_certificates WHERE reg_template_name = ? LIMIT 1", (name,)
            ).fetchone()
            if row is not None:
                raise DeleteConflict(
                    f"provisioning template {name!r} is used by CA certificate {row['id']}"
                )
            tx.conn.execute("DELETE FROM templates WHERE name = ?", (name,))
            tx.emit(ProvisioningTemplateChanged(name, deleted=True))

    def create_version(
        self, name: str, body: str, *, now: float, set_as_default: bool = False
    ) -> TemplateVersion:
        """Add a version (CreateProvisioningTemplateVersion).

        Raises:
            ResourceNotFound: no such template.
            InvalidRequest: a bad body.
            VersionsLimitExceeded: it has 5 versions already.
        """
        _check_body(body)
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, name)
            if len(old.versions) >= MAX_TEMPLATE_VERSIONS:
                raise VersionsLimitExceeded(
                    f"provisioning template {name!r} already has {MAX_TEMPLATE_VERSIONS} versions"
                )
            (number,) = tx.conn.execute(
                "SELECT next_version FROM templates WHERE name = ?", (name,)
            ).fetchone()
            tx.conn.execute(
                "INSERT INTO template_versions (template, version, body, created) "
                "VALUES (?, ?, ?, ?)",
                (name, number, body, now),
            )
            tx.conn.execute(
                "UPDATE templates SET next_version = next_version + 1, modified = ?, "
                "default_version = CASE WHEN ? THEN ? ELSE default_version END WHERE name = ?",
                (now, set_as_default, number, name),
            )
            tx.emit(ProvisioningTemplateChanged(name))
            return self._version(self._require(tx.conn, name), number)

    def delete_version(self, name: str, version_id: int) -> None:
        """Delete a non-default version (DeleteProvisioningTemplateVersion).

        Raises:
            ResourceNotFound: no such template or version.
            DeleteConflict: it is the default version.
        """
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, name)
            version = self._version(old, version_id)
            if version.is_default:
                raise DeleteConflict(
                    f"cannot delete the default version of provisioning template {name!r}"
                )
            tx.conn.execute(
                "DELETE FROM template_versions WHERE template = ? AND version = ?",
                (name, version_id),
            )
            tx.emit(ProvisioningTemplateChanged(name))

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> ProvisioningTemplate | None:
        """The template called ``name``, or None."""
        with self._ctx.store.read() as conn:
            return self._load(conn, name)

    def describe(self, name: str) -> ProvisioningTemplate:
        """The template called ``name`` with all its versions (DescribeProvisioningTemplate).

        Raises:
            ResourceNotFound: no such template.
        """
        with self._ctx.store.read() as conn:
            return self._require(conn, name)

    def describe_version(self, name: str, version_id: int) -> TemplateVersion:
        """One version (DescribeProvisioningTemplateVersion).

        Raises:
            ResourceNotFound: no such template or version.
        """
        return self._version(self.describe(name), version_id)

    def list_versions(self, name: str) -> list[TemplateVersion]:
        """Every version, oldest first (ListProvisioningTemplateVersions).

        Raises:
            ResourceNotFound: no such template.
        """
        return list(self.describe(name).versions)

    def list(
        self, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[ProvisioningTemplate]:
        """Templates by name (ListProvisioningTemplates)."""
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select="SELECT name FROM templates",
                key=("name",),
                marker=marker,
                page_size=page_size,
            )
            templates = tuple(self._require(conn, row["name"]) for row in rows)
        return Page(templates, next_marker)

    @staticmethod
    def _version(template: ProvisioningTemplate, version_id: int) -> TemplateVersion:
        for version in template.versions:
            if version.version_id == version_id:
                return version
        raise ResourceNotFound(
            f"provisioning template {template.name!r} has no version {version_id}"
        )

    def _require(self, conn: sqlite3.Connection, name: str) -> ProvisioningTemplate:
        found = self._load(conn, name)
        if found is None:
            raise ResourceNotFound(f"provisioning template {name!r} does not exist")
        return found

    def _load(self, conn: sqlite3.Connection, name: str) -> ProvisioningTemplate | None:
        row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        default = row["default_version"]
        versions = tuple(
            TemplateVersion(
                template_name=name,
                version_id=version["version"],
                body=version["body"],
                is_default=version["version"] == default,
                created=version["created"],
            )
            for version in conn.execute(
                "SELECT version, body, created FROM template_versions WHERE template = ? "
                "ORDER BY version",
                (name,),
            )
        )
        hook = (
            PreProvisioningHook(row["hook_target_arn"], row["hook_payload_version"])
            if row["hook_target_arn"] is not None
            else None
        )
        return ProvisioningTemplate(
            name=name,
            arn=self._ctx.arn(f"provisioningtemplate/{name}"),
            template_id=row["id"],
            type=TemplateType(row["type"]),
            enabled=bool(row["enabled"]),
            description=row["description"],
            provisioning_role_arn=row["role_arn"],
            pre_provisioning_hook=hook,
            default_version_id=default,
            body=next(version.body for version in versions if version.is_default),
            versions=versions,
            created=row["created"],
            last_modified=row["modified"],
        )
