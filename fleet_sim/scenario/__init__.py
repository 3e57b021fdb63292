"""Scenarios: what ``fleetsim run`` runs, loaded from YAML, validated once, immutable.

* :func:`load_scenario` / :func:`parse_scenario` read YAML (with line numbers, ``${ENV}``
  interpolation and merge keys) into a frozen :class:`Scenario`, or raise one
  :class:`~fleet_sim.errors.ScenarioValidationError` listing every problem with its YAML
  path and ``file:line``.
* The model: :class:`Scenario` → ``target`` (:class:`LocalTarget` | :class:`EndpointTarget`),
  ``fleet`` of :class:`DeviceGroup` (identity via :data:`Provisioning`, :data:`DevicePolicy`,
  :data:`Arrival`, :class:`ConnectSettings` with :class:`RetryPolicy`, :data:`Behaviour`\\ s),
  :class:`RunSettings`, thresholds (:class:`Threshold`) and :class:`Reports`.
* Pure helpers the simulator uses: :func:`arrival_offsets` (connect schedule),
  :meth:`RetryPolicy.delays` (AWS's backoff and jitter), :class:`Template` rendering
  (topics, payloads, names), :func:`evaluate_thresholds`, :func:`derive_rng` (per-purpose
  random streams from the run's seed).
* :func:`scenario_json_schema`: the published JSON Schema (``fleetsim schema``).

Nothing here imports asyncio, sockets or ssl, or reads the clock; only :mod:`.load` reads
files and the environment.
"""

from __future__ import annotations

from fleet_sim.errors import ScenarioError, ScenarioValidationError
from fleet_sim.scenario.load import load_scenario, parse_scenario
from fleet_sim.scenario.model import (
    DEFAULT_POLICY,
    Arrival,
    Behaviour,
    CertificateFiles,
    CertificateSource,
    ChurnBehaviour,
    ClaimProvisioning,
    ConnectSettings,
    ConstantArrival,
    CvmProvisioning,
    DeviceGroup,
    DevicePolicy,
    EndpointTarget,
    IdleBehaviour,
    InlinePolicy,
    JitpProvisioning,
    JitrProvisioning,
    Jitter,
    LinearArrival,
    LocalTarget,
    NamedPolicy,
    PoissonArrival,
    PreregisteredProvisioning,
    Provisioning,
    PublishBehaviour,
    Reports,
    RetryPolicy,
    RunSettings,
    Scenario,
    StopConditions,
    SubscribeBehaviour,
    Target,
)
from fleet_sim.scenario.schedule import arrival_offsets, expected_arrivals
from fleet_sim.scenario.schema import scenario_json_schema
from fleet_sim.scenario.seeding import derive_rng
from fleet_sim.scenario.templates import DEVICE_VALUES, Template, compile_template
from fleet_sim.scenario.thresholds import (
    METRICS,
    MetricKind,
    Operator,
    Threshold,
    ThresholdResult,
    all_passed,
    evaluate_thresholds,
    parse_threshold,
)
from fleet_sim.scenario.units import parse_duration, parse_percent, parse_rate

__all__ = [
    "DEFAULT_POLICY",
    "DEVICE_VALUES",
    "METRICS",
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
    "MetricKind",
    "NamedPolicy",
    "Operator",
    "PoissonArrival",
    "PreregisteredProvisioning",
    "Provisioning",
    "PublishBehaviour",
    "Reports",
    "RetryPolicy",
    "RunSettings",
    "Scenario",
    "ScenarioError",
    "ScenarioValidationError",
    "StopConditions",
    "SubscribeBehaviour",
    "Target",
    "Template",
    "Threshold",
    "ThresholdResult",
    "all_passed",
    "arrival_offsets",
    "compile_template",
    "derive_rng",
    "evaluate_thresholds",
    "expected_arrivals",
    "load_scenario",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "parse_scenario",
    "parse_threshold",
    "scenario_json_schema",
]
