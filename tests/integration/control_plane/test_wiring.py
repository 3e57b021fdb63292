"""The control plane as part of the emulator: its URL in the ready facts and endpoint.json,
the ``Emulator.boto3_client()``, switching it off, and ``fleetsim emulator``'s ready line."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import boto3
import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import EmulatorConfig
from tests.integration.control_plane.conftest import NO_RETRIES


async def test_emulator_exposes_the_control_plane(tmp_path) -> None:
    async with Emulator(EmulatorConfig(port=0, data_dir=tmp_path)) as emulator:
        url = emulator.control_plane_url
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        written = json.loads((tmp_path / "endpoint.json").read_text())
        assert written["control_plane_url"] == url
        client = await asyncio.to_thread(emulator.boto3_client, config=NO_RETRIES)
        await asyncio.to_thread(client.create_thing, thingName="wired")
        assert emulator.registry.thing("wired") is not None
        assert client.meta.region_name == emulator.config.region
    host, port = url.removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))


async def test_the_control_plane_can_be_switched_off(tmp_path) -> None:
    config = EmulatorConfig(port=0, data_dir=tmp_path, control_plane_port=None)
    async with Emulator(config) as emulator:
        assert emulator.control_plane_url is None
        assert json.loads((tmp_path / "endpoint.json").read_text())["control_plane_url"] is None


@pytest.mark.slow
def test_fleetsim_emulator_ready_line_names_the_control_plane(tmp_path) -> None:
    command = [
        sys.executable, "-m", "fleet_sim", "emulator",
        "--port", "0", "--control-plane-port", "0", "--data-dir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        iot = boto3.client(
            "iot",
            endpoint_url=ready["control_plane_url"],
            region_name=ready["region"],
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=NO_RETRIES,
        )
        assert (
            iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
            == (ready["endpoint"])
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


async def test_a_taken_control_plane_port_fails_start_and_frees_the_gateway(tmp_path) -> None:
    async with Emulator(EmulatorConfig(port=0, data_dir=tmp_path / "a")) as first:
        taken = int(first.control_plane_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
        second = Emulator(EmulatorConfig(port=0, data_dir=tmp_path / "b", control_plane_port=taken))
        with pytest.raises(OSError, match="address already in use"):
            await second.start()
        assert second._gateway is None
