"""Fixtures of the broker benchmark: one test CA, cached device identities, the emulator's
registry with every device registered, and the two brokers under test as subprocesses.

Everything slow is cached under one directory (``/tmp/fleetsim-bench-cache`` by default) so a
rerun starts in seconds: the test CA, the device identities (:mod:`fleet_sim.tls.bulk`'s disk
cache, whose entry files are also what the load generator hands to OpenSSL), and the emulator's
data directory (its PKI and a registry holding the CA, the policy and N registered devices).

Both brokers present the emulator's own server certificate and key (EC P-256) and trust the
same test CA; clients trust the emulator's root CA for both.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet_sim.emulator.pki import EmulatorPki
from fleet_sim.emulator.registry.models import CertificateStatus
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.tls.bulk import IdentitySpec, build_identities, cache_path_for
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import PendingFile, write_files
from fleet_sim.tls.subject import DeviceSubject

DEFAULT_CACHE = Path("/tmp/fleetsim-bench-cache")
MOSQUITTO = "/usr/sbin/mosquitto"
REGION, ACCOUNT = "us-east-1", "123456789012"
POLICY_NAME = "bench-policy"
SPEC = IdentitySpec("bench-{index:06d}", KeyType.EC_P256, DeviceSubject(organization="Bench"))
REGISTER_BATCH = 500
START_TIMEOUT_S = 60.0


def bench_policy() -> str:
    """Connect as the attached thing; publish, receive and subscribe under ``bench/``."""
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": f"{arn}:client/${{iot:Connection.Thing.ThingName}}",
                },
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": f"{arn}:topic/bench/*",
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": f"{arn}:topicfilter/bench/*",
                },
            ],
        }
    )


@dataclass(frozen=True, slots=True)
class Device:
    """One device: its client id (= thing name = CN) and a file holding cert and key."""

    client_id: str
    key_file: Path


@dataclass(frozen=True, slots=True)
class Fixture:
    """What the brokers and the load generator share."""

    devices: tuple[Device, ...]
    ca_file: Path
    root_ca_file: Path
    server_cert: Path
    server_key: Path
    emulator_dir: Path


def raise_nofile() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def prepare(cache: Path, count: int, log: object = print) -> Fixture:
    """Make (or reuse) the CA, ``count`` identities and the emulator's registered registry."""
    now = datetime.now(UTC)
    cache.mkdir(parents=True, exist_ok=True)
    ca = _load_or_create_ca(cache / "ca", now)
    began = time.perf_counter()
    result = build_identities(
        ca, SPEC, count, now=now, workers=os.cpu_count() or 1, cache_dir=cache / "identities"
    )
    entries = cache_path_for(cache / "identities", ca, SPEC)
    _say(log, f"identities: {result.reused} cached, {result.generated} generated "
         f"in {time.perf_counter() - began:.1f} s")
    devices = tuple(
        Device(SPEC.common_name(i), entries / f"{i}.pem") for i in range(count)
    )
    emulator_dir = cache / "emulator"
    pki = EmulatorPki.load_or_create(emulator_dir / "pki", endpoint="localhost", now=now)
    _register(emulator_dir, ca, [ident.certificate_pem for ident in result.identities], log)
    return Fixture(
        devices=devices,
        ca_file=cache / "ca" / "ca.pem",
        root_ca_file=pki.root_ca_file,
        server_cert=pki.server_certificate_file,
        server_key=pki.server_key_file,
        emulator_dir=emulator_dir,
    )


def _say(log: object, text: str) -> None:
    if callable(log):
        log(text)


def _load_or_create_ca(directory: Path, now: datetime) -> CertificateAuthority:
    cert, key = directory / "ca.pem", directory / "ca.key"
    if cert.exists() and key.exists():
        return CertificateAuthority.from_files(cert, key, now)
    ca = CertificateAuthority.create_root(
        DeviceSubject(common_name="fleetsim bench CA", organization="Bench"),
        KeyType.EC_P256,
        3650,
        now,
    )
    write_files(
        [
            PendingFile(key, ca.private_key_pem(), secret=True),
            PendingFile(cert, ca.certificate_pem()),
        ],
        force=True,
    )
    return ca


def _register(emulator_dir: Path, ca: CertificateAuthority, pems: list[bytes], log: object) -> None:
    """Register the CA, the policy and every device not yet registered (ACTIVE, thing)."""
    marker = emulator_dir / "bench-registered.json"
    done = 0
    if marker.exists():
        previous = json.loads(marker.read_text())
        if previous.get("ca") == ca.certificate_id:
            done = int(previous["count"])
    if done >= len(pems):
        return
    began = time.perf_counter()
    registry = Registry.open(emulator_dir / "registry.sqlite3", region=REGION, account_id=ACCOUNT)
    try:
        if done == 0:
            _register_ca_and_policy(registry, ca)
        ca_pem = ca.certificate_pem()
        for start in range(done, len(pems), REGISTER_BATCH):
            with registry.transaction():
                for index in range(start, min(start + REGISTER_BATCH, len(pems))):
                    _register_device(registry, ca_pem, SPEC.common_name(index), pems[index])
            registered = min(start + REGISTER_BATCH, len(pems))
            marker.write_text(json.dumps({"ca": ca.certificate_id, "count": registered}))
    finally:
        registry.close()
    count = len(pems) - done
    _say(log, f"registered {count} devices in {time.perf_counter() - began:.1f} s")


def _register_ca_and_policy(registry: Registry, ca: CertificateAuthority) -> None:
    if registry.ca_by_id(ca.certificate_id) is None:
        code = registry.cas.get_registration_code()
        verification = ca.verification_certificate(code, KeyType.EC_P256, datetime.now(UTC))
        registry.cas.register(
            ca.certificate_pem(),
            now=time.time(),
            verification_pem=verification.certificate_pem,
            set_as_active=True,
        )
    if registry.policies.get(POLICY_NAME) is None:
        registry.policies.create(POLICY_NAME, bench_policy(), now=time.time())


def _register_device(registry: Registry, ca_pem: bytes, name: str, pem: bytes) -> None:
    record = registry.certificates.register(
        pem, now=time.time(), ca_certificate_pem=ca_pem, status=CertificateStatus.ACTIVE
    )
    registry.attachments.attach_policy(POLICY_NAME, record.arn)
    if registry.thing(name) is None:
        registry.things.create(name)
    registry.attachments.attach_thing_principal(name, record.arn)


# --------------------------------------------------------------------------- broker processes


@dataclass(frozen=True, slots=True)
class BrokerProcess:
    """A running broker under test."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The broker's process id (the process whose CPU and RSS are measured)."""
        return self.process.pid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mosquitto_version() -> str:
    """``mosquitto version 2.0.11`` or similar."""
    out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, check=False, timeout=10)
    return (out.stdout or out.stderr).decode(errors="replace").splitlines()[0].strip()


@contextlib.contextmanager
def mosquitto(
    fixture: Fixture, workdir: Path, extra: tuple[str, ...] = ()
) -> Iterator[BrokerProcess]:
    """Run mosquitto with mutual TLS on a free port (plus ``extra`` config lines); stopped on
    exit."""
    port = _free_port()
    lines = [
        "per_listener_settings false",
        "persistence false",
        "allow_anonymous true",
        "max_connections -1",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "connection_messages false",
        f"listener {port} 127.0.0.1",
        f"cafile {fixture.ca_file}",
        f"certfile {fixture.server_cert}",
        f"keyfile {fixture.server_key}",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        *extra,
    ]
    if os.geteuid() == 0:
        lines.insert(0, f"user {pwd.getpwuid(os.getuid()).pw_name}")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = (workdir / "mosquitto.log").open("wb")
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        _wait_for_port(port, process, workdir / "mosquitto.log")
        yield BrokerProcess("mosquitto", port, process)
    finally:
        _stop(process)
        log.close()


@contextlib.contextmanager
def emulator(
    fixture: Fixture, workdir: Path, python_path: str | None = None
) -> Iterator[BrokerProcess]:
    """Run ``python -m fleet_sim emulator --no-limits`` on a free port; stopped on exit.

    ``python_path`` is put first on the emulator's PYTHONPATH (to measure a patched copy of
    ``fleet_sim`` against the same generator)."""
    command = [
        sys.executable, "-m", "fleet_sim", "emulator",
        "--port", "0", "--data-dir", str(fixture.emulator_dir), "--no-limits",
    ]  # fmt: skip
    log = (workdir / "emulator.log").open("wb")
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (python_path, env.get("PYTHONPATH")) if p)
    # cwd: with ``-m``, the current directory comes first on sys.path (before PYTHONPATH).
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=workdir
    )
    try:
        port = _read_ready_line(process, workdir / "emulator.log")
        yield BrokerProcess("emulator", port, process)
    finally:
        _stop(process)
        log.close()


def _read_ready_line(process: subprocess.Popen[bytes], log: Path) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            with contextlib.suppress(ValueError):
                return int(json.loads(line)["port"])
    raise RuntimeError(f"the emulator did not start; see {log}:\n{_tail(log)}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not start; see {log}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    if process.stdout is not None:
        process.stdout.close()
