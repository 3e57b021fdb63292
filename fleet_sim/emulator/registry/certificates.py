"""Device certificates: register (with or without CA), record issued ones, status, delete.

Rules (AWS's where documented, else the choice noted):

* Registering a certificate already registered is :class:`ResourceAlreadyExists`.
* ``register`` with a CA PEM: that CA must be registered and must have signed the certificate
  (:class:`CertificateValidation`). Without one, the CA is looked up by the certificate's issuer
  DN among registered CAs and its signature: none verifies → :class:`CertificateValidation`,
  several → :class:`CertificateConflict`. The CA must be ACTIVE (:class:`CertificateState`).
  The certificate inherits the CA's certificate mode.
* An initial status may be ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION (the last for
  JITR/JITP and fleet provisioning); others are :class:`InvalidRequest`.
* ``update_status`` (UpdateCertificate): only ACTIVE, INACTIVE and REVOKED may be set
  (PENDING_TRANSFER/PENDING_ACTIVATION are internal, REGISTER_INACTIVE is deprecated:
  :class:`InvalidRequest`). A REVOKED certificate can never change status again, and a
  PENDING_TRANSFER one is frozen too (:class:`CertificateState`). Setting the current status
  again is a no-op.
* ``delete`` (DeleteCertificate): ACTIVE → :class:`CertificateState`; attached to a thing →
  :class:`DeleteConflict`; attached policies → :class:`DeleteConflict` unless ``force`` (then
  they are detached in the same transaction).
* Validity dates are not checked at registration; the gateway checks them at connect.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from cryptography import x509

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.cas import load_ca, load_cas_by_subject
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import (
    AttachmentChanged,
    AttachmentKind,
    CertificateStatusChanged,
)
from fleet_sim.emulator.registry.models import (
    CACertificate,
    CAStatus,
    Certificate,
    CertificateMode,
    CertificateStatus,
    Page,
)
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.parsing import ParsedCertificate, parse_certificate
from fleet_sim.emulator.registry.store import Tx
from fleet_sim.errors import (
    CertificateConflict,
    CertificateState,
    CertificateValidation,
    DeleteConflict,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from fleet_sim.tls.inspect import is_issued_by, load_pem_certificates
from fleet_sim.tls.subject import DeviceSubject

_SELECT = (
    "SELECT id, pem, status, ca_id, mode, subject, issuer, subject_fields, common_name, "
    "not_before, not_after, created, modified, generation_id, customer_version FROM certificates"
)
_INSERT = (
    "INSERT INTO certificates (id, pem, status, ca_id, mode, subject, issuer, subject_fields, "
    "common_name, not_before, not_after, created, modified, generation_id, customer_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_INITIAL_STATUSES = frozenset(
    {
        CertificateStatus.ACTIVE,
        CertificateStatus.INACTIVE,
        CertificateStatus.REVOKED,
        CertificateStatus.PENDING_ACTIVATION,
    }
)
_SETTABLE_STATUSES = frozenset(
    {CertificateStatus.ACTIVE, CertificateStatus.INACTIVE, CertificateStatus.REVOKED}
)
_FROZEN_STATUSES = frozenset({CertificateStatus.REVOKED, CertificateStatus.PENDING_TRANSFER})


def _initial_status(status: CertificateStatus | str) -> CertificateStatus:
    checked = validation.enum_value(CertificateStatus, status, "status")
    if checked not in _INITIAL_STATUSES:
        raise InvalidRequest(f"a certificate cannot be registered as {checked.value}")
    return checked


def _ca_x509(ca: CACertificate) -> list[x509.Certificate]:
    return load_pem_certificates(ca.pem.encode("ascii"), source="registered CA")


class Certificates:
    """Device certificates: register, create, update status, describe, list, delete."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    # ------------------------------------------------------------------ writes

    def register(
        self,
        certificate_pem: str | bytes,
        *,
        now: float,
        ca_certificate_pem: str | bytes | None = None,
        status: CertificateStatus | str = CertificateStatus.INACTIVE,
    ) -> Certificate:
        """Register a device certificate signed by a registered CA (RegisterCertificate;
        also what JITR/JITP auto-registration does, with ``status=PENDING_ACTIVATION``).

        Raises:
            ResourceAlreadyExists, CertificateValidation, CertificateConflict,
            CertificateState, InvalidRequest: see the module docstring.
        """
        initial = _initial_status(status)
        parsed = parse_certificate(certificate_pem)
        ca_parsed = (
            None
            if ca_certificate_pem is None
            else parse_certificate(ca_certificate_pem, "CA certificate")
        )
        with self._ctx.store.write() as tx:
            self._refuse_duplicate(tx, parsed.certificate_id)
            ca = self._signing_ca(tx, parsed, ca_parsed)
            if ca.status is not CAStatus.ACTIVE:
                raise CertificateState(f"the CA certificate {ca.certificate_id} is not ACTIVE")
            return self._insert(tx, parsed, initial, ca.certificate_id, ca.certificate_mode, now)

    def register_without_ca(
        self,
        certificate_pem: str | bytes,
        *,
        now: float,
        status: CertificateStatus | str = CertificateStatus.INACTIVE,
    ) -> Certificate:
        """Register a certificate whose CA is not registered, in SNI_ONLY mode
        (RegisterCertificateWithoutCA).

        Raises:
            ResourceAlreadyExists, CertificateValidation, InvalidRequest.
        """
        initial = _initial_status(status)
        parsed = parse_certificate(certificate_pem)
        with self._ctx.store.write() as tx:
            self._refuse_duplicate(tx, parsed.certificate_id)
            return self._insert(tx, parsed, initial, None, CertificateMode.SNI_ONLY, now)

    def create(
        self,
        certificate_pem: str | bytes,
        *,
        now: float,
        status: CertificateStatus | str = CertificateStatus.INACTIVE,
        ca_certificate_id: str | None = None,
        certificate_mode: CertificateMode | str = CertificateMode.DEFAULT,
    ) -> Certificate:
        """Record a certificate the emulator issued itself (CreateKeysAndCertificate,
        CreateCertificateFromCsr, fleet provisioning's ``$aws/certificates/create``).

        The caller signed it; no CA check is made. ``ca_certificate_id`` is recorded as given.

        Raises:
            ResourceAlreadyExists, CertificateValidation, InvalidRequest.
        """
        initial = _initial_status(status)
        mode = validation.enum_value(CertificateMode, certificate_mode, "certificateMode")
        ca_id = None if ca_certificate_id is None else validation.certificate_id(ca_certificate_id)
        parsed = parse_certificate(certificate_pem)
        with self._ctx.store.write() as tx:
            self._refuse_duplicate(tx, parsed.certificate_id)
            return self._insert(tx, parsed, initial, ca_id, mode, now)

    def update_status(
        self, certificate_id: str, new_status: CertificateStatus | str, *, now: float
    ) -> Certificate:
        """Set a certificate's status (UpdateCertificate).

        Raises:
            ResourceNotFound: no such certificate.
            InvalidRequest: ``new_status`` cannot be set by callers.
            CertificateState: the certificate is REVOKED or PENDING_TRANSFER.
        """
        cert_id = validation.certificate_id(certificate_id)
        status = validation.enum_value(CertificateStatus, new_status, "newStatus")
        if status not in _SETTABLE_STATUSES:
            raise InvalidRequest(f"the status {status.value} cannot be set with UpdateCertificate")
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, cert_id)
            if old.status == status:
                return old
            if old.status in _FROZEN_STATUSES:
                raise CertificateState(
                    f"the certificate {cert_id} is {old.status.value}; its status cannot change"
                )
            tx.conn.execute(
                "UPDATE certificates SET status = ?, modified = ?, generation_id = ?, "
                "customer_version = customer_version + 1 WHERE id = ?",
                (status.value, now, self._ctx.new_uuid(), cert_id),
            )
            tx.emit(CertificateStatusChanged(cert_id, old.status.value, status.value))
            return self._require(tx.conn, cert_id)

    def delete(self, certificate_id: str, *, force: bool = False) -> None:
        """Delete a certificate (DeleteCertificate, ``forceDelete`` = ``force``).

        Raises:
            ResourceNotFound: no such certificate.
            CertificateState: it is ACTIVE.
            DeleteConflict: a thing is attached, or a policy is and ``force`` is False.
        """
        cert_id = validation.certificate_id(certificate_id)
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, cert_id)
            if old.status is CertificateStatus.ACTIVE:
                raise CertificateState(
                    f"Certificate must be deactivated (not ACTIVE) before deletion. Id: {cert_id}"
                )
            if tx.conn.execute(
                "SELECT 1 FROM thing_principals WHERE cert_id = ? LIMIT 1", (cert_id,)
            ).fetchone():
                raise DeleteConflict(f"the certificate {cert_id} is attached to a thing")
            policies = [
                row[0]
                for row in tx.conn.execute(
                    "SELECT policy FROM policy_targets WHERE cert_id = ? ORDER BY policy",
                    (cert_id,),
                )
            ]
            if policies and not force:
                raise DeleteConflict(
                    f"the certificate {cert_id} has policies attached: {', '.join(policies)}"
                )
            tx.conn.execute("DELETE FROM policy_targets WHERE cert_id = ?", (cert_id,))
            tx.conn.execute("DELETE FROM certificates WHERE id = ?", (cert_id,))
            for policy in policies:
                tx.emit(AttachmentChanged(AttachmentKind.POLICY, policy, old.arn, False))
            tx.emit(CertificateStatusChanged(cert_id, old.status.value, None))

    def _refuse_duplicate(self, tx: Tx, cert_id: str) -> None:
        if tx.conn.execute("SELECT 1 FROM certificates WHERE id = ?", (cert_id,)).fetchone():
            raise ResourceAlreadyExists(
                f"The certificate is already provisioned or registered: {cert_id}"
            )

    def _signing_ca(
        self, tx: Tx, parsed: ParsedCertificate, ca_parsed: ParsedCertificate | None
    ) -> CACertificate:
        if ca_parsed is not None:
            ca = load_ca(self._ctx, tx.conn, ca_parsed.certificate_id)
            if ca is None:
                raise CertificateValidation("the CA certificate is not registered")
            if not is_issued_by(parsed.cert, ca_parsed.cert):
                raise CertificateValidation("the certificate is not signed by the CA certificate")
            return ca
        signers = [
            ca
            for ca in load_cas_by_subject(self._ctx, tx.conn, parsed.info.issuer_dn)
            if any(is_issued_by(parsed.cert, issuer) for issuer in _ca_x509(ca))
        ]
        if not signers:
            raise CertificateValidation("the certificate is not signed by a registered CA")
        if len(signers) > 1:
            raise CertificateConflict(
                f"{len(signers)} registered CA certificates could have signed the certificate; "
                "pass the CA certificate"
            )
        return signers[0]

    def _insert(
        self,
        tx: Tx,
        parsed: ParsedCertificate,
        status: CertificateStatus,
        ca_id: str | None,
        mode: CertificateMode,
        now: float,
    ) -> Certificate:
        subject = parsed.info.subject
        tx.conn.execute(
            _INSERT,
            (
                parsed.certificate_id,
                parsed.pem,
                status.value,
                ca_id,
                mode.value,
                parsed.info.subject_dn,
                parsed.info.issuer_dn,
                json.dumps(subject.to_dict(), sort_keys=True),
                subject.common_name,
                parsed.not_before,
                parsed.not_after,
                now,
                now,
                self._ctx.new_uuid(),
                1,
            ),
        )
        tx.emit(CertificateStatusChanged(parsed.certificate_id, None, status.value))
        return self._require(tx.conn, parsed.certificate_id)

    # ------------------------------------------------------------------ reads

    def get(self, certificate_id: str) -> Certificate | None:
        """The certificate with that id, or None (a malformed id is simply not found)."""
        try:
            cert_id = validation.certificate_id(certificate_id)
        except InvalidRequest:
            return None
        with self._ctx.store.read() as conn:
            return load_certificate(self._ctx, conn, cert_id)

    def describe(self, certificate_id: str) -> Certificate:
        """The certificate with that id (DescribeCertificate).

        Raises:
            ResourceNotFound: no such certificate.
        """
        cert_id = validation.certificate_id(certificate_id)
        with self._ctx.store.read() as conn:
            return self._require(conn, cert_id)

    def find_by_common_name(self, common_name: str) -> list[Certificate]:
        """Every certificate whose subject CN is ``common_name``, oldest first."""
        with self._ctx.store.read() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE common_name = ? ORDER BY created, id",
                (common_name,),
            ).fetchall()
        return [certificate_from_row(self._ctx, row) for row in rows]

    def list(
        self,
        *,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        ascending: bool = True,
    ) -> Page[Certificate]:
        """Certificates by registration time (ListCertificates)."""
        return self._list([], [], marker, page_size, ascending)

    def list_by_ca(
        self,
        ca_certificate_id: str,
        *,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        ascending: bool = True,
    ) -> Page[Certificate]:
        """Certificates a CA signed, by registration time (ListCertificatesByCA); the CA
        itself need not be registered any more."""
        ca_id = validation.certificate_id(ca_certificate_id)
        return self._list(["ca_id = ?"], [ca_id], marker, page_size, ascending)

    def _list(
        self,
        where: Sequence[str],
        params: Sequence[str],
        marker: str | None,
        page_size: int,
        ascending: bool,
    ) -> Page[Certificate]:
        with self._ctx.store.read() as conn:
            rows, next_marker = fetch_page(
                conn,
                select=_SELECT,
                where=where,
                params=params,
                key=("created", "id"),
                marker=marker,
                page_size=page_size,
                ascending=ascending,
            )
        return Page(tuple(certificate_from_row(self._ctx, row) for row in rows), next_marker)

    def _require(self, conn: sqlite3.Connection, cert_id: str) -> Certificate:
        found = load_certificate(self._ctx, conn, cert_id)
        if found is None:
            raise ResourceNotFound(f"certificate {cert_id} does not exist")
        return found


def load_certificate(ctx: Context, conn: sqlite3.Connection, cert_id: str) -> Certificate | None:
    """The certificate with id ``cert_id`` as seen on ``conn``, or None."""
    row = conn.execute(f"{_SELECT} WHERE id = ?", (cert_id,)).fetchone()
    return None if row is None else certificate_from_row(ctx, row)


def require_certificate_exists(conn: sqlite3.Connection, cert_id: str) -> None:
    """Check that the certificate with (canonical) id ``cert_id`` exists, as seen on ``conn``.

    Raises:
        ResourceNotFound: it does not.
    """
    if not conn.execute("SELECT 1 FROM certificates WHERE id = ?", (cert_id,)).fetchone():
        raise ResourceNotFound(f"certificate {cert_id} does not exist")


def certificate_from_row(ctx: Context, row: sqlite3.Row) -> Certificate:
    """The record for a ``certificates`` row."""
    return Certificate(
        certificate_id=row["id"],
        arn=ctx.arn(f"cert/{row['id']}"),
        pem=row["pem"],
        status=CertificateStatus(row["status"]),
        ca_certificate_id=row["ca_id"],
        certificate_mode=CertificateMode(row["mode"]),
        subject=row["subject"],
        issuer=row["issuer"],
        subject_fields=DeviceSubject.from_dict(json.loads(row["subject_fields"])),
        owned_by=ctx.account_id,
        created=row["created"],
        last_modified=row["modified"],
        generation_id=row["generation_id"],
        customer_version=row["customer_version"],
        not_before=row["not_before"],
        not_after=row["not_after"],
    )
