"""What every control-plane operation handler gets: the registry, the emulator's issuing CA,
the data endpoint and the clock; and the handler signature itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet_sim.clock import Clock
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.policy.arns import iot_arn
from fleet_sim.tls.ca import CertificateAuthority


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """The emulator's state a control-plane handler works on.

    Attributes:
        registry: the registry (thread-safe; its listeners carry changes to the data plane).
        device_ca: the CA that signs certificates the emulator creates itself
            (CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterThing with a CSR).
        endpoint: the data endpoint name devices connect to (DescribeEndpoint).
        clock: where ``now`` comes from (wall-clock epoch seconds for timestamps).
    """

    registry: Registry
    device_ca: CertificateAuthority
    endpoint: str
    clock: Clock

    @property
    def region(self) -> str:
        """The emulated region."""
        return self.registry.region

    @property
    def account_id(self) -> str:
        """The emulated account."""
        return self.registry.account_id

    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        return self.clock.wall()

    def now_utc(self) -> datetime:
        """The wall clock as an aware datetime (for issuing certificates)."""
        return datetime.fromtimestamp(self.clock.wall(), tz=UTC)

    def arn(self, resource: str) -> str:
        """``arn:aws:iot:<region>:<account>:<resource>``."""
        return iot_arn(self.region, self.account_id, resource)


Params = Mapping[str, Any]
"""A parsed request: the operation's input members by name."""

Result = dict[str, Any]
"""A handler's answer: the operation's output members by name (None values are dropped)."""

Handler = Callable[[HandlerContext, Params], Result]
"""One operation's implementation."""
