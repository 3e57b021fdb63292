"""Arrival math: when each device of a group starts connecting (pure).

Offsets are seconds from the group's start, non-decreasing, one per device:

* **constant** rate ``r``: device ``i`` at ``i / r`` (the first at 0);
* **linear** ramp from ``r0`` to ``r1`` over ``T``: the rate is
  ``r(t) = r0 + (r1 - r0) t / T`` during the ramp and ``r1`` after it. Device ``i`` arrives
  when the expected count ``N(t) = ∫₀ᵗ r`` reaches ``i``: within the ramp
  ``t = 2i / (r0 + sqrt(r0² + 2 i (r1 - r0) / T))`` (the stable root of
  ``r0 t + (r1 - r0) t² / 2T = i``), after it ``T + (i - N(T)) / r1``;
* **poisson** rate ``r``: independent exponential gaps of mean ``1 / r`` (the first device
  after one gap), drawn from the ``random.Random`` passed in.
"""

from __future__ import annotations

import math
import random

from fleet_sim.scenario.model_arrival import (
    Arrival,
    ConstantArrival,
    LinearArrival,
    PoissonArrival,
)

__all__ = ["arrival_offsets", "expected_arrivals"]


def _linear_offset(arrival: LinearArrival, i: int) -> float:
    r0, r1, span = arrival.start, arrival.end, arrival.over
    ramp_total = (r0 + r1) * span / 2
    if i > ramp_total:
        return span + (i - ramp_total) / r1
    if i == 0:
        return 0.0
    # i <= N(T) keeps the discriminant >= 0 even when the ramp goes down
    root = math.sqrt(max(0.0, r0 * r0 + 2 * i * (r1 - r0) / span))
    return min(span, 2 * i / (r0 + root))


def arrival_offsets(arrival: Arrival, count: int, rng: random.Random) -> list[float]:
    """When each of ``count`` devices starts, in seconds from the group's start.

    Args:
        arrival: the group's arrival model.
        count: the number of devices.
        rng: draws the Poisson gaps (unused by the deterministic shapes).

    Returns:
        ``count`` non-decreasing offsets.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if isinstance(arrival, ConstantArrival):
        return [i / arrival.rate for i in range(count)]
    if isinstance(arrival, LinearArrival):
        return [_linear_offset(arrival, i) for i in range(count)]
    assert isinstance(arrival, PoissonArrival)
    offsets: list[float] = []
    now = 0.0
    for _ in range(count):
        now += rng.expovariate(arrival.rate)
        offsets.append(now)
    return offsets


def expected_arrivals(arrival: Arrival, elapsed: float) -> float:
    """How many devices are expected to have arrived ``elapsed`` seconds in: ``∫₀ᵗ r``.

    For the deterministic shapes, :func:`arrival_offsets` places device ``i`` where this
    reaches ``i``; for Poisson it is the mean.
    """
    if elapsed <= 0:
        return 0.0
    if isinstance(arrival, LinearArrival):
        r0, r1, span = arrival.start, arrival.end, arrival.over
        if elapsed >= span:
            return (r0 + r1) * span / 2 + r1 * (elapsed - span)
        return r0 * elapsed + (r1 - r0) * elapsed * elapsed / (2 * span)
    return arrival.rate * elapsed
