"""How a group's devices arrive: the connect schedule's shape.

``arrival`` is written in full (``{type: linear, from: 10/s, to: 200/s, over: 1m}``) or as a
bare rate (``arrival: 50/s``, meaning ``{type: constant, rate: 50/s}``). The offsets
themselves are computed by :func:`fleet_sim.scenario.schedule.arrival_offsets`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from fleet_sim.scenario.model_base import AlsoAccepts, FrozenModel
from fleet_sim.scenario.units import RATE_PATTERN, NonNegativeRate, PositiveDuration, Rate

__all__ = ["Arrival", "ConstantArrival", "LinearArrival", "PoissonArrival"]


class ConstantArrival(FrozenModel):
    """Devices connect evenly spaced, ``rate`` per second, the first at once."""

    type: Literal["constant"] = "constant"
    rate: Rate = Field(description="Connects per second.")


class LinearArrival(FrozenModel):
    """The connect rate ramps linearly from ``from`` to ``to`` over ``over``, then stays."""

    type: Literal["linear"] = "linear"
    start: NonNegativeRate = Field(alias="from", description="Connects per second at first.")
    end: Rate = Field(alias="to", description="Connects per second at the end of the ramp.")
    over: PositiveDuration = Field(description="How long the ramp lasts.")


class PoissonArrival(FrozenModel):
    """Devices connect at random (exponential gaps), ``rate`` per second on average."""

    type: Literal["poisson"] = "poisson"
    rate: Rate = Field(description="Mean connects per second.")


def _bare_rate(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"type": "constant", "rate": value}
    return value


Arrival = Annotated[
    ConstantArrival | LinearArrival | PoissonArrival,
    Field(discriminator="type"),
    BeforeValidator(_bare_rate),
    AlsoAccepts(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"pattern": RATE_PATTERN}],
            "description": "A bare rate: constant arrival at that many connects per second.",
        }
    ),
]
"""Constant, linear-ramp or Poisson arrival; a bare rate means constant."""
