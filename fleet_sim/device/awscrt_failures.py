"""awscrt error names and MQTT reason codes → fleetsim's stable failure names.

awscrt reports a failed connect, a lost connection or a failed operation as an
``AwsCrtError`` whose ``name`` (``AWS_IO_SOCKET_CONNECTION_REFUSED`` …) is stable across
releases, plus the CONNACK / DISCONNECT reason code when the server sent one. This module
turns those into the same :mod:`fleet_sim.errors` classes and ``failure`` names the native
engine produces, so reports count failures alike whichever engine ran.

What awscrt cannot tell apart (it times and reports the connect as a whole):

- A TLS failure on Linux (s2n) is ``AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE`` whatever the cause
  (untrusted server, no common cipher, an alert from the server during the handshake):
  ``tls_handshake_failed``. s2n reports a server certificate it cannot verify only after its
  10-30 s "blinding" delay (12 s measured), so with a shorter connect timeout an untrusted
  server shows up as ``connect_timeout``.
- With TLS 1.3 the client finishes its handshake before the server has checked the client
  certificate; a server that refuses the certificate then sends a fatal alert, which awscrt
  reads as ``AWS_IO_TLS_ERROR_READ_FAILURE`` before any CONNACK. That is reported as
  ``tls_cert_rejected`` (the native engine does the same from the alert's name). The
  ``AWS_IO_TLS_*PEER_CERTIFICATE*`` codes other TLS back ends use for "the peer refused our
  certificate" map there too. The alert itself is not visible.
- The socket closing during the TLS handshake (``AWS_IO_SOCKET_CLOSED``) is
  ``tls_handshake_failed``; after the handshake awscrt's MQTT layer reports
  ``AWS_ERROR_MQTT_UNEXPECTED_HANGUP``: ``closed_before_connack`` (the JITP/JITR drop).
- An error awscrt names but this table does not know becomes ``connect_failed:<NAME>``
  (connect) or ``connection_lost`` (an established connection).
"""

from __future__ import annotations

import re

from fleet_sim.errors import (
    ConnectionFailed,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    FleetSimError,
    LocalProtocolError,
    OperationTimeout,
    TlsHandshakeFailed,
)

__all__ = [
    "connect_failure",
    "crt_error_name",
    "lost_failure",
    "operation_failure",
]

_CODE_IN_MESSAGE = re.compile(r"\d+ \((AWS_[A-Z0-9_]+)\)")

#: The server refused our certificate (see the module docstring for READ_FAILURE).
_CERT_REJECTED = frozenset(
    {
        "AWS_IO_TLS_ERROR_READ_FAILURE",
        "AWS_IO_TLS_BAD_PEER_CERTIFICATE",
        "AWS_IO_TLS_PEER_CERTIFICATE_UNKNOWN",
        "AWS_IO_TLS_PEER_CERTIFICATE_REVOKED",
        "AWS_IO_TLS_PEER_CERTIFICATE_EXPIRED",
    }
)

#: The connection closed after TLS and before CONNACK.
_CLOSED_BEFORE_CONNACK = frozenset(
    {
        "AWS_ERROR_MQTT_UNEXPECTED_HANGUP",
        "AWS_ERROR_MQTT5_DISCONNECT_RECEIVED",
        "AWS_IO_TLS_CLOSED_GRACEFUL",
        "AWS_IO_TLS_CLOSED_ABORT",
    }
)

#: No CONNACK in time (awscrt's own timers; ours usually fire first).
_MQTT_TIMEOUTS = frozenset({"AWS_ERROR_MQTT5_CONNACK_TIMEOUT", "AWS_ERROR_MQTT_TIMEOUT"})

#: No PINGRESP in time on an established connection.
_KEEPALIVE = frozenset({"AWS_ERROR_MQTT5_PING_RESPONSE_TIMEOUT", "AWS_ERROR_MQTT_TIMEOUT"})

#: The server sent something awscrt could not decode or that breaks MQTT.
_PROTOCOL = frozenset(
    {
        "AWS_ERROR_MQTT_PROTOCOL_ERROR",
        "AWS_ERROR_MQTT5_DECODE_PROTOCOL_ERROR",
        "AWS_ERROR_MQTT_INVALID_RESERVED_BITS",
        "AWS_ERROR_MQTT_INVALID_REMAINING_LENGTH",
        "AWS_ERROR_MQTT_INVALID_PACKET_TYPE",
        "AWS_ERROR_MQTT5_INVALID_INBOUND_TOPIC_ALIAS",
        "AWS_ERROR_MQTT5_INVALID_UTF8_STRING",
    }
)

#: awscrt refused an operation before sending it (client-side validation, AWS IoT limits).
_CLIENT_VALIDATION = frozenset(
    {
        "AWS_ERROR_MQTT5_PUBLISH_OPTIONS_VALIDATION",
        "AWS_ERROR_MQTT5_SUBSCRIBE_OPTIONS_VALIDATION",
        "AWS_ERROR_MQTT5_UNSUBSCRIBE_OPTIONS_VALIDATION",
        "AWS_ERROR_MQTT5_PACKET_VALIDATION",
        "AWS_ERROR_MQTT5_USER_PROPERTY_VALIDATION",
        "AWS_ERROR_MQTT5_INVALID_OUTBOUND_TOPIC_ALIAS",
        "AWS_ERROR_MQTT_INVALID_TOPIC",
        "AWS_ERROR_MQTT_INVALID_QOS",
        "AWS_ERROR_MQTT_BUFFER_TOO_BIG",
    }
)


def crt_error_name(error: BaseException | None) -> str:
    """The awscrt name of an error (``AWS_IO_…``), or the Python class name of a builtin one.

    awscrt turns a few of its codes into builtin exceptions (``FileNotFoundError`` …), and its
    bindings raise ``RuntimeError`` with the code in the message; neither has a ``name``.
    """
    if error is None:
        return ""
    name = getattr(error, "name", None)
    if isinstance(name, str) and name:
        return name
    # Bindings that fail synchronously raise RuntimeError("5143 (AWS_ERROR_…): …").
    match = _CODE_IN_MESSAGE.match(str(error))
    return match.group(1) if match else type(error).__name__


def connect_failure(
    name: str, *, connack_code: int | None = None, detail: str = ""
) -> ConnectionFailed:
    """The error of a connect attempt that ended before a successful CONNACK.

    Args:
        name: the awscrt error name (see :func:`crt_error_name`).
        connack_code: the MQTT 5 CONNACK reason code or the 3.1.1 return code, when the server
            answered CONNECT with a refusal.
        detail: awscrt's message, appended to ours.
    """
    suffix = f" ({detail})" if detail else ""
    if connack_code is not None and connack_code != 0:
        return ConnectRefused(
            f"CONNACK refused with 0x{connack_code:02x}{suffix}", reason_code=connack_code
        )
    if name.startswith("AWS_IO_DNS_"):
        return ConnectionFailed(
            f"cannot resolve the endpoint: {name}{suffix}", phase="dns", failure="dns"
        )
    if name == "AWS_IO_SOCKET_CONNECTION_REFUSED":
        return ConnectionFailed(f"connection refused{suffix}", phase="tcp", failure="tcp_refused")
    if name == "AWS_IO_SOCKET_TIMEOUT":
        return ConnectionFailed(
            f"TCP connect timed out{suffix}", phase="tcp", failure="tcp_timeout"
        )
    if name == "AWS_IO_SOCKET_CLOSED":
        return TlsHandshakeFailed(f"the server closed the socket during TLS{suffix}", phase="tls")
    if name in _CERT_REJECTED:
        return TlsHandshakeFailed(
            f"the server refused the device certificate: {name}{suffix}",
            phase="tls",
            failure="tls_cert_rejected",
        )
    if name == "AWS_IO_TLS_NEGOTIATION_TIMEOUT":
        return ConnectTimeout(f"TLS handshake timed out{suffix}", phase="tls")
    if name.startswith("AWS_IO_TLS_"):
        return TlsHandshakeFailed(f"TLS handshake failed: {name}{suffix}", phase="tls")
    if name.startswith("AWS_IO_SOCKET_"):
        return ConnectionFailed(
            f"TCP connect failed: {name}{suffix}", phase="tcp", failure="tcp_error"
        )
    if name in _CLOSED_BEFORE_CONNACK:
        return ConnectionFailed(
            f"the server closed the connection before CONNACK{suffix}",
            phase="mqtt",
            failure="closed_before_connack",
        )
    if name in _MQTT_TIMEOUTS:
        return ConnectTimeout(f"no CONNACK in time: {name}{suffix}", phase="mqtt")
    if name in _PROTOCOL:
        return ConnectionFailed(
            f"protocol error before CONNACK: {name}{suffix}", phase="mqtt", failure="protocol_error"
        )
    return ConnectionFailed(
        f"connect failed: {name or 'unknown error'}{suffix}",
        phase="connect",
        failure=f"connect_failed:{name}" if name else "connect_failed",
    )


def lost_failure(name: str, *, disconnect_code: int | None = None) -> ConnectionLost:
    """The error of an established connection that ended without our asking.

    Args:
        name: the awscrt error name.
        disconnect_code: the reason code of the server's MQTT 5 DISCONNECT, if it sent one.
    """
    if disconnect_code is not None:
        return ConnectionLost(
            f"server DISCONNECT 0x{disconnect_code:02x}",
            reason_code=disconnect_code,
            failure=f"disconnected_by_server:{disconnect_code}",
        )
    if name in _KEEPALIVE:
        return ConnectionLost(f"no PINGRESP in time ({name})", failure="keepalive_timeout")
    if name in _PROTOCOL:
        return ConnectionLost(
            f"protocol violation by the server ({name})", failure="protocol_error"
        )
    return ConnectionLost(
        f"the server closed the connection ({name or 'unknown error'})", failure="connection_lost"
    )


def operation_failure(name: str, *, operation: str) -> FleetSimError:
    """The error of a publish or subscribe that awscrt failed (not a negative ack).

    Args:
        name: the awscrt error name.
        operation: ``publish`` or ``subscribe``.
    """
    if name == "AWS_ERROR_MQTT_TIMEOUT":
        return OperationTimeout(f"no acknowledgement in time ({name})", operation=operation)
    if name in _CLIENT_VALIDATION:
        return LocalProtocolError(f"awscrt refused the {operation} before sending it: {name}")
    return ConnectionLost(
        f"the {operation} failed: the connection is gone ({name})", failure="connection_lost"
    )
