"""Run control and report outputs.

``run`` says how long the run lasts, which seed makes it reproducible, when to stop early,
how many connects may be in flight at once and how long a graceful stop may take.
``reports`` names the files to write; ``{name}`` (the scenario's name) and ``{timestamp}``
(the run's start, ``YYYYmmddTHHMMSSZ``) are replaced. Relative report paths are relative to
the working directory.
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from fleet_sim.scenario.model_base import FrozenModel, RuleViolation
from fleet_sim.scenario.model_types import ReportPathTemplate
from fleet_sim.scenario.units import Duration, PositiveDuration

__all__ = ["REPORT_FORMATS", "Reports", "RunSettings", "StopConditions"]

#: The report formats, in the order they are written.
REPORT_FORMATS = ("json", "junit", "html")


class StopConditions(FrozenModel):
    """End the run before ``duration`` when any of these holds."""

    all_connected: bool = Field(default=False, description="Stop once every device has connected.")
    failures: int | None = Field(default=None, ge=1, description="Stop after this many failures.")


class RunSettings(FrozenModel):
    """How long and how the run goes."""

    duration: PositiveDuration = Field(default=60.0, description="How long the run lasts.")
    seed: int | None = Field(
        default=None,
        description="Same seed, same schedule and payloads; default a random seed (reported).",
    )
    stop_when: StopConditions = Field(
        default=StopConditions(), description="Conditions that end the run early."
    )
    max_connects_in_flight: int = Field(
        default=100, ge=1, description="Connect attempts (TCP+TLS+MQTT) allowed at once."
    )
    graceful_stop: Duration = Field(
        default=10.0, description="How long devices get to disconnect cleanly at the end."
    )


class Reports(FrozenModel):
    """Report files to write (none by default)."""

    json_path: ReportPathTemplate | None = Field(
        default=None, alias="json", description="JSON report path."
    )
    junit_path: ReportPathTemplate | None = Field(
        default=None, alias="junit", description="JUnit XML report path (one case per threshold)."
    )
    html_path: ReportPathTemplate | None = Field(
        default=None, alias="html", description="HTML report path."
    )

    @model_validator(mode="after")
    def _distinct(self) -> Reports:
        seen: dict[str, str] = {}
        for fmt in REPORT_FORMATS:
            template = getattr(self, f"{fmt}_path")
            if template is None:
                continue
            if template.source in seen:
                raise RuleViolation.at(
                    (fmt,), f"is the same file as the {seen[template.source]} report"
                )
            seen[template.source] = fmt
        return self

    def paths(self, name: str, timestamp: str) -> dict[str, str]:
        """The report files to write, by format (``json``, ``junit``, ``html``).

        Args:
            name: the scenario's name.
            timestamp: the run's start, as it should appear in file names.
        """
        values = {"name": name, "timestamp": timestamp}
        paths: dict[str, str] = {}
        for fmt in REPORT_FORMATS:
            template = getattr(self, f"{fmt}_path")
            if template is not None:
                paths[fmt] = template.render(values, random.Random(0))  # no random fields
        return paths
