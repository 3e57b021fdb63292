"""Where a run's devices connect, and the control plane that sets them up.

``target: local`` starts the embedded emulator in-process (its data under the run directory)
and uses its control-plane API; an ``endpoint`` target uses the given data endpoint and the
AWS IoT control plane of its region (or ``control_plane_url``). Either way setup goes through
one boto3 ``iot`` client: the code that runs against the emulator in CI is the code that runs
against AWS.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_sim.device.link import Endpoint
from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.scenario.model import EndpointTarget, LocalTarget, Target


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """Everything the engine needs to reach the target."""

    endpoint: Endpoint
    ca_file: Path | None
    alpn: tuple[str, ...]
    iot: Any  # a boto3 "iot" client (typed loosely: boto3 ships no stubs here)
    region: str
    account_id: str | None
    description: str
    emulator: Emulator | None = None


@contextlib.asynccontextmanager
async def open_target(target: Target, *, run_dir: Path) -> AsyncIterator[ResolvedTarget]:
    """Start (local) or describe (endpoint) the target for the duration of a run."""
    if isinstance(target, LocalTarget):
        config = EmulatorConfig(port=target.port, data_dir=run_dir / "emulator")
        async with Emulator(config) as emulator:
            info = emulator.info
            yield ResolvedTarget(
                endpoint=Endpoint(info.host, info.port, server_name=info.endpoint),
                ca_file=Path(info.ca_file),
                alpn=(),
                iot=emulator.boto3_client(),
                region=info.region,
                account_id=info.account_id,
                description=f"embedded emulator at {info.host}:{info.port}",
                emulator=emulator,
            )
        return
    assert isinstance(target, EndpointTarget)
    yield _endpoint_target(target)


def _endpoint_target(target: EndpointTarget) -> ResolvedTarget:
    import boto3  # imported here: a local run does not need the AWS SDK's import time

    region = target.region or "us-east-1"
    kwargs: dict[str, Any] = {"region_name": region}
    if target.control_plane_url is not None:
        kwargs["endpoint_url"] = target.control_plane_url
    return ResolvedTarget(
        endpoint=Endpoint(target.host, target.port, server_name=target.sni or target.host),
        ca_file=None if target.ca_file is None else Path(target.ca_file),
        alpn=(target.alpn,) if target.alpn else (),
        iot=boto3.client("iot", **kwargs),
        region=region,
        account_id=None,
        description=f"{target.host}:{target.port}",
    )


def default_ca_file() -> Path | None:
    """The system CA bundle OpenSSL would use (for targets without ``ca_file``)."""
    paths = ssl.get_default_verify_paths()
    return Path(paths.cafile) if paths.cafile else None
