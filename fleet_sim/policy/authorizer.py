"""Per-connection authorizer: the broker's cached view of one client's policies.

A :class:`ConnectionAuthorizer` is made when a client connects (its certificate's policies
and what the gateway knows about the connection) and answers the broker's checks at CONNECT,
PUBLISH, SUBSCRIBE and on every delivery. Each ``(action, resource)`` decision is computed
once and then served from a bounded dict, so a repeated check is a dict lookup. When a
policy changes, build a new authorizer with :meth:`ConnectionAuthorizer.with_policies`
(AWS applies changes after a few minutes of caching; the emulator applies them at once).

An authorizer belongs to one connection and is not thread-safe; it holds no global state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from fleet_sim.policy.arns import iot_arn
from fleet_sim.policy.document import PolicyDocument
from fleet_sim.policy.evaluate import Decision, evaluate
from fleet_sim.policy.variables import RequestContext

__all__ = ["DEFAULT_CACHE_SIZE", "ConnectionAuthorizer"]

#: Decisions kept per connection before the oldest are evicted.
DEFAULT_CACHE_SIZE = 4096


class ConnectionAuthorizer:
    """Cached policy decisions for one connection.

    Args:
        policies: the policies attached to the connection's principal.
        context: what the gateway knows about the connection. Its ``region``/``account_id``
            are filled in from the arguments when unset.
        region: the region used in resource ARNs.
        account_id: the account id used in resource ARNs.
        partition: the ARN partition.
        cache_size: how many decisions to keep (oldest first out).

    Raises:
        ValueError: ``context`` names a different region or account, or ``cache_size < 1``.
    """

    __slots__ = (
        "_cache",
        "_cache_size",
        "_prefix",
        "account_id",
        "context",
        "partition",
        "policies",
        "region",
    )

    def __init__(
        self,
        policies: Sequence[PolicyDocument],
        context: RequestContext,
        *,
        region: str,
        account_id: str,
        partition: str = "aws",
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        for field, mine in (("region", region), ("account_id", account_id)):
            theirs = getattr(context, field)
            if theirs is not None and theirs != mine:
                raise ValueError(f"context {field} {theirs!r} differs from {mine!r}")
        if context.region is None or context.account_id is None:
            context = dataclasses.replace(context, region=region, account_id=account_id)
        self.policies: tuple[PolicyDocument, ...] = tuple(policies)
        self.context = context
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self._prefix = iot_arn(region, account_id, "", partition=partition)
        self._cache: dict[tuple[str, str], Decision] = {}
        self._cache_size = cache_size

    def with_policies(self, policies: Sequence[PolicyDocument]) -> ConnectionAuthorizer:
        """A fresh authorizer (empty cache) for the same connection with other policies."""
        return ConnectionAuthorizer(
            policies,
            self.context,
            region=self.region,
            account_id=self.account_id,
            partition=self.partition,
            cache_size=self._cache_size,
        )

    @property
    def cached_decisions(self) -> int:
        """How many decisions are cached now."""
        return len(self._cache)

    def check(self, action: str, resource: str) -> Decision:
        """The (cached) decision for ``action`` on the full ARN ``resource``."""
        key = (action, resource)
        cache = self._cache
        decision = cache.get(key)
        if decision is None:
            decision = evaluate(self.policies, action, resource, self.context)
            if len(cache) >= self._cache_size:
                del cache[next(iter(cache))]
            cache[key] = decision
        return decision

    def check_connect(self) -> Decision:
        """``iot:Connect`` on ``client/<client id>``."""
        return self.check("iot:Connect", f"{self._prefix}client/{self.context.client_id}")

    def check_publish(self, topic: str) -> Decision:
        """``iot:Publish`` on ``topic/<topic>``."""
        return self.check("iot:Publish", f"{self._prefix}topic/{topic}")

    def check_retain_publish(self, topic: str) -> Decision:
        """``iot:RetainPublish`` on ``topic/<topic>`` (alone; see :meth:`can_retain_publish`)."""
        return self.check("iot:RetainPublish", f"{self._prefix}topic/{topic}")

    def check_subscribe(self, topic_filter: str) -> Decision:
        """``iot:Subscribe`` on ``topicfilter/<filter>``, the filter exactly as sent."""
        return self.check("iot:Subscribe", f"{self._prefix}topicfilter/{topic_filter}")

    def check_receive(self, topic: str) -> Decision:
        """``iot:Receive`` on ``topic/<topic>``."""
        return self.check("iot:Receive", f"{self._prefix}topic/{topic}")

    def can_connect(self) -> bool:
        """Whether the client may connect with its client id."""
        return self.check_connect().allowed

    def can_publish(self, topic: str) -> bool:
        """Whether the client may publish (RETAIN=0) to ``topic``."""
        return self.check_publish(topic).allowed

    def can_retain_publish(self, topic: str) -> bool:
        """Whether the client may publish with RETAIN=1: needs Publish **and** RetainPublish."""
        return self.check_publish(topic).allowed and self.check_retain_publish(topic).allowed

    def can_subscribe(self, topic_filter: str) -> bool:
        """Whether the client may subscribe to ``topic_filter`` (``+``/``#`` are literal)."""
        return self.check_subscribe(topic_filter).allowed

    def can_receive(self, topic: str) -> bool:
        """Whether a message on ``topic`` may be delivered to the client."""
        return self.check_receive(topic).allowed
