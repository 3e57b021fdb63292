"""Fleet provisioning by claim over MQTT: :class:`FleetProvisioningService` (reference §3).

A :class:`~fleet_sim.emulator.broker.broker.ReservedTopicService` on the broker, serving:

* **CreateKeysAndCertificate** (``$aws/certificates/create/<fmt>``): a fresh key and a
  certificate signed by the emulator's device CA, registered ``PENDING_ACTIVATION`` (reusing
  :mod:`fleet_sim.emulator.control_plane.issuing`: EC P-256 keys, where AWS makes RSA-2048,
  because they are two orders of magnitude cheaper to generate under load). Accepted:
  ``{"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}``.
* **CreateCertificateFromCsr** (``$aws/certificates/create-from-csr/<fmt>``): the device's
  CSR signed, keeping its subject, ``PENDING_ACTIVATION``. Accepted:
  ``{"certificateOwnershipToken", "certificateId", "certificatePem"}``; an unusable CSR is
  400 ``InvalidPayload``.
* **RegisterThing** (``$aws/provisioning-templates/<name>/provision/<fmt>``) with
  ``{"certificateOwnershipToken", "parameters"}``: over the RegisterThing quota → 429
  ``Throttled``; an empty, unknown or expired token → 400
  ``InvalidCertificateOwnershipToken``; no such template, or not a FLEET_PROVISIONING one →
  404 ``ResourceNotFound``; a disabled template → 403 ``AccessDenied``; then the template's
  pre-provisioning hook (:mod:`.hooks`; a denial, failure or timeout → 403 ``AccessDenied``;
  its ``parameterOverrides`` are merged into the parameters); then the default version is
  rendered with the parameters plus ``AWS::IoT::Certificate::Id`` (the token's certificate,
  which the device cannot override) and applied in one registry transaction
  (:func:`~fleet_sim.emulator.provisioning.apply.apply_plan`), which activates the
  certificate as the template says. Accepted: ``{"deviceConfiguration", "thingName"}``. A
  template that does not render (a missing parameter, a failing function) or whose
  certificate resource is not ``CertificateId`` = the token's certificate → 400
  ``InvalidParameters``; what the registry refuses (a missing policy or thing group, an
  ``OverrideSettings`` FAIL conflict) → 400 ``ResourceRegistrationFailure``. These error
  codes are an inference (see :mod:`.fleet_api`).

Replies go only to the requesting connection, and only if it subscribed to the reply topic
first and may receive it (:mod:`.replies`). Requests are consumed, never routed to other
subscribers [inference: they carry tokens and CSRs]. The broker checked ``iot:Publish`` on the
request topic before calling the service.

Ownership tokens (:mod:`.ownership`) expire after ``ownership_token_ttl_s``; then a
certificate still ``PENDING_ACTIVATION`` and attached to no thing and no policy is deleted
(on the emulator's housekeeping tick via :meth:`FleetProvisioningService.expire_tokens`, and
at once when a request presents an expired token).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.emulator.broker.rate import TokenBucket
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.control_plane.context import HandlerContext
from fleet_sim.emulator.control_plane.issuing import create_keys_and_certificate, issue_from_csr
from fleet_sim.emulator.provisioning.apply import apply_plan
from fleet_sim.emulator.provisioning.fleet_api import (
    ErrorCode,
    FleetRequest,
    Operation,
    decode_request,
    encode_reply,
    optional_string,
    parse_request_topic,
    rejection_body,
    string_map,
)
from fleet_sim.emulator.provisioning.fleet_templates import FleetTemplate, FleetTemplates
from fleet_sim.emulator.provisioning.hooks import HookRunner, HookVerdict, LoopScheduler
from fleet_sim.emulator.provisioning.ownership import OwnershipGrant, OwnershipTokens
from fleet_sim.emulator.provisioning.replies import ReplyOutcome, reply_to
from fleet_sim.emulator.registry.models import Certificate, CertificateStatus
from fleet_sim.errors import EmulatorError, FleetProvisioningRejected, InvalidRequest, TemplateError
from fleet_sim.mqtt.packets import Publish

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FleetProvisioningStats:
    """Counters for reports, benchmarks and tests."""

    certificates_created: int = 0
    things_provisioned: int = 0
    rejected: int = 0
    throttled: int = 0
    replies_sent: int = 0
    replies_unsubscribed: int = 0
    replies_denied: int = 0
    certificates_deleted: int = 0


@dataclass(frozen=True, slots=True)
class _Registration:
    """A RegisterThing request that passed its checks, waiting for its hook or provisioning."""

    connection: BrokerConnection
    request: FleetRequest
    template: FleetTemplate
    grant: OwnershipGrant
    parameters: Mapping[str, str]


class FleetProvisioningService:
    """AWS IoT fleet provisioning's MQTT API on the emulator's broker."""

    def __init__(
        self,
        context: HandlerContext,
        *,
        tokens: OwnershipTokens,
        hooks: HookRunner,
        register_thing_tps: float | None = 10.0,
    ) -> None:
        """Serve requests against ``context``'s registry and device CA.

        Args:
            context: the registry, the device CA and the clock.
            tokens: the ownership-token store (its TTL is the tokens' lifetime).
            hooks: runs templates' pre-provisioning hooks.
            register_thing_tps: RegisterThing requests per second (None: unlimited).
        """
        self.context = context
        self.tokens = tokens
        self.hooks = hooks
        self.stats = FleetProvisioningStats()
        self._clock = context.clock
        self._register_quota = (
            TokenBucket(register_thing_tps, now=self._clock.now())
            if register_thing_tps is not None
            else None
        )
        self.templates = FleetTemplates(context.registry)

    # ------------------------------------------------------------------ broker interface

    def handles(self, topic: str) -> bool:
        """Whether ``topic`` is a fleet-provisioning request topic."""
        return topic.startswith("$aws/") and parse_request_topic(topic) is not None

    def handle(self, connection: BrokerConnection, message: Publish) -> bool:
        """Serve one request; always consumed (never routed to subscribers)."""
        request = parse_request_topic(message.topic)
        if request is None:
            return False
        self._answering(connection, request, lambda: self._serve(connection, request, message))
        return True

    # ------------------------------------------------------------------ housekeeping

    def expire_tokens(self) -> int:
        """Forget expired ownership tokens and delete their certificates if never activated
        and attached to nothing; returns how many certificates were deleted."""
        deleted = 0
        for grant in self.tokens.expire(self._clock.now()):
            if self._delete_unclaimed(grant.certificate_id):
                deleted += 1
        self.stats.certificates_deleted += deleted
        return deleted

    def _delete_unclaimed(self, certificate_id: str) -> bool:
        registry = self.context.registry
        cert = registry.certificates.get(certificate_id)
        if cert is None or cert.status is not CertificateStatus.PENDING_ACTIVATION:
            return False
        if registry.things_for_certificate(certificate_id) or registry.policies_for_certificate(
            certificate_id
        ):
            return False
        try:
            registry.certificates.delete(certificate_id)
        except EmulatorError:  # changed meanwhile (activated, attached): keep it
            return False
        logger.debug("deleted unclaimed fleet-provisioning certificate %s", certificate_id)
        return True

    # ------------------------------------------------------------------ requests

    def _answering(
        self,
        connection: BrokerConnection,
        request: FleetRequest,
        work: Callable[[], dict[str, Any] | None],
    ) -> None:
        """Run ``work``; answer its result on accepted, its rejection on rejected (None:
        the answer comes later)."""
        try:
            body = work()
        except FleetProvisioningRejected as error:
            self.stats.rejected += 1
            self._send(connection, request.rejected_topic, rejection_body(error), request)
            return
        except Exception:  # a bug must cost one request, never the broker
            logger.exception("fleet provisioning: %s failed", request.operation)
            self.stats.rejected += 1
            failure = ErrorCode.INTERNAL_FAILURE.error("internal failure in the emulator")
            self._send(connection, request.rejected_topic, rejection_body(failure), request)
            return
        if body is not None:
            self._send(connection, request.accepted_topic, body, request)

    def _serve(
        self, connection: BrokerConnection, request: FleetRequest, message: Publish
    ) -> dict[str, Any] | None:
        if request.operation is Operation.REGISTER_THING:
            return self._register_thing(connection, request, message.payload)
        body = decode_request(message.payload, request.payload_format)
        if request.operation is Operation.CREATE_KEYS_AND_CERTIFICATE:
            return self._create_keys_and_certificate()
        return self._create_certificate_from_csr(body)

    def _create_keys_and_certificate(self) -> dict[str, Any]:
        issued = create_keys_and_certificate(
            self.context, active=False, status=CertificateStatus.PENDING_ACTIVATION
        )
        grant = self._issued(issued.certificate)
        return {
            "certificateId": issued.certificate.certificate_id,
            "certificatePem": issued.certificate.pem,
            "privateKey": issued.private_key_pem,
            "certificateOwnershipToken": grant.token,
        }

    def _create_certificate_from_csr(self, body: Mapping[str, Any]) -> dict[str, Any]:
        csr = optional_string(body, "certificateSigningRequest")
        if not csr:
            raise ErrorCode.INVALID_PAYLOAD.error("certificateSigningRequest is required")
        try:
            cert = issue_from_csr(self.context, csr, status=CertificateStatus.PENDING_ACTIVATION)
        except InvalidRequest as error:
            raise ErrorCode.INVALID_PAYLOAD.error(error.message) from None
        grant = self._issued(cert)
        return {
            "certificateOwnershipToken": grant.token,
            "certificateId": cert.certificate_id,
            "certificatePem": cert.pem,
        }

    def _issued(self, cert: Certificate) -> OwnershipGrant:
        self.stats.certificates_created += 1
        return self.tokens.issue(cert.certificate_id, self._clock.now())

    # -- RegisterThing

    def _register_thing(
        self, connection: BrokerConnection, request: FleetRequest, payload: bytes
    ) -> dict[str, Any] | None:
        quota = self._register_quota
        if quota is not None and not quota.take(self._clock.now()):
            self.stats.throttled += 1
            raise ErrorCode.THROTTLED.error("Rate exceeded for RegisterThing")
        body = decode_request(payload, request.payload_format)
        token = optional_string(body, "certificateOwnershipToken")
        parameters = string_map(body, "parameters")
        grant = self._redeem(token)
        assert request.template_name is not None
        template = self.templates.usable(request.template_name)
        registration = _Registration(connection, request, template, grant, parameters)
        hook = template.record.pre_provisioning_hook
        if hook is None:
            return self._provision(registration, parameters)
        cert = self.context.registry.certificates.get(grant.certificate_id)
        if cert is None:
            raise _certificate_gone()
        event: dict[str, Any] = {
            "claimCertificateId": connection.principal.certificate_id,
            "certificateId": grant.certificate_id,
            "certificatePem": cert.pem,
            "templateArn": template.record.arn,
            "clientId": connection.client_id,
            "parameters": dict(parameters),
        }
        self.hooks.invoke(
            hook.target_arn, event, lambda verdict: self._after_hook(registration, verdict)
        )
        return None

    def _redeem(self, token: str | None) -> OwnershipGrant:
        try:
            return self.tokens.redeem(token, self._clock.now())
        except FleetProvisioningRejected:
            self.expire_tokens()  # an expired token's certificate goes at once
            raise

    def _after_hook(self, registration: _Registration, verdict: HookVerdict) -> None:
        """The hook answered (on the loop's thread): provision or deny, then send."""

        def finish() -> dict[str, Any]:
            if not verdict.allowed:
                raise ErrorCode.ACCESS_DENIED.error(verdict.reason)
            merged = {**registration.parameters, **verdict.parameter_overrides}
            return self._provision(registration, merged)

        connection = registration.connection
        self._answering(connection, registration.request, finish)
        connection.broker.flush()

    def _provision(
        self, registration: _Registration, parameters: Mapping[str, str]
    ) -> dict[str, Any]:
        certificate_id = registration.grant.certificate_id
        plan = registration.template.render(parameters, certificate_id)
        registry = self.context.registry
        if registry.certificates.get(certificate_id) is None:
            raise _certificate_gone()
        try:
            provisioned = apply_plan(registry, plan, now=self.context.now())
        except TemplateError as error:
            raise ErrorCode.INVALID_PARAMETERS.error(error.message) from None
        except EmulatorError as error:
            raise ErrorCode.REGISTRATION_FAILURE.error(error.message) from None
        self.stats.things_provisioned += 1
        reply: dict[str, Any] = {"deviceConfiguration": dict(provisioned.device_configuration)}
        if provisioned.thing_name is not None:
            reply["thingName"] = provisioned.thing_name
        return reply

    # ------------------------------------------------------------------ replies

    def _send(
        self,
        connection: BrokerConnection,
        topic: str,
        body: Mapping[str, Any],
        request: FleetRequest,
    ) -> None:
        """Reply to ``connection`` alone (:func:`~.replies.reply_to`), counted."""
        outcome = reply_to(connection, topic, encode_reply(body, request.payload_format))
        stats = self.stats
        if outcome is ReplyOutcome.SENT:
            stats.replies_sent += 1
        elif outcome is ReplyOutcome.NOT_SUBSCRIBED:
            stats.replies_unsubscribed += 1
        elif outcome is ReplyOutcome.RECEIVE_DENIED:
            stats.replies_denied += 1


def _certificate_gone() -> FleetProvisioningRejected:
    return ErrorCode.INVALID_TOKEN.error(
        "The certificate of this certificate ownership token no longer exists."
    )


def fleet_provisioning_service(
    context: HandlerContext,
    config: EmulatorConfig,
    *,
    loop: LoopScheduler,
    random_bytes: Callable[[int], bytes],
) -> FleetProvisioningService:
    """The service as ``config`` sets it up (what :class:`~fleet_sim.emulator.app.Emulator`
    registers on its broker); ``random_bytes`` makes tokens and hook request ids."""
    hooks = HookRunner(
        config.pre_provisioning_hooks,
        loop=loop,
        new_request_id=lambda: str(uuid.UUID(bytes=random_bytes(16), version=4)),
        timeout_s=config.pre_provisioning_hook_timeout_s,
    )
    tokens = OwnershipTokens(ttl_s=config.ownership_token_ttl_s, random_bytes=random_bytes)
    return FleetProvisioningService(
        context, tokens=tokens, hooks=hooks, register_thing_tps=config.fleet_register_thing_tps
    )
