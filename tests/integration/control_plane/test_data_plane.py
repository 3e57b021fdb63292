"""Control-plane changes take effect on the data plane at once (real paho-mqtt over mutual
TLS): a certificate set INACTIVE is disconnected; a new default policy version governs the
next connection."""

from __future__ import annotations

import json
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.control_plane.helpers import ACCOUNT, REGION, unique

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


class Device:
    """A paho MQTT 5 client using a certificate made by CreateKeysAndCertificate."""

    def __init__(self, emu, created, directory: Path, client_id: str) -> None:
        cert, key = directory / f"{client_id}.crt", directory / f"{client_id}.key"
        cert.write_text(created["certificatePem"])
        key.write_text(created["keyPair"]["PrivateKey"])
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(
            ca_certs=emu.info.ca_file,
            certfile=str(cert),
            keyfile=str(key),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connect_rc: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.emu = emu

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connect_rc = rc
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, rc, properties=None):
        self.disconnected.set()

    def __enter__(self) -> Device:
        self.client.connect(self.emu.info.endpoint, self.emu.info.port, keepalive=60)
        self.client.loop_start()
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _policy(statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


CONNECT = {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}


def _credentials(iot, policy_name: str):
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=policy_name, target=created["certificateArn"])
    return created


def test_update_certificate_inactive_disconnects_the_device(iot, emu, tmp_path) -> None:
    policy = unique("connect")
    iot.create_policy(policyName=policy, policyDocument=_policy([CONNECT]))
    created = _credentials(iot, policy)
    with Device(emu, created, tmp_path, unique("dev")) as device:
        assert device.connected.wait(TIMEOUT)
        assert not device.connect_rc.is_failure
        assert not device.disconnected.is_set()
        iot.update_certificate(certificateId=created["certificateId"], newStatus="INACTIVE")
        assert device.disconnected.wait(TIMEOUT)


def test_a_new_default_policy_version_applies_to_the_next_connection(iot, emu, tmp_path) -> None:
    policy = unique("versioned")
    iot.create_policy(policyName=policy, policyDocument=_policy([CONNECT]))
    created = _credentials(iot, policy)
    with Device(emu, created, tmp_path, unique("first")) as device:
        assert device.connected.wait(TIMEOUT)
        assert not device.connect_rc.is_failure
    deny = {"Effect": "Deny", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}
    iot.create_policy_version(
        policyName=policy, policyDocument=_policy([CONNECT, deny]), setAsDefault=True
    )
    with Device(emu, created, tmp_path, unique("second")) as device:
        assert device.connected.wait(TIMEOUT)
        assert int(device.connect_rc.value) == 0x87  # Not authorized
