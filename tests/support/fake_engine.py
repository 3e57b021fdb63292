"""A scripted, in-memory device engine for engine tests, and helpers to drive the runner.

:class:`FakeEngine` implements the device-engine interface (:mod:`fleet_sim.device.link`)
without sockets: every connect attempt asks a *script* what happens (succeed, or fail with a
given failure name, optionally after waiting for an event), and every call is recorded with
the time of the clock the test passes in. A test can also end a live link from the "server"
side (:meth:`FakeLink.server_drop`) or make disconnects hang (to test hard stops).

:func:`planned_group` / :func:`fake_runner` build a :class:`~fleet_sim.engine.runner.FleetRunner`
over fake devices; :class:`TrackingClock` (a :class:`~fleet_sim.clock.ManualClock` that knows
its next deadline) and :func:`run_until` drive time event by event while the loop runs.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet_sim.clock import Clock, ManualClock
from fleet_sim.device.link import ConnectTimings, DeviceLink, Endpoint, LinkSpec
from fleet_sim.engine.runner import FleetRunner, PlannedGroup
from fleet_sim.engine.setup import PreparedIdentity
from fleet_sim.errors import ConnectionFailed, ConnectionLost, FleetSimError, OperationRejected
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.mqtt.packets import Publish
from fleet_sim.scenario.load import parse_scenario
from fleet_sim.scenario.model import DeviceGroup, Scenario

__all__ = [
    "DEFAULT_TIMINGS",
    "OVERSHOOT_S",
    "ConnectCall",
    "Fail",
    "FakeDevice",
    "FakeEngine",
    "FakeLink",
    "Outcome",
    "Script",
    "Succeed",
    "TrackingClock",
    "always",
    "fail_times",
    "fake_runner",
    "planned_group",
    "run_until",
    "scenario",
    "settle",
]

#: What a fake successful connect reports (TCP, TLS, CONNACK add up to the total).
DEFAULT_TIMINGS = ConnectTimings(total_s=0.003, tcp_s=0.001, tls_s=0.001, mqtt_s=0.001)


@dataclass(frozen=True, slots=True)
class Succeed:
    """The attempt reaches CONNACK (after ``hold`` is set, when given)."""

    timings: ConnectTimings = DEFAULT_TIMINGS
    hold: asyncio.Event | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """The attempt fails with ``ConnectionFailed(failure=...)`` (after ``hold``, if given)."""

    failure: str = "tcp_refused"
    phase: str = "tcp"
    hold: asyncio.Event | None = None


Outcome = Succeed | Fail

#: ``(client_id, attempt number from 0) -> outcome`` of that device's connect attempt.
Script = Callable[[str, int], Outcome]


def fail_times(n: int, failure: str = "tcp_refused", *, phase: str = "tcp") -> Script:
    """Every device fails its first ``n`` attempts with ``failure``, then succeeds."""

    def script(client_id: str, attempt: int) -> Outcome:
        return Fail(failure, phase) if attempt < n else Succeed()

    return script


def always(outcome: Outcome) -> Script:
    """Every attempt of every device ends with ``outcome``."""
    return lambda client_id, attempt: outcome


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """One connect attempt as the engine saw it."""

    client_id: str
    attempt: int
    at: float


class FakeLink:
    """One scripted connection (implements :class:`~fleet_sim.device.link.DeviceLink`)."""

    def __init__(self, device: FakeDevice, on_message: Callable[[Publish], None] | None) -> None:
        self.device = device
        self.on_message = on_message
        self._closed: asyncio.Future[FleetSimError | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.connected = False
        self.publishes: list[tuple[str, bytes, int]] = []
        self.subscriptions: list[tuple[str, int]] = []
        self.disconnected = False
        self.aborted = False

    @property
    def closed(self) -> asyncio.Future[FleetSimError | None]:
        """Resolves when the link ends: None for our own disconnect, else the error."""
        return self._closed

    async def connect(self, *, timeout_s: float) -> ConnectTimings:
        """Record the attempt and play the script's outcome for it."""
        device, engine = self.device, self.device.engine
        attempt = device.attempts
        device.attempts += 1
        engine.calls.append(ConnectCall(device.spec.client_id, attempt, engine.now()))
        outcome = engine.script(device.spec.client_id, attempt)
        engine.in_flight += 1
        engine.max_in_flight = max(engine.max_in_flight, engine.in_flight)
        try:
            if outcome.hold is not None:
                await outcome.hold.wait()
            else:
                await asyncio.sleep(0)
        finally:
            engine.in_flight -= 1
        if isinstance(outcome, Fail):
            self._closed.set_result(None)
            raise ConnectionFailed(
                f"scripted failure {outcome.failure}", phase=outcome.phase, failure=outcome.failure
            )
        self.connected = True
        device.live = self
        return outcome.timings

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool = False, timeout_s: float
    ) -> None:
        """Record the message; a topic in the engine's ``deny_topics`` gets PUBACK 0x87."""
        self._require_open()
        self.publishes.append((topic, payload, qos))
        await asyncio.sleep(0)
        if qos and topic in self.device.engine.deny_topics:
            raise OperationRejected("denied", operation="puback", reason_code=0x87)

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], *, timeout_s: float
    ) -> tuple[int, ...]:
        """Record the filters; every one is granted at its QoS."""
        self._require_open()
        self.subscriptions.extend(filters)
        await asyncio.sleep(0)
        return tuple(qos for _, qos in filters)

    async def disconnect(self) -> None:
        """Disconnect cleanly (hangs first while the engine's ``hang_disconnect`` is set)."""
        engine = self.device.engine
        engine.disconnects.append((self.device.spec.client_id, engine.now()))
        if engine.hang_disconnect:
            await asyncio.Event().wait()  # never set: only cancellation ends this
        self.disconnected = True
        self._finish(None)

    def abort(self) -> None:
        """Drop the connection at once (what the native engine reports as ``aborted``)."""
        self.aborted = True
        self._finish(ConnectionLost("aborted by the simulator", failure="aborted"))

    def server_drop(self, failure: str = "disconnected_by_server:135") -> None:
        """The "server" ends the connection (a test's way to kill a device's link)."""
        self._finish(ConnectionLost(f"server dropped: {failure}", failure=failure))

    def _finish(self, error: FleetSimError | None) -> None:
        self.connected = False
        if not self._closed.done():
            self._closed.set_result(error)

    def _require_open(self) -> None:
        if not self.connected:
            raise ConnectionLost("not connected", failure="not_connected")


class FakeDevice:
    """A device prepared by :class:`FakeEngine` (implements ``PreparedDevice``)."""

    def __init__(self, engine: FakeEngine, spec: LinkSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.attempts = 0
        self.links: list[FakeLink] = []
        self.live: FakeLink | None = None

    def new_link(self, on_message: Callable[[Publish], None] | None) -> DeviceLink:
        """A fresh scripted link."""
        link = FakeLink(self, on_message)
        self.links.append(link)
        return link


@dataclass
class FakeEngine:
    """A scripted engine (implements :class:`~fleet_sim.device.link.Engine`).

    Attributes:
        script: decides each connect attempt's outcome; default every attempt succeeds.
        now: the clock connect calls are stamped with (pass the run's clock's ``now``).
        deny_topics: QoS 1 publishes to these topics get PUBACK 0x87.
        hang_disconnect: disconnects never finish (to test the graceful-stop deadline).
    """

    script: Script = field(default_factory=lambda: always(Succeed()))
    now: Callable[[], float] = time.monotonic
    deny_topics: frozenset[str] = frozenset()
    hang_disconnect: bool = False
    name: str = "fake"
    phases: tuple[str, ...] = ("tcp", "tls", "connack")
    devices: dict[str, FakeDevice] = field(default_factory=dict)
    calls: list[ConnectCall] = field(default_factory=list)
    disconnects: list[tuple[str, float]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def prepare(self, spec: LinkSpec) -> FakeDevice:
        """A fake device for ``spec`` (remembered by client id)."""
        device = FakeDevice(self, spec)
        self.devices[spec.client_id] = device
        return device

    def calls_of(self, client_id: str) -> list[ConnectCall]:
        """The connect attempts of one device, in order."""
        return [call for call in self.calls if call.client_id == client_id]

    def first_calls(self) -> dict[str, float]:
        """When each device first tried to connect (its spawn time), by client id."""
        first: dict[str, float] = {}
        for call in self.calls:
            first.setdefault(call.client_id, call.at)
        return first


# --------------------------------------------------------------------------- building runs


def scenario(text: str) -> Scenario:
    """A scenario from YAML text (validated as ``fleetsim run`` would)."""
    return parse_scenario(text, source="test.yaml")


def planned_group(
    group: DeviceGroup, engine: FakeEngine, *, expected_drops: int = 0
) -> PlannedGroup:
    """A group's devices prepared by ``engine`` (identity files are never read)."""
    devices = []
    for index in group.indices:
        values = group.device_values(index)
        client_id = str(values["client_id"])
        identity = PreparedIdentity(
            group=group.name,
            index=index,
            client_id=client_id,
            thing_name=str(values["thing_name"]),
            certificate_file=Path(f"/nonexistent/{client_id}.pem"),
            certificate_id=f"cert-{client_id}",
        )
        spec = LinkSpec(
            client_id=client_id,
            endpoint=Endpoint("127.0.0.1", 1, server_name="localhost"),
            certificate_file=identity.certificate_file,
            key_file=None,
            ca_file=Path("/nonexistent/ca.pem"),
            mqtt5=group.connect.protocol == "mqtt5",
        )
        devices.append((identity, engine.prepare(spec)))
    return PlannedGroup(group, tuple(devices), engine, expected_drops)


def fake_runner(
    run_scenario: Scenario,
    engine: FakeEngine,
    clock: Clock,
    *,
    seed: int,
    expected_drops: Mapping[str, int] | None = None,
) -> tuple[FleetRunner, MetricsRecorder]:
    """A runner over fake devices for every group of ``run_scenario``, and its recorder."""
    drops = expected_drops or {}
    groups = [
        planned_group(group, engine, expected_drops=drops.get(group.name, 0))
        for group in run_scenario.fleet
    ]
    recorder = MetricsRecorder(start=clock.now(), groups=[g.name for g in run_scenario.fleet])
    return FleetRunner(run_scenario, groups, recorder, clock=clock, seed=seed), recorder


# --------------------------------------------------------------------------- driving time


class TrackingClock(ManualClock):
    """A :class:`ManualClock` that knows when its next sleeper is due (see :func:`run_until`)."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._deadlines: list[float] = []

    async def sleep(self, seconds: float) -> None:
        """As :meth:`ManualClock.sleep`, remembering the deadline."""
        if seconds > 0:
            heapq.heappush(self._deadlines, self.now() + seconds)
        await super().sleep(seconds)

    def next_deadline(self) -> float | None:
        """The earliest deadline still ahead (cancelled sleeps included), or None."""
        while self._deadlines and self._deadlines[0] <= self.now():
            heapq.heappop(self._deadlines)
        return self._deadlines[0] if self._deadlines else None


#: How far past a deadline :func:`run_until` moves (float sums must not stop short of it).
OVERSHOOT_S = 1e-9


async def settle(rounds: int = 50) -> None:
    """Let every ready task run (a few loop iterations; no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def run_until(clock: TrackingClock, until: float) -> None:
    """Advance ``clock`` from deadline to deadline up to ``until``, letting tasks run at each.

    Everything due at a deadline happens at that deadline (plus :data:`OVERSHOOT_S`), so times
    the code under test reads from the clock are exact to a nanosecond.
    """
    await settle()
    while (deadline := clock.next_deadline()) is not None and deadline <= until:
        clock.advance(deadline - clock.now() + OVERSHOOT_S)
        await settle()
    if until > clock.now():
        clock.advance(until - clock.now())
        await settle()
