"""One just-in-time provisioning (JITP) attempt: :class:`JitpProvisioner`.

The auto-registration service (:mod:`.auto_registration`) decides *when* an attempt runs; this
module decides what it does, synchronously (rendering and applying a plan take about a
millisecond, fine on the loop):

1. the certificate must still be PENDING_ACTIVATION and its CA ACTIVE with a registration
   config, else the attempt is ``skipped``;
2. RegisterThing's quota (a token bucket, 10 TPS by default): over it, ``throttled``, as AWS
   throttles JITP;
3. the injected error rate: ``injected_error``;
4. the template — ``templateBody``, or the named JITP template's default version; parsed once
   per text — is rendered with the eight ``AWS::IoT::Certificate::*`` parameters of the
   certificate's subject and id (:func:`fleet_sim.provisioning.jitp_parameters`), must provision
   this very certificate by ``CertificateId`` (AWS: "You must use CertificateId in a template
   that's used for JIT provisioning"), and is applied in one transaction
   (:func:`fleet_sim.emulator.provisioning.apply_plan`; the certificate takes the template's
   Status, ACTIVE by default): ``provisioned``. Any error — a malformed template, a declared
   parameter the subject lacks (``AWS::IoT::Certificate::Country`` without a C=), a missing
   thing group or policy — is ``failed``.

Whatever fails leaves the certificate PENDING_ACTIVATION and nothing else created. The
``roleArn`` is not checked (the emulator has no IAM).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from fleet_sim.clock import Clock
from fleet_sim.emulator.broker.rate import TokenBucket
from fleet_sim.emulator.config import AutoRegistrationConfig
from fleet_sim.emulator.provisioning.apply import apply_plan
from fleet_sim.emulator.registry.models import (
    CAStatus,
    CertificateStatus,
    RegistrationConfig,
    TemplateType,
)
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import FleetSimError, InvalidRequest
from fleet_sim.provisioning import (
    CertificateMethod,
    ProvisioningPlan,
    ProvisioningTemplate,
    jitp_parameters,
    parse_template,
    render_template,
)

#: Parsed templates kept, by template text.
_CACHE_SIZE = 64


class Outcome(enum.StrEnum):
    """How one JITP attempt ended."""

    PROVISIONED = "provisioned"
    THROTTLED = "throttled"
    INJECTED_ERROR = "injected_error"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ProvisioningAttempt:
    """One JITP attempt.

    Attributes:
        certificate_id: the device certificate.
        ca_certificate_id: its CA.
        outcome: how it ended.
        detail: why it failed, was throttled or skipped ("" when provisioned).
        at: when it ran, on the emulator's monotonic clock.
    """

    certificate_id: str
    ca_certificate_id: str
    outcome: Outcome
    detail: str
    at: float


class JitpProvisioner:
    """Runs JITP attempts against the registry (see the module docstring).

    Args:
        registry: the emulator's registry.
        clock: for the quota (``now``) and the records' timestamps (``wall``).
        rng: draws the injected errors.
        config: the quota and the error rate.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        clock: Clock,
        rng: random.Random,
        config: AutoRegistrationConfig,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.rng = rng
        self.config = config
        tps = config.register_thing_tps
        self._quota = (
            None
            if tps is None
            else TokenBucket(tps, burst=config.register_thing_burst, now=clock.now())
        )
        self._templates: dict[str, ProvisioningTemplate] = {}

    def attempt(self, certificate_id: str) -> tuple[Outcome, str]:
        """Provision ``certificate_id`` now; returns the outcome and its detail."""
        registry = self.registry
        record = registry.certificate_by_id(certificate_id)
        if record is None or record.status is not CertificateStatus.PENDING_ACTIVATION:
            return Outcome.SKIPPED, "the certificate is no longer PENDING_ACTIVATION"
        ca_id = record.ca_certificate_id
        ca = None if ca_id is None else registry.ca_by_id(ca_id)
        if ca is None or ca.status is not CAStatus.ACTIVE or ca.registration_config is None:
            return Outcome.SKIPPED, "the CA is no longer ACTIVE with a registration config"
        if self._quota is not None and not self._quota.take(self.clock.now()):
            return Outcome.THROTTLED, "ThrottlingException: RegisterThing rate exceeded"
        rate = self.config.jitp_error_rate
        if rate > 0 and self.rng.random() < rate:
            return Outcome.INJECTED_ERROR, "InternalFailureException (injected)"
        try:
            template = self.template(ca.registration_config)
            plan = render_template(template, jitp_parameters(certificate_id, record.subject_fields))
            check_jitp_plan(plan, certificate_id)
            apply_plan(registry, plan, now=self.clock.wall())
        except FleetSimError as error:
            return Outcome.FAILED, str(error)
        return Outcome.PROVISIONED, ""

    def template(self, config: RegistrationConfig) -> ProvisioningTemplate:
        """The parsed template a CA's registration config names.

        Raises:
            TemplateError: the template is invalid.
            ResourceNotFound: the named template does not exist (any more).
            InvalidRequest: it is not a JITP template, or the config names no template.
        """
        if config.template_body is not None:
            body, name = config.template_body, None
        elif config.template_name is not None:
            named = self.registry.templates.describe(config.template_name)
            if named.type is not TemplateType.JITP:
                raise InvalidRequest(f"provisioning template {named.name!r} is not of type JITP")
            body, name = named.body, named.name
        else:
            raise InvalidRequest("the registration config has no templateBody or templateName")
        template = self._templates.get(body)
        if template is None:
            template = parse_template(body, name=name)
            if len(self._templates) >= _CACHE_SIZE:
                self._templates.pop(next(iter(self._templates)))
            self._templates[body] = template
        return template


def check_jitp_plan(plan: ProvisioningPlan, certificate_id: str) -> None:
    """Refuse a JITP plan that does not provision ``certificate_id`` by ``CertificateId``.

    Raises:
        InvalidRequest: no certificate resource, another method, or another certificate.
    """
    certificate = plan.certificate
    if certificate is None or certificate.method is not CertificateMethod.CERTIFICATE_ID:
        raise InvalidRequest(
            "a JITP template needs an AWS::IoT::Certificate resource with a CertificateId"
        )
    assert certificate.certificate_id is not None
    if certificate.certificate_id.lower() != certificate_id:
        raise InvalidRequest(
            'the template\'s CertificateId must be {"Ref": "AWS::IoT::Certificate::Id"}'
        )
