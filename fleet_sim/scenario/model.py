"""The scenario: what ``fleetsim run scenario.yaml`` runs, validated once, immutable.

The top level (``Scenario``) holds the target, the fleet (device groups), run control,
thresholds and report outputs; the parts live in ``model_target``, ``model_fleet`` (with
``model_identity``, ``model_policy``, ``model_arrival``, ``model_behaviour``), ``model_run``
and ``retry``. Every model is frozen and rejects unknown keys.

Scenario-wide checks (see :meth:`Scenario._fits`):

* group names are unique, and so are thing names and client ids across the whole fleet;
* against a real endpoint, methods that need the control plane (registering things, CAs or
  claim certificates fleetsim generates) have a region or control-plane URL, and a
  generated JITP CA on AWS has a provisioning role;
* every threshold's metric can be measured by this scenario (``provision.*`` needs a group
  that provisions, ``publish.*`` a QoS 1 publish behaviour, ``subscribe.*`` a subscription).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, model_validator

from fleet_sim.scenario.model_arrival import (
    Arrival,
    ConstantArrival,
    LinearArrival,
    PoissonArrival,
)
from fleet_sim.scenario.model_base import FrozenModel, Loc, RuleViolation
from fleet_sim.scenario.model_behaviour import (
    Behaviour,
    ChurnBehaviour,
    IdleBehaviour,
    PublishBehaviour,
    SubscribeBehaviour,
)
from fleet_sim.scenario.model_fleet import ConnectSettings, DeviceGroup
from fleet_sim.scenario.model_identity import (
    CertificateFiles,
    CertificateSource,
    ClaimProvisioning,
    CvmProvisioning,
    JitpProvisioning,
    JitrProvisioning,
    PreregisteredProvisioning,
    Provisioning,
)
from fleet_sim.scenario.model_policy import DEFAULT_POLICY, DevicePolicy, InlinePolicy, NamedPolicy
from fleet_sim.scenario.model_run import Reports, RunSettings, StopConditions
from fleet_sim.scenario.model_target import EndpointTarget, LocalTarget, Target
from fleet_sim.scenario.model_types import ThresholdField
from fleet_sim.scenario.retry import Jitter, RetryPolicy

__all__ = [
    "DEFAULT_POLICY",
    "Arrival",
    "Behaviour",
    "CertificateFiles",
    "CertificateSource",
    "ChurnBehaviour",
    "ClaimProvisioning",
    "ConnectSettings",
    "ConstantArrival",
    "CvmProvisioning",
    "DeviceGroup",
    "DevicePolicy",
    "EndpointTarget",
    "IdleBehaviour",
    "InlinePolicy",
    "JitpProvisioning",
    "JitrProvisioning",
    "Jitter",
    "LinearArrival",
    "LocalTarget",
    "NamedPolicy",
    "PoissonArrival",
    "PreregisteredProvisioning",
    "Provisioning",
    "PublishBehaviour",
    "Reports",
    "RetryPolicy",
    "RunSettings",
    "Scenario",
    "StopConditions",
    "SubscribeBehaviour",
    "Target",
]


class Scenario(FrozenModel):
    """A whole scenario file."""

    version: Literal[1] = Field(default=1, description="Scenario format version.")
    name: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Scenario name (used in report file names).",
    )
    description: str = Field(default="", description="Free text for reports.")
    target: Target = Field(
        default=LocalTarget(), description="'local' (the embedded emulator) or an endpoint."
    )
    fleet: tuple[DeviceGroup, ...] = Field(min_length=1, description="The device groups.")
    run: RunSettings = Field(default=RunSettings(), description="Run control.")
    thresholds: tuple[ThresholdField, ...] = Field(
        default=(), description="Pass/fail thresholds; any failure fails the run."
    )
    reports: Reports = Field(default=Reports(), description="Report files to write.")

    @property
    def device_count(self) -> int:
        """Devices in all groups."""
        return sum(group.count for group in self.fleet)

    def group(self, name: str) -> DeviceGroup:
        """The group called ``name``.

        Raises:
            KeyError: there is no such group.
        """
        for group in self.fleet:
            if group.name == name:
                return group
        raise KeyError(name)

    # ------------------------------------------------------------------ checks

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        problems = [*self._group_name_problems()]
        if not problems:
            problems.extend(self._device_name_problems())
        problems.extend(self._control_plane_problems())
        problems.extend(self._threshold_problems())
        if problems:
            raise RuleViolation(problems)
        return self

    def _group_name_problems(self) -> Iterator[tuple[Loc, str]]:
        seen: dict[str, int] = {}
        for i, group in enumerate(self.fleet):
            if group.name in seen:
                message = f"fleet[{seen[group.name]}] is also called {group.name!r}"
                yield (("fleet", i, "name"), message)
            seen.setdefault(group.name, i)

    def _device_name_problems(self) -> Iterator[tuple[Loc, str]]:
        """Thing names and client ids must be unique across groups (within one, ``{index}``
        already makes them so)."""
        if len(self.fleet) < 2:
            return
        things: dict[str, int] = {}
        clients: dict[str, int] = {}
        for i, group in enumerate(self.fleet):
            clashes: dict[str, tuple[str, int]] = {}
            for thing, client in group.names():
                other = things.setdefault(thing, i)
                if other != i and "thing_name" not in clashes:
                    clashes["thing_name"] = (thing, other)
                other = clients.setdefault(client, i)
                if other != i and "client_id" not in clashes:
                    clashes["client_id"] = (client, other)
            if "thing_name" in clashes:
                clashes.pop("client_id", None)  # most likely the same clash, seen twice
            for key, (name, other) in clashes.items():
                yield (
                    ("fleet", i, key),
                    (
                        f"{name!r} is also a {key.replace('_', ' ')} in group "
                        f"{self.fleet[other].name!r}; give the groups distinct patterns or "
                        "first_index ranges"
                    ),
                )

    def _control_plane_problems(self) -> Iterator[tuple[Loc, str]]:
        target = self.target
        if not isinstance(target, EndpointTarget):
            return
        for i, group in enumerate(self.fleet):
            method = group.provisioning
            loc: Loc = ("fleet", i, "provisioning")
            need: str | None = None
            if isinstance(method, PreregisteredProvisioning) and method.identities_dir is None:
                need = "registering things and certificates (or give identities_dir)"
            elif isinstance(method, JitpProvisioning | JitrProvisioning) and (
                method.ca == "generate"
            ):
                need = f"registering the generated CA for {method.type.upper()}"
            elif isinstance(method, JitrProvisioning) and method.activator == "fleetsim":
                need = "activating JITR certificates (or set activator: external)"
            elif isinstance(method, ClaimProvisioning) and method.claim_certificate == "generate":
                need = "creating the claim certificate"
            if need is not None and not target.has_control_plane:
                yield (
                    loc,
                    (
                        f"{need} needs the control plane: set target.region or "
                        "target.control_plane_url"
                    ),
                )
            if (
                isinstance(method, JitpProvisioning)
                and method.ca == "generate"
                and target.is_aws
                and method.role_arn is None
            ):
                yield (
                    (*loc, "role_arn"),
                    (
                        "a generated JITP CA on AWS needs role_arn (an IAM role with "
                        "AWSIoTThingsRegistration)"
                    ),
                )

    def _threshold_problems(self) -> Iterator[tuple[Loc, str]]:
        behaviours = [b for group in self.fleet for b in group.behaviours]
        provisions = any(
            not isinstance(group.provisioning, PreregisteredProvisioning) for group in self.fleet
        )
        publishes = any(isinstance(b, PublishBehaviour) for b in behaviours)
        acked = any(isinstance(b, PublishBehaviour) and b.qos == 1 for b in behaviours)
        subscribes = any(isinstance(b, SubscribeBehaviour) for b in behaviours)
        needs = {
            "provision": (provisions, "group that provisions (jitp, jitr, claim or cvm)"),
            "publish": (acked, "QoS 1 publish behaviour"),
            "publish_failure_ratio": (acked, "QoS 1 publish behaviour"),
            "messages_sent": (publishes, "publish behaviour"),
            "publish_rate": (publishes, "publish behaviour"),
            "subscribe": (subscribes, "subscribe behaviour"),
            "messages_received": (subscribes, "subscribe behaviour"),
            "receive_rate": (subscribes, "subscribe behaviour"),
        }
        for i, threshold in enumerate(self.thresholds):
            measurable, what = needs.get(threshold.metric, (True, ""))
            if not measurable:
                yield (
                    ("thresholds", i),
                    f"{threshold.metric} is never measured: the scenario has no {what}",
                )
