"""The ``fleetsim`` command: one Typer app, sub-commands registered from their own modules."""

from __future__ import annotations

import typer

from fleet_sim import __version__
from fleet_sim.cli.certs import certs_app
from fleet_sim.cli.emulator import emulator
from fleet_sim.cli.report import report
from fleet_sim.cli.run import run
from fleet_sim.cli.schema import schema

app = typer.Typer(
    name="fleetsim",
    help="Load-test and verify AWS IoT device onboarding and fleet behaviour.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(certs_app, name="certs")
app.command("schema")(schema)
app.command()(emulator)
app.command()(run)
app.command()(report)


@app.command()
def version() -> None:
    """Print fleetsim's version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the console script."""
    app()
