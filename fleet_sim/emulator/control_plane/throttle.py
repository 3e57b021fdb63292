"""Optional per-operation API throttling with AWS IoT's default rates (off by default).

Each operation gets a token bucket refilled at its transactions-per-second quota, with a
burst of one second's worth; a request finding it empty is answered ``ThrottlingException``
(as AWS does; SDKs retry those with back-off). Rates marked GR-old come from the AWS General
Reference quota table quoted in ``aws-iot-core-behaviour.md`` §7.1; operations not listed
there get :data:`FALLBACK_TPS` (the emulator's choice, matching the most common AWS value).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.broker.rate import TokenBucket

#: Default TPS quotas by operation [GR-old].
DEFAULT_TPS: Mapping[str, float] = MappingProxyType(
    {
        "AttachPolicy": 15.0,
        "AttachThingPrincipal": 15.0,
        "CreateCertificateFromCsr": 15.0,
        "CreatePolicy": 10.0,
        "CreateThing": 15.0,
        "DescribeCertificate": 10.0,
        "DescribeThing": 350.0,
        "RegisterCACertificate": 10.0,
        "RegisterCertificate": 10.0,
        "RegisterThing": 10.0,
        "UpdateCertificate": 10.0,
    }
)

#: Rate for operations :data:`DEFAULT_TPS` does not list.
FALLBACK_TPS = 10.0


class OperationThrottle:
    """One token bucket per operation, created on first use.

    Args:
        rates: TPS by operation name (defaults to :data:`DEFAULT_TPS`).
        fallback: TPS for operations ``rates`` does not name; None leaves them unthrottled.
    """

    __slots__ = ("_buckets", "_fallback", "_rates")

    def __init__(
        self, rates: Mapping[str, float] | None = None, *, fallback: float | None = FALLBACK_TPS
    ) -> None:
        self._rates = dict(DEFAULT_TPS if rates is None else rates)
        self._fallback = fallback
        self._buckets: dict[str, TokenBucket] = {}

    def rate(self, operation: str) -> float | None:
        """The TPS quota of ``operation`` (None: unthrottled)."""
        return self._rates.get(operation, self._fallback)

    def allow(self, operation: str, now: float) -> bool:
        """Take a token for one ``operation`` request at monotonic time ``now``."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            rate = self.rate(operation)
            if rate is None:
                return True
            bucket = self._buckets[operation] = TokenBucket(rate, now=now)
        return bucket.take(now)
