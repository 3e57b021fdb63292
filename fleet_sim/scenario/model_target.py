"""Where the devices connect: the embedded emulator or a running endpoint.

``target: local`` (the default) starts fleetsim's AWS IoT Core emulator in-process. An
``endpoint`` names a running broker, normally AWS IoT Core's ATS data endpoint:

* port 8883 is MQTT over TLS with X.509 client certificates and needs no ALPN;
* port 443 needs ALPN ``x-amzn-mqtt-ca`` for the same (the default on 443);
* SNI is sent (the host unless ``sni`` says otherwise): AWS refuses connections without it;
* ``region`` (derived from an ``*.iot.<region>.amazonaws.com`` host) or ``control_plane_url``
  gives fleetsim the control plane it needs to register things, certificates and CAs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from fleet_sim.scenario.model_base import AlsoAccepts, FrozenModel, RuleViolation
from fleet_sim.scenario.model_types import InputFile

__all__ = ["AWS_MQTT_ALPN", "EndpointTarget", "LocalTarget", "Target"]

#: The ALPN protocol AWS IoT requires for MQTT with X.509 certificates on port 443.
AWS_MQTT_ALPN = "x-amzn-mqtt-ca"

_AWS_HOST = re.compile(r".*\.iot\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?")


class LocalTarget(FrozenModel):
    """The embedded emulator, started in-process for the run."""

    type: Literal["local"] = "local"
    port: int = Field(
        default=0, ge=0, le=65535, description="The emulator's MQTT port; 0 picks a free one."
    )


class EndpointTarget(FrozenModel):
    """A running MQTT endpoint, normally AWS IoT Core."""

    type: Literal["endpoint"] = "endpoint"
    host: str = Field(
        min_length=1,
        description="The data endpoint, e.g. abc123-ats.iot.eu-west-1.amazonaws.com.",
    )
    port: int = Field(
        default=8883, ge=1, le=65535, description="8883, or 443 with ALPN x-amzn-mqtt-ca."
    )
    alpn: str | None = Field(
        default=None, description="ALPN protocol; default x-amzn-mqtt-ca on port 443, else none."
    )
    ca_file: InputFile | None = Field(
        default=None, description="PEM bundle to trust the server; default the system store."
    )
    sni: str | None = Field(default=None, description="TLS server name; default the host.")
    control_plane_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Control-plane API URL; default https://iot.<region>.amazonaws.com.",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$",
        description="AWS region; default taken from an *.iot.<region>.amazonaws.com host.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "alpn" not in data and str(data.get("port", "")).strip() == "443":
            data["alpn"] = AWS_MQTT_ALPN
        if data.get("region") is None and isinstance(data.get("host"), str):
            match = _AWS_HOST.fullmatch(data["host"])
            if match is not None:
                data["region"] = match.group("region")
        return data

    @model_validator(mode="after")
    def _aws_rules(self) -> EndpointTarget:
        if not self.is_aws:
            return self
        if self.port not in (8883, 443):
            raise RuleViolation.at(
                ("port",), f"AWS IoT serves MQTT over TLS on 8883 or 443; got {self.port}"
            )
        if self.port == 443 and self.alpn != AWS_MQTT_ALPN:
            raise RuleViolation.at(
                ("alpn",),
                f"AWS IoT accepts MQTT with client certificates on port 443 only with ALPN "
                f"{AWS_MQTT_ALPN}; got {self.alpn!r}",
            )
        return self

    @property
    def is_aws(self) -> bool:
        """Whether the host is an AWS IoT endpoint (``*.iot.<region>.amazonaws.com``)."""
        return _AWS_HOST.fullmatch(self.host) is not None

    @property
    def server_name(self) -> str:
        """The SNI name to send."""
        return self.sni or self.host

    @property
    def has_control_plane(self) -> bool:
        """Whether fleetsim can reach a control plane (to register things and certificates)."""
        return self.control_plane_url is not None or self.region is not None


def _shorthand(value: Any) -> Any:
    if value == "local":
        return {"type": "local"}
    return value


Target = Annotated[
    LocalTarget | EndpointTarget,
    Field(discriminator="type"),
    BeforeValidator(_shorthand),
    AlsoAccepts({"const": "local", "description": "The embedded emulator."}),
]
"""``local`` (the embedded emulator) or a running endpoint."""
