"""Retry backoff, exactly as AWS's "Exponential Backoff And Jitter" describes it.

For attempt ``n`` (0 for the first retry) and ``temp = min(cap, base * 2**n)``:

=================  ===================================================================
``none``           ``temp``
``full``           ``uniform(0, temp)``
``equal``          ``temp / 2 + uniform(0, temp / 2)``
``decorrelated``   ``min(cap, uniform(base, previous * 3))``, ``previous`` starting at ``base``
=================  ===================================================================

(Marc Brooker, AWS Architecture Blog, 2015; the AWS SDKs' retry strategies use the same
mode names.) Every delay lies in ``[0, cap]``; decorrelated delays lie in ``[base, cap]``.
Randomness comes from the ``random.Random`` passed in, so a seeded run retries on the same
schedule.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Iterator

from pydantic import Field, model_validator

from fleet_sim.scenario.model_base import FrozenModel, RuleViolation
from fleet_sim.scenario.units import PositiveDuration

__all__ = ["Jitter", "RetryPolicy"]


class Jitter(enum.StrEnum):
    """How the backoff is randomised (see the module docstring)."""

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


class RetryPolicy(FrozenModel):
    """How often and how patiently a device retries a failed connect.

    Attributes:
        max_attempts: attempts in all, the first one included (1 = never retry).
        base: the first retry's backoff before jitter.
        cap: no delay is longer.
        jitter: the jitter mode.
    """

    max_attempts: int = Field(
        default=5, ge=1, description="Attempts in all, the first one included (1 = no retry)."
    )
    base: PositiveDuration = Field(default=1.0, description="Backoff of the first retry.")
    cap: PositiveDuration = Field(default=30.0, description="Longest backoff.")
    jitter: Jitter = Field(
        default=Jitter.FULL,
        description="AWS's jitter modes: none, full, equal or decorrelated.",
    )

    @model_validator(mode="after")
    def _base_within_cap(self) -> RetryPolicy:
        if self.base > self.cap:
            raise RuleViolation.at(
                ("base",), f"must not be longer than cap ({self.base:g}s > {self.cap:g}s)"
            )
        return self

    def exponential(self, attempt: int) -> float:
        """``min(cap, base * 2**attempt)``: the un-jittered backoff of retry ``attempt``."""
        try:
            return min(self.cap, math.ldexp(self.base, attempt))
        except OverflowError:
            return self.cap

    def delay(self, attempt: int, previous: float | None, rng: random.Random) -> float:
        """The backoff before retry ``attempt``.

        Args:
            attempt: 0 for the first retry, 1 for the second …
            previous: the delay returned for the retry before (decorrelated jitter grows
                from it); None for the first retry.
            rng: where the jitter comes from.

        Returns:
            Seconds to wait, in ``[0, cap]`` (``[base, cap]`` for decorrelated jitter).
        """
        if attempt < 0:
            raise ValueError(f"attempt must be 0 or more, got {attempt}")
        if self.jitter is Jitter.DECORRELATED:
            grown = 3 * (self.base if previous is None else max(previous, self.base))
            return min(self.cap, rng.uniform(self.base, grown))
        temp = self.exponential(attempt)
        if self.jitter is Jitter.NONE:
            return temp
        if self.jitter is Jitter.FULL:
            return rng.uniform(0.0, temp)
        half = temp / 2
        return half + rng.uniform(0.0, half)

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The backoffs between attempts: ``max_attempts - 1`` of them.

        Args:
            rng: where the jitter comes from.

        Yields:
            The delay before each retry, in order.
        """
        previous: float | None = None
        for attempt in range(self.max_attempts - 1):
            previous = self.delay(attempt, previous, rng)
            yield previous
