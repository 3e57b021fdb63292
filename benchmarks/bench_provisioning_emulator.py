"""JITP and JITR throughput of the emulator: provisioned devices per second, and the
emulator's CPU per provisioned device.

Each device does what a real one does: connect with a certificate the emulator does not know
(dropped without CONNACK while it is auto-registered), retry with exponential backoff (from
``--retry-s``, doubling, capped at 1 s; AWS advises firmware to reconnect after a short delay)
until the CONNACK, disconnect. JITP runs a template (thing named by the CN, certificate
ACTIVE, a per-thing policy); JITR publishes the registered event to a local rule running the
reference activator (:mod:`fleet_sim.lambdas.jitr_activator`, boto3 against the emulator's
control plane).

The emulator runs on its own loop in a background thread; the devices on the main thread's
loop; the activator in the rule's thread pool. CPU is per thread
(``pthread_getcpuclockid``): "emulator" is the emulator loop's thread (TLS, gateway, broker,
registry, JITP, and for JITR the control-plane HTTP API the activator calls); "activator" is
the handler's own CPU (boto3). By default AWS's JITP throttle (RegisterThing 10 TPS) and the
broker quotas are off, to measure capacity; ``--aws-quota`` keeps the 10 TPS quota.

Run: ``python -m benchmarks.bench_provisioning_emulator [--devices 200] [--concurrency 50]``
(a few seconds per mode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fleet_sim.device.link import Endpoint
from fleet_sim.device.native import NativeConnection
from fleet_sim.device.tls_client import TlsSettings, client_context
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import AutoRegistrationConfig, BrokerLimits, EmulatorConfig
from fleet_sim.emulator.registry.models import RegistrationConfig
from fleet_sim.emulator.rules import LambdaContext
from fleet_sim.errors import ConnectionFailed
from fleet_sim.lambdas import jitr_activator
from fleet_sim.mqtt.client import ClientSession
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import IdentityFiles, write_identity
from fleet_sim.tls.subject import DeviceSubject
from fleet_sim.transport.tls_protocol import ReadBuffer

T = TypeVar("T")

ACCOUNT = "123456789012"
TEMPLATE = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}},
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyDocument": jitr_activator.DEFAULT_POLICY_DOCUMENT},
        },
    },
}


class EmulatorOnThread:
    """The emulator on its own loop in a background thread."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.emulator = Emulator(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> EmulatorOnThread:
        self.thread.start()
        self.run(self.emulator.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.emulator.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def cpu_s(self) -> float:
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))


@dataclass
class Result:
    mode: str
    devices: int
    wall_s: float
    emulator_cpu_s: float
    activator_cpu_s: float
    drops: int
    invocations: int

    def report(self) -> str:
        per = 1000 / self.devices
        line = (
            f"{self.mode:5} {self.devices} devices in {self.wall_s:.2f} s = "
            f"{self.devices / self.wall_s:6.1f} provisioned devices/s; emulator CPU "
            f"{self.emulator_cpu_s * per:.2f} ms/device; {self.drops / self.devices:.1f} "
            "dropped connects/device"
        )
        if self.invocations:
            line += (
                f"; activator {self.activator_cpu_s * per:.2f} ms CPU/device, "
                f"{self.invocations / self.devices:.2f} invocations/device"
            )
        return line


class CountingActivator:
    """The reference activator, with its thread CPU summed."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: LambdaContext) -> None:
        started = time.thread_time()
        try:
            jitr_activator.handler(event, context)
        finally:
            with self._lock:
                self.cpu_s += time.thread_time() - started
                self.calls += 1


def make_ca(name: str) -> CertificateAuthority:
    subject = DeviceSubject(common_name=name, organization="fleetsim bench")
    return CertificateAuthority.create_root(subject, KeyType.EC_P256, 30, datetime.now(tz=UTC))


def issue(ca: CertificateAuthority, names: list[str], directory: Path) -> list[IdentityFiles]:
    now = datetime.now(tz=UTC)
    return [
        write_identity(
            ca.issue_identity(DeviceSubject(common_name=name), KeyType.EC_P256, 30, now),
            directory,
            name,
            durable=False,
        )
        for name in names
    ]


async def onboard(
    info: Any, files: IdentityFiles, name: str, semaphore: asyncio.Semaphore, retry_s: float
) -> int:
    """Connect until CONNACK; returns the number of dropped attempts."""
    settings = TlsSettings(ca_file=Path(info.ca_file))
    context = client_context(settings, files.chain_bundle, files.private_key)
    drops = 0
    delay = retry_s
    async with semaphore:
        while True:
            session = ClientSession(name, keep_alive=60)
            where = Endpoint(info.host, info.port, server_name=info.endpoint)
            conn = NativeConnection(session, where, context, read_buffer=ReadBuffer())
            try:
                await conn.connect(timeout_s=30)
            except ConnectionFailed as error:
                if error.failure != "closed_before_connack":
                    raise
                drops += 1
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            await conn.disconnect()
            return drops


def run_mode(
    mode: str, devices: int, concurrency: int, retry_s: float, aws_quota: bool, base: Path
) -> Result:
    auto = AutoRegistrationConfig(
        jitp_latency_s=(0.0, 0.0),
        register_thing_tps=10.0 if aws_quota else None,
    )
    config = EmulatorConfig(
        port=0,
        data_dir=base / mode,
        limits=BrokerLimits.unlimited(),
        auto_registration=auto,
    )
    activator = CountingActivator()
    with EmulatorOnThread(config) as running:
        emulator = running.emulator
        info = emulator.info
        ca = make_ca(f"bench {mode} CA")
        registry = emulator.registry
        code = registry.cas.get_registration_code()
        verification = ca.verification_certificate(code, KeyType.EC_P256, datetime.now(tz=UTC))
        registry.cas.register(
            ca.certificate_pem(),
            now=time.time(),
            verification_pem=verification.certificate_pem,
            set_as_active=True,
            allow_auto_registration=True,
            registration_config=(
                RegistrationConfig(
                    template_body=json.dumps(TEMPLATE),
                    role_arn=f"arn:aws:iam::{ACCOUNT}:role/JITP",
                )
                if mode == "jitp"
                else None
            ),
        )
        if mode == "jitr":
            assert info.control_plane_url is not None
            os.environ.update(
                {
                    "AWS_ENDPOINT_URL_IOT": info.control_plane_url,
                    "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_REGION": "us-east-1",
                }
            )
            emulator.rules.add_rule(
                "$aws/events/certificates/registered/+", activator, name="jitr", concurrency=10
            )
        names = [f"{mode}-{index:05d}" for index in range(devices)]
        identities = issue(ca, names, base / f"{mode}-devices")

        async def everyone() -> list[int]:
            semaphore = asyncio.Semaphore(concurrency)
            return await asyncio.gather(
                *(
                    onboard(info, f, n, semaphore, retry_s)
                    for f, n in zip(identities, names, strict=True)
                )
            )

        cpu_before = running.cpu_s()
        started = time.perf_counter()
        drops = asyncio.run(everyone())
        wall = time.perf_counter() - started
        cpu = running.cpu_s() - cpu_before
    return Result(mode, devices, wall, cpu, activator.cpu_s, sum(drops), activator.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--retry-s", type=float, default=0.1, help="first retry delay")
    parser.add_argument("--aws-quota", action="store_true", help="keep RegisterThing's 10 TPS")
    parser.add_argument("--modes", default="jitp,jitr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetsim-bench-jit-") as directory:
        for mode in args.modes.split(","):
            result = run_mode(
                mode, args.devices, args.concurrency, args.retry_s, args.aws_quota, Path(directory)
            )
            print(result.report())


if __name__ == "__main__":
    main()
