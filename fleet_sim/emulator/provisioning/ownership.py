"""Certificate ownership tokens of fleet provisioning: issued with a certificate, redeemed by
RegisterThing, expiring after a TTL (AWS: 1 hour; reference §3.3).

A token is opaque: random bytes from an injected source, base64url-encoded. It is bound to
the certificate it was issued with, not to the connection that asked for it: AWS documents
the token as proof of owning the certificate, so RegisterThing accepts it from any
connection the policy lets publish there. A token stays valid until it expires, also after a
successful RegisterThing (a device whose accepted reply got lost can retry) [inference: AWS
does not say whether tokens are single-use].

Tokens live in memory only: an emulator restart forgets them (AWS's survive).

Pure: time (``now``, monotonic seconds) is passed in.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from fleet_sim.emulator.provisioning.fleet_api import EMPTY_TOKEN_MESSAGE, ErrorCode

#: Random bytes in a token (its text is 4/3 as long).
TOKEN_BYTES = 48


@dataclass(frozen=True, slots=True)
class OwnershipGrant:
    """What a token proves.

    Attributes:
        token: the token text.
        certificate_id: the certificate it was issued with.
        expires_at: when it stops being valid (monotonic seconds).
    """

    token: str
    certificate_id: str
    expires_at: float


class OwnershipTokens:
    """The live ownership tokens."""

    def __init__(self, *, ttl_s: float, random_bytes: Callable[[int], bytes]) -> None:
        """Tokens valid ``ttl_s`` seconds, made from ``random_bytes(n)``.

        Raises:
            ValueError: ``ttl_s`` is not positive.
        """
        if ttl_s <= 0:
            raise ValueError("the ownership token TTL must be positive")
        self._ttl_s = ttl_s
        self._random_bytes = random_bytes
        self._grants: dict[str, OwnershipGrant] = {}

    def __len__(self) -> int:
        return len(self._grants)

    @property
    def ttl_s(self) -> float:
        """How long a token is valid (fixed for the store's life)."""
        return self._ttl_s

    def issue(self, certificate_id: str, now: float) -> OwnershipGrant:
        """A new token for ``certificate_id``, valid from ``now`` for the TTL."""
        token = base64.urlsafe_b64encode(self._random_bytes(TOKEN_BYTES)).decode("ascii")
        grant = OwnershipGrant(token, certificate_id, now + self._ttl_s)
        self._grants[token] = grant
        return grant

    def redeem(self, token: str | None, now: float) -> OwnershipGrant:
        """The grant behind ``token``.

        Raises:
            FleetProvisioningRejected: InvalidCertificateOwnershipToken (empty, unknown or
                expired).
        """
        if not token:
            raise ErrorCode.INVALID_TOKEN.error(EMPTY_TOKEN_MESSAGE)
        grant = self._grants.get(token)
        if grant is None:
            raise ErrorCode.INVALID_TOKEN.error("Certificate ownership token is invalid.")
        if now >= grant.expires_at:
            raise ErrorCode.INVALID_TOKEN.error("Certificate ownership token has expired.")
        return grant

    def expire(self, now: float) -> list[OwnershipGrant]:
        """Forget every token expired at ``now``; returns them (oldest first).

        Costs only the expired tokens: with one TTL and a monotonic clock, tokens expire in
        the order they were issued (dicts keep that order).
        """
        expired: list[OwnershipGrant] = []
        for grant in self._grants.values():
            if now < grant.expires_at:
                break
            expired.append(grant)
        for grant in expired:
            del self._grants[grant.token]
        return expired
