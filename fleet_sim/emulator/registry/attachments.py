"""The links between resources: policies ↔ targets, things ↔ principals; the gateway's
per-connection lookups over them.

Rules (AWS's where documented, else the choice noted):

* A policy target is a certificate ARN or thing-group ARN of this account and region (which
  must exist: :class:`ResourceNotFound`), or any other string, kept opaque (a Cognito
  identity id, another account's ARN).
* At most 10 policies per target (:class:`LimitExceeded`); attaching twice is a no-op, and so
  is detaching a policy that is not attached (the policy itself must exist).
* A thing principal must be one of this account's certificate ARNs (:class:`InvalidRequest`
  otherwise) naming an existing certificate; attach/detach are idempotent.
* The effective policies of a certificate are the default versions of the policies attached
  to its ARN; :meth:`Attachments.policies_for_thing` adds those reaching a thing through its
  groups and their ancestors.
"""

from __future__ import annotations

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.certificates import require_certificate_exists
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import AttachmentChanged, AttachmentKind
from fleet_sim.emulator.registry.models import Page, Policy, Thing
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.policies import require_policy
from fleet_sim.emulator.registry.store import Tx
from fleet_sim.emulator.registry.things import require_thing_exists, thing_from_row
from fleet_sim.errors import InvalidRequest, LimitExceeded, ResourceNotFound

#: AWS: at most 10 policies per certificate or Cognito identity.
MAX_POLICIES_PER_TARGET = 10

_EFFECTIVE_FOR_CERT = (
    "SELECT p.name, v.document FROM policy_targets t "
    "JOIN policies p ON p.name = t.policy "
    "JOIN policy_versions v ON v.policy = p.name AND v.version = p.default_version "
    "WHERE t.cert_id = ? ORDER BY p.name"
)
_THINGS_FOR_CERT = (
    "SELECT t.name, t.id, t.type_name, t.attributes, t.version FROM thing_principals p "
    "JOIN things t ON t.name = p.thing_name WHERE p.cert_id = ? ORDER BY t.name"
)
_EFFECTIVE_FOR_THING = (
    "WITH RECURSIVE g(name) AS ("
    " SELECT group_name FROM thing_group_members WHERE thing_name = ?"
    " UNION SELECT tg.parent FROM thing_groups tg JOIN g ON tg.name = g.name"
    " WHERE tg.parent IS NOT NULL) "
    "SELECT DISTINCT p.name, v.document FROM policy_targets t "
    "JOIN g ON t.group_name = g.name "
    "JOIN policies p ON p.name = t.policy "
    "JOIN policy_versions v ON v.policy = p.name AND v.version = p.default_version "
    "ORDER BY p.name"
)


class Attachments:
    """Policy attachments and thing principals."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    # ------------------------------------------------------------------ policies

    def attach_policy(self, policy_name: str, target: str) -> None:
        """Attach a policy to a target (AttachPolicy / AttachPrincipalPolicy).

        Raises:
            ResourceNotFound: no such policy, or the target names a missing resource.
            InvalidRequest: an empty target, or a malformed certificate ARN of this account.
            LimitExceeded: the target has 10 policies already.
        """
        target = self._canonical_target(target)
        with self._ctx.store.write() as tx:
            require_policy(self._ctx, tx.conn, policy_name)
            cert_id, group = self._resolve_target(tx, target)
            if tx.conn.execute(
                "SELECT 1 FROM policy_targets WHERE policy = ? AND target = ?",
                (policy_name, target),
            ).fetchone():
                return
            (count,) = tx.conn.execute(
                "SELECT COUNT(*) FROM policy_targets WHERE target = ?", (target,)
            ).fetchone()
            if count >= MAX_POLICIES_PER_TARGET:
                raise LimitExceeded(
                    f"{target} already has {MAX_POLICIES_PER_TARGET} policies attached"
                )
            tx.conn.execute(
                "INSERT INTO policy_targets (policy, target, cert_id, group_name) "
                "VALUES (?, ?, ?, ?)",
                (policy_name, target, cert_id, group),
            )
            tx.emit(AttachmentChanged(AttachmentKind.POLICY, policy_name, target, True))

    def detach_policy(self, policy_name: str, target: str) -> None:
        """Detach a policy from a target (DetachPolicy); not attached is a no-op.

        Raises:
            ResourceNotFound: no such policy.
        """
        target = self._canonical_target(target)
        with self._ctx.store.write() as tx:
            require_policy(self._ctx, tx.conn, policy_name)
            cursor = tx.conn.execute(
                "DELETE FROM policy_targets WHERE policy = ? AND target = ?",
                (policy_name, target),
            )
            if cursor.rowcount:
                tx.emit(AttachmentChanged(AttachmentKind.POLICY, policy_name, target, False))

    def list_attached_policies(
        self, target: str, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[Policy]:
        """The policies attached to a target, by name (ListAttachedPolicies, not recursive)."""
        target = self._canonical_target(target)
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select="SELECT policy FROM policy_targets",
                where=["target = ?"],
                params=[target],
                key=("policy",),
                marker=marker,
                page_size=page_size,
            )
            policies = tuple(require_policy(self._ctx, conn, row["policy"]) for row in rows)
        return Page(policies, next_marker)

    def list_policy_targets(
        self, policy_name: str, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[str]:
        """The targets a policy is attached to, sorted (ListTargetsForPolicy).

        Raises:
            ResourceNotFound: no such policy.
        """
        with self._ctx.store.read() as conn:
            require_policy(self._ctx, conn, policy_name)
            rows, next_marker = fetch_page(
                conn,
                select="SELECT target FROM policy_targets",
                where=["policy = ?"],
                params=[policy_name],
                key=("target",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(row["target"] for row in rows), next_marker)

    def policies_for_certificate(self, certificate_id: str) -> list[tuple[str, str]]:
        """``(policy name, default-version document)`` for every policy attached to the
        certificate, by name: what the gateway evaluates. Unknown ids give ``[]``."""
        with self._ctx.store.read() as conn:
            rows = conn.execute(_EFFECTIVE_FOR_CERT, (certificate_id.lower(),)).fetchall()
        return [(row[0], row[1]) for row in rows]

    def policies_for_thing(self, thing_name: str) -> list[tuple[str, str]]:
        """``(policy name, default-version document)`` for every policy attached to a group
        the thing is in, or to an ancestor of one, by name."""
        with self._ctx.store.read() as conn:
            rows = conn.execute(_EFFECTIVE_FOR_THING, (thing_name,)).fetchall()
        return [(row[0], row[1]) for row in rows]

    def _canonical_target(self, target: str) -> str:
        cert_id = self._ctx.certificate_id_from_arn(target)
        return target if cert_id is None else self._cert_arn(cert_id)

    def _resolve_target(self, tx: Tx, target: str) -> tuple[str | None, str | None]:
        if not target or len(target) > 2048:
            raise InvalidRequest("the policy target must be 1–2048 characters")
        if self._ctx.own_resource(target, "cert") is not None:
            cert_id = self._ctx.certificate_id_from_arn(target)
            if cert_id is None:
                raise InvalidRequest(f"malformed certificate ARN {target!r}")
            require_certificate_exists(tx.conn, cert_id)
            return cert_id, None
        group = self._ctx.own_resource(target, "thinggroup")
        if group is not None:
            if not tx.conn.execute(
                "SELECT 1 FROM thing_groups WHERE name = ?", (group,)
            ).fetchone():
                raise ResourceNotFound(f"thing group {group!r} does not exist")
            return None, group
        return None, None

    # ------------------------------------------------------------------ thing principals

    def attach_thing_principal(self, thing_name: str, principal: str) -> None:
        """Attach a certificate to a thing (AttachThingPrincipal).

        Raises:
            InvalidRequest: ``principal`` is not one of this account's certificate ARNs.
            ResourceNotFound: no such thing or certificate.
        """
        cert_id = self._principal_certificate(principal)
        with self._ctx.store.write() as tx:
            require_thing_exists(tx.conn, thing_name)
            require_certificate_exists(tx.conn, cert_id)
            cursor = tx.conn.execute(
                "INSERT OR IGNORE INTO thing_principals (thing_name, cert_id) VALUES (?, ?)",
                (thing_name, cert_id),
            )
            if cursor.rowcount:
                tx.emit(
                    AttachmentChanged(
                        AttachmentKind.THING_PRINCIPAL, thing_name, self._cert_arn(cert_id), True
                    )
                )

    def detach_thing_principal(self, thing_name: str, principal: str) -> None:
        """Detach a certificate from a thing (DetachThingPrincipal); not attached is a no-op.

        Raises:
            InvalidRequest: ``principal`` is not one of this account's certificate ARNs.
            ResourceNotFound: no such thing.
        """
        cert_id = self._principal_certificate(principal)
        with self._ctx.store.write() as tx:
            require_thing_exists(tx.conn, thing_name)
            cursor = tx.conn.execute(
                "DELETE FROM thing_principals WHERE thing_name = ? AND cert_id = ?",
                (thing_name, cert_id),
            )
            if cursor.rowcount:
                tx.emit(
                    AttachmentChanged(
                        AttachmentKind.THING_PRINCIPAL, thing_name, self._cert_arn(cert_id), False
                    )
                )

    def list_thing_principals(
        self, thing_name: str, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[str]:
        """The certificate ARNs attached to a thing (ListThingPrincipals).

        Raises:
            ResourceNotFound: no such thing.
        """
        with self._ctx.store.read() as conn:
            require_thing_exists(conn, thing_name)
            rows, next_marker = fetch_page(
                conn,
                select="SELECT cert_id FROM thing_principals",
                where=["thing_name = ?"],
                params=[thing_name],
                key=("cert_id",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(self._cert_arn(row["cert_id"]) for row in rows), next_marker)

    def list_principal_things(
        self, principal: str, *, marker: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[str]:
        """The names of the things a certificate is attached to (ListPrincipalThings).

        Raises:
            InvalidRequest: ``principal`` is not one of this account's certificate ARNs.
            ResourceNotFound: no such certificate.
        """
        cert_id = self._principal_certificate(principal)
        with self._ctx.store.read() as conn:
            require_certificate_exists(conn, cert_id)
            rows, next_marker = fetch_page(
                conn,
                select="SELECT thing_name FROM thing_principals",
                where=["cert_id = ?"],
                params=[cert_id],
                key=("thing_name",),
                marker=marker,
                page_size=page_size,
            )
        return Page(tuple(row["thing_name"] for row in rows), next_marker)

    def things_for_certificate(self, certificate_id: str) -> list[Thing]:
        """The things a certificate is attached to, by name (unknown ids give ``[]``)."""
        with self._ctx.store.read() as conn:
            rows = conn.execute(_THINGS_FOR_CERT, (certificate_id.lower(),)).fetchall()
        return [thing_from_row(self._ctx, row) for row in rows]

    def _principal_certificate(self, principal: str) -> str:
        cert_id = self._ctx.certificate_id_from_arn(principal)
        if cert_id is None:
            raise InvalidRequest(
                f"principal {principal!r} is not a certificate ARN of account "
                f"{self._ctx.account_id} in {self._ctx.region}"
            )
        return validation.certificate_id(cert_id)

    def _cert_arn(self, cert_id: str) -> str:
        return self._ctx.arn(f"cert/{cert_id}")
