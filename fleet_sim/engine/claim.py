"""Fleet provisioning by claim, device side (the MQTT API of §3 of the behaviour reference).

A device connects with the shared claim certificate, subscribes to the accepted/rejected
topics first (replies come only on the requesting connection and may be missed otherwise),
asks for a certificate (CreateCertificateFromCsr with a key it generates, or
CreateKeysAndCertificate), calls RegisterThing with the template's parameters, disconnects,
and returns its new identity. Each request/reply is timed by the caller around this coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_sim.device.link import DeviceLink, PreparedDevice
from fleet_sim.errors import FleetSimError
from fleet_sim.mqtt.packets import Publish
from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.keys import KeyType, generate_private_key, private_key_to_pem
from fleet_sim.tls.subject import DeviceSubject


class ProvisioningRejected(FleetSimError):
    """The fleet-provisioning service answered on a ``…/rejected`` topic."""

    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        self.operation = operation
        self.status_code = status
        self.error_code = code
        throttled = code == "Throttled" or status == 429
        self.failure = "throttled" if throttled else f"provisioning_rejected:{code or status}"
        super().__init__(f"{operation} rejected: {status} {code}: {message}")


@dataclass(frozen=True, slots=True)
class ClaimedIdentity:
    """What fleet provisioning gave a device."""

    certificate_id: str
    thing_name: str
    identity_file: Path
    device_configuration: dict[str, str]


class _Replies:
    """Messages of one connection, awaited by topic."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Publish]] = {}
        self._early: dict[str, Publish] = {}

    def on_message(self, message: Publish) -> None:
        future = self._waiting.pop(message.topic, None)
        if future is not None and not future.done():
            future.set_result(message)
        else:
            self._early[message.topic] = message

    async def first_of(self, topics: tuple[str, ...], timeout_s: float) -> Publish:
        for topic in topics:
            early = self._early.pop(topic, None)
            if early is not None:
                return early
        loop = asyncio.get_running_loop()
        futures = {topic: loop.create_future() for topic in topics}
        self._waiting.update(futures)
        try:
            done, _ = await asyncio.wait(
                futures.values(), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for topic in topics:
                self._waiting.pop(topic, None)
        if not done:
            raise FleetSimError("no reply from the fleet-provisioning service in time")
        message: Publish = next(iter(done)).result()
        return message


async def _request(
    link: DeviceLink,
    replies: _Replies,
    operation: str,
    topic: str,
    payload: dict[str, Any],
    timeout_s: float,
) -> dict[str, Any]:
    await link.publish(topic, json.dumps(payload).encode(), qos=1, timeout_s=timeout_s)
    reply = await replies.first_of((f"{topic}/accepted", f"{topic}/rejected"), timeout_s)
    body: dict[str, Any] = json.loads(reply.payload or b"{}")
    if reply.topic.endswith("/rejected"):
        raise ProvisioningRejected(
            operation,
            int(body.get("statusCode", 0)),
            str(body.get("errorCode", "")),
            str(body.get("errorMessage", "")),
        )
    return body


async def provision_by_claim(
    claim: PreparedDevice,
    *,
    template_name: str,
    parameters: dict[str, str],
    use_csr: bool,
    key_type: KeyType,
    common_name: str,
    out_file: Path,
    timeout_s: float,
) -> ClaimedIdentity:
    """Run the claim flow on a fresh connection of ``claim``; returns the new identity.

    Raises:
        ConnectionFailed: the claim connect failed.
        ProvisioningRejected: a request was rejected (``provisioning_rejected:<code>``).
        FleetSimError: no reply in time, or the connection was lost.
    """
    replies = _Replies()
    link = claim.new_link(replies.on_message)
    await link.connect(timeout_s=timeout_s)
    try:
        create = (
            "$aws/certificates/create-from-csr/json" if use_csr else "$aws/certificates/create/json"
        )
        provision = f"$aws/provisioning-templates/{template_name}/provision/json"
        codes = await link.subscribe(
            [(f"{t}/{r}", 1) for t in (create, provision) for r in ("accepted", "rejected")],
            timeout_s=timeout_s,
        )
        if any(code >= 0x80 for code in codes):
            raise FleetSimError(f"subscription to the provisioning topics refused: {codes}")
        key_pem: bytes
        if use_csr:
            key = generate_private_key(key_type)
            csr = create_csr(key, DeviceSubject(common_name=common_name))
            body = await _request(
                link,
                replies,
                "CreateCertificateFromCsr",
                create,
                {"certificateSigningRequest": csr_to_pem(csr).decode()},
                timeout_s,
            )
            key_pem = private_key_to_pem(key)
        else:
            body = await _request(link, replies, "CreateKeysAndCertificate", create, {}, timeout_s)
            key_pem = str(body["privateKey"]).encode()
        registered = await _request(
            link,
            replies,
            "RegisterThing",
            provision,
            {
                "certificateOwnershipToken": body["certificateOwnershipToken"],
                "parameters": parameters,
            },
            timeout_s,
        )
    finally:
        with contextlib.suppress(FleetSimError):
            await link.disconnect()
    _write_identity(out_file, str(body["certificatePem"]).encode() + b"\n" + key_pem)
    return ClaimedIdentity(
        certificate_id=str(body["certificateId"]),
        thing_name=str(registered.get("thingName", "")),
        identity_file=out_file,
        device_configuration={
            str(k): str(v) for k, v in (registered.get("deviceConfiguration") or {}).items()
        },
    )


def _write_identity(path: Path, data: bytes) -> None:
    """Write a certificate + key file readable by its owner only (small, local: not awaited)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)
