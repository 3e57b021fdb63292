"""Connections killed mid-run on the emulator's side: devices reconnect, failures are counted
by name under the ``session`` phase, and churn reconnects without any failure."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.broker.lifecycle import DisconnectReason
from fleet_sim.engine.runner import FleetRunner
from fleet_sim.metrics.snapshot import FailureCount
from tests.integration.engine.conftest import (
    Disconnects,
    emulator_scenario,
    eventually,
    group_state,
    run_scenario,
)

pytestmark = pytest.mark.timeout(60)

COUNT = 6
VICTIMS = (1, 3, 4)


def _body(*, protocol: str = "mqtt5", behaviours: str = "[{type: idle}]", duration: str) -> str:
    return f"""
name: engine-reconnects
fleet:
  - name: sensors
    count: {COUNT}
    arrival: 100/s
    connect:
      protocol: {protocol}
      retry: {{max_attempts: 40, base: 50ms, cap: 100ms, jitter: none}}
    behaviours: {behaviours}
run:
  duration: {duration}
  seed: 3
  graceful_stop: 3s
"""


def _certificate_ids(runner: FleetRunner) -> dict[int, str]:
    return {identity.index: identity.certificate_id for identity, _ in runner.groups[0].devices}


def _kill(emulator: Emulator, how: str, certificate_id: str, client_id: str) -> None:
    if how == "disconnect_certificate":
        assert emulator.broker.disconnect_certificate(certificate_id) == 1
    else:  # the TCP connection vanishes under the broker (no MQTT DISCONNECT)
        conn = emulator.broker.connection(client_id)
        assert conn is not None
        link: Any = conn.link
        link.tls.abort()


@pytest.mark.parametrize(
    ("protocol", "how", "failure", "server_reason"),
    [
        ("mqtt5", "disconnect_certificate", "disconnected_by_server:135", "AUTH_ERROR"),
        ("mqtt311", "disconnect_certificate", "connection_lost", "AUTH_ERROR"),
        ("mqtt5", "abort", "connection_lost", "CONNECTION_LOST"),
    ],
)
async def test_devices_killed_by_the_server_reconnect_and_the_loss_is_counted(
    emulator: Emulator,
    disconnects: Disconnects,
    tmp_path: Path,
    protocol: str,
    how: str,
    failure: str,
    server_reason: str,
):
    back: dict[str, int] = {}

    async def chaos(runner: FleetRunner) -> None:
        state = await group_state(runner, "sensors")
        await asyncio.wait_for(state.all_connected.wait(), 10)
        certificates = _certificate_ids(runner)
        for index in VICTIMS:
            _kill(emulator, how, certificates[index], f"sensors-{index:05d}")
        broker = emulator.broker
        await eventually(
            lambda: (
                broker.stats.connections_accepted == COUNT + len(VICTIMS)
                and broker.connection_count == COUNT
                and state.connected == COUNT
            ),
            within=5,
        )
        back["connected"] = state.connected
        back["first_connects"] = state.first_connects
        runner.request_stop("checked")

    result, _ = await run_scenario(
        emulator_scenario(emulator, _body(protocol=protocol, duration="20s")),
        tmp_path / "certs",
        beside=chaos,
    )

    assert back == {"connected": COUNT, "first_connects": COUNT}  # everyone came back
    group = result.metrics.group("sensors")
    assert group.failures == (FailureCount("session", failure, len(VICTIMS)),)
    assert result.values["reconnects"] == len(VICTIMS)
    assert result.values["failures"] == len(VICTIMS)
    assert result.values["devices_connected"] == COUNT
    assert result.values["devices_failed"] == 0
    assert group.phases["connect"].stats.count == COUNT + len(VICTIMS)
    for index in range(COUNT):
        reasons = [r.value for r in disconnects.reasons(f"sensors-{index:05d}")]
        expected = [server_reason] if index in VICTIMS else []
        assert reasons == [*expected, "CLIENT_INITIATED_DISCONNECT"], index


async def test_devices_whose_certificate_is_deactivated_retry_until_it_is_active_again(
    emulator: Emulator, tmp_path: Path
):
    victims = (0, 2)
    observed: dict[str, Any] = {}

    async def chaos(runner: FleetRunner) -> None:
        state = await group_state(runner, "sensors")
        await asyncio.wait_for(state.all_connected.wait(), 10)
        certificates = _certificate_ids(runner)
        for index in victims:  # the registry change drops the connections (AUTH_ERROR)
            emulator.registry.certificates.update_status(
                certificates[index], "INACTIVE", now=time.time()
            )
        await eventually(lambda: state.connected == COUNT - len(victims), within=5)
        await asyncio.sleep(0.5)  # refused meanwhile: the devices keep retrying
        observed["while_inactive"] = state.connected
        for index in victims:
            emulator.registry.certificates.update_status(
                certificates[index], "ACTIVE", now=time.time()
            )
        await eventually(lambda: state.connected == COUNT, within=5)
        observed["back"] = state.connected
        runner.request_stop("checked")

    result, _ = await run_scenario(
        emulator_scenario(emulator, _body(duration="20s")), tmp_path / "certs", beside=chaos
    )

    assert observed == {"while_inactive": COUNT - len(victims), "back": COUNT}
    group = result.metrics.group("sensors")
    session = [f for f in group.failures if f.phase == "session"]
    assert session == [FailureCount("session", "disconnected_by_server:135", len(victims))]
    refused = [f for f in group.failures if f.phase == "connect"]
    # about 0.5 s / 100 ms backoff: several refused attempts per device, all by name
    assert sum(f.count for f in refused) >= 2 * len(victims)
    assert {f.failure for f in refused} <= {"connack_refused:135", "tls_cert_rejected"}
    assert result.values["reconnects"] == len(victims)
    assert result.values["devices_failed"] == 0


async def test_churn_reconnects_without_failures(
    emulator: Emulator, disconnects: Disconnects, tmp_path: Path
):
    behaviours = "[{type: churn, every: 400ms}]"
    result, _ = await run_scenario(
        emulator_scenario(emulator, _body(behaviours=behaviours, duration="1300ms")),
        tmp_path / "certs",
    )
    # every device churns 0.4, 0.8 and 1.2 s after its connect (arrivals 0 … 50 ms)
    assert result.values["reconnects"] >= 2 * COUNT
    assert result.values["failures"] == 0
    assert result.metrics.group("sensors").failures == ()
    assert result.values["devices_failed"] == 0
    assert {reason for _, reason in disconnects.events} == {
        DisconnectReason.CLIENT_INITIATED_DISCONNECT
    }
    assert len(disconnects.events) == result.values["reconnects"] + COUNT
