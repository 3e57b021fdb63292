"""``python -m fleet_sim`` runs the CLI."""

from __future__ import annotations

from fleet_sim.cli.main import main

main()
