"""Benchmark: device identities per second (EC P-256 vs RSA-2048; 1 vs N processes; cold vs
cached).

Run: ``python -m benchmarks.bench_identities [--ec-count 2000] [--rsa-count 12] [--workers N]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet_sim.tls.bulk import IdentitySpec, build_identities
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement."""

    key_type: KeyType
    mode: str
    workers: int
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        """Identities per second."""
        return self.count / self.seconds


def measure(
    ca: CertificateAuthority,
    key_type: KeyType,
    count: int,
    workers: int,
    cache_dir: Path | None,
    mode: str,
    now: datetime,
) -> Row:
    """Time one :func:`build_identities` call."""
    spec = IdentitySpec("bench-{index:06d}", key_type, DeviceSubject(organization="Bench"))
    began = time.perf_counter()
    result = build_identities(ca, spec, count, now=now, workers=workers, cache_dir=cache_dir)
    seconds = time.perf_counter() - began
    expected_reused = count if mode == "cached" else 0
    assert result.reused == expected_reused, (mode, result.reused)
    return Row(key_type, mode, workers, count, seconds)


def run(ec_count: int, rsa_count: int, workers: int) -> list[Row]:
    """Every combination, each cached run reading what its cold run wrote."""
    now = datetime.now(UTC)
    ca = CertificateAuthority.create_root(DeviceSubject("Bench CA"), KeyType.EC_P256, 30, now)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fleetsim-bench-") as temporary:
        for key_type, count in ((KeyType.EC_P256, ec_count), (KeyType.RSA_2048, rsa_count)):
            rows.append(measure(ca, key_type, count, 1, None, "cold", now))
            rows.append(measure(ca, key_type, count, workers, None, "cold", now))
            cache = Path(temporary) / key_type.value
            rows.append(measure(ca, key_type, count, 1, cache, "cold+cache write", now))
            rows.append(measure(ca, key_type, count, 1, cache, "cached", now))
    return rows


def main() -> None:
    """Parse arguments, run, print the table and the EC/RSA ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ec-count", type=int, default=2000)
    parser.add_argument("--rsa-count", type=int, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rows = run(args.ec_count, args.rsa_count, args.workers)
    print(f"{'key type':<10} {'mode':<18} {'procs':>5} {'count':>6} {'seconds':>8} {'ids/s':>10}")
    for row in rows:
        print(
            f"{row.key_type.value:<10} {row.mode:<18} {row.workers:>5} {row.count:>6} "
            f"{row.seconds:>8.3f} {row.rate:>10,.0f}"
        )
    ec = next(r for r in rows if r.key_type is KeyType.EC_P256 and r.workers == 1)
    rsa = next(r for r in rows if r.key_type is KeyType.RSA_2048 and r.workers == 1)
    print(f"EC P-256 / RSA-2048 cold generation, 1 process: {ec.rate / rsa.rate:,.0f}x")


if __name__ == "__main__":
    main()
