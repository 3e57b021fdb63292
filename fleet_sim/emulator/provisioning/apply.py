"""Applying a rendered provisioning plan to the registry: :func:`apply_plan`.

Everything happens in ONE registry transaction, so a failure anywhere leaves nothing behind
(no half-created thing, certificate or policy; listeners hear of nothing). The steps, in AWS's
JITP order: the certificate, the thing (attached to the certificate), the policies (each
attached to the certificate), then the certificate's status.

* **Certificate.** ``CertificateId``: it must exist. ``CertificatePem``: registered (with its
  ``CACertificatePem`` when given; the CA must be registered and ACTIVE), or taken as it is if
  already registered. ``CertificateSigningRequest``: signed by ``issuer`` and recorded. A new
  certificate gets the template's Status directly. An existing one still
  ``PENDING_ACTIVATION`` (JITP, fleet provisioning) always gets the template's Status; any
  other existing one follows ``OverrideSettings.Status``: ``REPLACE`` (the default) sets it,
  ``DO_NOTHING`` keeps it, ``FAIL`` raises :class:`ResourceConflicts` if it differs.
* **Thing.** Created with its type, attributes and groups (all of which must exist) if it
  does not exist. An existing thing is reconciled property by property, only for properties
  the template gives: ``DO_NOTHING`` (the default) keeps it; ``REPLACE`` sets it (attributes
  replaced as a whole; groups left and joined to match); ``MERGE`` adds attributes (an empty
  value removes one, as UpdateThing) or joins groups; ``FAIL`` raises
  :class:`ResourceConflicts` when the existing value differs (re-provisioning the same
  device, e.g. a retried request, is not a conflict) [inference: AWS documents FAIL only as
  "the request fails with a ResourceConflictsException"]. ``BillingGroup``: the emulator
  has no billing groups, so naming one fails (:class:`ResourceNotFound`), as CreateThing's.
* **Policies.** ``PolicyName``: it must exist. ``PolicyDocument``: the policy named by the
  document's hash is created, or reused if it exists. Each is attached to the certificate.

Errors are the registry's :class:`EmulatorError` subclasses, their messages prefixed with the
resource's location (``Resources.thing: thing group 'x' does not exist``); callers map them
to their protocol (RegisterThing: ResourceRegistrationFailure …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509

from fleet_sim.emulator.registry.models import Certificate, CertificateStatus, Thing
from fleet_sim.emulator.registry.parsing import parse_certificate
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import (
    CertificateError,
    EmulatorError,
    InvalidRequest,
    ResourceConflicts,
    ResourceNotFound,
)
from fleet_sim.provisioning.plan import (
    CertificateMethod,
    CertificatePlan,
    OverrideAction,
    PolicyPlan,
    ProvisioningPlan,
    ThingPlan,
)
from fleet_sim.tls.csr import load_pem_csr
from fleet_sim.tls.inspect import certificate_to_pem

Issuer = Callable[[x509.CertificateSigningRequest], x509.Certificate]
"""Signs a device's CSR (the emulator's device CA; see
:func:`fleet_sim.emulator.control_plane.issuing.csr_issuer`); may raise CertificateError."""


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProvisionedResources:
    """What provisioning one device created or used.

    Attributes:
        thing_name: the thing, or None when the template has none.
        thing_arn: its ARN, or None.
        thing_created: whether the thing was created (not found existing).
        certificate_id: the certificate, or None.
        certificate_arn: its ARN, or None.
        certificate_pem: its PEM, or None.
        certificate_status: its status afterwards (``ACTIVE`` …), or None.
        policy_names: the policies attached, in template order.
        policy_arns: their ARNs.
        device_configuration: the rendered ``DeviceConfiguration``.
        resource_arns: logical resource name → ARN (RegisterThing's ``resourceArns``).
    """

    thing_name: str | None = None
    thing_arn: str | None = None
    thing_created: bool = False
    certificate_id: str | None = None
    certificate_arn: str | None = None
    certificate_pem: str | None = None
    certificate_status: str | None = None
    policy_names: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    device_configuration: Mapping[str, str] = field(default_factory=_empty)
    resource_arns: Mapping[str, str] = field(default_factory=_empty)


def apply_plan(
    registry: Registry,
    plan: ProvisioningPlan,
    *,
    now: float,
    issuer: Issuer | None = None,
) -> ProvisionedResources:
    """Create and bind the plan's resources in one transaction (all of them or none).

    Args:
        registry: the emulator's registry.
        plan: one device's rendered template.
        now: epoch seconds, for the records' timestamps.
        issuer: signs the certificate of a ``CertificateSigningRequest`` plan; None where
            CSRs are not allowed (JITP, fleet provisioning).

    Raises:
        InvalidRequest: a CSR plan without an issuer, or an unusable CSR.
        ResourceConflicts: an ``OverrideSettings`` FAIL met a differing existing resource.
        EmulatorError: whatever the registry refuses (ResourceNotFound for a missing thing
            group, thing type, policy or certificate; MalformedPolicy; CertificateState;
            CertificateValidation; LimitExceeded …), located by resource.
    """
    arns: dict[str, str] = {}
    with registry.transaction():
        cert: Certificate | None = None
        new_status: str | None = None
        if plan.certificate is not None:
            with _located(plan.certificate.logical_name):
                cert, new_status = _certificate(registry, plan.certificate, now, issuer)
            arns[plan.certificate.logical_name] = cert.arn
        thing: Thing | None = None
        created = False
        if plan.thing is not None:
            with _located(plan.thing.logical_name):
                thing, created = _thing(registry, plan.thing)
                if cert is not None:
                    registry.attachments.attach_thing_principal(thing.name, cert.arn)
            arns[plan.thing.logical_name] = thing.arn
        policy_arns: list[str] = []
        for policy in plan.policies:
            with _located(policy.logical_name):
                arn = _policy(registry, policy, now)
                if cert is not None:
                    registry.attachments.attach_policy(policy.name, cert.arn)
            arns[policy.logical_name] = arn
            policy_arns.append(arn)
        if cert is not None and new_status is not None:
            assert plan.certificate is not None
            with _located(plan.certificate.logical_name):
                cert = registry.certificates.update_status(cert.certificate_id, new_status, now=now)
    return ProvisionedResources(
        thing_name=thing.name if thing is not None else None,
        thing_arn=thing.arn if thing is not None else None,
        thing_created=created,
        certificate_id=cert.certificate_id if cert is not None else None,
        certificate_arn=cert.arn if cert is not None else None,
        certificate_pem=cert.pem if cert is not None else None,
        certificate_status=cert.status.value if cert is not None else None,
        policy_names=tuple(policy.name for policy in plan.policies),
        policy_arns=tuple(policy_arns),
        device_configuration=plan.device_configuration,
        resource_arns=MappingProxyType(arns),
    )


@contextmanager
def _located(logical_name: str) -> Iterator[None]:
    """Prefix registry errors raised inside with the resource's location."""
    try:
        yield
    except EmulatorError as error:
        here = f"Resources.{logical_name}"
        if not error.message.startswith((f"{here}:", f"{here}.")):
            error.message = f"{here}: {error.message}"
            error.args = (error.message,)
        raise


def _conflict(plan_name: str, what: str, existing: object, wanted: object) -> ResourceConflicts:
    return ResourceConflicts(
        f"Resources.{plan_name}: {what} is {existing!r}, the template says {wanted!r} "
        "and OverrideSettings say FAIL"
    )


# ---------------------------------------------------------------------- certificate


def _certificate(
    registry: Registry, plan: CertificatePlan, now: float, issuer: Issuer | None
) -> tuple[Certificate, str | None]:
    """The certificate record and the status still to set (None: leave it)."""
    certificates = registry.certificates
    method = plan.method
    if method is CertificateMethod.CERTIFICATE_ID:
        assert plan.certificate_id is not None
        existing = certificates.describe(plan.certificate_id)
        return existing, _status_change(existing, plan)
    if method is CertificateMethod.CERTIFICATE_PEM:
        assert plan.certificate_pem is not None
        found = certificates.get(parse_certificate(plan.certificate_pem).certificate_id)
        if found is not None:
            return found, _status_change(found, plan)
        registered = certificates.register(
            plan.certificate_pem,
            now=now,
            ca_certificate_pem=plan.ca_certificate_pem,
            status=plan.status,
        )
        return registered, None
    assert plan.csr is not None
    where = f"Resources.{plan.logical_name}.Properties.CertificateSigningRequest"
    if issuer is None:
        raise InvalidRequest(f"{where}: certificates cannot be issued from a CSR here")
    try:
        issued = issuer(load_pem_csr(plan.csr.encode("utf-8")))
    except CertificateError as error:
        raise InvalidRequest(f"{where}: {error.message}") from None
    pem = certificate_to_pem(issued)
    return certificates.create(pem, now=now, status=plan.status), None


def _status_change(cert: Certificate, plan: CertificatePlan) -> str | None:
    if cert.status.value == plan.status:
        return None
    if cert.status is CertificateStatus.PENDING_ACTIVATION:
        return plan.status
    action = plan.overrides.status
    if action is OverrideAction.FAIL:
        raise _conflict(
            plan.logical_name, "the certificate's Status", cert.status.value, plan.status
        )
    return plan.status if action is OverrideAction.REPLACE else None


# ---------------------------------------------------------------------- thing


def _thing(registry: Registry, plan: ThingPlan) -> tuple[Thing, bool]:
    """The thing record and whether it was created."""
    if plan.billing_group is not None:
        raise ResourceNotFound(
            f"billing group {plan.billing_group!r} does not exist (the emulator has none)"
        )
    existing = registry.things.get(plan.name)
    if existing is None:
        thing = registry.things.create(
            plan.name, thing_type_name=plan.type_name, attributes=plan.attributes
        )
        for group in plan.groups or ():
            registry.thing_groups.add_thing(group, plan.name)
        return thing, True
    thing = _reconcile_thing(registry, existing, plan)
    _reconcile_groups(registry, plan)
    return thing, False


def _reconcile_thing(registry: Registry, existing: Thing, plan: ThingPlan) -> Thing:
    overrides = plan.overrides
    attributes: Mapping[str, str] | None = None
    merge = False
    if plan.attributes is not None:
        action = overrides.attribute_payload
        current = dict(existing.attributes)
        if action is OverrideAction.MERGE:
            if any(current.get(key) != value for key, value in plan.attributes.items()):
                attributes, merge = plan.attributes, True
        elif current != dict(plan.attributes):
            if action is OverrideAction.FAIL:
                raise _conflict(
                    plan.logical_name,
                    "the thing's AttributePayload",
                    current,
                    dict(plan.attributes),
                )
            if action is OverrideAction.REPLACE:
                attributes = plan.attributes
    type_name: str | None = None
    if plan.type_name is not None and plan.type_name != existing.thing_type_name:
        action = overrides.thing_type_name
        if action is OverrideAction.FAIL:
            raise _conflict(
                plan.logical_name,
                "the thing's ThingTypeName",
                existing.thing_type_name,
                plan.type_name,
            )
        if action is OverrideAction.REPLACE:
            type_name = plan.type_name
    if attributes is None and type_name is None:
        return existing
    return registry.things.update(
        plan.name, thing_type_name=type_name, attributes=attributes, merge=merge
    )


def _reconcile_groups(registry: Registry, plan: ThingPlan) -> None:
    if plan.groups is None or plan.overrides.thing_groups is OverrideAction.DO_NOTHING:
        return
    action = plan.overrides.thing_groups
    groups = registry.thing_groups
    current = {group.name for group in groups.groups_of_thing(plan.name)}
    wanted = dict.fromkeys(plan.groups)
    if action is OverrideAction.FAIL:
        if current != set(wanted):
            raise _conflict(
                plan.logical_name, "the thing's ThingGroups", sorted(current), list(wanted)
            )
        return
    if action is OverrideAction.REPLACE:
        for group in sorted(current - set(wanted)):
            groups.remove_thing(group, plan.name)
    for group in wanted:
        if group not in current:
            groups.add_thing(group, plan.name)


# ---------------------------------------------------------------------- policies


def _policy(registry: Registry, plan: PolicyPlan, now: float) -> str:
    """The policy's ARN (created first when given by a document not yet known)."""
    policies = registry.policies
    if plan.document is None:
        return policies.describe(plan.name).arn
    existing = policies.get(plan.name)
    if existing is not None:
        return existing.arn
    return policies.create(plan.name, plan.document, now=now).arn
