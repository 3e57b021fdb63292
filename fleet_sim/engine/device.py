"""One simulated device's life: connect (with retry, backoff and jitter) → behave → disconnect.

A :class:`SimDevice` runs as one task with its behaviours as child tasks. Every phase it goes
through is recorded in the run's :class:`~fleet_sim.metrics.recorder.MetricsRecorder`:
connect phases (TCP, TLS, CONNACK and the whole connect), SUBACK and PUBACK round trips,
every failure by its stable name, and drops the provisioning method expects (the first
JITP/JITR connect) apart from real failures.

Lifecycle, designed for the provisioning flows that plug in later:
obtain identity → connect (a first connect may be dropped on purpose) → retry → behave →
disconnect. A connection lost while behaving is a failure; the device reconnects (retry policy
again) while the run lasts. Churn disconnects on purpose and does not count as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fleet_sim.clock import Clock, sleep_unless
from fleet_sim.device.link import DeviceLink, PreparedDevice
from fleet_sim.errors import ConnectionFailed, FleetSimError
from fleet_sim.metrics.names import Counter, Gauge, Phase
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.mqtt.packets import Publish
from fleet_sim.mqtt.topics import matches
from fleet_sim.scenario.model import (
    ChurnBehaviour,
    DeviceGroup,
    IdleBehaviour,
    PublishBehaviour,
    SubscribeBehaviour,
)

#: How long an operation (SUBACK, PUBACK) may take before it counts as a timeout.
OPERATION_TIMEOUT_S = 10.0

#: Publish → delivery back to the same device (when a device subscribes to its own traffic).
DELIVERY_PHASE = "delivery"

#: Counter: connect (JITP/JITR) or provisioning (claim) attempts until a device had its identity.
PROVISION_ATTEMPTS = Counter.PROVISION_ATTEMPTS

#: AWS IoT's quota of one CONNECT per second per client id, as a gap between two connects.
SAME_CLIENT_ID_GAP_S = 1.2  # from the start of the claim attempt: its CONNECT comes a little later

#: Own messages remembered per device for the delivery phase (oldest forgotten first).
MAX_TRACKED_ECHOES = 256


@dataclass(slots=True)
class GroupState:
    """What one group's devices share while the run lasts."""

    group: DeviceGroup
    recorder: MetricsRecorder
    clock: Clock
    stop: asyncio.Event
    connect_slots: asyncio.Semaphore
    connected: int = 0
    connecting: int = 0
    gave_up: int = 0
    first_connects: int = 0
    connect_phases: tuple[str, ...] = ("tcp", "tls", "connack")
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)

    def _gauges(self) -> None:
        now = self.clock.now()
        self.recorder.gauge(self.group.name, Gauge.CONNECTED, self.connected, now=now)
        self.recorder.gauge(self.group.name, Gauge.CONNECTING, self.connecting, now=now)

    def connecting_delta(self, delta: int) -> None:
        """A connect attempt started (+1) or ended (-1)."""
        self.connecting += delta
        self._gauges()

    def check_settled(self) -> None:
        """Set ``all_connected`` once every device connected at least once or gave up."""
        if self.first_connects + self.gave_up >= self.group.count:
            self.all_connected.set()

    def connected_delta(self, delta: int) -> None:
        """A connection opened (+1) or closed (-1)."""
        self.connected += delta
        self._gauges()


class _Lost(Exception):
    """The connection ended while behaving (the error is in ``args[0]``)."""


class _Churn(Exception):
    """A churn behaviour ended the connection on purpose."""


class _Stop(Exception):
    """The run is stopping: end the behaviours."""


class SimDevice:
    """One device: identity, connection attempts and behaviours."""

    def __init__(
        self,
        *,
        state: GroupState,
        prepared: PreparedDevice,
        values: dict[str, object],
        rng: random.Random,
        expected_drops: int = 0,
        obtain: Callable[[], Awaitable[PreparedDevice]] | None = None,
        provisioning_connect: bool = False,
    ) -> None:
        self.state = state
        self.prepared = prepared
        self.values = values
        self.rng = rng
        self.expected_drops = expected_drops
        self.obtain = obtain
        self.provisioning_connect = provisioning_connect
        self._attempts = 0
        self._first_attempt_at: float | None = None
        self._churn_downtime: float | None = None  # set while a churn ends the connection
        self._seq = 0
        self._drops_seen = 0
        # Own messages the device will receive back (it subscribed to a matching filter):
        # (topic, payload) → when it was published, for the end-to-end "delivery" phase.
        self._filters: list[str] = []
        self._echo: dict[tuple[str, bytes], float] = {}

    @property
    def client_id(self) -> str:
        """The device's MQTT client id."""
        return str(self.values["client_id"])

    # ------------------------------------------------------------------ the whole life

    async def run(self) -> None:
        """Live until the run stops (or the device gives up connecting)."""
        state = self.state
        recorder, group, clock = state.recorder, state.group.name, state.clock
        recorder.count(group, Counter.DEVICES, now=clock.now())
        if self.obtain is not None and not await self._obtain_identity():
            return
        first = True
        while not state.stop.is_set():
            link = await self._connect_with_retry()
            if link is None:
                if not state.stop.is_set():
                    state.gave_up += 1
                    recorder.count(group, Counter.DEVICES_FAILED, now=clock.now())
                    state.check_settled()
                return
            if first:
                state.first_connects += 1
                now = clock.now()
                recorder.count(group, Counter.DEVICES_CONNECTED, now=now)
                if self.provisioning_connect and self._first_attempt_at is not None:
                    # JITP/JITR: the first attempt starts provisioning; the first CONNACK ends it.
                    recorder.phase(group, Phase.PROVISION, now - self._first_attempt_at, now=now)
                    recorder.count(group, PROVISION_ATTEMPTS, self._attempts, now=now)
                state.check_settled()
            else:
                recorder.count(group, Counter.RECONNECTS, now=clock.now())
            first = False
            state.connected_delta(+1)
            try:
                outcome = await self._behave(link)
            finally:
                state.connected_delta(-1)
            if outcome == "stop":
                with contextlib.suppress(FleetSimError):
                    await link.disconnect()
                return
            if outcome == "churn":
                downtime, self._churn_downtime = self._churn_downtime or 0.0, None
                if await sleep_unless(clock, downtime, state.stop):
                    return

    async def _connect_with_retry(self) -> DeviceLink | None:
        state = self.state
        group, recorder, clock = state.group.name, state.recorder, state.clock
        retry = state.group.connect.retry
        timeout = state.group.connect.timeout
        previous: float | None = None
        for attempt in range(retry.max_attempts):
            if state.stop.is_set():
                return None
            link = self.prepared.new_link(self._on_message)
            self._attempts += 1
            if self._first_attempt_at is None:
                self._first_attempt_at = clock.now()
            async with state.connect_slots:
                state.connecting_delta(+1)
                try:
                    timings = await link.connect(timeout_s=timeout)
                except ConnectionFailed as error:
                    expected = (
                        error.failure == "closed_before_connack"
                        and self._drops_seen < self.expected_drops
                    )
                    self._drops_seen += expected
                    recorder.failure(
                        group, Phase.CONNECT, error.failure, now=clock.now(), expected=expected
                    )
                    timings = None
                finally:
                    state.connecting_delta(-1)
            if timings is not None:
                now = clock.now()
                recorder.phase(group, Phase.CONNECT, timings.total_s, now=now)
                if timings.tcp_s is not None:
                    recorder.phase(group, Phase.TCP, timings.tcp_s, now=now)
                if timings.tls_s is not None:
                    recorder.phase(group, Phase.TLS, timings.tls_s, now=now)
                if timings.mqtt_s is not None:
                    recorder.phase(group, Phase.CONNACK, timings.mqtt_s, now=now)
                return link
            if attempt + 1 >= retry.max_attempts:
                return None
            previous = retry.delay(attempt, previous, self.rng)
            await sleep_unless(clock, previous, state.stop)
        return None

    async def _obtain_identity(self) -> bool:
        """Get the device's identity at run time (fleet provisioning by claim), with retry."""
        assert self.obtain is not None
        state = self.state
        group, recorder, clock = state.group.name, state.recorder, state.clock
        retry = state.group.connect.retry
        previous: float | None = None
        started = clock.now()
        for attempt in range(retry.max_attempts):
            if state.stop.is_set():
                return False
            attempt_started = clock.now()
            try:
                async with state.connect_slots:
                    self.prepared = await self.obtain()
            except FleetSimError as error:
                recorder.failure(group, Phase.PROVISION, error.failure, now=clock.now())
            else:
                now = clock.now()
                recorder.phase(group, Phase.PROVISION, now - started, now=now)
                recorder.count(group, PROVISION_ATTEMPTS, attempt + 1, now=now)
                # AWS allows 1 CONNECT/s per client id: a device reconnecting with its new
                # identity sooner than that after its claim connect is throttled. Wait it out.
                await sleep_unless(clock, attempt_started + SAME_CLIENT_ID_GAP_S - now, state.stop)
                return True
            if attempt + 1 < retry.max_attempts:
                previous = retry.delay(attempt, previous, self.rng)
                await sleep_unless(clock, previous, state.stop)
        if not state.stop.is_set():
            state.gave_up += 1
            recorder.count(group, Counter.DEVICES_FAILED, now=clock.now())
        return False

    # ------------------------------------------------------------------ behaving

    async def _behave(self, link: DeviceLink) -> str:
        """Run the behaviours until the run stops ("stop"), churn ("churn") or a loss ("lost")."""
        state = self.state
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(state.stop.wait())
        outcome = "stop"
        try:
            async with asyncio.TaskGroup() as tasks:
                for number, behaviour in enumerate(state.group.behaviours):
                    tasks.create_task(
                        self._behaviour(link, behaviour),
                        name=f"fleetsim[{self.client_id}].behaviour{number}",
                    )
                tasks.create_task(
                    self._watch(link, stop_wait), name=f"fleetsim[{self.client_id}].watch"
                )
        except* _Stop:
            outcome = "stop"
        except* _Churn:
            outcome = "churn"
        except* _Lost:
            outcome = "lost"  # checked last: a loss wins over a churn in the same instant
        finally:
            stop_wait.cancel()
        return outcome

    async def _watch(self, link: DeviceLink, stop_wait: asyncio.Future[Any]) -> None:
        """End the behaviours when the run stops or the connection is lost."""
        closed: asyncio.Future[Any] = link.closed
        done, _ = await asyncio.wait([stop_wait, closed], return_when=asyncio.FIRST_COMPLETED)
        if closed in done and not stop_wait.done():
            if self._churn_downtime is not None:
                raise _Churn  # ended on purpose by a churn behaviour: not a failure
            error = closed.result()
            if error is not None:
                self.state.recorder.failure(
                    self.state.group.name, "session", error.failure, now=self.state.clock.now()
                )
            raise _Lost(error)
        raise _Stop  # the run is stopping: the task group cancels the sibling behaviours

    async def _behaviour(
        self,
        link: DeviceLink,
        behaviour: PublishBehaviour | SubscribeBehaviour | ChurnBehaviour | IdleBehaviour,
    ) -> None:
        if isinstance(behaviour, PublishBehaviour):
            await self._publish_loop(link, behaviour)
        elif isinstance(behaviour, SubscribeBehaviour):
            await self._subscribe(link, behaviour)
        elif isinstance(behaviour, ChurnBehaviour):
            await self.state.clock.sleep(behaviour.every)
            self._churn_downtime = behaviour.downtime  # run() waits it out after the link ends
            if behaviour.mode == "drop":
                link.abort()
            else:
                await link.disconnect()
            raise _Churn
        # idle: nothing to do; the watcher ends the connection's life

    async def _subscribe(self, link: DeviceLink, behaviour: SubscribeBehaviour) -> None:
        state, group = self.state, self.state.group.name
        filters = [(f.render(self.values, self.rng), int(behaviour.qos)) for f in behaviour.filters]
        self._filters.extend(f for f, _ in filters)
        started = state.clock.now()
        try:
            codes = await link.subscribe(filters, timeout_s=OPERATION_TIMEOUT_S)
        except FleetSimError as error:
            state.recorder.failure(group, Phase.SUBSCRIBE, error.failure, now=state.clock.now())
            return
        now = state.clock.now()
        state.recorder.phase(group, Phase.SUBSCRIBE, now - started, now=now)
        for code in codes:
            if code >= 0x80:
                state.recorder.failure(group, Phase.SUBSCRIBE, f"suback_failure:{code}", now=now)

    async def _publish_loop(self, link: DeviceLink, behaviour: PublishBehaviour) -> None:
        state, group = self.state, self.state.group.name
        recorder, clock = state.recorder, state.clock
        period = behaviour.period
        # Spread devices over the period so a fleet does not publish in lockstep.
        await clock.sleep(self.rng.uniform(0, period))
        sent = 0
        values = dict(self.values)
        while behaviour.count is None or sent < behaviour.count:
            self._seq += 1
            values["seq"] = self._seq
            values["timestamp_ms"] = int(clock.wall() * 1000)
            topic = behaviour.topic.render(values, self.rng)
            payload = behaviour.payload.render(values, self.rng).encode()
            started = clock.now()
            if self._filters and any(matches(f, topic) for f in self._filters):
                if len(self._echo) >= MAX_TRACKED_ECHOES:
                    self._echo.pop(next(iter(self._echo)))
                self._echo[(topic, payload)] = started
            try:
                await link.publish(
                    topic, payload, qos=int(behaviour.qos), timeout_s=OPERATION_TIMEOUT_S
                )
            except FleetSimError as error:
                if link.closed.done():
                    return  # the watcher reports the loss
                recorder.failure(group, Phase.PUBLISH, error.failure, now=clock.now())
            else:
                now = clock.now()
                recorder.count(group, Counter.MESSAGES_SENT, now=now)
                if behaviour.qos:
                    recorder.phase(group, Phase.PUBLISH, now - started, now=now)
            sent += 1
            await clock.sleep(max(0.0, period - (clock.now() - started)))

    def _on_message(self, message: Publish) -> None:
        state = self.state
        now = state.clock.now()
        state.recorder.count(state.group.name, Counter.MESSAGES_RECEIVED, now=now)
        if self._echo:
            sent = self._echo.pop((message.topic, message.payload), None)
            if sent is not None:
                state.recorder.phase(state.group.name, DELIVERY_PHASE, now - sent, now=now)
