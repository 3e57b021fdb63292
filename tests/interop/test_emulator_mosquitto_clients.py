"""The mosquitto command-line clients (``mosquitto_pub``, ``mosquitto_sub``) against the emulator.

They are run exactly as a user would run them against AWS IoT: mutual TLS with the emulator's
CA file, the device's chain and key, host ``localhost`` (which is also the SNI name).
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_sim.emulator.config import EmulatorConfig
from tests.conftest import require_binary
from tests.support.devices import DeviceFiles, make_ca, provision_device, register_ca
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
#: mosquitto's exit code for a lost connection (MOSQ_ERR_CONN_LOST).
MOSQ_ERR_CONN_LOST = 7
#: mosquitto_sub's exit code when ``-W`` expires (MOSQ_ERR_TIMEOUT).
MOSQ_ERR_TIMEOUT = 27


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with EmulatorThread(EmulatorConfig(port=0, data_dir=data_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def ca(emu: EmulatorThread):
    authority = make_ca("mosquitto test CA")
    register_ca(emu.registry, authority)
    return authority


_counter = itertools.count()


@pytest.fixture
def make_device(emu: EmulatorThread, ca, tmp_path: Path):
    def make() -> DeviceFiles:
        return provision_device(emu.registry, ca, f"mosq-{next(_counter)}", tmp_path)

    return make


def tls_args(emu: EmulatorThread, device: DeviceFiles, *, client_id: str | None, v5: bool):
    args = [
        "--cafile",
        emu.info.ca_file,
        "--cert",
        str(device.chain),
        "--key",
        str(device.key),
        "-h",
        "localhost",
        "-p",
        str(emu.info.port),
        "--tls-version",
        "tlsv1.2",
        "-i",
        client_id or device.client_id,
    ]
    return [*args, "-V", "mqttv5"] if v5 else args


def mosquitto_pub(
    emu: EmulatorThread,
    device: DeviceFiles,
    *extra: str,
    client_id: str | None = None,
    v5: bool = False,
) -> subprocess.CompletedProcess[str]:
    binary = require_binary("mosquitto_pub")
    command = [binary, *tls_args(emu, device, client_id=client_id, v5=v5), "-d", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT + 5)


def start_mosquitto_sub(
    emu: EmulatorThread, device: DeviceFiles, *extra: str, v5: bool = False
) -> subprocess.Popen[str]:
    binary = require_binary("mosquitto_sub")
    command = [binary, *tls_args(emu, device, client_id=None, v5=v5), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_subscribed(emu: EmulatorThread, client_id: str, topic_filter: str) -> None:
    """Wait until the broker holds ``client_id``'s subscription (instead of sleeping)."""

    def subscribed() -> bool:
        connection = emu.emulator.broker.connection(client_id)
        stored = None if connection is None else connection.stored
        return stored is not None and topic_filter in stored.subscriptions

    deadline = time.monotonic() + TIMEOUT
    while not emu.call(subscribed):
        assert time.monotonic() < deadline, f"{client_id} never subscribed to {topic_filter}"
        time.sleep(0.02)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


@pytest.mark.parametrize("v5", [False, True], ids=["mqttv311", "mqttv5"])
def test_mosquitto_sub_receives_what_mosquitto_pub_sends(
    emu: EmulatorThread, make_device, v5: bool
) -> None:
    subscriber, publisher = make_device(), make_device()
    topic = f"shared/mosquitto/{subscriber.client_id}"
    sub = start_mosquitto_sub(
        emu, subscriber, "-t", topic, "-q", "1", "-C", "1", "-W", "10", "-v", v5=v5
    )
    try:
        wait_subscribed(emu, subscriber.client_id, topic)
        pub = mosquitto_pub(emu, publisher, "-t", topic, "-q", "1", "-m", "hello mosquitto", v5=v5)
        assert pub.returncode == 0, pub.stderr
        assert "received PUBACK" in pub.stdout
    finally:
        code, out, err = finish(sub)
    assert code == 0, err
    assert out == f"{topic} hello mosquitto\n"


def test_mosquitto_pub_311_denied_publish_loses_the_connection(
    emu: EmulatorThread, make_device
) -> None:
    device = make_device()
    pub = mosquitto_pub(emu, device, "-t", "devices/someone-else/x", "-q", "1", "-m", "no")
    assert "received CONNACK (0)" in pub.stdout
    assert "sending PUBLISH" in pub.stdout
    assert "received PUBACK" not in pub.stdout
    assert pub.returncode == MOSQ_ERR_CONN_LOST, (pub.stdout, pub.stderr)
    assert "connection was lost" in pub.stderr.lower()


def test_mosquitto_pub_mqtt5_denied_publish_gets_puback_0x87(
    emu: EmulatorThread, make_device
) -> None:
    device = make_device()
    pub = mosquitto_pub(emu, device, "-t", "devices/someone-else/x", "-q", "1", "-m", "no", v5=True)
    assert "received PUBACK (Mid: 1, RC:135)" in pub.stdout, (pub.stdout, pub.stderr)


def test_mosquitto_refused_client_id_gets_no_connack_on_311(
    emu: EmulatorThread, make_device
) -> None:
    device = make_device()
    pub = mosquitto_pub(
        emu, device, "-t", "shared/x", "-m", "no", client_id=f"not-{device.client_id}"
    )
    assert "sending CONNECT" in pub.stdout
    assert "received CONNACK" not in pub.stdout
    assert pub.returncode == MOSQ_ERR_CONN_LOST, (pub.stdout, pub.stderr)


def test_mosquitto_refused_client_id_gets_connack_0x87_on_mqtt5(
    emu: EmulatorThread, make_device
) -> None:
    device = make_device()
    pub = mosquitto_pub(
        emu, device, "-t", "shared/x", "-m", "no", client_id=f"not-{device.client_id}", v5=True
    )
    assert "received CONNACK (135)" in pub.stdout, (pub.stdout, pub.stderr)
    assert pub.returncode != 0


def test_retained_message_reaches_a_later_exact_subscriber_only(
    emu: EmulatorThread, make_device
) -> None:
    publisher, subscriber = make_device(), make_device()
    topic = f"shared/retained/{publisher.client_id}"
    pub = mosquitto_pub(emu, publisher, "-t", topic, "-q", "1", "-r", "-m", "kept")
    assert pub.returncode == 0, pub.stderr
    binary = require_binary("mosquitto_sub")
    # Exact filter: the retained message arrives, with RETAIN=1 (%r), and nothing else.
    exact = subprocess.run(
        [
            binary,
            *tls_args(emu, subscriber, client_id=None, v5=False),
            "-t",
            topic,
            "-q",
            "1",
            "--retained-only",
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%r %t %p",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
    )
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout == f"1 {topic} kept\n"
    # Wildcard filter: AWS IoT sends no retained messages.
    wildcard = subprocess.run(
        [
            binary,
            *tls_args(emu, make_device(), client_id=None, v5=False),
            "-t",
            "shared/retained/#",
            "-q",
            "1",
            "--retained-only",
            "-C",
            "1",
            "-W",
            "1",
            "-F",
            "%r %t %p",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
    )
    assert wildcard.returncode == MOSQ_ERR_TIMEOUT, (wildcard.stdout, wildcard.stderr)
    assert wildcard.stdout == ""
