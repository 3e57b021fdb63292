"""``fleetsim emulator``: run the local AWS IoT Core emulator in the foreground.

Once the listeners are up it prints one JSON object on a line of its own on stdout (the same
facts it writes to ``<data-dir>/endpoint.json``), so scripts and CI can wait for that line and
connect. It runs until SIGINT or SIGTERM, then closes every connection and the registry.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.config import BrokerLimits, EmulatorConfig
from fleet_sim.errors import FleetSimError

EXIT_ERROR = 2


def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="MQTT over mutual TLS (0: any free port).")] = 8883,
    alpn_port: Annotated[
        int | None,
        typer.Option(help="Extra listener that requires ALPN x-amzn-mqtt-ca, like AWS's 443."),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Registry database, PKI and endpoint.json live here.")
    ] = Path(".fleetsim-emulator"),
    account_id: Annotated[str, typer.Option(help="The fake AWS account id.")] = "123456789012",
    region: Annotated[str, typer.Option(help="The fake AWS region.")] = "us-east-1",
    endpoint: Annotated[
        str, typer.Option(help="Endpoint name clients connect to and send as SNI.")
    ] = "localhost",
    require_sni: Annotated[
        bool, typer.Option(help="Refuse TLS connections without SNI, as AWS does.")
    ] = True,
    control_plane_port: Annotated[
        int,
        typer.Option(help="AWS IoT control-plane HTTP API (0: any free port; -1: off)."),
    ] = 0,
    no_limits: Annotated[
        bool, typer.Option("--no-limits", help="Switch AWS's rate quotas off (benchmarks).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Logging level on stderr.")] = "WARNING",
) -> None:
    """Run the local AWS IoT Core emulator (mutual-TLS MQTT gateway, registry, policies)."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr)
    config = EmulatorConfig(
        host=host,
        port=port,
        alpn_port=alpn_port,
        data_dir=data_dir,
        account_id=account_id,
        region=region,
        endpoint=endpoint,
        require_sni=require_sni,
        control_plane_port=None if control_plane_port < 0 else control_plane_port,
        limits=BrokerLimits.unlimited() if no_limits else BrokerLimits(),
    )
    try:
        asyncio.run(_serve(config))
    except FleetSimError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except OSError as error:
        typer.echo(f"error: cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


async def _serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(config) as running:
        import gc

        gc.freeze()  # start-up objects (registry, PKI, modules) leave the GC's generations
        gc.set_threshold(20_000, 50, 1000)
        sys.stdout.write(running.info.to_json() + "\n")
        sys.stdout.flush()
        await stop.wait()
