"""Lifecycle event payloads, exactly as AWS IoT Core publishes them (§8 of the reference).

Topics: ``$aws/events/presence/{connected,disconnected,connect_failed}/<clientId>`` and
``$aws/events/subscriptions/{subscribed,unsubscribed}/<clientId>``. Timestamps are epoch
milliseconds. Client ids containing ``#`` or ``+`` get no lifecycle events. Pure: the caller
supplies time, session ids and version numbers.
"""

from __future__ import annotations

import json
from enum import StrEnum


class DisconnectReason(StrEnum):
    """``disconnectReason`` values and connect-failure reasons AWS reports."""

    AUTH_ERROR = "AUTH_ERROR"
    CLIENT_INITIATED_DISCONNECT = "CLIENT_INITIATED_DISCONNECT"
    CLIENT_ERROR = "CLIENT_ERROR"
    CONNECTION_LOST = "CONNECTION_LOST"
    DUPLICATE_CLIENTID = "DUPLICATE_CLIENTID"
    FORBIDDEN_ACCESS = "FORBIDDEN_ACCESS"
    MQTT_KEEP_ALIVE_TIMEOUT = "MQTT_KEEP_ALIVE_TIMEOUT"
    SERVER_ERROR = "SERVER_ERROR"
    SERVER_INITIATED_DISCONNECT = "SERVER_INITIATED_DISCONNECT"
    API_INITIATED_DISCONNECT = "API_INITIATED_DISCONNECT"
    THROTTLED = "THROTTLED"

    @property
    def sends_will(self) -> bool:
        """Whether AWS publishes the Last Will for this reason (all but a client DISCONNECT)."""
        return self is not DisconnectReason.CLIENT_INITIATED_DISCONNECT


#: ``connectFailureReason`` for a connect refused by policy or a bad certificate.
AUTHORIZATION_FAILED = "AUTHORIZATION_FAILED"

PRESENCE_PREFIX = "$aws/events/presence/"
SUBSCRIPTIONS_PREFIX = "$aws/events/subscriptions/"


def emits_events(client_id: str) -> bool:
    """AWS publishes no lifecycle events for client ids containing ``#`` or ``+``."""
    return "#" not in client_id and "+" not in client_id


def presence_topic(event_type: str, client_id: str) -> str:
    """``$aws/events/presence/<event_type>/<clientId>``."""
    return f"{PRESENCE_PREFIX}{event_type}/{client_id}"


def subscriptions_topic(event_type: str, client_id: str) -> str:
    """``$aws/events/subscriptions/<event_type>/<clientId>``."""
    return f"{SUBSCRIPTIONS_PREFIX}{event_type}/{client_id}"


def _encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def connected(
    *,
    client_id: str,
    timestamp_ms: int,
    session_id: str,
    principal: str,
    ip_address: str,
    version_number: int,
) -> bytes:
    """The ``connected`` event payload."""
    return _encode(
        {
            "clientId": client_id,
            "timestamp": timestamp_ms,
            "eventType": "connected",
            "sessionIdentifier": session_id,
            "principalIdentifier": principal,
            "ipAddress": ip_address,
            "versionNumber": version_number,
        }
    )


def disconnected(
    *,
    client_id: str,
    timestamp_ms: int,
    session_id: str,
    principal: str,
    version_number: int,
    reason: DisconnectReason,
) -> bytes:
    """The ``disconnected`` event payload (no ``ipAddress``, as on AWS)."""
    return _encode(
        {
            "clientId": client_id,
            "timestamp": timestamp_ms,
            "eventType": "disconnected",
            "clientInitiatedDisconnect": reason is DisconnectReason.CLIENT_INITIATED_DISCONNECT,
            "sessionIdentifier": session_id,
            "principalIdentifier": principal,
            "disconnectReason": reason.value,
            "versionNumber": version_number,
        }
    )


def connect_failed(
    *,
    client_id: str,
    timestamp_ms: int,
    session_id: str,
    principal: str,
    ip_address: str,
    reason: str = AUTHORIZATION_FAILED,
) -> bytes:
    """The ``connect_failed`` event payload."""
    return _encode(
        {
            "clientId": client_id,
            "timestamp": timestamp_ms,
            "eventType": "connect_failed",
            "connectFailureReason": reason,
            "principalIdentifier": principal,
            "sessionIdentifier": session_id,
            "ipAddress": ip_address,
        }
    )


def subscription_change(
    *,
    event_type: str,
    client_id: str,
    timestamp_ms: int,
    session_id: str,
    principal: str,
    topics: list[str],
) -> bytes:
    """The ``subscribed`` / ``unsubscribed`` event payload."""
    return _encode(
        {
            "clientId": client_id,
            "timestamp": timestamp_ms,
            "eventType": event_type,
            "sessionIdentifier": session_id,
            "principalIdentifier": principal,
            "topics": topics,
        }
    )
