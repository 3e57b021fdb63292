"""The failure taxonomy: stable, machine-readable failure names and what they mean.

A failure name is ``<kind>`` or ``<kind>:<detail>``: ``tcp_refused``,
``connack_refused:135``, ``disconnected_by_server:142``. The detail of an MQTT reason code is
its decimal value, exactly as :mod:`fleet_sim.errors` writes it (``ConnectRefused.failure``,
``OperationRejected.failure``), so an error's ``failure`` attribute is already a valid name
and ``Failure.of(error)`` never disagrees with it.

Reports count failures by name, per group and phase; they never parse messages. The set of
kinds is open: :class:`FailureKind` lists the ones fleetsim produces and describes them, and
any other well-formed name is accepted (and shown as is).

A drop the provisioning method expects (the first JITP/JITR connect, which AWS closes while
it registers the certificate) is the same kind of failure, recorded with ``expected=True`` by
the recorder and counted apart from real failures.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from fleet_sim.errors import FleetSimError
from fleet_sim.mqtt.packets import ReasonCode

__all__ = ["Failure", "FailureKind", "describe_failure"]

_NAME = re.compile(r"(?P<kind>[a-z][a-z0-9_]*)(?::(?P<detail>[A-Za-z0-9_.\-]+))?")


class FailureKind(enum.StrEnum):
    """The failure kinds fleetsim produces (the part of a name before ``:``)."""

    DNS = "dns"
    TCP_REFUSED = "tcp_refused"
    TCP_TIMEOUT = "tcp_timeout"
    TCP_ERROR = "tcp_error"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    TLS_CERT_REJECTED = "tls_cert_rejected"
    CLOSED_BEFORE_CONNACK = "closed_before_connack"
    CONNACK_REFUSED = "connack_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    DISCONNECTED_BY_SERVER = "disconnected_by_server"
    CONNECTION_LOST = "connection_lost"
    PROTOCOL_ERROR = "protocol_error"
    SUBACK_FAILURE = "suback_failure"
    SUBSCRIBE_TIMEOUT = "subscribe_timeout"
    PUBACK_FAILURE = "puback_failure"
    PUBLISH_TIMEOUT = "publish_timeout"
    THROTTLED = "throttled"
    PROVISIONING_REJECTED = "provisioning_rejected"
    PROVISIONING_TIMEOUT = "provisioning_timeout"

    @property
    def description(self) -> str:
        """What the kind means, in a few words."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[FailureKind, str] = {
    FailureKind.DNS: "endpoint name did not resolve",
    FailureKind.TCP_REFUSED: "TCP connection refused",
    FailureKind.TCP_TIMEOUT: "TCP connect timed out",
    FailureKind.TCP_ERROR: "TCP connect failed",
    FailureKind.TLS_HANDSHAKE_FAILED: "TLS handshake failed",
    FailureKind.TLS_CERT_REJECTED: "server rejected the device certificate",
    FailureKind.CLOSED_BEFORE_CONNACK: "connection closed before CONNACK",
    FailureKind.CONNACK_REFUSED: "CONNACK refused",
    FailureKind.CONNECT_TIMEOUT: "connect timed out",
    FailureKind.KEEPALIVE_TIMEOUT: "no PINGRESP in time",
    FailureKind.DISCONNECTED_BY_SERVER: "server sent DISCONNECT",
    FailureKind.CONNECTION_LOST: "connection closed by the server",
    FailureKind.PROTOCOL_ERROR: "server broke the MQTT protocol",
    FailureKind.SUBACK_FAILURE: "subscription refused",
    FailureKind.SUBSCRIBE_TIMEOUT: "no SUBACK in time",
    FailureKind.PUBACK_FAILURE: "PUBACK with a failure code",
    FailureKind.PUBLISH_TIMEOUT: "no PUBACK in time",
    FailureKind.THROTTLED: "throttled by the service",
    FailureKind.PROVISIONING_REJECTED: "provisioning request rejected",
    FailureKind.PROVISIONING_TIMEOUT: "no provisioning answer in time",
}

#: MQTT 3.1.1 CONNACK return codes (§3.2.2.3); MQTT 5 uses reason codes ≥ 0x80 instead.
_MQTT311_CONNACK = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

#: Kinds whose detail is an MQTT reason code.
_REASON_KINDS = frozenset(
    {
        FailureKind.CONNACK_REFUSED,
        FailureKind.DISCONNECTED_BY_SERVER,
        FailureKind.SUBACK_FAILURE,
        FailureKind.PUBACK_FAILURE,
    }
)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure name, split into its kind and optional detail.

    Build one with a named constructor (``Failure.connack_refused(0x87)``), from an error
    (``Failure.of(error)``) or from text (``Failure.parse("connack_refused:135")``);
    ``str(failure)`` and :attr:`name` give the stable name.

    Attributes:
        kind: the part before ``:``, e.g. ``connack_refused``.
        detail: the part after it (``"135"``), or None.
    """

    kind: str
    detail: str | None = None

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise ValueError(f"not a failure name: {self.name!r}")

    @property
    def name(self) -> str:
        """The stable name: ``kind`` or ``kind:detail``."""
        return self.kind if self.detail is None else f"{self.kind}:{self.detail}"

    def __str__(self) -> str:
        return self.name

    @property
    def description(self) -> str:
        """A human description, e.g. ``CONNACK refused: 0x87 not authorized``."""
        return describe_failure(self.name)

    # ------------------------------------------------------------------ parsing

    @classmethod
    def parse(cls, name: str) -> Failure:
        """Split a failure name.

        Raises:
            ValueError: ``name`` is not ``<kind>[:<detail>]`` (kind: lower-case letters,
                digits and ``_``, starting with a letter).
        """
        match = _NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a failure name: {name!r}")
        return cls(match.group("kind"), match.group("detail"))

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        """The failure of an error: its ``failure`` name for a :class:`FleetSimError`.

        Anything else is a bug or an unclassified I/O error, named ``error``.
        """
        if isinstance(error, FleetSimError):
            return cls.parse(error.failure)
        return cls("error")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def dns(cls) -> Failure:
        """The endpoint name did not resolve."""
        return cls(FailureKind.DNS.value)

    @classmethod
    def tcp_refused(cls) -> Failure:
        """TCP connection refused."""
        return cls(FailureKind.TCP_REFUSED.value)

    @classmethod
    def tcp_timeout(cls) -> Failure:
        """TCP connect timed out."""
        return cls(FailureKind.TCP_TIMEOUT.value)

    @classmethod
    def tls_handshake_failed(cls) -> Failure:
        """The TLS handshake failed for another reason than our certificate."""
        return cls(FailureKind.TLS_HANDSHAKE_FAILED.value)

    @classmethod
    def tls_cert_rejected(cls) -> Failure:
        """The server refused our certificate (TLS alert)."""
        return cls(FailureKind.TLS_CERT_REJECTED.value)

    @classmethod
    def closed_before_connack(cls) -> Failure:
        """The server closed the connection after CONNECT, before any CONNACK."""
        return cls(FailureKind.CLOSED_BEFORE_CONNACK.value)

    @classmethod
    def connack_refused(cls, reason_code: int) -> Failure:
        """CONNACK with a refusal code (``connack_refused:135`` for 0x87)."""
        return cls(FailureKind.CONNACK_REFUSED.value, _code(reason_code))

    @classmethod
    def connect_timeout(cls) -> Failure:
        """No CONNACK (or no handshake) within the connect timeout."""
        return cls(FailureKind.CONNECT_TIMEOUT.value)

    @classmethod
    def keepalive_timeout(cls) -> Failure:
        """No PINGRESP in time."""
        return cls(FailureKind.KEEPALIVE_TIMEOUT.value)

    @classmethod
    def disconnected_by_server(cls, reason_code: int) -> Failure:
        """The server sent DISCONNECT with a reason code."""
        return cls(FailureKind.DISCONNECTED_BY_SERVER.value, _code(reason_code))

    @classmethod
    def suback_failure(cls, reason_code: int | None = None) -> Failure:
        """A subscription refused in the SUBACK (``suback_failure`` or ``suback_failure:135``)."""
        detail = None if reason_code is None else _code(reason_code)
        return cls(FailureKind.SUBACK_FAILURE.value, detail)

    @classmethod
    def puback_failure(cls, reason_code: int) -> Failure:
        """A PUBACK with a failure reason code."""
        return cls(FailureKind.PUBACK_FAILURE.value, _code(reason_code))

    @classmethod
    def publish_timeout(cls) -> Failure:
        """No PUBACK in time."""
        return cls(FailureKind.PUBLISH_TIMEOUT.value)

    @classmethod
    def throttled(cls) -> Failure:
        """The service throttled the request (AWS ``ThrottlingException``, HTTP 429)."""
        return cls(FailureKind.THROTTLED.value)


def _code(reason_code: int) -> str:
    if not 0 <= reason_code <= 0xFF:
        raise ValueError(f"an MQTT reason code is a byte; got {reason_code}")
    return str(reason_code)


def _reason_text(kind: str, code: int) -> str:
    if kind == FailureKind.CONNACK_REFUSED and code in _MQTT311_CONNACK:
        return f"{code} {_MQTT311_CONNACK[code]}"
    try:
        name = ReasonCode(code).name
    except ValueError:
        return f"0x{code:02x}"
    return f"0x{code:02x} {name.lower().replace('_', ' ')}"


def describe_failure(name: str) -> str:
    """A human description of a failure name, for reports.

    ``connack_refused:135`` → ``CONNACK refused: 0x87 not authorized``. Unknown kinds and
    malformed names are returned as they are.
    """
    match = _NAME.fullmatch(name)
    if match is None:
        return name
    kind, detail = match.group("kind"), match.group("detail")
    try:
        text = FailureKind(kind).description
    except ValueError:
        return name
    if detail is None:
        return text
    if kind in _REASON_KINDS and detail.isdigit():
        return f"{text}: {_reason_text(kind, int(detail))}"
    return f"{text}: {detail}"
