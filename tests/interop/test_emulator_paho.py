"""Unmodified paho-mqtt (3.1.1 and 5) against the emulator over mutual TLS on real sockets."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.models import CertificateStatus
from tests.support.devices import DeviceFiles, make_ca, provision_device, register_ca
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with EmulatorThread(EmulatorConfig(port=0, data_dir=data_dir)) as emu:
        yield emu


@pytest.fixture(scope="module")
def ca(emu: EmulatorThread):
    authority = make_ca()
    register_ca(emu.registry, authority)
    return authority


_counter = iter(range(1_000_000))


@pytest.fixture
def device(emu: EmulatorThread, ca, tmp_path: Path) -> DeviceFiles:
    return provision_device(emu.registry, ca, f"paho-{next(_counter)}", tmp_path)


class Paho:
    """A paho client plus the events its callbacks saw."""

    def __init__(
        self, emu: EmulatorThread, files: DeviceFiles, *, version: int, client_id: str | None = None
    ):
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or files.client_id, protocol=protocol
        )
        self.client.tls_set(
            ca_certs=emu.info.ca_file,
            certfile=str(files.chain),
            keyfile=str(files.key),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connect_rc: ReasonCode | None = None
        self.disconnect_rc: ReasonCode | None = None
        self.messages: list[mqtt.MQTTMessage] = []
        self.got_message = threading.Event()
        self.subacks: list[list[ReasonCode]] = []
        self.subscribed = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.published = threading.Event()
        client = self.client
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        self.emu = emu

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connect_rc = rc
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, rc, properties=None):
        self.disconnect_rc = rc
        self.disconnected.set()

    def _on_message(self, client, userdata, message):
        self.messages.append(message)
        self.got_message.set()

    def _on_subscribe(self, client, userdata, mid, rcs, properties=None):
        self.subacks.append(list(rcs))
        self.subscribed.set()

    def _on_publish(self, client, userdata, mid, rc, properties=None):
        self.pubacks[mid] = rc
        self.published.set()

    def start(self) -> Paho:
        self.client.connect(self.emu.info.endpoint, self.emu.info.port, keepalive=60)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_messages(self, count: int) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + TIMEOUT
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages


@pytest.mark.parametrize("version", [3, 5])
def test_paho_connects_subscribes_publishes_and_receives(
    emu: EmulatorThread, device: DeviceFiles, version: int
) -> None:
    paho = Paho(emu, device, version=version).start()
    try:
        assert paho.connected.wait(TIMEOUT)
        assert not paho.connect_rc.is_failure  # type: ignore[union-attr]
        topic = f"devices/{device.client_id}/telemetry"
        paho.client.subscribe(topic, qos=1)
        assert paho.subscribed.wait(TIMEOUT)
        assert [int(rc.value) for rc in paho.subacks[0]] == [1]
        info = paho.client.publish(topic, b"hello", qos=1)
        info.wait_for_publish(TIMEOUT)
        [message] = paho.wait_messages(1)
        assert message.topic == topic
        assert message.payload == b"hello"
        assert message.qos == 1
    finally:
        paho.stop()


def test_paho_mqtt5_denied_publish_gets_puback_0x87(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    paho = Paho(emu, device, version=5).start()
    try:
        assert paho.connected.wait(TIMEOUT)
        info = paho.client.publish("devices/someone-else/x", b"no", qos=1)
        info.wait_for_publish(TIMEOUT)
        assert int(paho.pubacks[info.mid].value) == 0x87
        assert not paho.disconnected.is_set()
    finally:
        paho.stop()


def test_paho_311_denied_publish_is_disconnected(emu: EmulatorThread, device: DeviceFiles) -> None:
    paho = Paho(emu, device, version=3).start()
    try:
        assert paho.connected.wait(TIMEOUT)
        paho.client.publish("devices/someone-else/x", b"no", qos=1)
        assert paho.disconnected.wait(TIMEOUT)
    finally:
        paho.client.loop_stop()


@pytest.mark.parametrize(("version", "code"), [(3, 0x80), (5, 0x87)])
def test_paho_denied_subscribe_gets_failure_code(
    emu: EmulatorThread, device: DeviceFiles, version: int, code: int
) -> None:
    paho = Paho(emu, device, version=version).start()
    try:
        assert paho.connected.wait(TIMEOUT)
        paho.client.subscribe([(f"devices/{device.client_id}/a", 1), ("devices/other/#", 1)])
        assert paho.subscribed.wait(TIMEOUT)
        assert [int(rc.value) for rc in paho.subacks[0]] == [1, code]
    finally:
        paho.stop()


def test_paho_311_wrong_client_id_is_closed_without_connack(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    paho = Paho(emu, device, version=3, client_id="not-my-thing").start()
    try:
        assert paho.disconnected.wait(TIMEOUT)
        assert not paho.connected.is_set()
    finally:
        paho.client.loop_stop()


def test_paho_mqtt5_wrong_client_id_gets_connack_0x87(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    paho = Paho(emu, device, version=5, client_id="not-my-thing").start()
    try:
        assert paho.connected.wait(TIMEOUT)
        assert int(paho.connect_rc.value) == 0x87  # type: ignore[union-attr]
    finally:
        paho.client.loop_stop()


def test_paho_takeover_drops_the_older_connection(emu: EmulatorThread, device: DeviceFiles) -> None:
    first = Paho(emu, device, version=5).start()
    try:
        assert first.connected.wait(TIMEOUT)
        time.sleep(1.05)  # 1 CONNECT/s per client id
        second = Paho(emu, device, version=5).start()
        assert second.connected.wait(TIMEOUT)
        assert first.disconnected.wait(TIMEOUT)
        assert int(first.disconnect_rc.value) == 0x8E  # type: ignore[union-attr]
        second.stop()
    finally:
        first.client.loop_stop()


def test_deactivating_the_certificate_disconnects_paho(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    paho = Paho(emu, device, version=5).start()
    try:
        assert paho.connected.wait(TIMEOUT)
        emu.registry.certificates.update_status(
            device.certificate_id, CertificateStatus.INACTIVE, now=time.time()
        )
        assert paho.disconnected.wait(TIMEOUT)
    finally:
        paho.client.loop_stop()


def test_retained_message_reaches_a_later_exact_subscriber(
    emu: EmulatorThread, ca, tmp_path: Path
) -> None:
    one = provision_device(emu.registry, ca, "retain-pub", tmp_path)
    two = provision_device(emu.registry, ca, "retain-sub", tmp_path)
    publisher = Paho(emu, one, version=3).start()
    try:
        assert publisher.connected.wait(TIMEOUT)
        publisher.client.publish("shared/lamp", b"on", qos=1, retain=True).wait_for_publish(TIMEOUT)
    finally:
        publisher.stop()
    subscriber = Paho(emu, two, version=5).start()
    try:
        assert subscriber.connected.wait(TIMEOUT)
        subscriber.client.subscribe("shared/lamp", qos=1)
        [message] = subscriber.wait_messages(1)
        assert message.payload == b"on"
        assert message.retain
    finally:
        subscriber.stop()


def test_lifecycle_events_reach_a_paho_subscriber(emu: EmulatorThread, ca, tmp_path: Path) -> None:
    import json

    watcher_files = provision_device(emu.registry, ca, "watcher", tmp_path)
    other = provision_device(emu.registry, ca, "watched", tmp_path)
    watcher = Paho(emu, watcher_files, version=5).start()
    try:
        assert watcher.connected.wait(TIMEOUT)
        watcher.client.subscribe("$aws/events/presence/+/watched", qos=1)
        assert watcher.subscribed.wait(TIMEOUT)
        watched = Paho(emu, other, version=3).start()
        assert watched.connected.wait(TIMEOUT)
        watched.stop()
        messages = watcher.wait_messages(2)
        events = [json.loads(m.payload) for m in messages]
        assert [e["eventType"] for e in events] == ["connected", "disconnected"]
        assert events[1]["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
        assert events[0]["principalIdentifier"] == other.certificate_id
    finally:
        watcher.stop()


def test_missing_sni_is_refused(emu: EmulatorThread, device: DeviceFiles) -> None:
    context = ssl.create_default_context(cafile=emu.info.ca_file)
    context.check_hostname = False
    context.load_cert_chain(device.chain, device.key)
    import socket

    with socket.create_connection((emu.info.host, emu.info.port), timeout=TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError):
            with context.wrap_socket(raw) as tls:  # no server_hostname: no SNI
                tls.recv(1)
    _ = Properties  # imported for type completeness of paho callbacks
