"""Unmodified AWS IoT Device SDK v2 (awsiotsdk on awscrt) against the emulator over mutual TLS.

Both SDK clients are built exactly as an application would build them for AWS
(``mtls_from_path`` with the endpoint, the device's chain and key, and the emulator's CA as the
trust store). awscrt calls back from native threads, so results travel through
``concurrent.futures.Future`` / ``threading.Event`` and every wait is bounded.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt, mqtt5
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt5_client_builder, mqtt_connection_builder

from fleet_sim.emulator.config import EmulatorConfig
from tests.support.devices import DeviceFiles, make_ca, provision_device, register_ca
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
#: Between two CONNECTs of one client id (AWS allows 1 CONNECT/s per client id).
CONNECT_GAP_S = 1.05


@pytest.fixture(autouse=True)
def _no_system_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # awscrt re-reads a system bundle named by these for every TLS context (slow); the
    # emulator's CA is given explicitly anyway.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with EmulatorThread(EmulatorConfig(port=0, data_dir=data_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def ca(emu: EmulatorThread):
    authority = make_ca("awscrt test CA")
    register_ca(emu.registry, authority)
    return authority


_counter = itertools.count()


@pytest.fixture
def device(emu: EmulatorThread, ca, tmp_path: Path) -> DeviceFiles:
    return provision_device(emu.registry, ca, f"crt-{next(_counter)}", tmp_path)


def _resolve(future: Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


# ---------------------------------------------------------------------------- MQTT 3.1.1


class Crt311:
    """An ``awscrt.mqtt.Connection`` from the SDK builder, with its callbacks recorded."""

    def __init__(
        self, emu: EmulatorThread, files: DeviceFiles, *, client_id: str | None = None
    ) -> None:
        self.interrupted: Future[AwsCrtError] = Future()
        self.messages: list[tuple[str, bytes, int]] = []
        self.got_message = threading.Event()
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=emu.info.endpoint,
            port=emu.info.port,
            cert_filepath=str(files.chain),
            pri_key_filepath=str(files.key),
            ca_filepath=emu.info.ca_file,
            client_id=client_id or files.client_id,
            clean_session=True,
            keep_alive_secs=60,
            # After an interruption awscrt reconnects after this delay; a disconnect() issued
            # meanwhile completes only when the delay ends, so keep it short.
            reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=2,
            on_connection_interrupted=self._on_interrupted,
        )

    def _on_interrupted(self, connection: Any, error: AwsCrtError, **kwargs: Any) -> None:
        _resolve(self.interrupted, error)

    def on_message(self, topic: str, payload: bytes, dup: bool, qos: Any, retain: bool, **kw):
        self.messages.append((topic, payload, int(qos)))
        self.got_message.set()

    def connect(self) -> dict[str, Any]:
        result: dict[str, Any] = self.connection.connect().result(TIMEOUT)
        return result

    def disconnect(self) -> None:
        try:
            self.connection.disconnect().result(TIMEOUT)
        except RuntimeError as error:  # never connected, or closed already
            if "AWS_ERROR_MQTT_NOT_CONNECTED" not in str(error):
                raise


def test_awscrt_311_connects_subscribes_publishes_and_receives(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt311(emu, device)
    try:
        assert client.connect()["session_present"] is False
        topic = f"devices/{device.client_id}/telemetry"
        subscribed, _ = client.connection.subscribe(
            topic, mqtt.QoS.AT_LEAST_ONCE, client.on_message
        )
        assert subscribed.result(TIMEOUT)["qos"] == mqtt.QoS.AT_LEAST_ONCE
        published, _ = client.connection.publish(topic, b"hello crt", mqtt.QoS.AT_LEAST_ONCE)
        published.result(TIMEOUT)  # PUBACK arrived
        assert client.got_message.wait(TIMEOUT)
        assert client.messages == [(topic, b"hello crt", 1)]
    finally:
        client.disconnect()


def test_awscrt_311_denied_subscribe_fails_the_subscription(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt311(emu, device)
    try:
        client.connect()
        subscribed, _ = client.connection.subscribe(
            "devices/someone-else/#", mqtt.QoS.AT_LEAST_ONCE, client.on_message
        )
        # SUBACK 0x80: awscrt turns the failure code into SubscribeError.
        with pytest.raises(mqtt.SubscribeError):
            subscribed.result(TIMEOUT)
        assert not client.interrupted.done()  # the connection stays up (current AWS)
    finally:
        client.disconnect()


def test_awscrt_311_denied_publish_drops_the_connection(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt311(emu, device)
    try:
        client.connect()
        client.connection.publish("devices/someone-else/x", b"no", mqtt.QoS.AT_LEAST_ONCE)
        error = client.interrupted.result(TIMEOUT)
        assert error.name == "AWS_ERROR_MQTT_UNEXPECTED_HANGUP"
    finally:
        client.disconnect()


def test_awscrt_311_refused_client_id_is_an_unexpected_hangup(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt311(emu, device, client_id=f"not-{device.client_id}")
    try:
        with pytest.raises(AwsCrtError) as refused:
            client.connect()
        assert refused.value.name == "AWS_ERROR_MQTT_UNEXPECTED_HANGUP"
    finally:
        client.disconnect()


def test_awscrt_311_takeover_drops_the_older_connection(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    first = Crt311(emu, device)
    second = Crt311(emu, device)
    try:
        first.connect()
        time.sleep(CONNECT_GAP_S)
        second.connect()
        error = first.interrupted.result(TIMEOUT)
        assert error.name == "AWS_ERROR_MQTT_UNEXPECTED_HANGUP"
        first.disconnect()  # before its reconnect would take the id back
        assert not second.interrupted.done()
    finally:
        first.disconnect()
        second.disconnect()


# ---------------------------------------------------------------------------- MQTT 5


class Crt5:
    """An ``awscrt.mqtt5.Client`` from the SDK builder, with its lifecycle recorded."""

    def __init__(
        self, emu: EmulatorThread, files: DeviceFiles, *, client_id: str | None = None
    ) -> None:
        self.success: Future[mqtt5.LifecycleConnectSuccessData] = Future()
        self.failure: Future[mqtt5.LifecycleConnectFailureData] = Future()
        self.disconnection: Future[mqtt5.LifecycleDisconnectData] = Future()
        self.stopped = threading.Event()
        self.messages: list[mqtt5.PublishPacket] = []
        self.got_message = threading.Event()
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint=emu.info.endpoint,
            port=emu.info.port,
            cert_filepath=str(files.chain),
            pri_key_filepath=str(files.key),
            ca_filepath=emu.info.ca_file,
            client_id=client_id or files.client_id,
            min_reconnect_delay_ms=30_000,  # no reconnect storms during a test
            max_reconnect_delay_ms=60_000,
            on_lifecycle_connection_success=lambda data: _resolve(self.success, data),
            on_lifecycle_connection_failure=lambda data: _resolve(self.failure, data),
            on_lifecycle_disconnection=lambda data: _resolve(self.disconnection, data),
            on_lifecycle_stopped=lambda data: self.stopped.set(),
            on_publish_received=self._on_publish,
        )

    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        self.messages.append(data.publish_packet)
        self.got_message.set()

    def start(self) -> Crt5:
        self.client.start()
        return self

    def connected(self) -> mqtt5.ConnackPacket:
        packet: mqtt5.ConnackPacket = self.success.result(TIMEOUT).connack_packet
        return packet

    def stop(self) -> None:
        self.client.stop()
        assert self.stopped.wait(TIMEOUT)


def test_awscrt_mqtt5_connects_subscribes_publishes_and_receives(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt5(emu, device).start()
    try:
        connack = client.connected()
        assert connack.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        assert connack.maximum_qos == mqtt5.QoS.AT_LEAST_ONCE  # AWS: no QoS 2
        topic = f"devices/{device.client_id}/telemetry"
        suback = client.client.subscribe(
            mqtt5.SubscribePacket([mqtt5.Subscription(topic, mqtt5.QoS.AT_LEAST_ONCE)])
        ).result(TIMEOUT)
        assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
        published = client.client.publish(
            mqtt5.PublishPacket(topic=topic, payload=b"hello 5", qos=mqtt5.QoS.AT_LEAST_ONCE)
        ).result(TIMEOUT)
        assert published.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert client.got_message.wait(TIMEOUT)
        [message] = client.messages
        assert (message.topic, message.payload, message.qos) == (
            topic,
            b"hello 5",
            mqtt5.QoS.AT_LEAST_ONCE,
        )
    finally:
        client.stop()


def test_awscrt_mqtt5_denied_publish_gets_puback_0x87_and_stays_connected(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt5(emu, device).start()
    try:
        client.connected()
        published = client.client.publish(
            mqtt5.PublishPacket(
                topic="devices/someone-else/x", payload=b"no", qos=mqtt5.QoS.AT_LEAST_ONCE
            )
        ).result(TIMEOUT)
        assert published.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
        assert int(published.puback.reason_code) == 0x87
        # Still connected: an allowed publish right after is acknowledged.
        allowed = client.client.publish(
            mqtt5.PublishPacket(
                topic=f"devices/{device.client_id}/x", payload=b"ok", qos=mqtt5.QoS.AT_LEAST_ONCE
            )
        ).result(TIMEOUT)
        assert allowed.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert not client.disconnection.done()
    finally:
        client.stop()


def test_awscrt_mqtt5_denied_subscribe_gets_suback_0x87(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt5(emu, device).start()
    try:
        client.connected()
        suback = client.client.subscribe(
            mqtt5.SubscribePacket(
                [
                    mqtt5.Subscription(f"devices/{device.client_id}/a", mqtt5.QoS.AT_LEAST_ONCE),
                    mqtt5.Subscription("devices/someone-else/#", mqtt5.QoS.AT_LEAST_ONCE),
                ]
            )
        ).result(TIMEOUT)
        assert [int(code) for code in suback.reason_codes] == [1, 0x87]
    finally:
        client.stop()


def test_awscrt_mqtt5_refused_client_id_gets_connack_0x87(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    client = Crt5(emu, device, client_id=f"not-{device.client_id}").start()
    try:
        failure = client.failure.result(TIMEOUT)
        assert failure.connack_packet is not None
        assert failure.connack_packet.reason_code == mqtt5.ConnectReasonCode.NOT_AUTHORIZED
        assert not client.success.done()
    finally:
        client.stop()


def test_awscrt_mqtt5_takeover_disconnects_the_older_client_with_0x8e(
    emu: EmulatorThread, device: DeviceFiles
) -> None:
    first = Crt5(emu, device).start()
    second = Crt5(emu, device)
    try:
        first.connected()
        time.sleep(CONNECT_GAP_S)
        second.start().connected()
        dropped = first.disconnection.result(TIMEOUT)
        assert dropped.disconnect_packet is not None
        assert (
            dropped.disconnect_packet.reason_code == mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER
        )
        assert int(dropped.disconnect_packet.reason_code) == 0x8E
        first.stop()  # before its reconnect would take the id back
        assert not second.disconnection.done()
    finally:
        first.stop()
        second.stop()
