"""Provisioning-template engine speed: µs to parse, to render the reference §1.5 JITP template
for one device, and to apply one device's plan to the registry (JITP: a PENDING_ACTIVATION
certificate becomes ACTIVE, the thing is created with its type, attributes and 2 groups, the
policy named by its hash is reused and attached, thing and certificate are attached).

Run: ``python -m benchmarks.bench_templates`` (a few seconds).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fleet_sim.emulator.provisioning import apply_plan
from fleet_sim.emulator.registry import Registry
from fleet_sim.provisioning import (
    ProvisioningPlan,
    jitp_parameters,
    parse_template,
    render_template,
)
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.inspect import certificate_to_pem
from fleet_sim.tls.keys import KeyType, generate_private_key
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.provisioning.examples import JITP  # the §1.5 template, as the tests use it

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEVICES = 400


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def _apply_us(registry: Registry) -> float:
    """Register DEVICES pending certificates (not timed), then time applying their plans."""
    subject = DeviceSubject(common_name="Bench CA", country="US")
    ca = CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, NOW)
    registry.cas.register(
        ca.certificate_pem(), now=0.0, set_as_active=True, certificate_mode="SNI_ONLY"
    )
    registry.thing_types.create("lightBulb-versionA", now=0.0)
    for group in ("v1-lightbulbs", "DE"):
        registry.thing_groups.create(group, now=0.0)
    template = parse_template(JITP)
    key = generate_private_key(KeyType.EC_P256)  # one key: only the certificates differ
    plans: list[ProvisioningPlan] = []
    for i in range(DEVICES):
        fields = DeviceSubject(common_name=f"bulb-{i:05d}", country="DE", serial_number=f"SN{i}")
        pem = certificate_to_pem(ca.issue(key.public_key(), fields, 365, NOW))
        cert = registry.certificates.register(pem, now=0.0, status="PENDING_ACTIVATION")
        values = jitp_parameters(cert.certificate_id, cert.subject_fields)
        plans.append(render_template(template, values))
    start = time.perf_counter()
    for plan in plans:
        apply_plan(registry, plan, now=1.0)
    return (time.perf_counter() - start) / DEVICES * 1e6


def main() -> None:
    rows: list[tuple[str, float]] = []
    rows.append(("parse_template (§1.5 JITP)", _per_call_us(lambda: parse_template(JITP), 2_000)))
    template = parse_template(JITP)
    rng = random.Random(1)
    values = [
        jitp_parameters(
            f"{rng.getrandbits(256):064x}",
            DeviceSubject(common_name=f"bulb-{i}", country="DE", serial_number=f"SN{i}"),
        )
        for i in range(1_000)
    ]
    counter = iter(range(10**9))

    def render() -> object:
        return render_template(template, values[next(counter) % len(values)])

    rows.append(("render_template per device (§1.5 JITP)", _per_call_us(render, 50_000)))
    with Registry.open(":memory:") as registry:
        rows.append((f"apply_plan per device, in-memory registry ({DEVICES})", _apply_us(registry)))
    with tempfile.TemporaryDirectory() as tmp, Registry.open(Path(tmp) / "r.db") as registry:
        rows.append((f"apply_plan per device, SQLite file, WAL ({DEVICES})", _apply_us(registry)))
    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:10.1f} µs")


if __name__ == "__main__":
    main()
