"""The fleet runner: arrival schedules, seeding, concurrency cap, stop conditions and stops.

Fake devices on a manual clock moved from deadline to deadline: spawn times are compared
with :func:`~fleet_sim.scenario.schedule.arrival_offsets` exactly (to a microsecond).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from fleet_sim.clock import LoopClock
from fleet_sim.metrics.names import Counter
from fleet_sim.scenario.schedule import arrival_offsets
from fleet_sim.scenario.seeding import derive_rng
from tests.support.fake_engine import (
    ConnectCall,
    Fail,
    FakeEngine,
    Succeed,
    TrackingClock,
    always,
    fake_runner,
    run_until,
    scenario,
    settle,
)

SEED = 77
EXACT = 1e-6


def _text(groups: str, *, run: str = "duration: 60s", thresholds: str = "[]") -> str:
    return f"""
name: schedule-unit
fleet:
{groups}
run:
  seed: {SEED}
  graceful_stop: 1s
  {run}
thresholds: {thresholds}
"""


def _group(name: str, count: int, arrival: str, extra: str = "") -> str:
    return f"""
  - name: {name}
    count: {count}
    arrival: {arrival}
    connect:
      retry: {{max_attempts: 1, base: 1s, cap: 1s}}
{extra}"""


async def _finish(task: asyncio.Task[float], clock: TrackingClock, until: float) -> float:
    await run_until(clock, until)
    return await asyncio.wait_for(task, 5)


ARRIVALS = {
    "constant": "25/s",
    "linear": "{type: linear, from: 5/s, to: 50/s, over: 1s}",
    "poisson": "{type: poisson, rate: 20/s}",
}


@pytest.mark.parametrize("shape", sorted(ARRIVALS))
async def test_devices_start_at_their_arrival_offsets(shape):
    run_scenario = scenario(_text(_group("sensors", 30, ARRIVALS[shape]), run="duration: 20s"))
    group = run_scenario.fleet[0]
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, recorder = fake_runner(run_scenario, engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 10.0)

    expected = arrival_offsets(group.arrival, group.count, derive_rng(SEED, "arrival", "sensors"))
    first = engine.first_calls()
    spawned = [first[str(group.device_values(i)["client_id"])] for i in group.indices]
    assert spawned == pytest.approx(expected, abs=EXACT)
    # in index order, one device at a time
    assert [call.client_id for call in engine.calls] == [
        str(group.device_values(i)["client_id"]) for i in group.indices
    ]
    if shape == "linear":  # the ramp: gaps shrink, then 1/50 s once the ramp is over
        gaps = [b - a for a, b in itertools.pairwise(expected)]
        assert gaps == sorted(gaps, reverse=True)
        assert gaps[-1] == pytest.approx(1 / 50, rel=1e-6)

    elapsed = await _finish(task, clock, 21.0)
    assert elapsed == pytest.approx(20.0, abs=EXACT)
    assert runner.stop_reason == "duration"
    counters = recorder.snapshot(clock.now()).group("sensors").counters
    assert counters[Counter.DEVICES] == 30
    assert counters[Counter.DEVICES_CONNECTED] == 30


async def test_groups_follow_their_own_schedules_side_by_side():
    text = _text(_group("fast", 10, "20/s") + _group("slow", 4, "2/s"), run="duration: 10s")
    run_scenario = scenario(text)
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, _ = fake_runner(run_scenario, engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 5.0)
    first = engine.first_calls()
    assert sorted(t for c, t in first.items() if c.startswith("fast")) == pytest.approx(
        [i / 20 for i in range(10)], abs=EXACT
    )
    assert sorted(t for c, t in first.items() if c.startswith("slow")) == pytest.approx(
        [0.0, 0.5, 1.0, 1.5], abs=EXACT
    )
    await _finish(task, clock, 11.0)


async def _poisson_calls(seed: int) -> list[ConnectCall]:
    text = _text(
        _group("alpha", 8, "{type: poisson, rate: 10/s}")
        + _group("beta", 8, "{type: poisson, rate: 10/s}"),
        run="duration: 5s",
    )
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, _ = fake_runner(scenario(text), engine, clock, seed=seed)
    task = asyncio.create_task(runner.run())
    await _finish(task, clock, 6.0)
    return engine.calls


async def test_the_same_seed_gives_the_same_arrival_order_and_times():
    first, second = await _poisson_calls(SEED), await _poisson_calls(SEED)
    assert [c.client_id for c in first] == [c.client_id for c in second]
    assert [c.at for c in first] == pytest.approx([c.at for c in second], abs=EXACT)
    # the two groups interleave (the order is the seed's, not the scenario's group order)
    assert {c.client_id[:4] for c in first[:8]} == {"alph", "beta"}
    other = await _poisson_calls(SEED + 1)
    assert [c.at for c in other] != pytest.approx([c.at for c in first], abs=1e-3)


async def test_devices_not_yet_arrived_when_the_run_stops_never_start():
    run_scenario = scenario(_text(_group("sensors", 20, "10/s"), run="duration: 1s"))
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, recorder = fake_runner(run_scenario, engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await _finish(task, clock, 5.0)
    # offsets 0.0 … 0.9 are inside the second; 1.0 is when the timer stops the run
    assert len(engine.first_calls()) == 10
    assert recorder.snapshot(clock.now()).group("sensors").counters[Counter.DEVICES] == 10
    assert len(engine.disconnects) == 10  # every started device disconnected


# --------------------------------------------------------------------------- concurrency cap


async def test_max_connects_in_flight_caps_attempts_across_groups():
    text = _text(
        _group("a", 8, "1000/s") + _group("b", 8, "1000/s"),
        run="duration: 60s\n  max_connects_in_flight: 3",
    )
    clock = TrackingClock()
    release = asyncio.Event()
    engine = FakeEngine(script=always(Succeed(hold=release)), now=clock.now)
    runner, _ = fake_runner(scenario(text), engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 1.0)  # everyone has arrived; three attempts are stuck

    assert engine.in_flight == 3
    assert sum(state.connecting for state in runner.states.values()) == 3
    release.set()
    await settle()
    await run_until(clock, 2.0)
    assert engine.max_in_flight == 3
    assert len(engine.calls) == 16
    assert sum(state.connected for state in runner.states.values()) == 16
    assert sum(state.connecting for state in runner.states.values()) == 0
    runner.request_stop("test over")
    await asyncio.wait_for(task, 5)


# --------------------------------------------------------------------------- stop conditions


async def test_stop_when_all_connected_stops_at_the_next_check():
    text = _text(
        _group("sensors", 5, "10/s"),
        run="duration: 60s\n  stop_when: {all_connected: true}",
    )
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, _ = fake_runner(scenario(text), engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    elapsed = await _finish(task, clock, 5.0)
    assert runner.stop_reason == "all devices connected"
    # the last device connects at 0.4 s; conditions are checked every 0.2 s of the clock
    assert 0.4 <= elapsed <= 0.6 + EXACT


async def test_stop_when_failures_stops_after_that_many_devices_gave_up():
    text = _text(_group("sensors", 10, "10/s"), run="duration: 60s\n  stop_when: {failures: 3}")
    clock = TrackingClock()
    engine = FakeEngine(script=always(Fail("tcp_refused")), now=clock.now)
    runner, _ = fake_runner(scenario(text), engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    elapsed = await _finish(task, clock, 5.0)
    # devices give up at 0.0, 0.1, 0.2 …; conditions are checked every 0.2 s of the clock
    assert runner.failures >= 3
    assert runner.stop_reason == f"{runner.failures} devices failed"
    assert 0.2 <= elapsed <= 0.4 + EXACT


async def test_a_stop_request_ends_the_run_and_devices_disconnect():
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now)
    runner, recorder = fake_runner(
        scenario(_text(_group("sensors", 3, "10/s"))), engine, clock, seed=SEED
    )
    task = asyncio.create_task(runner.run())
    await run_until(clock, 1.0)
    runner.request_stop("interrupted")
    elapsed = await asyncio.wait_for(task, 5)
    assert elapsed == pytest.approx(1.0, abs=EXACT)
    assert runner.stop_reason == "interrupted"
    assert sorted(c for c, _ in engine.disconnects) == sorted(engine.devices)
    assert all(state.connected == 0 for state in runner.states.values())
    group = recorder.snapshot(clock.now()).group("sensors")
    assert group.gauges["connected"] == 0
    assert group.failures == ()


async def test_disconnects_that_hang_are_cut_at_the_graceful_stop_deadline():
    text = _text(_group("sensors", 3, "1000/s"), run="duration: 1s")
    clock = LoopClock()
    engine = FakeEngine(now=clock.now, hang_disconnect=True)
    runner, _ = fake_runner(scenario(text).model_copy(), engine, clock, seed=SEED)
    started = time.monotonic()
    await asyncio.wait_for(runner.run(), 10)
    took = time.monotonic() - started
    assert 1.9 <= took < 4.0  # 1 s of run, then graceful_stop (1 s) of hanging disconnects
    assert len(engine.disconnects) == 3
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("fleetsim")]


async def test_a_run_cut_at_the_graceful_stop_deadline_says_so():
    text = _text(_group("sensors", 2, "1000/s"), run="duration: 1s")
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now, hang_disconnect=True)
    runner, _ = fake_runner(scenario(text), engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 1.5)
    assert not task.done()  # both devices hang in disconnect
    await run_until(clock, 3.0)  # past graceful_stop, on the injected clock
    await asyncio.wait_for(task, 5)
    assert runner.cut_off == 2  # both devices were still disconnecting


async def test_a_second_stop_request_stops_at_once():
    text = _text(_group("sensors", 3, "1000/s"), run="duration: 60s")
    run_scenario = scenario(text)
    run_scenario = run_scenario.model_copy(
        update={"run": run_scenario.run.model_copy(update={"graceful_stop": 30.0})}
    )
    clock = TrackingClock()
    engine = FakeEngine(now=clock.now, hang_disconnect=True)
    runner, _ = fake_runner(run_scenario, engine, clock, seed=SEED)
    task = asyncio.create_task(runner.run())
    await run_until(clock, 1.0)
    runner.request_stop("interrupted")
    await settle()
    assert not task.done()  # devices are stuck disconnecting; the graceful stop waits
    started = time.monotonic()
    runner.request_stop("interrupted")
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 1.0
    assert runner.stop_reason == "interrupted"
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("fleetsim")]
