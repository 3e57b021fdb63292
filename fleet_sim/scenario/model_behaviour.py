"""What a device does once connected: its behaviours, run concurrently.

Each list item names its ``type``:

* ``publish``: render ``topic`` and ``payload`` per message and publish at ``qos``, every
  ``interval`` or ``rate`` times a second (exactly one of the two), ``count`` times or until
  the run ends;
* ``subscribe``: subscribe to ``filters`` at ``qos`` and count what arrives;
* ``churn``: every ``every``, disconnect (gracefully, or by dropping the connection so the
  broker sees it vanish) and reconnect after ``downtime``;
* ``idle``: just hold the connection.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fleet_sim.scenario.model_base import FrozenModel, RuleViolation
from fleet_sim.scenario.model_types import FilterTemplate, PayloadTemplate, QoS, TopicTemplate
from fleet_sim.scenario.templates import MESSAGE_FIELDS, compile_template
from fleet_sim.scenario.units import Duration, PositiveDuration, Rate

__all__ = [
    "Behaviour",
    "ChurnBehaviour",
    "IdleBehaviour",
    "PublishBehaviour",
    "SubscribeBehaviour",
]

#: AWS IoT's limit on subscriptions per connection.
MAX_SUBSCRIPTIONS = 50


class PublishBehaviour(FrozenModel):
    """Publish rendered messages periodically."""

    type: Literal["publish"] = "publish"
    topic: TopicTemplate = Field(description="Topic name template.")
    payload: PayloadTemplate = Field(
        default=compile_template("", allowed=MESSAGE_FIELDS, what="payload"),
        description="Payload template; default empty.",
    )
    qos: QoS = Field(default=0, description="0 or 1.")
    interval: PositiveDuration | None = Field(
        default=None, description="Time between messages (or give rate)."
    )
    rate: Rate | None = Field(default=None, description="Messages per second (or give interval).")
    count: int | None = Field(
        default=None, ge=1, description="Messages per device; default until the run ends."
    )

    @model_validator(mode="after")
    def _one_pace(self) -> PublishBehaviour:
        if self.interval is not None and self.rate is not None:
            raise RuleViolation.at(("rate",), "give either interval or rate, not both")
        if self.interval is None and self.rate is None:
            raise RuleViolation.at((), "needs interval (e.g. 5s) or rate (e.g. 2/s)")
        return self

    @property
    def period(self) -> float:
        """Seconds between two messages of one device."""
        if self.interval is not None:
            return self.interval
        assert self.rate is not None
        return 1.0 / self.rate


class SubscribeBehaviour(FrozenModel):
    """Subscribe and count what arrives."""

    type: Literal["subscribe"] = "subscribe"
    filters: tuple[FilterTemplate, ...] = Field(
        min_length=1,
        max_length=MAX_SUBSCRIPTIONS,
        description="Topic filter templates (AWS IoT allows 50 subscriptions per connection).",
    )
    qos: QoS = Field(default=0, description="0 or 1.")


class ChurnBehaviour(FrozenModel):
    """Disconnect and reconnect periodically."""

    type: Literal["churn"] = "churn"
    every: PositiveDuration = Field(description="Time connected between disconnects.")
    downtime: Duration = Field(default=0.0, description="Time disconnected before reconnecting.")
    mode: Literal["disconnect", "drop"] = Field(
        default="disconnect",
        description="disconnect: send DISCONNECT; drop: close the socket (the will fires).",
    )


class IdleBehaviour(FrozenModel):
    """Hold the connection and do nothing else."""

    type: Literal["idle"] = "idle"


Behaviour = Annotated[
    PublishBehaviour | SubscribeBehaviour | ChurnBehaviour | IdleBehaviour,
    Field(discriminator="type"),
]
"""One of the behaviours."""
