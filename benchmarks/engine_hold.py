"""Held connections, measured in a fresh process: N idle native-engine devices and their RSS.

Run by ``bench_engine`` as ``python -m benchmarks.engine_hold <json>`` so the RSS baseline is a
process that never held identities or other stacks' state. Steps, each RSS (VmRSS) sampled
after ``gc.collect()``: start (imports, engine) → every device prepared (one SSLContext each)
→ every device connected (at most ``in_flight`` connecting at once, at most ``rate`` new
connects per second) and idle for ``idle_s``. Prints one JSON line with the figures, then waits
for a line on stdin (the driver samples the brokers' RSS meanwhile) before disconnecting.
Devices are spread round robin over the given broker ports (one mosquitto cannot take more
connections than its descriptor limit).
"""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.engine_fixtures import HOST, SERVER_NAME, SPEC, cpu_seconds, raise_nofile, rss_kib
from fleet_sim.device.link import DeviceLink, Endpoint, LinkSpec
from fleet_sim.device.native_engine import NativeDevice, NativeEngine
from fleet_sim.errors import FleetSimError

CONNECT_TIMEOUT_S = 30.0
RELEASE_WAIT_S = 120.0


def _rss() -> int:
    gc.collect()
    return rss_kib()


async def hold(config: dict[str, Any]) -> dict[str, Any]:
    """Prepare, connect and hold ``config["count"]`` devices; return the figures."""
    count, in_flight, rate = int(config["count"]), int(config["in_flight"]), config["rate"]
    pem_dir, ca_file = Path(config["pem_dir"]), Path(config["ca_file"])
    ports: list[int] = config["ports"]
    engine = NativeEngine()
    rss_start = _rss()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    devices: list[NativeDevice] = [
        engine.prepare(
            LinkSpec(
                client_id=SPEC.common_name(i),
                endpoint=Endpoint(HOST, ports[i % len(ports)], SERVER_NAME),
                certificate_file=pem_dir / f"{i}.pem",
                key_file=None,
                ca_file=ca_file,
                max_tls_version=ssl.TLSVersion.TLSv1_2,
            )
        )
        for i in range(count)
    ]
    prep_cpu, prep_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rss_prepared = _rss()

    slots = asyncio.Semaphore(in_flight)
    links: list[DeviceLink] = []
    failures: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def connect(index: int) -> None:
        if rate:
            await asyncio.sleep(max(0.0, began + index / rate - loop.time()))
        async with slots:
            link = devices[index].new_link(None)
            try:
                await link.connect(timeout_s=CONNECT_TIMEOUT_S)
            except FleetSimError as error:
                name = getattr(error, "failure", type(error).__name__)
                failures[name] = failures.get(name, 0) + 1
                return
            links.append(link)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connect(i) for i in range(count)))
    connect_cpu, connect_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await asyncio.sleep(float(config["idle_s"]))
    idle_cpu0 = cpu_seconds()
    idle_wall0 = time.perf_counter()
    await asyncio.sleep(float(config["idle_s"]))
    idle_cpu = (cpu_seconds() - idle_cpu0) / (time.perf_counter() - idle_wall0)
    rss_connected = _rss()
    still = sum(1 for link in links if not link.closed.done())
    figures: dict[str, Any] = {
        "asked": count,
        "connected": len(links),
        "still_connected": still,
        "failures": failures,
        "rss_start_kib": rss_start,
        "rss_prepared_kib": rss_prepared,
        "rss_connected_kib": rss_connected,
        "prep_cpu_s": prep_cpu,
        "prep_wall_s": prep_wall,
        "connect_cpu_s": connect_cpu,
        "connect_wall_s": connect_wall,
        "idle_cpu_fraction": idle_cpu,
    }
    print(json.dumps(figures), flush=True)
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), RELEASE_WAIT_S)
    for link in links:
        await link.disconnect()
    await asyncio.sleep(0.5)
    return figures


def main() -> None:
    """``python -m benchmarks.engine_hold '<json config>'``."""
    raise_nofile()
    asyncio.run(hold(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
