"""The registry's SQLite schema and its migrations, versioned by ``PRAGMA user_version``.

Each entry of :data:`MIGRATIONS` moves the schema from version ``i`` to ``i + 1``; a database
is brought up to date inside one ``BEGIN IMMEDIATE`` transaction, so two processes opening the
same new file cannot both migrate it. A database newer than this code is refused.
"""

from __future__ import annotations

import sqlite3

from fleet_sim.errors import EmulatorError

_V1 = """
CREATE TABLE registration_codes (
    account TEXT PRIMARY KEY,
    code TEXT NOT NULL
);

CREATE TABLE ca_certificates (
    id TEXT PRIMARY KEY,
    pem TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    auto_registration TEXT NOT NULL CHECK (auto_registration IN ('ENABLE', 'DISABLE')),
    has_registration_config INTEGER NOT NULL DEFAULT 0,
    reg_template_body TEXT,
    reg_role_arn TEXT,
    reg_template_name TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('DEFAULT', 'SNI_ONLY')),
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    generation_id TEXT NOT NULL,
    customer_version INTEGER NOT NULL
);
CREATE INDEX ca_certificates_by_subject ON ca_certificates (subject);
CREATE INDEX ca_certificates_by_created ON ca_certificates (created, id);
CREATE INDEX ca_certificates_by_template ON ca_certificates (reg_template_name);

-- ca_id is deliberately not a foreign key: AWS keeps a device certificate's caCertificateId
-- after its CA is deleted.
CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    pem TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER',
                                           'REGISTER_INACTIVE', 'PENDING_ACTIVATION')),
    ca_id TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('DEFAULT', 'SNI_ONLY')),
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject_fields TEXT NOT NULL,
    common_name TEXT,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    generation_id TEXT NOT NULL,
    customer_version INTEGER NOT NULL
);
CREATE INDEX certificates_by_created ON certificates (created, id);
CREATE INDEX certificates_by_ca ON certificates (ca_id, created, id);
CREATE INDEX certificates_by_common_name ON certificates (common_name);

CREATE TABLE thing_types (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    description TEXT,
    searchable_attributes TEXT NOT NULL,
    deprecated INTEGER NOT NULL DEFAULT 0,
    deprecation_date REAL,
    created REAL NOT NULL
);

CREATE TABLE things (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    type_name TEXT REFERENCES thing_types (name),
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX things_by_type ON things (type_name);

CREATE TABLE thing_groups (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    parent TEXT REFERENCES thing_groups (name),
    description TEXT,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX thing_groups_by_parent ON thing_groups (parent);

CREATE TABLE thing_group_members (
    group_name TEXT NOT NULL REFERENCES thing_groups (name) ON DELETE CASCADE,
    thing_name TEXT NOT NULL REFERENCES things (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, thing_name)
);
CREATE INDEX thing_group_members_by_thing ON thing_group_members (thing_name);

-- No cascades: deleting a thing or certificate with principals attached is refused.
CREATE TABLE thing_principals (
    thing_name TEXT NOT NULL REFERENCES things (name),
    cert_id TEXT NOT NULL REFERENCES certificates (id),
    PRIMARY KEY (thing_name, cert_id)
);
CREATE INDEX thing_principals_by_cert ON thing_principals (cert_id);

CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    default_version INTEGER NOT NULL,
    next_version INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    generation_id TEXT NOT NULL
);
CREATE INDEX policies_by_created ON policies (created, name);

CREATE TABLE policy_versions (
    policy TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (policy, version)
);

-- A target is a certificate ARN, a thing-group ARN or an opaque principal (Cognito id);
-- cert_id / group_name are set for the first two so the database keeps them consistent.
CREATE TABLE policy_targets (
    policy TEXT NOT NULL REFERENCES policies (name),
    target TEXT NOT NULL,
    cert_id TEXT REFERENCES certificates (id),
    group_name TEXT REFERENCES thing_groups (name),
    PRIMARY KEY (policy, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets (target, policy);
CREATE INDEX policy_targets_by_cert ON policy_targets (cert_id);
CREATE INDEX policy_targets_by_group ON policy_targets (group_name);

CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('FLEET_PROVISIONING', 'JITP')),
    enabled INTEGER NOT NULL,
    description TEXT,
    role_arn TEXT NOT NULL,
    hook_target_arn TEXT,
    hook_payload_version TEXT,
    default_version INTEGER NOT NULL,
    next_version INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL
);

CREATE TABLE template_versions (
    template TEXT NOT NULL REFERENCES templates (name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (template, version)
);

CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
"""DDL scripts; entry ``i`` upgrades ``user_version`` ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def _split(script: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [statement for statement in statements if statement]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database on ``conn`` (autocommit mode) to :data:`SCHEMA_VERSION`.

    Returns:
        The version the database had before.

    Raises:
        EmulatorError: the database was written by a newer fleetsim.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise EmulatorError(
                f"registry database has schema version {found}, newer than this fleetsim's "
                f"{SCHEMA_VERSION}"
            )
        for version in range(found, SCHEMA_VERSION):
            # executescript() would COMMIT first; run statement by statement instead.
            for statement in _split(MIGRATIONS[version]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(found)
