"""The :class:`Registry` façade: one SQLite-backed registry of CAs, certificates, things,
policies, provisioning templates and their attachments, for the gateway, the control plane and
the provisioning services.

Operations live on the parts (``registry.certificates.update_status(...)``,
``registry.attachments.attach_policy(...)`` …); the lookups the gateway makes on every
connection are also here directly. Every part shares one thread-safe :class:`Store`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from cryptography import x509

from fleet_sim.emulator.registry.attachments import Attachments
from fleet_sim.emulator.registry.cas import CACertificates
from fleet_sim.emulator.registry.certificates import Certificates
from fleet_sim.emulator.registry.context import Context
from fleet_sim.emulator.registry.events import Listener
from fleet_sim.emulator.registry.models import CACertificate, Certificate, Thing
from fleet_sim.emulator.registry.policies import Policies
from fleet_sim.emulator.registry.store import Store
from fleet_sim.emulator.registry.templates import ProvisioningTemplates
from fleet_sim.emulator.registry.thing_groups import ThingGroups
from fleet_sim.emulator.registry.thing_types import ThingTypes
from fleet_sim.emulator.registry.things import Things

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


class Registry:
    """The emulator's registry, persisted in one SQLite file.

    Attributes:
        region: the region in every ARN.
        account_id: the account in every ARN.
        cas: CA certificates and the registration code.
        certificates: device certificates.
        things: things.
        thing_types: thing types.
        thing_groups: thing groups and their members.
        policies: policies and policy versions.
        attachments: policy attachments and thing principals.
        templates: provisioning templates and their versions.
    """

    def __init__(
        self,
        store: Store,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """Build a registry on an open store (most callers use :meth:`open`).

        Args:
            store: the database.
            region: the region ARNs name.
            account_id: the account ARNs name (and the registration code belongs to).
            random_bytes: source of random ids (thing ids, registration code, generation
                ids); pass ``random.Random(seed).randbytes`` for reproducible runs.
        """
        self.region = region
        self.account_id = account_id
        self._store = store
        ctx = Context(store, region, account_id, random_bytes)
        self.cas = CACertificates(ctx)
        self.certificates = Certificates(ctx)
        self.things = Things(ctx)
        self.thing_types = ThingTypes(ctx)
        self.thing_groups = ThingGroups(ctx)
        self.policies = Policies(ctx)
        self.attachments = Attachments(ctx)
        self.templates = ProvisioningTemplates(ctx)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        busy_timeout: float = 5.0,
    ) -> Registry:
        """Open (creating and migrating if needed) the registry database at ``path``.

        Args:
            path: the database file, or ``":memory:"`` for a private in-memory one.
            region: the region ARNs name.
            account_id: the account ARNs name.
            random_bytes: source of random ids.
            busy_timeout: seconds to wait for another process's write lock.

        Raises:
            EmulatorError: the file cannot be opened or was written by a newer fleetsim.
            ServiceUnavailable: another process kept it locked past ``busy_timeout``.
        """
        origin = f"{os.getpid()}-{random_bytes(8).hex()}"
        store = Store.open(path, origin=origin, busy_timeout=busy_timeout)
        return cls(store, region=region, account_id=account_id, random_bytes=random_bytes)

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions, events

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several operations into one transaction: all of them or none.

        Operations inside still fail one by one (each is a savepoint), so a caller may catch
        an error and go on; listeners hear of the changes only after the whole group commits.
        The registry is locked to other threads for the duration.
        """
        with self._store.write():
            yield

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after every committed change; returns an unsubscribe.

        Listeners run synchronously on the thread that made the change, in commit order,
        with the registry locked (they may read it; they must not block on another thread
        that uses it). An exception in a listener is logged and does not undo the change.
        """
        return self._store.subscribe(listener)

    def poll_changes(self) -> int:
        """Dispatch to listeners the events other processes committed to the same file
        since the last poll (e.g. a CLI deactivating a certificate); returns how many."""
        return self._store.poll_changes()

    # ------------------------------------------------------------------ gateway lookups

    def certificate_by_id(self, certificate_id: str) -> Certificate | None:
        """The device certificate with that id (SHA-256 of the DER), or None."""
        return self.certificates.get(certificate_id)

    def ca_by_id(self, ca_certificate_id: str) -> CACertificate | None:
        """The CA certificate with that id, or None."""
        return self.cas.get(ca_certificate_id)

    def cas_by_subject(self, subject: x509.Name | str) -> list[CACertificate]:
        """The registered CAs whose subject is ``subject`` (a leaf's issuer), oldest first."""
        return self.cas.by_subject(subject)

    def policies_for_certificate(self, certificate_id: str) -> list[tuple[str, str]]:
        """``(name, document)`` of the default version of every policy attached to the
        certificate, by name."""
        return self.attachments.policies_for_certificate(certificate_id)

    def things_for_certificate(self, certificate_id: str) -> list[Thing]:
        """The things the certificate is attached to, by name."""
        return self.attachments.things_for_certificate(certificate_id)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction around several lookups."""
        with self._store.read():
            yield

    def certificate_state(
        self, certificate_id: str
    ) -> tuple[str, str | None, str, str | None] | None:
        """(status, CA id, mode, CA status) of a certificate in one query."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT c.status, c.ca_id, c.mode, a.status FROM certificates c "
                "LEFT JOIN ca_certificates a ON a.id = c.ca_id WHERE c.id = ?",
                (certificate_id,),
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def is_thing_attached(self, certificate_id: str, thing_name: str) -> bool:
        """Whether ``thing_name`` is attached to the certificate."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT 1 FROM thing_principals WHERE thing_name = ? AND cert_id = ?",
                (thing_name, certificate_id),
            ).fetchone()
        return row is not None

    def thing(self, name: str) -> Thing | None:
        """The thing called ``name``, or None."""
        return self.things.get(name)
