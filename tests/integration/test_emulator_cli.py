"""``python -m fleet_sim emulator`` as a real process: the ready line, ``endpoint.json``, TLS
with the printed CA file, a device registered from another process, SIGTERM, and bad options.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.emulator.app import EndpointInfo
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.mqtt.packets import ConnAck, Connect, ProtocolVersion
from tests.support.devices import make_ca, provision_device, register_ca
from tests.support.raw_mqtt import Closed, RawClient

READY_TIMEOUT = 30.0  # the first start creates the emulator's PKI
EXIT_TIMEOUT = 10.0
READY_FIELDS = {"endpoint", "host", "port", "ca_file", "region", "account_id", "data_dir"}


def emulator_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "fleet_sim", "emulator", *options]


def read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line of the process's stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    line = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no ready line within {timeout} s (got {bytes(line)!r})"
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 1)
            assert chunk, f"stdout closed before the ready line (exit {process.poll()})"
            line += chunk
    return bytes(line)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any], Path]]:
    data_dir = tmp_path / "emulator-data"
    process = subprocess.Popen(
        emulator_command("--port", "0", "--data-dir", str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        ready = json.loads(read_line(process, READY_TIMEOUT))
        yield process, ready, data_dir
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=EXIT_TIMEOUT)


def test_ready_line_endpoint_file_tls_and_sigterm(running) -> None:
    process, ready, data_dir = running
    assert set(ready) >= READY_FIELDS
    assert ready["endpoint"] == "localhost"
    assert ready["host"] == "127.0.0.1"
    assert isinstance(ready["port"], int)
    assert ready["port"] > 0
    assert ready["region"] == "us-east-1"
    assert ready["account_id"] == "123456789012"
    assert Path(ready["data_dir"]) == data_dir.resolve()
    assert Path(ready["ca_file"]).is_file()
    on_disk = json.loads((data_dir / "endpoint.json").read_text(encoding="utf-8"))
    assert on_disk == ready

    # The printed CA file verifies the server certificate for ``localhost``. (TLS 1.3: the
    # client's handshake completes before the server looks at the missing client certificate.)
    context = ssl.create_default_context(cafile=ready["ca_file"])
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((ready["host"], ready["port"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3"
            certificate = tls.getpeercert()
    assert certificate is not None
    assert ("DNS", "localhost") in certificate["subjectAltName"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=EXIT_TIMEOUT) == 0
    assert process.stdout is not None
    assert process.stdout.read() == b""  # nothing after the ready line


def test_device_registered_by_another_process_can_connect(running, tmp_path: Path) -> None:
    _process, ready, data_dir = running
    authority = make_ca("cli test CA")
    # Another process's view of the registry: the emulator picks the change up by polling.
    with Registry.open(data_dir / "registry.sqlite3") as registry:
        register_ca(registry, authority)
        device = provision_device(registry, authority, "cli-device", tmp_path)
    info = EndpointInfo(**ready)
    deadline = time.monotonic() + 10  # housekeeping polls every 2 s
    while True:
        try:
            client = RawClient.open(info, device.chain, device.key, version=ProtocolVersion.MQTT_5)
        except ssl.SSLError:  # the new CA is not trusted yet
            assert time.monotonic() < deadline, "the emulator never trusted the new CA"
            time.sleep(0.2)
            continue
        try:
            client.send(Connect(client_id="cli-device", protocol_version=ProtocolVersion.MQTT_5))
            connack = client.receive()
        except Closed:
            assert time.monotonic() < deadline, "the emulator never accepted the device"
            time.sleep(0.2)
            continue
        finally:
            client.close()
        break
    assert isinstance(connack, ConnAck)
    assert connack.reason_code == 0


def test_port_in_use_exits_2_with_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            emulator_command("--port", str(port), "--data-dir", str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert str(port) in lines[0]
