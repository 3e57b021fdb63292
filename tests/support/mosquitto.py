"""A real mosquitto broker with mutual TLS, started for one test on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fleet_sim.tls.ca import CertificateAuthority, LeafPurpose
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.pem_files import write_identity
from fleet_sim.tls.subject import DeviceSubject
from tests.conftest import require_binary
from tests.support.devices import now_utc


@dataclass(frozen=True)
class MosquittoBroker:
    host: str
    port: int
    ca_file: Path
    ca: CertificateAuthority


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def mosquitto_tls(directory: Path, *, tls_version: str = "tlsv1.2") -> Iterator[MosquittoBroker]:
    """mosquitto on 127.0.0.1 requiring client certificates signed by a fresh test CA."""
    binary = require_binary("mosquitto")
    ca = CertificateAuthority.create_root(
        DeviceSubject(common_name="mosquitto test CA"), KeyType.EC_P256, 30, now_utc()
    )
    server = ca.issue_identity(
        DeviceSubject(common_name="localhost"),
        KeyType.EC_P256,
        30,
        now_utc(),
        purpose=LeafPurpose.SERVER,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    files = write_identity(server, directory, "mosquitto-server")
    ca_file = directory / "mosquitto-ca.pem"
    ca_file.write_bytes(ca.certificate_pem())
    port = _free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "user root",
                "persistence false",
                "allow_anonymous true",
                f"listener {port} 127.0.0.1",
                f"cafile {ca_file}",
                f"certfile {files.certificate}",
                f"keyfile {files.private_key}",
                "require_certificate true",
                "use_identity_as_username true",
                f"tls_version {tls_version}",
                "",
            ]
        )
    )
    log = (directory / "mosquitto.log").open("w")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mosquitto did not start: {(directory / 'mosquitto.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield MosquittoBroker("127.0.0.1", port, ca_file, ca)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
