"""Benchmark: fleet provisioning by claim on the emulator, devices/s and emulator CPU per device.

One provisioned device = CreateKeysAndCertificate + RegisterThing over MQTT (JSON), exactly
the awsiotsdk flow: a fresh EC P-256 key and certificate signed by the emulator's device CA
(``PENDING_ACTIVATION``), then a FLEET_PROVISIONING template (a thing with an attribute, the
certificate activated, a named policy, a device configuration) applied in one registry
transaction. ``--connections`` claim connections (our native client, MQTT 3.1.1 over mutual
TLS) each provision devices back to back; the RegisterThing quota and the broker's rate
limits are off, so the emulator is the bottleneck.

The emulator runs in a child process (this script with ``--serve``); its CPU (user + system,
from ``/proc/<pid>/stat``) is read around the measured window, after a warm-up.

Run: ``python -m benchmarks.bench_fleet_provisioning_emulator [--devices 300]
[--connections 8] [--warmup 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet_sim.device.link import Endpoint
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.mqtt.packets import ProtocolVersion, Publish
from fleet_sim.transport.tls_protocol import ReadBuffer

ARN = "arn:aws:iot:us-east-1:123456789012"
ROLE_ARN = "arn:aws:iam::123456789012:role/FleetProvisioningRole"
TEMPLATE = "bench-fleet"
CREATE = "$aws/certificates/create/json"
PROVISION = f"$aws/provisioning-templates/{TEMPLATE}/provision/json"
TIMEOUT_S = 30.0


# ---------------------------------------------------------------------- the emulator process


async def _serve(data_dir: Path) -> None:
    from fleet_sim.emulator.app import Emulator
    from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig

    config = EmulatorConfig(
        port=0,
        data_dir=data_dir,
        limits=BrokerLimits.unlimited(),
        fleet_register_thing_tps=None,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Emulator(config) as emulator:
        print(emulator.info.to_json(), flush=True)
        await stop.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- set-up (boto3)


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _set_up(info: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    import boto3

    iot = boto3.client(
        "iot",
        endpoint_url=info["control_plane_url"],
        region_name=info["region"],
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - the emulator checks no signature
    )
    iot.create_policy(
        policyName="bench-device",
        policyDocument=_policy(
            [{"Effect": "Allow", "Action": "iot:*", "Resource": f"{ARN}:topic/devices/*"}]
        ),
    )
    template = {
        "Parameters": {"SerialNumber": {"Type": "String"}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Fn::Join": ["", ["bench-", {"Ref": "SerialNumber"}]]},
                    "AttributePayload": {"serial": {"Ref": "SerialNumber"}},
                },
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}},
            },
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "bench-device"}},
        },
        "DeviceConfiguration": {"Serial": {"Ref": "SerialNumber"}},
    }
    iot.create_provisioning_template(
        templateName=TEMPLATE,
        templateBody=json.dumps(template),
        provisioningRoleArn=ROLE_ARN,
        enabled=True,
    )
    topics = ["$aws/certificates/create/*", f"$aws/provisioning-templates/{TEMPLATE}/*"]
    claim_policy = _policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{ARN}:topic/{t}" for t in topics],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{ARN}:topicfilter/{t}" for t in topics],
            },
        ]
    )
    iot.create_policy(policyName="bench-claim", policyDocument=claim_policy)
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName="bench-claim", target=created["certificateArn"])
    cert, key = directory / "claim.crt", directory / "claim.key"
    cert.write_text(created["certificatePem"])
    key.write_text(created["keyPair"]["PrivateKey"])
    return cert, key


# ---------------------------------------------------------------------- the load


class Claimant:
    """One claim connection provisioning devices back to back."""

    def __init__(self, index: int, info: dict[str, Any], cert: Path, key: Path) -> None:
        self.client_id = f"claim-{index}"
        self.endpoint = Endpoint(info["host"], info["port"], server_name=info["endpoint"])
        self.context = client_context(TlsSettings(ca_file=Path(info["ca_file"])), cert, key)
        self.replies: asyncio.Queue[Publish] = asyncio.Queue()
        self.connection: NativeConnection | None = None

    async def start(self) -> None:
        session = ClientSession(self.client_id, version=ProtocolVersion.MQTT_3_1_1, keep_alive=60)
        self.connection = NativeConnection(
            session,
            self.endpoint,
            self.context,
            read_buffer=ReadBuffer(),
            on_message=self.replies.put_nowait,
        )
        await self.connection.connect(timeout_s=TIMEOUT_S)
        filters = [(f"{t}/{o}", 1) for t in (CREATE, PROVISION) for o in ("accepted", "rejected")]
        codes = await self.connection.subscribe(filters, timeout_s=TIMEOUT_S)
        assert all(code <= 1 for code in codes), codes

    async def _ask(self, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.connection is not None
        await self.connection.publish(topic, json.dumps(body).encode(), qos=1, timeout_s=TIMEOUT_S)
        reply = await asyncio.wait_for(self.replies.get(), TIMEOUT_S)
        if not reply.topic.endswith("/accepted"):
            raise RuntimeError(f"{reply.topic}: {reply.payload!r}")
        answer: dict[str, Any] = json.loads(reply.payload)
        return answer

    async def provision(self, serial: str) -> None:
        keys = await self._ask(CREATE, {})
        token = keys["certificateOwnershipToken"]
        body = {"certificateOwnershipToken": token, "parameters": {"SerialNumber": serial}}
        registered = await self._ask(PROVISION, body)
        assert registered["thingName"] == f"bench-{serial}"

    async def run(self, serials: asyncio.Queue[str]) -> None:
        while True:
            try:
                serial = serials.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self.provision(serial)

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.disconnect()


async def _load(claimants: list[Claimant], prefix: str, count: int) -> None:
    serials: asyncio.Queue[str] = asyncio.Queue()
    for index in range(count):
        serials.put_nowait(f"{prefix}{index:06d}")
    await asyncio.gather(*(claimant.run(serials) for claimant in claimants))


async def _measure(
    info: dict[str, Any], cert: Path, key: Path, pid: int, args: argparse.Namespace
) -> None:
    claimants = [Claimant(i, info, cert, key) for i in range(args.connections)]
    for claimant in claimants:
        await claimant.start()
    await _load(claimants, "warm", args.warmup)
    cpu0, client0, wall0 = _cpu_seconds(pid), time.process_time(), time.perf_counter()
    await _load(claimants, "dev", args.devices)
    wall1, client1, cpu1 = time.perf_counter(), time.process_time(), _cpu_seconds(pid)
    for claimant in claimants:
        await claimant.stop()
    wall = wall1 - wall0
    print(
        f"fleet provisioning on the emulator: {args.devices} devices "
        f"(CreateKeysAndCertificate + RegisterThing) over {args.connections} claim connections"
    )
    print(f"  devices/s                      {args.devices / wall:8.1f}")
    print(f"  emulator CPU per device (ms)   {(cpu1 - cpu0) / args.devices * 1000:8.2f}")
    print(f"  emulator CPU utilisation       {(cpu1 - cpu0) / wall * 100:7.0f} %")
    print(f"  load generator CPU/device (ms) {(client1 - client0) / args.devices * 1000:8.2f}")


def main() -> None:
    """Parse the options and run the benchmark (or, with ``--serve``, the emulator)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    with tempfile.TemporaryDirectory(prefix="fleetsim-bench-fleet-") as tmp:
        directory = Path(tmp)
        command = [sys.executable, "-m", "benchmarks.bench_fleet_provisioning_emulator"]
        log = (directory / "emulator.log").open("wb")
        process = subprocess.Popen(
            [*command, "--serve", str(directory / "emulator")],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError((directory / "emulator.log").read_text()[-2000:])
            info = json.loads(line)
            cert, key = _set_up(info, directory)
            asyncio.run(_measure(info, cert, key, process.pid, args))
        finally:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


if __name__ == "__main__":
    main()
