"""Token buckets for AWS's per-connection, per-client-id and per-account rate quotas (pure)."""

from __future__ import annotations


class TokenBucket:
    """Allows ``rate`` events per second on average, with bursts up to ``burst``.

    Time is passed in; the bucket starts full.
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, *, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._burst = max(1.0, rate if burst is None else burst)
        self._tokens = self._burst
        self._stamp = now

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if available at ``now``; False means the event is over the quota."""
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._stamp = now
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False


class KeyedRateLimiter:
    """One :class:`TokenBucket` per key (e.g. client id), pruned of idle keys."""

    __slots__ = ("_buckets", "_burst", "_last_prune", "_rate")

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, tuple[TokenBucket, float]] = {}
        self._last_prune = 0.0

    def take(self, key: str, now: float) -> bool:
        """Take one token from ``key``'s bucket."""
        entry = self._buckets.get(key)
        bucket = entry[0] if entry else TokenBucket(self._rate, burst=self._burst, now=now)
        self._buckets[key] = (bucket, now)
        if now - self._last_prune > 60.0:
            self._prune(now)
        return bucket.take(now)

    def _prune(self, now: float) -> None:
        # A bucket idle for long enough to have refilled completely carries no information.
        horizon = max(60.0, (self._burst or self._rate) / self._rate * 2)
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < horizon}
        self._last_prune = now
