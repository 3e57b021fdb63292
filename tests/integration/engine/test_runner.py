"""The fleet engine in-process against a real emulator: arrivals, stop conditions, the
connect-concurrency cap and graceful stops (seen from the broker's side)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.broker.lifecycle import DisconnectReason
from fleet_sim.engine.device import GroupState
from fleet_sim.engine.runner import FleetRunner
from tests.integration.engine.conftest import Disconnects, emulator_scenario, run_scenario

pytestmark = pytest.mark.timeout(60)

PUBLISH = """
      - type: publish
        topic: "dt/{group}/{thing_name}/telemetry"
        payload: '{{"seq": {seq}}}'
        qos: 1
        interval: 300ms"""

SUBSCRIBE = """
      - type: subscribe
        filters: ["cmd/{thing_name}/#"]
        qos: 1"""


def _group(name: str, count: int, arrival: str, *, protocol: str = "mqtt5", extra: str = "") -> str:
    return f"""
  - name: {name}
    count: {count}
    arrival: {arrival}
    connect:
      protocol: {protocol}
      retry: {{max_attempts: 3, base: 100ms, cap: 500ms}}
    behaviours:{extra or " [{type: idle}]"}"""


def _body(groups: str, run: str) -> str:
    return f"""
name: engine-runner
fleet:{groups}
run:
  seed: 11
  graceful_stop: 3s
{run}
"""


async def test_two_groups_arrive_at_their_own_rates(emulator: Emulator, tmp_path: Path):
    body = _body(
        _group("fast", 10, "20/s") + _group("slow", 5, "4/s"),
        "  duration: 2s",
    )
    done_at: dict[str, float] = {}

    async def watch(runner: FleetRunner) -> None:
        loop = asyncio.get_running_loop()
        start = runner.recorder.start
        while not runner.stop.is_set():
            for name, state in runner.states.items():
                if name not in done_at and state.first_connects == state.group.count:
                    done_at[name] = loop.time() - start
            await asyncio.sleep(0.005)

    result, _ = await run_scenario(
        emulator_scenario(emulator, body), tmp_path / "certs", beside=watch
    )

    # fast: offsets 0 … 0.45 s; slow: 0, 0.25 … 1.0 s (then a TLS connect each)
    assert 0.45 <= done_at["fast"] < 0.95
    assert 1.0 <= done_at["slow"] < 1.6
    fast, slow = (result.metrics.group(name) for name in ("fast", "slow"))
    assert fast.timeline.counters["devices"][:2] == (10, 0)
    assert slow.timeline.counters["devices"][:2] == (4, 1)
    for group, count in ((fast, 10), (slow, 5)):
        assert group.counters["devices"] == count
        assert group.counters["devices_connected"] == count
        assert group.phases["connect"].stats.count == count
        assert group.failures == ()
    assert result.values["devices"] == 15
    assert result.values["connected_ratio"] == 1.0
    assert result.meta.notes[-1].startswith("setup slow: 5 devices registered")


async def test_stop_when_all_connected_ends_the_run_early_with_a_note(
    emulator: Emulator, tmp_path: Path
):
    body = _body(
        _group("sensors", 8, "40/s"),
        "  duration: 30s\n  stop_when: {all_connected: true}",
    )
    result, probe = await run_scenario(emulator_scenario(emulator, body), tmp_path / "certs")
    assert probe.runner is not None
    assert probe.runner.stop_reason == "all devices connected"
    assert "stopped early: all devices connected" in result.meta.notes
    assert result.meta.duration_s < 3.0
    assert result.values["devices_connected"] == 8
    assert result.passed


async def test_max_connects_in_flight_caps_concurrent_attempts_over_the_fleet(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    in_flight = {"now": 0, "max": 0}
    original = GroupState.connecting_delta

    def counting(self: GroupState, delta: int) -> None:
        in_flight["now"] += delta
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        original(self, delta)

    monkeypatch.setattr(GroupState, "connecting_delta", counting)
    body = _body(
        _group("a", 12, "1000/s") + _group("b", 12, "1000/s"),
        "  duration: 20s\n  max_connects_in_flight: 3\n  stop_when: {all_connected: true}",
    )
    result, _ = await run_scenario(emulator_scenario(emulator, body), tmp_path / "certs")

    assert in_flight["max"] == 3  # reached (24 devices arrive at once) and never exceeded
    assert in_flight["now"] == 0
    assert result.values["devices_connected"] == 24
    for name in ("a", "b"):
        gauge = result.metrics.group(name).timeline.gauges["connecting"]
        assert max(gauge) <= 3


@pytest.mark.parametrize("how", ["duration", "interrupted"])
async def test_a_graceful_stop_disconnects_every_device_cleanly(
    emulator: Emulator, disconnects: Disconnects, tmp_path: Path, how: str
):
    duration = "1500ms" if how == "duration" else "30s"
    body = _body(
        _group("v5", 5, "50/s", extra=PUBLISH + SUBSCRIBE)
        + _group("v311", 4, "50/s", protocol="mqtt311", extra=PUBLISH + SUBSCRIBE),
        f"  duration: {duration}",
    )

    async def interrupt(runner: FleetRunner) -> None:
        if how == "interrupted":
            await asyncio.sleep(1.5)
            runner.request_stop("interrupted")

    result, _ = await run_scenario(
        emulator_scenario(emulator, body), tmp_path / "certs", beside=interrupt
    )

    assert emulator.broker.connection_count == 0
    client_ids = [f"v5-{i:05d}" for i in range(5)] + [f"v311-{i:05d}" for i in range(4)]
    for client_id in client_ids:
        assert disconnects.reasons(client_id) == [DisconnectReason.CLIENT_INITIATED_DISCONNECT]
    assert len(disconnects.events) == 9
    assert result.values["failures"] == 0
    assert result.values["messages_sent"] > 0
    if how == "interrupted":
        assert "stopped early: interrupted" in result.meta.notes
        assert 1.4 < result.meta.duration_s < 3.0
    else:
        assert not any(note.startswith("stopped early") for note in result.meta.notes)
