"""Engine tests against a real emulator in the test's event loop.

Each test gets its own :class:`~fleet_sim.emulator.app.Emulator` (broker rate quotas off, so a
quick reconnect is not throttled) and points a scenario at it as an ``endpoint`` target with
the emulator's control plane: setup goes through boto3 exactly as against AWS, and the test
keeps a handle on the broker and the registry to act on the server side mid-run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fleet_sim.clock import LoopClock
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.emulator.broker.lifecycle import DisconnectReason
from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig
from fleet_sim.engine.device import GroupState
from fleet_sim.engine.run import RunHooks, RunOptions, execute
from fleet_sim.engine.runner import FleetRunner
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.metrics.snapshot import RunResult
from fleet_sim.scenario.load import parse_scenario
from fleet_sim.scenario.model import Scenario


@pytest.fixture(autouse=True)
def _dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 signs requests; the emulator accepts any signature, but one is needed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fleetsim-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fleetsim-test")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    config = EmulatorConfig(port=0, data_dir=tmp_path / "emulator", limits=BrokerLimits.unlimited())
    async with Emulator(config) as running:
        yield running


def target_yaml(emulator: Emulator) -> str:
    """The ``target:`` block that points a scenario at ``emulator``."""
    info = emulator.info
    return f"""
target:
  type: endpoint
  host: {info.host}
  port: {info.port}
  sni: {info.endpoint}
  ca_file: {info.ca_file}
  control_plane_url: {info.control_plane_url}
  region: {info.region}
"""


def emulator_scenario(emulator: Emulator, body: str) -> Scenario:
    """A scenario (``body`` without a target) aimed at ``emulator``."""
    return parse_scenario(body + target_yaml(emulator), source="test.yaml")


@dataclass
class Disconnects:
    """Every ``disconnected`` lifecycle event the broker emitted: (client id, reason)."""

    events: list[tuple[str, DisconnectReason]] = field(default_factory=list)

    def reasons(self, client_id: str) -> list[DisconnectReason]:
        return [reason for cid, reason in self.events if cid == client_id]


@pytest.fixture
def disconnects(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Disconnects:
    """Record the broker's ``disconnected`` lifecycle events (they are still published)."""
    seen = Disconnects()
    lifecycle = emulator.broker.lifecycle
    original = lifecycle.disconnected

    def disconnected(conn: BrokerConnection, reason: DisconnectReason) -> None:
        seen.events.append((conn.client_id, reason))
        original(conn, reason)

    monkeypatch.setattr(lifecycle, "disconnected", disconnected)
    return seen


@dataclass
class RunProbe:
    """What a test sees of a run: the runner and recorder, and tasks it started beside it."""

    runner: FleetRunner | None = None
    recorder: MetricsRecorder | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def run_scenario(
    run: Scenario,
    certs_dir: Path,
    *,
    beside: Callable[[FleetRunner], object] | None = None,
    seed: int | None = None,
) -> tuple[RunResult, RunProbe]:
    """``execute`` the scenario; ``beside(runner)`` (a coroutine) runs next to the fleet."""
    probe = RunProbe()

    def started(runner: FleetRunner, recorder: MetricsRecorder) -> None:
        probe.runner, probe.recorder = runner, recorder
        if beside is not None:
            work = beside(runner)
            assert asyncio.iscoroutine(work)
            probe.tasks.append(asyncio.ensure_future(work))

    options = RunOptions(seed=seed, certs_dir=certs_dir, run_dir=certs_dir.parent / "run")
    result = await execute(run, options, clock=LoopClock(), hooks=RunHooks(on_start=started))
    for task in probe.tasks:  # surface the helper's own assertion errors
        await task
    return result, probe


async def group_state(runner: FleetRunner, name: str) -> GroupState:
    """The group's live state (the runner creates it once the run has begun)."""
    await eventually(lambda: name in runner.states, within=5)
    return runner.states[name]


async def eventually(condition: Callable[[], bool], *, within: float, step: float = 0.01) -> None:
    """Poll ``condition`` until it holds (fails the test after ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(step)
