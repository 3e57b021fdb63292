"""Fixtures of the engine benchmark: test CA, per-device PEM files, mosquitto capped at TLS 1.2.

The CA and identities live under the benchmark cache (``/tmp/fleetsim-bench-cache``; the same CA
and identity spec as the broker benchmark, so both reuse one cache). Each device gets one
combined PEM (certificate then key, nothing else; for ``ssl.load_cert_chain``) and the two
apart (awscrt does not read a combined file) under ``engine-pems/``, written once.

mosquitto 2.0's ``tls_version tlsv1.2`` is only a minimum: it would negotiate TLS 1.3. The
broker is capped at 1.2 through its own OpenSSL configuration (``OPENSSL_CONF`` naming a file
whose ``system_default`` section says ``MaxProtocol = TLSv1.2``), which also caps the clients
that cannot cap themselves (awscrt). :func:`negotiated_version` checks the cap took.

Also here: ``/proc`` readers for CPU and RSS, and the RLIMIT_NOFILE raise every process does.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet_sim.tls.bulk import IdentitySpec, build_identities, cache_path_for
from fleet_sim.tls.ca import CertificateAuthority, LeafPurpose
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import PendingFile, write_files
from fleet_sim.tls.subject import DeviceSubject

DEFAULT_CACHE = Path("/tmp/fleetsim-bench-cache")
MOSQUITTO = "/usr/sbin/mosquitto"
SERVER_NAME = "localhost"
HOST = "127.0.0.1"
#: The broker benchmark's spec: same CA + spec = one shared identity cache.
SPEC = IdentitySpec("bench-{index:06d}", KeyType.EC_P256, DeviceSubject(organization="Bench"))
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
#: File descriptors mosquitto needs besides its clients (listener, log, epoll, ...).
BROKER_FD_MARGIN = 64

_TLS12_CAP = """openssl_conf = fleetsim_bench
[fleetsim_bench]
ssl_conf = fleetsim_ssl
[fleetsim_ssl]
system_default = fleetsim_system_default
[fleetsim_system_default]
MinProtocol = TLSv1.2
MaxProtocol = TLSv1.2
"""


@dataclass(frozen=True, slots=True)
class Fixture:
    """The CA, the server identity and the device PEM directory."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    pem_dir: Path
    count: int

    def pem_file(self, index: int) -> Path:
        """Device ``index``'s combined PEM (certificate then private key)."""
        return self.pem_dir / f"{index}.pem"

    def cert_file(self, index: int) -> Path:
        """Device ``index``'s certificate alone (awscrt wants certificate and key apart)."""
        return self.pem_dir / f"{index}.crt"

    def key_file(self, index: int) -> Path:
        """Device ``index``'s private key alone."""
        return self.pem_dir / f"{index}.key"

    @staticmethod
    def client_id(index: int) -> str:
        """Device ``index``'s client id (its certificate CN)."""
        return SPEC.common_name(index)


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return it (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def prepare(cache: Path, count: int, workdir: Path, log: object = print) -> Fixture:
    """Make (or reuse) the CA and ``count`` device PEMs; issue a server cert into ``workdir``."""
    now = datetime.now(UTC)
    cache.mkdir(parents=True, exist_ok=True)
    ca = _load_or_create_ca(cache / "ca", now)
    entries = cache_path_for(cache / "identities", ca, SPEC)
    pem_dir = cache / "engine-pems" / entries.parent.name / entries.name
    _write_pems(ca, pem_dir, count, cache / "identities", now, log)
    server = ca.issue_identity(
        DeviceSubject(common_name=SERVER_NAME),
        KeyType.EC_P256,
        2,
        now,
        purpose=LeafPurpose.SERVER,
        dns_names=[SERVER_NAME],
        ip_addresses=[HOST],
    )
    server_cert, server_key = workdir / "server.pem", workdir / "server.key"
    write_files(
        [
            PendingFile(server_cert, server.chain_bundle()),
            PendingFile(server_key, server.private_key_pem, secret=True),
        ],
        force=True,
        durable=False,
    )
    return Fixture(cache / "ca" / "ca.pem", server_cert, server_key, pem_dir, count)


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


def _write_pems(
    ca: CertificateAuthority,
    pem_dir: Path,
    count: int,
    identity_cache: Path,
    now: datetime,
    log: object,
) -> None:
    marker = pem_dir / "count"
    with contextlib.suppress(OSError, ValueError):
        if int(marker.read_text()) >= count:
            if callable(log):
                log(f"identities: {count} cached device PEMs reused from {pem_dir}")
            return
    began = time.perf_counter()
    result = build_identities(
        ca, SPEC, count, now=now, workers=os.cpu_count() or 1, cache_dir=identity_cache
    )
    pem_dir.mkdir(parents=True, exist_ok=True)
    for index, identity in enumerate(result.identities):
        for suffix, data in (
            (".pem", identity.certificate_pem + identity.private_key_pem),
            (".crt", identity.certificate_pem),
            (".key", identity.private_key_pem),
        ):
            path = pem_dir / f"{index}{suffix}"
            if not path.exists():
                path.write_bytes(data)
                path.chmod(0o600)
    marker.write_text(str(count))
    if callable(log):
        log(
            f"identities: {result.reused} cached, {result.generated} generated, PEMs written "
            f"in {time.perf_counter() - began:.1f} s"
        )


# --------------------------------------------------------------------------- mosquitto


@dataclass(frozen=True, slots=True)
class Broker:
    """A running mosquitto."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """mosquitto's process id."""
        return self.process.pid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def mosquitto(fixture: Fixture, workdir: Path, name: str = "mosquitto") -> Iterator[Broker]:
    """mosquitto with mutual TLS capped at 1.2 on a free loopback port; always stopped."""
    port = _free_port()
    cap = workdir / "openssl-tls12.cnf"
    cap.write_text(_TLS12_CAP)
    conf = workdir / f"{name}.conf"
    conf.write_text(
        "\n".join(
            [
                "user root",
                "persistence false",
                "allow_anonymous true",
                "max_connections -1",
                "max_inflight_messages 100",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "connection_messages false",
                f"listener {port} {HOST}",
                f"cafile {fixture.ca_file}",
                f"certfile {fixture.server_cert}",
                f"keyfile {fixture.server_key}",
                "require_certificate true",
                "tls_version tlsv1.2",
                "",
            ]
        )
    )
    env = {**os.environ, "OPENSSL_CONF": str(cap)}
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log, env=env)
    try:
        _wait_for_port(port, process, log_path)
        yield Broker(port, process)
    finally:
        _stop(process)


@contextlib.contextmanager
def brokers(fixture: Fixture, workdir: Path, count: int) -> Iterator[list[Broker]]:
    """``count`` mosquittos (to spread more connections than one process has descriptors)."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(mosquitto(fixture, workdir, f"mosquitto-{i}")) for i in range(count)
        ]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not start: {log.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def negotiated_version(fixture: Fixture, port: int) -> str | None:
    """The TLS version a client that allows 1.3 gets from the broker (must be TLSv1.2)."""
    context = ssl.create_default_context(cafile=str(fixture.ca_file))
    context.load_cert_chain(str(fixture.pem_file(0)))
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        return tls.version()


# --------------------------------------------------------------------------- /proc readers

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """user + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def listen_drops() -> int:
    """TcpExt ListenDrops of this network namespace: SYNs dropped by full accept queues.

    mosquitto listens with a backlog of 100; a burst of more connects than that costs each
    dropped one a 1 s SYN retransmission, which shows as a ~1 s latency tail.
    """
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=False))["ListenDrops"])
    return 0


def mosquitto_version() -> str:
    """``mosquitto version 2.0.11`` or similar."""
    out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, check=False, timeout=10)
    return (out.stdout or out.stderr).decode(errors="replace").splitlines()[0].strip()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def spread(total: int, parts: Sequence[int]) -> list[int]:
    """Which part each of ``total`` items goes to, round robin over ``parts``."""
    return [parts[i % len(parts)] for i in range(total)]
