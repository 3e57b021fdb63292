"""A whole run: target → setup (timed apart) → fleet → result with thresholds checked.

:func:`execute` is what ``fleetsim run`` calls. Setup (CA registration, identities, things,
policies) is timed and reported separately from the run, so registering ten thousand devices
does not blur the connect figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fleet_sim.clock import Clock, LoopClock
from fleet_sim.device.link import Engine, PreparedDevice
from fleet_sim.device.native_engine import NativeEngine
from fleet_sim.engine.claim import provision_by_claim
from fleet_sim.engine.provisioning import setup_claim, setup_jitp, setup_jitr
from fleet_sim.engine.runner import FleetRunner, PlannedGroup, prepare_group, prepare_link
from fleet_sim.engine.setup import (
    PreparedIdentity,
    SetupError,
    identities_from_dir,
    load_or_create_fleet_ca,
    now_utc,
    register_ca,
    setup_preregistered,
)
from fleet_sim.engine.target import ResolvedTarget, open_target
from fleet_sim.errors import FleetSimError
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.metrics.snapshot import RunMeta, RunResult, iso_utc
from fleet_sim.metrics.values import build_result
from fleet_sim.scenario.model import (
    ClaimProvisioning,
    DeviceGroup,
    JitpProvisioning,
    JitrProvisioning,
    PreregisteredProvisioning,
    Scenario,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run a scenario (command-line overrides and environment)."""

    seed: int | None = None
    """Overrides the scenario's seed (None: the scenario's, else random)."""
    duration_s: float | None = None
    """Overrides the scenario's duration."""
    certs_dir: Path = Path("certs")
    """Where the fleet CA and the identity cache live (reused across runs)."""
    run_dir: Path | None = None
    """Scratch directory (identity files, the local emulator's data); default a temp dir."""


@dataclass(slots=True)
class RunHooks:
    """Callbacks for the edges (progress display, Ctrl-C)."""

    on_start: Callable[[FleetRunner, MetricsRecorder], None] | None = None
    notes: list[str] = field(default_factory=list)
    stop_requested: bool = False
    """Set by the edge when the user interrupted before the fleet started (during setup)."""


def _engine(name: str, cache: dict[str, Engine]) -> Engine:
    engine = cache.get(name)
    if engine is not None:
        return engine
    if name == "awscrt":
        from fleet_sim.device.awscrt_engine import AwscrtEngine

        made: Engine = AwscrtEngine()
    else:
        made = NativeEngine()
    cache[name] = made
    return made


async def _preregistered(
    scenario: Scenario,
    group: DeviceGroup,
    provisioning: PreregisteredProvisioning,
    target: ResolvedTarget,
    options: RunOptions,
    run_dir: Path,
    notes: list[str],
) -> list[PreparedIdentity]:
    if provisioning.identities_dir is not None:
        return list(identities_from_dir(group, Path(provisioning.identities_dir)))
    now = now_utc()
    ca = await asyncio.to_thread(load_or_create_fleet_ca, options.certs_dir / "fleet-ca", now=now)
    await asyncio.to_thread(register_ca, target.iot, ca, now=now)
    result = await asyncio.to_thread(
        setup_preregistered,
        target.iot,
        scenario_name=scenario.name,
        group=group,
        ca=ca,
        identity_dir=run_dir / "identities",
        cache_dir=options.certs_dir / "fleet-cache",
        now=now,
    )
    notes.append(
        f"setup {group.name}: {len(result.identities)} devices registered in "
        f"{result.seconds:.2f} s ({result.per_device_ms:.1f} ms/device, "
        f"{result.api_calls} API calls)"
    )
    return list(result.identities)


async def _plan_group(
    scenario: Scenario,
    group: DeviceGroup,
    target: ResolvedTarget,
    engine: Engine,
    options: RunOptions,
    run_dir: Path,
    notes: list[str],
) -> PlannedGroup:
    """Set the group's provisioning method up on the target and prepare its devices."""
    provisioning = group.provisioning
    identity_dir = run_dir / "identities"
    started = time.monotonic()
    if isinstance(provisioning, PreregisteredProvisioning):
        identities = await _preregistered(
            scenario, group, provisioning, target, options, run_dir, notes
        )
        return prepare_group(group, identities, engine, target)
    now = now_utc()
    if isinstance(provisioning, JitpProvisioning | JitrProvisioning):
        method = provisioning

        def auto_registration() -> list[PreparedIdentity]:
            if isinstance(method, JitpProvisioning):
                return setup_jitp(
                    target,
                    scenario_name=scenario.name,
                    group=group,
                    provisioning=method,
                    certs_dir=options.certs_dir,
                    identity_dir=identity_dir,
                    now=now,
                )
            return setup_jitr(
                target,
                scenario_name=scenario.name,
                group=group,
                provisioning=method,
                certs_dir=options.certs_dir,
                identity_dir=identity_dir,
                now=now,
            )

        identities = await asyncio.to_thread(auto_registration)
        notes.append(
            f"setup {group.name}: {provisioning.type.upper()} CA registered, "
            f"{len(identities)} device certificates in {time.monotonic() - started:.2f} s"
        )
        # Every drop before the first CONNACK is the method at work, not a failure.
        drops = group.connect.retry.max_attempts
        planned = prepare_group(group, identities, engine, target, expected_drops=drops)
        return replace(planned, provisioning_connect=True)
    if isinstance(provisioning, ClaimProvisioning):
        claim_method = provisioning
        claim = await asyncio.to_thread(
            lambda: setup_claim(
                target,
                scenario_name=scenario.name,
                group=group,
                provisioning=claim_method,
                certs_dir=options.certs_dir,
                identity_dir=identity_dir,
            )
        )
        notes.append(
            f"setup {group.name}: claim certificate and template {claim.template_name!r} "
            f"ready in {time.monotonic() - started:.2f} s"
        )
        values = {index: group.device_values(index) for index in group.indices}
        claimants = [
            PreparedIdentity(
                group=group.name,
                index=index,
                client_id=str(v["client_id"]),
                thing_name=str(v["thing_name"]),
                certificate_file=claim.claim_file,
                certificate_id="",
            )
            for index, v in values.items()
        ]
        planned = prepare_group(group, claimants, engine, target)
        claim_devices = {identity.index: device for identity, device in planned.devices}

        def obtain_for(identity: PreparedIdentity) -> Callable[[], Awaitable[PreparedDevice]]:
            async def obtain() -> PreparedDevice:
                device_values = values[identity.index]
                parameters = {
                    key: template.render(device_values, random.Random(identity.index))
                    for key, template in provisioning.parameters.items()
                }
                claimed = await provision_by_claim(
                    claim_devices[identity.index],
                    template_name=claim.template_name,
                    parameters=parameters,
                    use_csr=provisioning.use_csr,
                    key_type=group.key_type,
                    common_name=identity.thing_name,
                    out_file=identity_dir / f"{identity.client_id}.pem",
                    timeout_s=group.connect.timeout,
                )
                return prepare_link(engine, group, target, identity, claimed.identity_file)

            return obtain

        return replace(planned, obtain_for=obtain_for)
    raise SetupError(
        f"fleet group {group.name!r}: provisioning '{provisioning.type}' is not available "
        "yet in this version of fleetsim"
    )


async def execute(
    scenario: Scenario,
    options: RunOptions | None = None,
    *,
    clock: Clock | None = None,
    hooks: RunHooks | None = None,
) -> RunResult:
    """Run ``scenario`` and return its result (thresholds evaluated).

    Raises:
        FleetSimError: setup failed (the target refused a step, bad identity files …).
    """
    options = options or RunOptions()
    hooks = hooks or RunHooks()
    clock = clock or LoopClock()
    seed = options.seed if options.seed is not None else scenario.run.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if options.duration_s is not None:
        scenario = scenario.model_copy(
            update={"run": scenario.run.model_copy(update={"duration": options.duration_s})}
        )
    with tempfile.TemporaryDirectory(prefix="fleetsim-run-") as scratch:
        run_dir = options.run_dir or Path(scratch)
        notes = hooks.notes
        async with open_target(scenario.target, run_dir=run_dir) as target:
            engines: dict[str, Engine] = {}
            planned: list[PlannedGroup] = []
            for group in scenario.fleet:
                engine = _engine(group.engine, engines)
                planned.append(
                    await _plan_group(scenario, group, target, engine, options, run_dir, notes)
                )
                if engine.name == "awscrt":
                    notes.append(
                        f"group {group.name}: the awscrt engine times the connect as one "
                        "phase (no separate TCP/TLS/CONNACK figures)"
                    )
            recorder = MetricsRecorder(start=clock.now(), groups=[g.name for g in scenario.fleet])
            runner = FleetRunner(scenario, planned, recorder, clock=clock, seed=seed)
            if hooks.on_start is not None:
                hooks.on_start(runner, recorder)
            if hooks.stop_requested:
                runner.request_stop("interrupted")
            started_wall = clock.wall()
            elapsed = await runner.run()
            ended_wall = clock.wall()
            snapshot = recorder.snapshot(clock.now())
            if runner.stop_reason and runner.stop_reason != "duration":
                notes.append(f"stopped early: {runner.stop_reason}")
            if runner.cut_off:
                notes.append(
                    f"graceful stop deadline passed: {runner.cut_off} devices were cancelled "
                    "before they disconnected"
                )
    meta = RunMeta(
        scenario=scenario.name,
        description=scenario.description,
        seed=seed,
        started_at=iso_utc(started_wall),
        ended_at=iso_utc(ended_wall),
        duration_s=elapsed,
        target=target.description,
        engines={g.name: g.engine for g in scenario.fleet},
        notes=tuple(notes),
    )
    return build_result(snapshot, meta, scenario.thresholds)


__all__ = ["FleetSimError", "RunHooks", "RunOptions", "execute"]
