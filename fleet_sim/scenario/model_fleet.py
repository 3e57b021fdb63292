"""A device group: how many devices, who they are, how they connect and what they do.

A group's checks that need several fields together (see :meth:`DeviceGroup._fits`):

* with more than one device, the thing name and client id must vary with ``{index}``;
* names must be valid AWS IoT thing names and client ids (checked on the first and last
  device);
* a ``key_type`` other than the default has no effect where AWS creates the key (claim
  without CSR, CVM), so asking for one is an error;
* at most one ``churn`` behaviour, at most 50 subscriptions per device;
* an inline policy (the default one included) must allow the group's own connect, publishes
  and subscriptions (:func:`~fleet_sim.scenario.model_policy.policy_problems`); not checked
  for claim and cvm, where the provisioning template or the vending machine decides.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from fleet_sim.scenario.model_arrival import Arrival, ConstantArrival
from fleet_sim.scenario.model_base import FrozenModel, Loc, RuleViolation
from fleet_sim.scenario.model_behaviour import (
    MAX_SUBSCRIPTIONS,
    Behaviour,
    ChurnBehaviour,
    IdleBehaviour,
    PublishBehaviour,
    SubscribeBehaviour,
)
from fleet_sim.scenario.model_identity import (
    ClaimProvisioning,
    CvmProvisioning,
    PreregisteredProvisioning,
    Provisioning,
)
from fleet_sim.scenario.model_policy import DEFAULT_POLICY, DevicePolicy, InlinePolicy
from fleet_sim.scenario.model_policy import policy_problems as _policy_problems
from fleet_sim.scenario.model_types import ClientIdTemplate, ThingNameTemplate, render_sample
from fleet_sim.scenario.retry import RetryPolicy
from fleet_sim.scenario.templates import CLIENT_ID_FIELDS, THING_NAME_FIELDS, compile_template
from fleet_sim.scenario.units import Duration, PositiveDuration
from fleet_sim.tls.keys import KeyType

__all__ = ["ConnectSettings", "DeviceGroup"]

#: AWS IoT's thing name rule and limits on thing names and client ids.
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]+")
_MAX_NAME_BYTES = 128
_MAX_KEEP_ALIVE = 65535


def _whole_seconds(seconds: float) -> float:
    if seconds != int(seconds) or seconds > _MAX_KEEP_ALIVE:
        raise ValueError(f"must be whole seconds up to {_MAX_KEEP_ALIVE}s")
    return seconds


class ConnectSettings(FrozenModel):
    """How a device connects and retries."""

    timeout: PositiveDuration = Field(default=10.0, description="Per connect attempt.")
    keep_alive: Annotated[Duration, AfterValidator(_whole_seconds)] = Field(
        default=30.0, description="MQTT keep-alive, whole seconds (AWS IoT allows 30–1200)."
    )
    protocol: Literal["mqtt5", "mqtt311"] = Field(default="mqtt5", description="MQTT version.")
    clean_session: bool = Field(
        default=True, description="Start a clean session (MQTT 5: clean start)."
    )
    retry: RetryPolicy = Field(default=RetryPolicy(), description="Backoff between attempts.")


class DeviceGroup(FrozenModel):
    """Devices that share identity method, policy, connect settings and behaviours."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Group name (letters, digits, _ and -), unique in the scenario.",
    )
    count: int = Field(ge=1, le=1_000_000, description="Number of devices.")
    first_index: int = Field(default=0, ge=0, description="The first device's {index}.")
    thing_name: ThingNameTemplate = Field(
        default=compile_template(
            "{group}-{index:05d}", allowed=THING_NAME_FIELDS, generators=False
        ),
        description="Thing name template over {index} and {group}.",
    )
    client_id: ClientIdTemplate = Field(
        default=compile_template("{thing_name}", allowed=CLIENT_ID_FIELDS, generators=False),
        description="MQTT client id template over {index}, {group} and {thing_name}.",
    )
    key_type: KeyType = Field(default=KeyType.EC_P256, description="Device key algorithm.")
    provisioning: Provisioning = Field(
        default=PreregisteredProvisioning(), description="How devices get their identity."
    )
    policy: DevicePolicy = Field(
        default=DEFAULT_POLICY,
        description="Existing policy name or inline document; default: own thing's topics.",
    )
    engine: Literal["native", "awscrt"] = Field(
        default="native", description="MQTT client: fleetsim's own or the AWS CRT."
    )
    arrival: Arrival = Field(
        default=ConstantArrival(rate=10.0), description="Connect schedule; default 10/s."
    )
    connect: ConnectSettings = Field(default=ConnectSettings(), description="Connect settings.")
    behaviours: tuple[Behaviour, ...] = Field(
        default=(IdleBehaviour(),), description="What each device does once connected."
    )

    # ------------------------------------------------------------------ per-device values

    @property
    def indices(self) -> range:
        """The group's ``{index}`` values."""
        return range(self.first_index, self.first_index + self.count)

    def device_values(self, index: int) -> dict[str, object]:
        """The per-device template values of device ``index`` (no ``seq``/``timestamp_ms``)."""
        # names have no generated fields, so the generator is never drawn from
        return self._names(index, random.Random(0))

    def _names(self, index: int, unused_rng: random.Random) -> dict[str, object]:
        values: dict[str, object] = {"index": index, "group": self.name}
        values["thing_name"] = self.thing_name.render(values, unused_rng)
        values["client_id"] = self.client_id.render(values, unused_rng)
        return values

    def names(self) -> Iterator[tuple[str, str]]:
        """``(thing_name, client_id)`` of every device, in index order."""
        rng = random.Random(0)  # never drawn from: names have no generated fields
        for index in self.indices:
            values = self._names(index, rng)
            yield str(values["thing_name"]), str(values["client_id"])

    # ------------------------------------------------------------------ checks

    @model_validator(mode="after")
    def _fits(self) -> DeviceGroup:
        problems = [
            *self._name_problems(),
            *self._key_type_problems(),
            *self._behaviour_problems(),
        ]
        # with claim and cvm, the provisioning template or the vending machine picks the
        # policy the device ends up with, so the group's policy cannot be judged here
        checkable = not isinstance(self.provisioning, ClaimProvisioning | CvmProvisioning)
        if not problems and checkable and isinstance(self.policy, InlinePolicy):
            problems.extend(self._policy_problems(self.policy))
        if problems:
            raise RuleViolation(problems)
        return self

    def _name_problems(self) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        for loc, template in (("thing_name", self.thing_name), ("client_id", self.client_id)):
            if self.count > 1 and not template.fields & {"index", "thing_name"}:
                same = render_sample(template, self.device_values(self.first_index))
                problems.append(
                    ((loc,), f"every device of the group would be {same!r}; include {{index}}")
                )
        if problems:
            return problems
        for index in {self.first_index, self.first_index + self.count - 1}:
            values = self.device_values(index)
            thing, client = str(values["thing_name"]), str(values["client_id"])
            if not _THING_NAME.fullmatch(thing) or len(thing.encode()) > _MAX_NAME_BYTES:
                problems.append(
                    (
                        ("thing_name",),
                        f"{thing!r} is not a valid thing name (1–128 of a-z A-Z 0-9 : _ -)",
                    )
                )
            if not client or client.startswith("$") or len(client.encode()) > _MAX_NAME_BYTES:
                problems.append(
                    (
                        ("client_id",),
                        (f"{client!r} is not a valid client id (1–128 bytes, not starting with $)"),
                    )
                )
            if problems:
                break
        return problems

    def _key_type_problems(self) -> list[tuple[Loc, str]]:
        if self.key_type is KeyType.EC_P256:  # the default: nothing was asked for
            return []
        method = self.provisioning
        if isinstance(method, ClaimProvisioning) and not method.use_csr:
            return [
                (
                    ("key_type",),
                    (
                        "has no effect with claim provisioning without a CSR (use_csr: false): "
                        "CreateKeysAndCertificate makes the key; drop key_type or set use_csr: true"
                    ),
                )
            ]
        if isinstance(method, CvmProvisioning):
            return [(("key_type",), "has no effect with cvm: the vending machine makes the key")]
        return []

    def _behaviour_problems(self) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        churns = [i for i, b in enumerate(self.behaviours) if isinstance(b, ChurnBehaviour)]
        problems.extend(
            (("behaviours", i), "a device can churn on one schedule only") for i in churns[1:]
        )
        subscriptions = sum(
            len(b.filters) for b in self.behaviours if isinstance(b, SubscribeBehaviour)
        )
        if subscriptions > MAX_SUBSCRIPTIONS:
            problems.append(
                (
                    ("behaviours",),
                    (
                        f"{subscriptions} subscriptions per device; AWS IoT allows "
                        f"{MAX_SUBSCRIPTIONS} per connection"
                    ),
                )
            )
        return problems

    def _policy_problems(self, policy: InlinePolicy) -> list[tuple[Loc, str]]:
        values = self.device_values(self.first_index)
        publish: list[tuple[Loc, str]] = []
        subscribe: list[tuple[Loc, str]] = []
        for i, behaviour in enumerate(self.behaviours):
            if isinstance(behaviour, PublishBehaviour):
                sample = {**values, "seq": 0, "timestamp_ms": 0}
                publish.append((("behaviours", i, "topic"), render_sample(behaviour.topic, sample)))
            elif isinstance(behaviour, SubscribeBehaviour):
                for j, topic_filter in enumerate(behaviour.filters):
                    subscribe.append(
                        (("behaviours", i, "filters", j), render_sample(topic_filter, values))
                    )
        loc: Loc = ("policy",) if policy != DEFAULT_POLICY else ("client_id",)
        return _policy_problems(
            policy,
            client_id=str(values["client_id"]),
            thing_name=str(values["thing_name"]),
            publish=publish,
            subscribe=subscribe,
            client_id_loc=loc,
        )
