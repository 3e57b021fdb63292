"""Shared pieces of the fleet-provisioning tests: policies, templates, a claim identity made
through the emulator's boto3 control plane, and a paho-mqtt client for the MQTT API."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.keys import KeyType, generate_private_key, private_key_to_pem
from fleet_sim.tls.subject import DeviceSubject
from tests.support.emulator_thread import EmulatorThread

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/FleetProvisioningRole"
TIMEOUT = 10.0
#: How long a test waits to be sure a message does NOT arrive.
SILENCE_S = 0.5

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test in this process uses."""
    return f"{prefix}-{next(_counter)}"


def hook_arn(name: str) -> str:
    """The ARN of a (locally played) pre-provisioning Lambda."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def claim_policy(*templates: str, receive: bool = True) -> str:
    """The claim certificate's policy of §3.3: connect, and the fleet-provisioning topics of
    ``templates`` only (``receive=False`` leaves out ``iot:Receive``)."""
    topics = ["$aws/certificates/create/*", "$aws/certificates/create-from-csr/*"]
    topics += [f"$aws/provisioning-templates/{name}/provision/*" for name in templates]
    actions = ["iot:Publish", "iot:Receive"] if receive else ["iot:Publish"]
    return _policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"},
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"{ARN}:topic/{topic}" for topic in topics],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{ARN}:topicfilter/{topic}" for topic in topics],
            },
        ]
    )


def device_policy() -> str:
    """What a provisioned device may do: connect as its thing, use ``devices/<thing>/…``."""
    return _policy(
        [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": f"{ARN}:topic/devices/${{iot:Connection.Thing.ThingName}}/*",
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{ARN}:topicfilter/devices/${{iot:Connection.Thing.ThingName}}/*",
            },
        ]
    )


def fleet_template(policy_name: str) -> str:
    """AWS's fleet-provisioning example, shortened: a thing named from SerialNumber, the
    token's certificate activated, a named policy, and a device configuration."""
    return json.dumps(
        {
            "Parameters": {
                "SerialNumber": {"Type": "String"},
                "AWS::IoT::Certificate::Id": {"Type": "String"},
            },
            "Resources": {
                "thing": {
                    "Type": "AWS::IoT::Thing",
                    "Properties": {
                        "ThingName": {"Fn::Join": ["", ["device-", {"Ref": "SerialNumber"}]]},
                        "AttributePayload": {"serial": {"Ref": "SerialNumber"}},
                    },
                },
                "certificate": {
                    "Type": "AWS::IoT::Certificate",
                    "Properties": {
                        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                        "Status": "Active",
                    },
                },
                "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": policy_name}},
            },
            "DeviceConfiguration": {
                "FallbackUrl": "https://www.example.com/test-site",
                "LocationUrl": {
                    "Fn::Join": ["", ["https://example.com/", {"Ref": "SerialNumber"}]]
                },
            },
        }
    )


@dataclass(frozen=True)
class Identity:
    """Certificate and key files for one MQTT client."""

    certificate_id: str
    certificate: Path
    key: Path


def write_identity(directory: Path, name: str, certificate_pem: str, key_pem: str) -> Identity:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_text(certificate_pem)
    key.write_text(key_pem)
    return Identity("", cert, key)


def create_claim(iot: Any, directory: Path, policy_document: str) -> Identity:
    """A claim certificate made by CreateKeysAndCertificate, ACTIVE, with its own policy."""
    created = iot.create_keys_and_certificate(setAsActive=True)
    policy = unique("claim-policy")
    iot.create_policy(policyName=policy, policyDocument=policy_document)
    iot.attach_policy(policyName=policy, target=created["certificateArn"])
    files = write_identity(
        directory, unique("claim"), created["certificatePem"], created["keyPair"]["PrivateKey"]
    )
    return Identity(created["certificateId"], files.certificate, files.key)


def create_template(iot: Any, body: str, *, enabled: bool = True, hook: str | None = None) -> str:
    """A FLEET_PROVISIONING template (optionally with a pre-provisioning hook); its name."""
    name = unique("fleet")
    extra: dict[str, Any] = {}
    if hook is not None:
        extra["preProvisioningHook"] = {"payloadVersion": "2020-04-01", "targetArn": hook}
    iot.create_provisioning_template(
        templateName=name,
        templateBody=body,
        provisioningRoleArn=ROLE_ARN,
        enabled=enabled,
        **extra,
    )
    return name


def new_csr(common_name: str) -> tuple[str, str]:
    """A fresh EC key (PEM) and its CSR (PEM)."""
    key = generate_private_key(KeyType.EC_P256)
    csr = csr_to_pem(create_csr(key, DeviceSubject(common_name=common_name))).decode()
    return private_key_to_pem(key).decode(), csr


class FleetClient:
    """A paho-mqtt client (MQTT 5 by default) with what its callbacks saw."""

    def __init__(
        self, emu: EmulatorThread, identity: Identity, *, client_id: str, version: int = 5
    ) -> None:
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        self.client.tls_set(
            ca_certs=emu.info.ca_file,
            certfile=str(identity.certificate),
            keyfile=str(identity.key),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.emu = emu
        self._lock = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.connected = threading.Event()
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))
            self._lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, codes, properties=None) -> None:
        with self._lock:
            self.subacks[mid] = list(codes)
            self._lock.notify_all()

    def _on_publish(self, client, userdata, mid, code, properties=None) -> None:
        with self._lock:
            self.pubacks[mid] = code
            self._lock.notify_all()

    def start(self) -> FleetClient:
        self.client.connect(self.emu.info.endpoint, self.emu.info.port, keepalive=60)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _wait(self, predicate, timeout: float = TIMEOUT) -> bool:
        with self._lock:
            return bool(self._lock.wait_for(predicate, timeout))

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        _, mid = self.client.subscribe([(topic, 1) for topic in topics])
        assert mid is not None
        assert self._wait(lambda: mid in self.subacks), "no SUBACK"
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> ReasonCode | None:
        """Publish and, for QoS 1, wait for the PUBACK (its reason code)."""
        info = self.client.publish(topic, payload, qos=qos)
        if qos == 0:
            return None
        assert self._wait(lambda: info.mid in self.pubacks), "no PUBACK"
        return self.pubacks[info.mid]

    def next_message(self, topic_prefix: str, timeout: float = TIMEOUT) -> tuple[str, bytes]:
        """The first message on a topic starting with ``topic_prefix`` (consumed)."""

        def find() -> int | None:
            for index, (topic, _) in enumerate(self.messages):
                if topic.startswith(topic_prefix):
                    return index
            return None

        assert self._wait(lambda: find() is not None, timeout), f"nothing on {topic_prefix}"
        with self._lock:
            index = find()
            assert index is not None
            return self.messages.pop(index)

    def request(self, topic: str, body: dict[str, Any] | None = None) -> tuple[str, Any]:
        """Publish a JSON request and return its reply: ``("accepted"|"rejected", body)``."""
        payload = json.dumps(body if body is not None else {})
        code = self.publish(topic, payload)
        assert code is not None
        assert not code.is_failure, code
        reply_topic, reply = self.next_message(f"{topic}/")
        return reply_topic.rsplit("/", 1)[1], json.loads(reply)

    def silent(self, topic_prefix: str, seconds: float = SILENCE_S) -> bool:
        """Whether nothing arrives on ``topic_prefix`` within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if any(topic.startswith(topic_prefix) for topic, _ in self.messages):
                    return False
            time.sleep(0.02)
        return True


@contextmanager
def fleet_client(
    emu: EmulatorThread, identity: Identity, *, client_id: str | None = None, version: int = 5
) -> Iterator[FleetClient]:
    client = FleetClient(emu, identity, client_id=client_id or unique("claim"), version=version)
    client.start()
    try:
        yield client
    finally:
        client.stop()


def subscribe_replies(client: FleetClient, request_topic: str) -> None:
    """Subscribe to a request's accepted and rejected topics (before publishing, as AWS says)."""
    codes = client.subscribe(f"{request_topic}/accepted", f"{request_topic}/rejected")
    assert all(not code.is_failure for code in codes), codes


CREATE = "$aws/certificates/create/json"
CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json"


def provision_topic(template: str, fmt: str = "json") -> str:
    return f"$aws/provisioning-templates/{template}/provision/{fmt}"


def create_keys(client: FleetClient) -> dict[str, Any]:
    subscribe_replies(client, CREATE)
    outcome, body = client.request(CREATE)
    assert outcome == "accepted", body
    return dict(body)


def register(
    client: FleetClient, template: str, token: str, parameters: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    topic = provision_topic(template)
    subscribe_replies(client, topic)
    body: dict[str, Any] = {"certificateOwnershipToken": token}
    if parameters is not None:
        body["parameters"] = parameters
    return client.request(topic, body)


def rejection(status: int, code: str) -> Any:
    class Matches:
        def __eq__(self, other: object) -> bool:
            return (
                isinstance(other, dict)
                and other.get("statusCode") == status
                and other.get("errorCode") == code
                and isinstance(other.get("errorMessage"), str)
                and set(other) == {"statusCode", "errorCode", "errorMessage"}
            )

        def __repr__(self) -> str:
            return f"<rejection {status} {code}>"

    return Matches()


def fleet_stats(emu: EmulatorThread) -> Any:
    return emu.call(lambda: emu.emulator.fleet_provisioning.stats)
