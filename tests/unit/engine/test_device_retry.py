"""A device's connect retries: attempts, backoff per jitter mode, expected drops, reconnects.

Driven by a scripted fake engine and a manual clock moved from deadline to deadline, so every
time read here is exact (to the nanosecond :data:`OVERSHOOT_S`).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fleet_sim.engine.device import GroupState, SimDevice
from fleet_sim.metrics.names import Counter
from fleet_sim.metrics.recorder import MetricsRecorder
from fleet_sim.metrics.snapshot import FailureCount, GroupResult
from fleet_sim.metrics.values import metric_values
from fleet_sim.scenario.model import DeviceGroup
from fleet_sim.scenario.seeding import derive_rng
from tests.support.fake_engine import (
    OVERSHOOT_S,
    Fail,
    FakeEngine,
    Outcome,
    Script,
    Succeed,
    TrackingClock,
    always,
    fail_times,
    fake_runner,
    planned_group,
    run_until,
    scenario,
    settle,
)

SEED = 20240501
EXACT = 1e-6  # clock reads are exact up to OVERSHOOT_S per event
assert OVERSHOOT_S < EXACT


def _scenario_text(
    *,
    count: int = 1,
    retry: str = "{max_attempts: 4, base: 100ms, cap: 1s, jitter: none}",
    behaviours: str = "[{type: idle}]",
    arrival: str = "1000/s",
    duration: str = "60s",
) -> str:
    return f"""
name: retry-unit
fleet:
  - name: sensors
    count: {count}
    arrival: {arrival}
    connect:
      retry: {retry}
    behaviours: {behaviours}
run:
  duration: {duration}
  seed: {SEED}
  graceful_stop: 1s
"""


class _Solo:
    """One :class:`SimDevice` over a fake engine, on a tracking manual clock."""

    def __init__(self, group: DeviceGroup, engine: FakeEngine, *, expected_drops: int = 0):
        self.clock = TrackingClock()
        engine.now = self.clock.now
        self.engine = engine
        self.group = group
        self.recorder = MetricsRecorder(start=0.0, groups=[group.name])
        self.state = GroupState(
            group=group,
            recorder=self.recorder,
            clock=self.clock,
            stop=asyncio.Event(),
            connect_slots=asyncio.Semaphore(10),
        )
        identity, prepared = planned_group(group, engine).devices[0]
        self.client_id = identity.client_id
        self.device = SimDevice(
            state=self.state,
            prepared=prepared,
            values=group.device_values(identity.index),
            rng=derive_rng(SEED, "device", group.name, identity.index),
            expected_drops=expected_drops,
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.device.run())
        await settle()

    async def stop(self) -> None:
        self.state.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    def result(self) -> GroupResult:
        return self.recorder.snapshot(self.clock.now()).group(self.group.name)

    def call_times(self) -> list[float]:
        return [call.at for call in self.engine.calls_of(self.client_id)]


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def _solo(text: str, script: Script | None = None, *, expected_drops: int = 0) -> _Solo:
    engine = FakeEngine() if script is None else FakeEngine(script=script)
    return _Solo(scenario(text).fleet[0], engine, expected_drops=expected_drops)


# --------------------------------------------------------------------------- giving up


async def test_a_device_gives_up_after_max_attempts_and_counts_as_failed():
    solo = _solo(_scenario_text(), always(Fail("tcp_refused")))
    await solo.start()
    await run_until(solo.clock, 10.0)

    assert solo.task is not None
    assert solo.task.done()
    assert len(solo.call_times()) == 4  # max_attempts, the first one included
    result = solo.result()
    assert result.counters[Counter.DEVICES] == 1
    assert result.counters[Counter.DEVICES_FAILED] == 1
    assert Counter.DEVICES_CONNECTED not in result.counters
    assert result.failures == (FailureCount("connect", "tcp_refused", 4),)
    assert "connect" not in result.phases
    assert solo.state.gave_up == 1
    assert (solo.state.connecting, solo.state.connected) == (0, 0)
    assert metric_values(solo.recorder.snapshot(solo.clock.now()))["failure_ratio"] == 1.0


async def test_a_single_attempt_policy_never_retries():
    solo = _solo(
        _scenario_text(retry="{max_attempts: 1, base: 100ms, cap: 1s}"),
        always(Fail("connect_timeout", "mqtt")),
    )
    await solo.start()
    await run_until(solo.clock, 10.0)
    assert len(solo.call_times()) == 1
    assert solo.result().counters[Counter.DEVICES_FAILED] == 1


async def test_failing_then_succeeding_records_the_failures_and_one_connect():
    solo = _solo(_scenario_text(), fail_times(2, "tls_handshake_failed", phase="tls"))
    await solo.start()
    await run_until(solo.clock, 5.0)

    # no jitter: 100 ms, then 200 ms after the first and second failures
    assert _gaps(solo.call_times()) == pytest.approx([0.1, 0.2], abs=EXACT)
    assert solo.state.connected == 1
    result = solo.result()
    assert result.failures == (FailureCount("connect", "tls_handshake_failed", 2),)
    assert result.counters[Counter.DEVICES_CONNECTED] == 1
    assert Counter.DEVICES_FAILED not in result.counters
    assert Counter.RECONNECTS not in result.counters
    for phase in ("connect", "tcp", "tls", "connack"):
        assert result.phases[phase].stats.count == 1, phase
    assert result.phases["connect"].stats.max == pytest.approx(0.003, rel=0.01)

    await solo.stop()
    link = solo.engine.devices[solo.client_id].links[-1]
    assert link.disconnected  # a graceful stop disconnects cleanly
    assert solo.state.connected == 0
    assert Counter.DEVICES_FAILED not in solo.result().counters


async def test_stopping_during_a_backoff_ends_the_device_without_counting_it_failed():
    solo = _solo(
        _scenario_text(retry="{max_attempts: 5, base: 30s, cap: 60s, jitter: none}"),
        always(Fail("tcp_refused")),
    )
    await solo.start()
    assert len(solo.call_times()) == 1  # now waiting 30 s of clock time
    await solo.stop()  # no clock time passes
    assert solo.task is not None
    assert solo.task.done()
    assert len(solo.call_times()) == 1
    assert Counter.DEVICES_FAILED not in solo.result().counters
    assert solo.state.gave_up == 0


# --------------------------------------------------------------------------- backoff math


@pytest.mark.parametrize("jitter", ["none", "full", "equal", "decorrelated"])
async def test_backoff_between_attempts_is_the_policy_delay_on_the_device_rng_stream(jitter):
    """Through the runner: device ``i`` draws its jitter from derive_rng(seed, device, group, i)."""
    text = _scenario_text(
        count=3,
        retry=f"{{max_attempts: 6, base: 100ms, cap: 700ms, jitter: {jitter}}}",
        duration="30s",
    )
    run_scenario = scenario(text)
    group = run_scenario.fleet[0]
    clock = TrackingClock()
    engine = FakeEngine(script=always(Fail("tcp_refused")), now=clock.now)
    runner, recorder = fake_runner(run_scenario, engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 20.0)

    observed: dict[int, list[float]] = {}
    for index in group.indices:
        client_id = str(group.device_values(index)["client_id"])
        times = [call.at for call in engine.calls_of(client_id)]
        assert len(times) == 6
        observed[index] = _gaps(times)
        expected = list(group.connect.retry.delays(derive_rng(SEED, "device", "sensors", index)))
        assert observed[index] == pytest.approx(expected, abs=EXACT), (jitter, index)
        assert all(0 <= gap <= 0.7 + EXACT for gap in observed[index])
    if jitter == "none":
        assert observed[0] == pytest.approx([0.1, 0.2, 0.4, 0.7, 0.7], abs=EXACT)
    else:  # each device has its own stream
        assert observed[0] != pytest.approx(observed[1], abs=1e-3)
    if jitter == "decorrelated":
        assert all(gap >= 0.1 - EXACT for gaps in observed.values() for gap in gaps)

    assert runner.failures == 3
    await run_until(clock, 31.0)
    await asyncio.wait_for(task, 5)
    assert recorder.snapshot(clock.now()).group("sensors").counters[Counter.DEVICES_FAILED] == 3


async def test_a_reconnect_after_a_lost_connection_starts_the_backoff_over():
    def script(client_id: str, attempt: int) -> Outcome:
        # connect, (lost) fail, fail, connect
        return Fail("tcp_refused") if attempt in (1, 2) else Succeed()

    solo = _solo(_scenario_text(retry="{max_attempts: 3, base: 1s, cap: 10s, jitter: none}"))
    solo.engine.script = script
    await solo.start()
    await run_until(solo.clock, 5.0)
    link = solo.engine.devices[solo.client_id].live
    assert link is not None
    link.server_drop("disconnected_by_server:135")
    await run_until(solo.clock, 20.0)

    times = solo.call_times()
    assert len(times) == 4
    # lost at 5 s: the reconnect tries at once, then backs off 1 s and 2 s (attempts restart)
    assert times == pytest.approx([0.0, 5.0, 6.0, 8.0], abs=EXACT)
    result = solo.result()
    assert result.counters[Counter.RECONNECTS] == 1
    assert result.counters[Counter.DEVICES_CONNECTED] == 1
    assert Counter.DEVICES_FAILED not in result.counters
    assert set(result.failures) == {
        FailureCount("session", "disconnected_by_server:135", 1),
        FailureCount("connect", "tcp_refused", 2),
    }
    assert solo.state.connected == 1
    await solo.stop()


async def test_a_device_whose_reconnects_run_out_gives_up():
    def script(client_id: str, attempt: int) -> Outcome:
        return Succeed() if attempt == 0 else Fail("connack_refused:135", "mqtt")

    solo = _solo(_scenario_text(retry="{max_attempts: 2, base: 1s, cap: 1s, jitter: none}"))
    solo.engine.script = script
    await solo.start()
    link = solo.engine.devices[solo.client_id].live
    assert link is not None
    link.server_drop()
    await run_until(solo.clock, 10.0)
    assert solo.task is not None
    assert solo.task.done()
    result = solo.result()
    assert result.counters[Counter.DEVICES_CONNECTED] == 1
    assert result.counters[Counter.DEVICES_FAILED] == 1
    assert Counter.RECONNECTS not in result.counters
    assert FailureCount("connect", "connack_refused:135", 2) in result.failures


# --------------------------------------------------------------------------- expected drops


async def test_expected_drops_are_counted_apart_from_real_failures():
    solo = _solo(
        _scenario_text(retry="{max_attempts: 5, base: 100ms, cap: 1s, jitter: none}"),
        fail_times(2, "closed_before_connack", phase="mqtt"),
        expected_drops=1,
    )
    await solo.start()
    await run_until(solo.clock, 5.0)

    result = solo.result()
    assert result.expected_drops == (FailureCount("connect", "closed_before_connack", 1),)
    assert result.failures == (FailureCount("connect", "closed_before_connack", 1),)
    values = metric_values(solo.recorder.snapshot(solo.clock.now()))
    assert (values["expected_drops"], values["failures"]) == (1, 1)
    assert solo.state.connected == 1
    await solo.stop()


async def test_only_closed_before_connack_counts_as_an_expected_drop():
    solo = _solo(_scenario_text(), fail_times(1, "tcp_refused"), expected_drops=1)
    await solo.start()
    await run_until(solo.clock, 5.0)
    result = solo.result()
    assert result.expected_drops == ()
    assert result.failures == (FailureCount("connect", "tcp_refused", 1),)
    await solo.stop()


async def test_a_groups_expected_drops_reach_every_device_through_the_runner():
    run_scenario = scenario(_scenario_text(count=3, duration="5s"))
    clock = TrackingClock()
    engine = FakeEngine(script=fail_times(1, "closed_before_connack", phase="mqtt"), now=clock.now)
    runner, recorder = fake_runner(
        run_scenario, engine, clock, seed=SEED, expected_drops={"sensors": 1}
    )
    task = asyncio.create_task(runner.run())
    await run_until(clock, 6.0)
    await asyncio.wait_for(task, 5)
    group = recorder.snapshot(clock.now()).group("sensors")
    assert group.expected_drops == (FailureCount("connect", "closed_before_connack", 3),)
    assert group.failures == ()
    assert group.counters[Counter.DEVICES_CONNECTED] == 3


# --------------------------------------------------------------------------- churn


async def test_churn_reconnects_without_failures():
    solo = _solo(_scenario_text(behaviours="[{type: churn, every: 10s}]"))
    await solo.start()
    await run_until(solo.clock, 35.0)
    links = solo.engine.devices[solo.client_id].links
    assert len(links) == 4  # connect at 0, churn at 10, 20, 30
    assert all(link.disconnected for link in links[:-1])  # churn disconnects cleanly
    assert solo.call_times() == pytest.approx([0.0, 10.0, 20.0, 30.0], abs=EXACT)
    result = solo.result()
    assert result.counters[Counter.RECONNECTS] == 3
    assert result.counters[Counter.DEVICES_CONNECTED] == 1
    assert result.failures == ()
    await solo.stop()


async def test_churn_waits_its_downtime_before_reconnecting():
    solo = _solo(_scenario_text(behaviours="[{type: churn, every: 10s, downtime: 5s}]"))
    await solo.start()
    await run_until(solo.clock, 12.0)
    assert len(solo.call_times()) == 1, "reconnected during the downtime"
    await run_until(solo.clock, 16.0)
    assert solo.call_times() == pytest.approx([0.0, 15.0], abs=EXACT)
    await solo.stop()


async def test_churn_by_dropping_without_downtime_is_not_a_failure():
    solo = _solo(_scenario_text(behaviours="[{type: churn, every: 10s, mode: drop}]"))
    await solo.start()
    await run_until(solo.clock, 25.0)
    links = solo.engine.devices[solo.client_id].links
    assert [link.aborted for link in links] == [True, True, False]
    result = solo.result()
    assert result.counters[Counter.RECONNECTS] == 2
    assert result.failures == ()
    await solo.stop()


async def test_churn_by_dropping_with_downtime_is_not_a_failure():
    solo = _solo(_scenario_text(behaviours="[{type: churn, every: 10s, downtime: 1s, mode: drop}]"))
    await solo.start()
    await run_until(solo.clock, 25.0)
    result = solo.result()
    assert result.counters[Counter.RECONNECTS] == 2
    assert result.failures == ()
    await solo.stop()


# --------------------------------------------------------------------------- behaviours


async def test_publishes_follow_the_clock_and_refusals_are_counted_by_name():
    behaviours = (
        "[{type: publish, topic: 'dt/{group}/{thing_name}/ok', qos: 1, interval: 1s},"
        " {type: publish, topic: 'dt/{group}/{thing_name}/denied', qos: 1, interval: 1s}]"
    )
    solo = _solo(_scenario_text(behaviours=behaviours))
    solo.engine.deny_topics = frozenset({"dt/sensors/sensors-00000/denied"})
    await solo.start()
    await run_until(solo.clock, 10.0)
    link = solo.engine.devices[solo.client_id].links[0]
    sent = [topic for topic, _, _ in link.publishes]
    # spread over the first period, then one per interval: 10 or 11 each in 10 s
    assert 10 <= sent.count("dt/sensors/sensors-00000/ok") <= 11
    denied = sent.count("dt/sensors/sensors-00000/denied")
    assert 10 <= denied <= 11
    result = solo.result()
    assert result.failures == (FailureCount("publish", "puback_failure:135", denied),)
    assert result.counters[Counter.MESSAGES_SENT] == sent.count("dt/sensors/sensors-00000/ok")
    assert result.phases["publish"].stats.count == result.counters[Counter.MESSAGES_SENT]
    await solo.stop()
