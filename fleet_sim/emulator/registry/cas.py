"""CA certificates and the account's registration code (RegisterCACertificate and friends).

Rules (AWS's where documented, else the choice noted):

* DEFAULT mode needs a verification certificate signed by the CA whose CN is the account's
  registration code (:class:`RegistrationCodeValidation` / :class:`CertificateValidation`);
  SNI_ONLY mode must not have one (:class:`InvalidRequest`).
* The certificate must be a CA (basicConstraints CA:TRUE, or a v1 self-signed one).
* At most 10 CAs with the same subject (:class:`LimitExceeded`); the same CA twice is
  :class:`ResourceAlreadyExists`.
* A ``registrationConfig.templateName`` must name an existing JITP template.
* ``remove_auto_registration`` clears the registration config; the auto-registration status
  changes only through ``new_auto_registration_status``.
* Deleting an ACTIVE CA is :class:`CertificateState`. Device certificates it signed stay
  registered and keep its id as ``ca_certificate_id`` (the emulator's choice; AWS does not
  document this case).
"""

from __future__ import annotations

import sqlite3

from cryptography import x509

from fleet_sim.emulator.registry import validation
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import CACertificateChanged
from fleet_sim.emulator.registry.models import (
    AutoRegistrationStatus,
    CACertificate,
    CAStatus,
    CertificateMode,
    Page,
    RegistrationConfig,
    TemplateType,
)
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE, fetch_page
from fleet_sim.emulator.registry.parsing import parse_certificate
from fleet_sim.emulator.registry.store import Tx
from fleet_sim.errors import (
    CertificateState,
    CertificateValidation,
    InvalidRequest,
    LimitExceeded,
    RegistrationCodeValidation,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from fleet_sim.tls.inspect import RFC4514_NAMES, is_issued_by

#: AWS: at most 10 CA certificates with the same subject per account and region.
MAX_CAS_PER_SUBJECT = 10

_SELECT = (
    "SELECT id, pem, status, auto_registration, has_registration_config, reg_template_body, "
    "reg_role_arn, reg_template_name, mode, subject, issuer, not_before, not_after, created, "
    "modified, generation_id, customer_version FROM ca_certificates"
)
_INSERT = (
    "INSERT INTO ca_certificates (id, pem, status, auto_registration, has_registration_config, "
    "reg_template_body, reg_role_arn, reg_template_name, mode, subject, issuer, not_before, "
    "not_after, created, modified, generation_id, customer_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def subject_key(subject: x509.Name | str) -> str:
    """The string the registry indexes CA subjects by: RFC 4514 with the short attribute names
    :func:`fleet_sim.tls.inspect.describe` uses (``serialNumber``, ``dnQualifier`` …)."""
    return subject if isinstance(subject, str) else subject.rfc4514_string(RFC4514_NAMES)


def _config_columns(
    config: RegistrationConfig | None,
) -> tuple[bool, str | None, str | None, str | None]:
    """``has_registration_config, reg_template_body, reg_role_arn, reg_template_name``."""
    if config is None:
        return False, None, None, None
    return True, config.template_body, config.role_arn, config.template_name


class CACertificates:
    """CA certificates: register, update, describe, list, delete; the registration code."""

    def __init__(self, ctx: Context) -> None:
        """Work on ``ctx``'s store (the :class:`Registry` builds this)."""
        self._ctx = ctx

    # ------------------------------------------------------------------ registration code

    def get_registration_code(self) -> str:
        """The account's registration code (64 hex), created on first use (GetRegistrationCode)."""
        with self._ctx.store.read() as conn:
            code = self._code(conn)
        if code is not None:
            return code
        with self._ctx.store.write() as tx:
            code = self._code(tx.conn)
            if code is None:
                code = self._ctx.new_hex(32)
                tx.conn.execute(
                    "INSERT INTO registration_codes (account, code) VALUES (?, ?)",
                    (self._ctx.account_id, code),
                )
            return code

    def delete_registration_code(self) -> None:
        """Forget the code; the next :meth:`get_registration_code` makes a new one."""
        with self._ctx.store.write() as tx:
            tx.conn.execute(
                "DELETE FROM registration_codes WHERE account = ?", (self._ctx.account_id,)
            )

    def _code(self, conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT code FROM registration_codes WHERE account = ?", (self._ctx.account_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ writes

    def register(
        self,
        ca_pem: str | bytes,
        *,
        now: float,
        verification_pem: str | bytes | None = None,
        set_as_active: bool = False,
        allow_auto_registration: bool = False,
        registration_config: RegistrationConfig | None = None,
        certificate_mode: CertificateMode | str = CertificateMode.DEFAULT,
    ) -> CACertificate:
        """Register a CA certificate (RegisterCACertificate).

        Args:
            ca_pem: the CA certificate, PEM.
            now: the time, epoch seconds.
            verification_pem: the verification certificate (DEFAULT mode only).
            set_as_active: ACTIVE instead of INACTIVE.
            allow_auto_registration: auto-registration ENABLE instead of DISABLE.
            registration_config: the JITP configuration, if any.
            certificate_mode: DEFAULT or SNI_ONLY.

        Raises:
            CertificateValidation, RegistrationCodeValidation, InvalidRequest,
            ResourceAlreadyExists, LimitExceeded, ResourceNotFound: see the module docstring.
        """
        mode = validation.enum_value(CertificateMode, certificate_mode, "certificateMode")
        parsed = parse_certificate(ca_pem, "CA certificate")
        if not parsed.info.is_ca:
            raise CertificateValidation("the certificate is not a CA certificate")
        verification = None
        if mode is CertificateMode.DEFAULT:
            if not verification_pem:
                raise InvalidRequest("a verification certificate is required in DEFAULT mode")
            verification = parse_certificate(verification_pem, "verification certificate")
        elif verification_pem:
            raise InvalidRequest("the verification certificate must be empty in SNI_ONLY mode")
        status = CAStatus.ACTIVE if set_as_active else CAStatus.INACTIVE
        auto = (
            AutoRegistrationStatus.ENABLE
            if allow_auto_registration
            else AutoRegistrationStatus.DISABLE
        )
        ca_id = parsed.certificate_id
        with self._ctx.store.write() as tx:
            if verification is not None:
                code = self._code(tx.conn)
                if code is None or verification.info.subject.common_name != code:
                    raise RegistrationCodeValidation(
                        "the verification certificate's CN is not the registration code"
                    )
                if not is_issued_by(verification.cert, parsed.cert):
                    raise CertificateValidation(
                        "the verification certificate is not signed by the CA certificate"
                    )
            config = self._check_config(tx, registration_config)
            if tx.conn.execute("SELECT 1 FROM ca_certificates WHERE id = ?", (ca_id,)).fetchone():
                raise ResourceAlreadyExists(f"the CA certificate {ca_id} is already registered")
            (same_subject,) = tx.conn.execute(
                "SELECT COUNT(*) FROM ca_certificates WHERE subject = ?",
                (parsed.info.subject_dn,),
            ).fetchone()
            if same_subject >= MAX_CAS_PER_SUBJECT:
                raise LimitExceeded(
                    f"{MAX_CAS_PER_SUBJECT} CA certificates with subject "
                    f"{parsed.info.subject_dn!r} are registered already"
                )
            tx.conn.execute(
                _INSERT,
                (
                    ca_id,
                    parsed.pem,
                    status.value,
                    auto.value,
                    *_config_columns(config),
                    mode.value,
                    parsed.info.subject_dn,
                    parsed.info.issuer_dn,
                    parsed.not_before,
                    parsed.not_after,
                    now,
                    now,
                    self._ctx.new_uuid(),
                    1,
                ),
            )
            tx.emit(CACertificateChanged(ca_id, None, status.value))
            return self._require(tx.conn, ca_id)

    def update(
        self,
        ca_certificate_id: str,
        *,
        now: float,
        new_status: CAStatus | str | None = None,
        new_auto_registration_status: AutoRegistrationStatus | str | None = None,
        registration_config: RegistrationConfig | None = None,
        remove_auto_registration: bool = False,
    ) -> CACertificate:
        """Change a CA's status, auto-registration or registration config (UpdateCACertificate).

        Raises:
            ResourceNotFound: no such CA (or the config names a missing template).
            InvalidRequest: a bad status, or both a config and ``remove_auto_registration``.
        """
        ca_id = validation.certificate_id(ca_certificate_id)
        status = (
            None if new_status is None else validation.enum_value(CAStatus, new_status, "newStatus")
        )
        auto = (
            None
            if new_auto_registration_status is None
            else validation.enum_value(
                AutoRegistrationStatus, new_auto_registration_status, "newAutoRegistrationStatus"
            )
        )
        if remove_auto_registration and registration_config is not None:
            raise InvalidRequest(
                "removeAutoRegistration cannot be combined with a registrationConfig"
            )
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, ca_id)
            config = old.registration_config
            if remove_auto_registration:
                config = None
            elif registration_config is not None:
                config = self._check_config(tx, registration_config)
            status = status or old.status
            auto = auto or old.auto_registration_status
            if (status, auto, config) == (
                old.status,
                old.auto_registration_status,
                old.registration_config,
            ):
                return old
            tx.conn.execute(
                "UPDATE ca_certificates SET status = ?, auto_registration = ?, "
                "has_registration_config = ?, reg_template_body = ?, reg_role_arn = ?, "
                "reg_template_name = ?, modified = ?, generation_id = ?, "
                "customer_version = customer_version + 1 WHERE id = ?",
                (
                    status.value,
                    auto.value,
                    *_config_columns(config),
                    now,
                    self._ctx.new_uuid(),
                    ca_id,
                ),
            )
            tx.emit(CACertificateChanged(ca_id, old.status.value, status.value))
            return self._require(tx.conn, ca_id)

    def delete(self, ca_certificate_id: str) -> None:
        """Delete a CA certificate (DeleteCACertificate).

        Raises:
            ResourceNotFound: no such CA.
            CertificateState: it is ACTIVE.
        """
        ca_id = validation.certificate_id(ca_certificate_id)
        with self._ctx.store.write() as tx:
            old = self._require(tx.conn, ca_id)
            if old.status is CAStatus.ACTIVE:
                raise CertificateState(
                    f"the CA certificate {ca_id} must be deactivated (not ACTIVE) before deletion"
                )
            tx.conn.execute("DELETE FROM ca_certificates WHERE id = ?", (ca_id,))
            tx.emit(CACertificateChanged(ca_id, old.status.value, None))

    def _check_config(self, tx: Tx, config: RegistrationConfig | None) -> RegistrationConfig | None:
        if config is None or config == RegistrationConfig():
            return None
        if config.role_arn is not None:
            validation.role_arn(config.role_arn, "registrationConfig.roleArn")
        if config.template_body is not None:
            validation.json_object(
                config.template_body, "registrationConfig.templateBody", max_length=10240
            )
        if config.template_name is not None:
            name = validation.template_name(config.template_name)
            row = tx.conn.execute("SELECT type FROM templates WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"provisioning template {name!r} does not exist")
            if row["type"] != TemplateType.JITP:
                raise InvalidRequest(f"provisioning template {name!r} is not of type JITP")
        return config

    # ------------------------------------------------------------------ reads

    def get(self, ca_certificate_id: str) -> CACertificate | None:
        """The CA with that id, or None (a malformed id is simply not found)."""
        try:
            ca_id = validation.certificate_id(ca_certificate_id)
        except InvalidRequest:
            return None
        with self._ctx.store.read() as conn:
            return self._get(conn, ca_id)

    def describe(self, ca_certificate_id: str) -> CACertificate:
        """The CA with that id (DescribeCACertificate).

        Raises:
            ResourceNotFound: no such CA.
        """
        ca_id = validation.certificate_id(ca_certificate_id)
        with self._ctx.store.read() as conn:
            return self._require(conn, ca_id)

    def by_subject(self, subject: x509.Name | str) -> list[CACertificate]:
        """Every CA whose subject is ``subject`` (≤ 10), oldest first: the candidate issuers
        of a leaf whose issuer DN this is."""
        with self._ctx.store.read() as conn:
            return load_cas_by_subject(self._ctx, conn, subject)

    def list(
        self,
        *,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        ascending: bool = True,
        template_name: str | None = None,
    ) -> Page[CACertificate]:
        """CAs by registration time (ListCACertificates), optionally those using a template."""
        where = ["reg_template_name = ?"] if template_name is not None else []
        params = [template_name] if template_name is not None else []
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
        return Page(tuple(ca_from_row(self._ctx, row) for row in rows), next_marker)

    def _get(self, conn: sqlite3.Connection, ca_id: str) -> CACertificate | None:
        return load_ca(self._ctx, conn, ca_id)

    def _require(self, conn: sqlite3.Connection, ca_id: str) -> CACertificate:
        found = self._get(conn, ca_id)
        if found is None:
            raise ResourceNotFound(f"CA certificate {ca_id} does not exist")
        return found


def load_ca(ctx: Context, conn: sqlite3.Connection, ca_id: str) -> CACertificate | None:
    """The CA with id ``ca_id`` as seen on ``conn``, or None."""
    row = conn.execute(f"{_SELECT} WHERE id = ?", (ca_id,)).fetchone()
    return None if row is None else ca_from_row(ctx, row)


def load_cas_by_subject(
    ctx: Context, conn: sqlite3.Connection, subject: x509.Name | str
) -> list[CACertificate]:
    """The CAs whose subject is ``subject``, oldest first, as seen on ``conn``."""
    rows = conn.execute(
        f"{_SELECT} WHERE subject = ? ORDER BY created, id",
        (subject_key(subject),),
    ).fetchall()
    return [ca_from_row(ctx, row) for row in rows]


def ca_from_row(ctx: Context, row: sqlite3.Row) -> CACertificate:
    """The record for a ``ca_certificates`` row."""
    config = (
        RegistrationConfig(
            template_body=row["reg_template_body"],
            role_arn=row["reg_role_arn"],
            template_name=row["reg_template_name"],
        )
        if row["has_registration_config"]
        else None
    )
    return CACertificate(
        certificate_id=row["id"],
        arn=ctx.arn(f"cacert/{row['id']}"),
        pem=row["pem"],
        status=CAStatus(row["status"]),
        auto_registration_status=AutoRegistrationStatus(row["auto_registration"]),
        registration_config=config,
        certificate_mode=CertificateMode(row["mode"]),
        subject=row["subject"],
        issuer=row["issuer"],
        owned_by=ctx.account_id,
        created=row["created"],
        last_modified=row["modified"],
        generation_id=row["generation_id"],
        customer_version=row["customer_version"],
        not_before=row["not_before"],
        not_after=row["not_after"],
    )
