"""The fleet runner: arrival schedules, one task per device, graceful and hard stops.

Structured concurrency: every device task, spawner and timer lives in one
:class:`asyncio.TaskGroup` and has a name (``fleetsim[<client id>]``). The run stops when its
duration is over, a stop condition holds, or :meth:`FleetRunner.request_stop` is called (the
CLI wires Ctrl-C to it). Stopping is graceful: devices disconnect cleanly; whatever is still
running ``graceful_stop`` seconds later is cancelled (a second Ctrl-C cancels at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet_sim.clock import Clock, sleep_unless
from fleet_sim.device.link import Engine, LinkSpec, PreparedDevice
from fleet_sim.engine.device import GroupState, SimDevice
from fleet_sim.engine.setup import PreparedIdentity, SetupError
from fleet_sim.engine.target import ResolvedTarget
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.scenario.model import DeviceGroup, Scenario
from fleet_sim.scenario.schedule import arrival_offsets
from fleet_sim.scenario.seeding import derive_rng


class _HardStop(Exception):
    """The graceful-stop deadline passed (or a second interrupt came)."""


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    """A group with its prepared devices, ready to start."""

    group: DeviceGroup
    devices: tuple[tuple[PreparedIdentity, PreparedDevice], ...]
    engine: Engine
    expected_drops: int = 0
    """Drops before CONNACK each device expects (JITP/JITR first connects)."""
    obtain_for: Callable[[PreparedIdentity], Callable[[], Awaitable[PreparedDevice]]] | None = None
    """For claim groups: builds the coroutine that obtains a device's identity at run time."""
    provisioning_connect: bool = False
    """The first successful connect ends provisioning (JITP/JITR): time it as ``provision``."""


def _ca_file(target: ResolvedTarget) -> Path:
    if target.ca_file is not None:
        return target.ca_file
    from fleet_sim.engine.target import default_ca_file

    found = default_ca_file()
    if found is None:
        raise SetupError("no CA file to verify the server with: set target.ca_file")
    return found


def prepare_link(
    engine: Engine,
    group: DeviceGroup,
    target: ResolvedTarget,
    identity: PreparedIdentity,
    certificate_file: Path | None = None,
) -> PreparedDevice:
    """Build one device's TLS material for ``engine`` (outside the measured connect window)."""
    spec = LinkSpec(
        client_id=identity.client_id,
        endpoint=target.endpoint,
        certificate_file=certificate_file or identity.certificate_file,
        key_file=None if certificate_file is not None else identity.key_file,
        ca_file=_ca_file(target),
        mqtt5=group.connect.protocol == "mqtt5",
        keep_alive_s=int(group.connect.keep_alive),
        clean_session=group.connect.clean_session,
        alpn=target.alpn,
    )
    return engine.prepare(spec)


def prepare_group(
    group: DeviceGroup,
    identities: Sequence[PreparedIdentity],
    engine: Engine,
    target: ResolvedTarget,
    *,
    expected_drops: int = 0,
) -> PlannedGroup:
    """Prepare every device of a group (TLS contexts built before the run starts)."""
    devices = tuple((i, prepare_link(engine, group, target, i)) for i in identities)
    return PlannedGroup(group, devices, engine, expected_drops)


class FleetRunner:
    """Runs planned groups against a target and records everything."""

    def __init__(
        self,
        scenario: Scenario,
        groups: Sequence[PlannedGroup],
        recorder: MetricsRecorder,
        *,
        clock: Clock,
        seed: int,
    ) -> None:
        self.scenario = scenario
        self.groups = groups
        self.recorder = recorder
        self.clock = clock
        self.seed = seed
        self.stop = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self.states: dict[str, GroupState] = {}
        self.stop_reason = ""
        #: Devices still running when the graceful-stop deadline cut them off.
        self.cut_off = 0
        #: Device tasks currently running.
        self.active_devices = 0

    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop gracefully; a second request stops at once."""
        if self.stop.is_set():
            self._hard_stop.set()
            return
        self.stop_reason = reason
        self.stop.set()

    @property
    def failures(self) -> int:
        """Devices that gave up so far."""
        return sum(state.gave_up for state in self.states.values())

    async def run(self) -> float:
        """Run to the end; returns the elapsed seconds."""
        run = self.scenario.run
        started = self.clock.now()
        body = asyncio.ensure_future(self._body(started))
        stop_wait = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({body, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not body.done():
                # Graceful stop: devices disconnect; give them graceful_stop seconds.
                deadline = asyncio.ensure_future(
                    sleep_unless(self.clock, run.graceful_stop, self._hard_stop)
                )
                await asyncio.wait({body, deadline}, return_when=asyncio.FIRST_COMPLETED)
                deadline.cancel()
                if not body.done():
                    self.cut_off = self.active_devices
                    body.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await body
        finally:
            stop_wait.cancel()
            if not body.done():
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await body
        if not body.cancelled():
            body.result()
        return self.clock.now() - started

    async def _body(self, started: float) -> None:
        run = self.scenario.run
        slots = asyncio.Semaphore(run.max_connects_in_flight)
        for planned in self.groups:
            self.states[planned.group.name] = GroupState(
                group=planned.group,
                recorder=self.recorder,
                clock=self.clock,
                stop=self.stop,
                connect_slots=slots,
                connect_phases=planned.engine.phases,
            )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._timer(run.duration), name="fleetsim.timer")
            tasks.create_task(self._conditions(), name="fleetsim.conditions")
            for planned in self.groups:
                tasks.create_task(
                    self._spawn(tasks, planned, started),
                    name=f"fleetsim.spawn[{planned.group.name}]",
                )

    async def _timer(self, duration: float) -> None:
        if not await sleep_unless(self.clock, duration, self.stop):
            self.stop_reason = "duration"
            self.stop.set()

    async def _conditions(self) -> None:
        conditions = self.scenario.run.stop_when
        while not await sleep_unless(self.clock, 0.2, self.stop):
            if conditions.failures is not None and self.failures >= conditions.failures:
                self.request_stop(f"{self.failures} devices failed")
            elif conditions.all_connected and all(
                s.all_connected.is_set() for s in self.states.values()
            ):
                self.request_stop("all devices connected")

    async def _spawn(self, tasks: asyncio.TaskGroup, planned: PlannedGroup, started: float) -> None:
        group = planned.group
        state = self.states[group.name]
        offsets = arrival_offsets(
            group.arrival, group.count, derive_rng(self.seed, "arrival", group.name)
        )
        for (identity, prepared), offset in zip(planned.devices, offsets, strict=True):
            delay = started + offset - self.clock.now()
            if await sleep_unless(self.clock, delay, self.stop):
                return
            device = SimDevice(
                state=state,
                prepared=prepared,
                values=group.device_values(identity.index),
                rng=derive_rng(self.seed, "device", group.name, identity.index),
                expected_drops=planned.expected_drops,
                obtain=None if planned.obtain_for is None else planned.obtain_for(identity),
                provisioning_connect=planned.provisioning_connect,
            )
            tasks.create_task(self._live(device), name=f"fleetsim[{identity.client_id}]")

    async def _live(self, device: SimDevice) -> None:
        self.active_devices += 1
        try:
            await device.run()
        finally:
            self.active_devices -= 1
