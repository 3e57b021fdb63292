"""What every part of the registry shares: the store, the account's ARNs and random ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fleet_sim.emulator.registry.store import Store
from fleet_sim.policy.arns import iot_arn, parse_arn

_CERT_ID = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Context:
    """The registry's shared state, handed to each of its parts.

    Attributes:
        store: the database.
        region: the region ARNs name.
        account_id: the 12-digit account ARNs name.
        random_bytes: where random ids come from (``secrets.token_bytes`` or
            ``random.Random(seed).randbytes``).
    """

    store: Store
    region: str
    account_id: str
    random_bytes: Callable[[int], bytes]

    def arn(self, resource: str) -> str:
        """``arn:aws:iot:<region>:<account>:<resource>``."""
        return iot_arn(self.region, self.account_id, resource)

    def new_uuid(self) -> str:
        """A random (version 4) UUID string from :attr:`random_bytes`."""
        return str(uuid.UUID(bytes=self.random_bytes(16), version=4))

    def new_hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes from :attr:`random_bytes`, as lowercase hex."""
        return self.random_bytes(nbytes).hex()

    def own_resource(self, arn: str, resource_type: str) -> str | None:
        """The name in ``arn`` when it is this account's and region's ``resource_type`` ARN."""
        try:
            parsed = parse_arn(arn)
        except ValueError:
            return None
        if (
            parsed.service != "iot"
            or parsed.region != self.region
            or parsed.account_id != self.account_id
            or parsed.resource_type != resource_type
            or not parsed.resource_name
        ):
            return None
        return parsed.resource_name

    def certificate_id_from_arn(self, arn: str) -> str | None:
        """The (lowercased) certificate id of one of this account's ``cert/<id>`` ARNs, else
        None."""
        cert_id = self.own_resource(arn, "cert")
        return cert_id.lower() if cert_id is not None and _CERT_ID.fullmatch(cert_id) else None
