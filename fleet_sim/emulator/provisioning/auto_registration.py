"""Just-in-time registration and provisioning (JITR/JITP): what the gateway does with a device
certificate the registry does not know (§1, §2, §7.7 and §11.1 of the behaviour reference).

:class:`AutoRegistrationService` is the gateway's ``AutoRegistration`` hook. It is called on
the loop thread right after the TLS handshake, and whatever it does the connection is then
closed without a CONNACK (the string it returns is the drop reason, for logs and counters).

**Unknown certificate.**

1. Find the signing CA. Python's ``ssl`` shows only the leaf after the handshake, not the chain
   the client sent, so a chain presented or not makes no difference: the CA is looked up by
   the leaf's issuer DN (AWS allows ≤ 10 registered CAs per subject) and the leaf's signature
   verified against each candidate; an ACTIVE one with auto-registration ENABLE wins.
2. Refuse, registering nothing, when no registered CA signed it (``unknown_certificate``), the
   CA is INACTIVE (``ca_inactive``), its auto-registration is DISABLE
   (``auto_registration_disabled``), or it is an SNI_ONLY CA and the client sent no SNI
   (``sni_required``).
3. Register the certificate PENDING_ACTIVATION under that CA (its certificate mode follows the
   CA's).
4. With a registration config, JITP (``jitp_registered``): provisioning is scheduled (below),
   and the registered event is published too unless ``jitp_registered_event`` is off (§1.6:
   whether AWS does is unverified). Without one, JITR (``jitr_registered``): the event
   ``$aws/events/certificates/registered/<caCertificateId>`` is published (§2.3).

**A PENDING_ACTIVATION certificate connecting again** (under an ACTIVE CA with
auto-registration ENABLE; otherwise it is just refused, ``pending_activation``): JITR
re-publishes the event (``jitr_pending``); JITP re-publishes it (when on) and schedules
provisioning again unless an attempt is already under way (``jitp_pending`` /
``jitp_in_progress``).

**A JITP attempt** runs ``jitp_latency_s`` after it was scheduled (a task on the emulator's
clock, cancelled at close), on the loop; what it does is :mod:`.jitp`'s: RegisterThing's quota
(``throttled``), the injected error rate (``injected_error``), then the template rendered with
the certificate's eight ``AWS::IoT::Certificate::*`` parameters and applied in one transaction
(``provisioned`` or ``failed``).

Every failure leaves the certificate PENDING_ACTIVATION and nothing else created (AWS logs the
error to CloudWatch; the emulator logs a warning, counts it in :attr:`stats` and keeps it in
:attr:`recent`), so the device's next connect tries again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from fleet_sim.clock import Clock
from fleet_sim.emulator.config import AutoRegistrationConfig, RegistrationTimestamp
from fleet_sim.emulator.provisioning.jitp import JitpProvisioner, Outcome, ProvisioningAttempt
from fleet_sim.emulator.registry.models import (
    AutoRegistrationStatus,
    CACertificate,
    CAStatus,
    Certificate,
    CertificateMode,
    CertificateStatus,
)
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import EmulatorError, ResourceAlreadyExists
from fleet_sim.tls.inspect import certificate_to_pem, is_issued_by, load_pem_certificates

logger = logging.getLogger(__name__)

#: The reserved topic of the registered event, per CA (§2.2).
REGISTERED_TOPIC = "$aws/events/certificates/registered/{ca_certificate_id}"

#: How the registry writes DNs (RFC 4514 with these short names; see ``tls.inspect``).
_DN_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.DN_QUALIFIER: "dnQualifier"}

#: Parsed CA certificates kept, by id.
_CACHE_SIZE = 64


class EventPublisher(Protocol):
    """Publishes as the service (the broker)."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Route ``payload`` to ``topic``'s subscribers."""
        ...


@dataclass(slots=True)
class AutoRegistrationStats:
    """Counters of the auto-registration service.

    Attributes:
        registered: certificates registered PENDING_ACTIVATION.
        refused: unknown or pending certificates refused without registration, by reason.
        events_published: registered events published.
        jitp_scheduled: JITP attempts scheduled.
        jitp_outcomes: JITP attempts by :class:`Outcome` value.
    """

    registered: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    events_published: int = 0
    jitp_scheduled: int = 0
    jitp_outcomes: Counter[str] = field(default_factory=Counter)


def registered_event(
    *,
    certificate_id: str,
    ca_certificate_id: str,
    timestamp_ms: int,
    account_id: str,
    registration_timestamp_ms: int | None,
    source_ip: str | None,
) -> bytes:
    """The JSON payload of the registered event (§2.3), compact.

    ``certificateRegistrationTimestamp`` is null, or the registration time as a string of
    epoch milliseconds; ``sourceIp`` is added only when given.
    """
    body: dict[str, object] = {
        "certificateId": certificate_id,
        "caCertificateId": ca_certificate_id,
        "timestamp": timestamp_ms,
        "certificateStatus": CertificateStatus.PENDING_ACTIVATION.value,
        "awsAccountId": account_id,
        "certificateRegistrationTimestamp": (
            None if registration_timestamp_ms is None else str(registration_timestamp_ms)
        ),
    }
    if source_ip is not None:
        body["sourceIp"] = source_ip
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


class AutoRegistrationService:
    """JITR and JITP for the gateway (implements its ``AutoRegistration`` protocol).

    Args:
        registry: the emulator's registry.
        events: where registered events are published (the broker).
        clock: the emulator's clock (JITP latency, quota, timestamps).
        rng: randomness for the latency and the injected error rate.
        config: latency, error rate, quota and event settings.
        recent_size: how many JITP attempts :attr:`recent` keeps.
    """

    def __init__(
        self,
        registry: Registry,
        events: EventPublisher,
        *,
        clock: Clock,
        rng: random.Random,
        config: AutoRegistrationConfig | None = None,
        recent_size: int = 1000,
    ) -> None:
        self.registry = registry
        self.events = events
        self.clock = clock
        self.rng = rng
        self.config = config if config is not None else AutoRegistrationConfig()
        self.stats = AutoRegistrationStats()
        self.recent: deque[ProvisioningAttempt] = deque(maxlen=recent_size)
        self.provisioner = JitpProvisioner(registry, clock=clock, rng=rng, config=self.config)
        self._in_progress: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._ca_certificates: dict[str, list[x509.Certificate]] = {}
        self._closed = False

    # ------------------------------------------------------------------ AutoRegistration

    def unknown_certificate(
        self,
        certificate: x509.Certificate,
        certificate_id: str,
        *,
        server_name: str | None,
        source_ip: str | None = None,
    ) -> str:
        """Register an unknown certificate signed by an auto-registering CA, then run JITP
        or publish the JITR event; returns the drop reason."""
        ca, refusal = self._signing_ca(certificate)
        if ca is None:
            return self._refuse(refusal)
        if ca.certificate_mode is CertificateMode.SNI_ONLY and server_name is None:
            return self._refuse("sni_required")
        try:
            record = self.registry.certificates.register(
                certificate_to_pem(certificate),
                now=self.clock.wall(),
                ca_certificate_pem=ca.pem,
                status=CertificateStatus.PENDING_ACTIVATION,
            )
        except ResourceAlreadyExists:  # registered meanwhile (another process)
            existing = self.registry.certificate_by_id(certificate_id)
            if existing is None or existing.status is not CertificateStatus.PENDING_ACTIVATION:
                return self._refuse("registration_race")
            return self.pending_certificate(existing, server_name=server_name, source_ip=source_ip)
        except EmulatorError as error:
            logger.warning("auto-registration of %s failed: %s", certificate_id, error)
            return self._refuse("registration_failed")
        self.stats.registered += 1
        logger.debug("auto-registered %s under CA %s", certificate_id, ca.certificate_id)
        if ca.registration_config is None:
            self._publish_registered(record, ca.certificate_id, source_ip)
            return "jitr_registered"
        if self.config.jitp_registered_event:
            self._publish_registered(record, ca.certificate_id, source_ip)
        self._schedule(record.certificate_id, ca.certificate_id)
        return "jitp_registered"

    def pending_certificate(
        self, record: Certificate, *, server_name: str | None, source_ip: str | None = None
    ) -> str:
        """A PENDING_ACTIVATION certificate connected again: re-publish the event (JITR) or
        retry provisioning (JITP); returns the drop reason."""
        ca_id = record.ca_certificate_id
        ca = None if ca_id is None else self.registry.ca_by_id(ca_id)
        if (
            ca is None
            or ca.status is not CAStatus.ACTIVE
            or ca.auto_registration_status is not AutoRegistrationStatus.ENABLE
        ):
            return self._refuse("pending_activation")
        if ca.registration_config is None:
            self._publish_registered(record, ca.certificate_id, source_ip)
            return "jitr_pending"
        if self.config.jitp_registered_event:
            self._publish_registered(record, ca.certificate_id, source_ip)
        if record.certificate_id in self._in_progress:
            return "jitp_in_progress"
        self._schedule(record.certificate_id, ca.certificate_id)
        return "jitp_pending"

    # ------------------------------------------------------------------ lifecycle

    @property
    def in_progress(self) -> int:
        """JITP attempts scheduled and not yet run."""
        return len(self._in_progress)

    async def wait_idle(self) -> None:
        """Wait until no JITP attempt is scheduled (wrap in a timeout)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Cancel every scheduled JITP attempt (idempotent)."""
        self._closed = True
        tasks = list(self._in_progress.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._in_progress.clear()
        self._idle.set()

    # ------------------------------------------------------------------ finding the CA

    def _signing_ca(self, certificate: x509.Certificate) -> tuple[CACertificate | None, str]:
        """The registered CA that signed ``certificate`` and may auto-register it, or None
        and the refusal reason."""
        issuer_dn = certificate.issuer.rfc4514_string(_DN_NAMES)
        signers = [
            ca
            for ca in self.registry.cas_by_subject(issuer_dn)
            if any(is_issued_by(certificate, issuer) for issuer in self._ca_x509(ca))
        ]
        if not signers:
            return None, "unknown_certificate"
        active = [ca for ca in signers if ca.status is CAStatus.ACTIVE]
        if not active:
            return None, "ca_inactive"
        for ca in active:
            if ca.auto_registration_status is AutoRegistrationStatus.ENABLE:
                return ca, ""
        return None, "auto_registration_disabled"

    def _ca_x509(self, ca: CACertificate) -> list[x509.Certificate]:
        parsed = self._ca_certificates.get(ca.certificate_id)
        if parsed is None:
            parsed = load_pem_certificates(ca.pem.encode("ascii"), source="registered CA")
            if len(self._ca_certificates) >= _CACHE_SIZE:
                self._ca_certificates.pop(next(iter(self._ca_certificates)))
            self._ca_certificates[ca.certificate_id] = parsed
        return parsed

    def _refuse(self, reason: str) -> str:
        self.stats.refused[reason] += 1
        return reason

    # ------------------------------------------------------------------ the registered event

    def _publish_registered(self, record: Certificate, ca_id: str, source_ip: str | None) -> None:
        registration_ms = None
        if self.config.registration_timestamp is RegistrationTimestamp.STRING_MS:
            registration_ms = int(record.created * 1000)
        payload = registered_event(
            certificate_id=record.certificate_id,
            ca_certificate_id=ca_id,
            timestamp_ms=int(self.clock.wall() * 1000),
            account_id=self.registry.account_id,
            registration_timestamp_ms=registration_ms,
            source_ip=source_ip if self.config.source_ip_in_event else None,
        )
        self.events.publish(REGISTERED_TOPIC.format(ca_certificate_id=ca_id), payload, qos=1)
        self.stats.events_published += 1

    # ------------------------------------------------------------------ JITP

    def _schedule(self, certificate_id: str, ca_id: str) -> None:
        if self._closed:
            return
        low, high = self.config.jitp_latency_s
        delay = self.rng.uniform(low, high) if high > low else low
        task = asyncio.get_running_loop().create_task(
            self._provision_later(certificate_id, ca_id, self.clock.now() + delay),
            name=f"jitp-{certificate_id[:12]}",
        )
        self._in_progress[certificate_id] = task
        self._idle.clear()
        self.stats.jitp_scheduled += 1

    async def _provision_later(self, certificate_id: str, ca_id: str, due: float) -> None:
        try:
            delay = due - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay)
            self.attempt(certificate_id, ca_id)
        finally:
            if self._in_progress.get(certificate_id) is asyncio.current_task():
                del self._in_progress[certificate_id]
            if not self._in_progress:
                self._idle.set()

    def attempt(self, certificate_id: str, ca_id: str) -> ProvisioningAttempt:
        """Run one JITP attempt now (what the scheduled task does after the latency).

        Never raises: every failure is the returned attempt's outcome.
        """
        try:
            outcome, detail = self.provisioner.attempt(certificate_id)
        except Exception as error:  # a bug must not kill the loop's task silently
            logger.exception("JITP of %s crashed", certificate_id)
            outcome, detail = Outcome.FAILED, f"internal error: {error}"
        attempt = ProvisioningAttempt(certificate_id, ca_id, outcome, detail, self.clock.now())
        self.stats.jitp_outcomes[outcome.value] += 1
        self.recent.append(attempt)
        if outcome is Outcome.FAILED:
            logger.warning("JITP of %s failed: %s", certificate_id, detail)
        elif outcome is not Outcome.PROVISIONED:
            logger.info("JITP of %s %s: %s", certificate_id, outcome.value, detail)
        return attempt
