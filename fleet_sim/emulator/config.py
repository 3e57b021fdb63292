"""The local emulator's configuration: listeners, identity of the fake account, broker limits.

Every limit defaults to AWS IoT Core's documented quota (``aws-iot-core-behaviour.md`` §7.1),
and every one can be changed or switched off (``None``), because a benchmark or a test may want
the broker without AWS's throttles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet_sim.emulator.provisioning.hooks import PreProvisioningHandler


class SubscribeDenial(Enum):
    """How a denied SUBSCRIBE is answered on MQTT 3.1.1 (§6.6)."""

    SUBACK_FAILURE = "suback"  # SUBACK 0x80 for the denied filter (what current AWS does)
    DISCONNECT = "disconnect"  # close the connection (what AWS did in 2017-2018)


class PublishDenial(Enum):
    """How a denied QoS 0 PUBLISH is answered on MQTT 5 (§6.6; QoS 1 always gets PUBACK 0x87)."""

    DROP = "drop"  # drop silently, keep the connection
    DISCONNECT = "disconnect"  # DISCONNECT 0x87 ("strict")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerLimits:
    """AWS IoT Core message-broker quotas. ``None`` switches a limit off."""

    max_payload_bytes: int | None = 128 * 1024
    """PUBLISH payloads above this get a CLIENT_ERROR disconnect (also CONNECT size)."""

    max_topic_bytes: int | None = 256
    """Topic names and filters above this many UTF-8 bytes are refused."""

    max_topic_slashes: int | None = 7
    """Topic names and filters with more forward slashes are refused."""

    max_filters_per_subscribe: int | None = 8
    """Filters beyond this in one SUBSCRIBE get a failure code in SUBACK."""

    max_subscriptions_per_connection: int | None = 50
    """Subscriptions beyond this on one connection get a failure code in SUBACK."""

    publishes_per_second_per_connection: float | None = 100.0
    """Inbound + outbound publishes per connection per second; the excess is discarded."""

    connects_per_second_per_client_id: float | None = 1.0
    """CONNECT attempts per client id per second; the excess is throttled."""

    connects_per_second_per_account: float | None = 500.0
    """CONNECT attempts per second for the whole account; the excess is throttled."""

    min_keep_alive_s: int = 30
    """Keep-alive values below this (but above 0) are raised to it."""

    max_keep_alive_s: int = 1200
    """Keep-alive values above this, and 0, become this."""

    max_inflight_outbound: int = 100
    """Unacknowledged outbound QoS 1 publishes per client."""

    session_expiry_s: int = 3600
    """Persistent sessions expire this long after their client disconnects (1 h default)."""

    max_session_expiry_s: int = 7 * 24 * 3600
    """MQTT 5 clients cannot ask for a longer session expiry than this."""

    max_queued_messages_per_session: int = 1000
    """QoS 1 messages stored for an offline persistent session; the excess is dropped."""

    queued_drain_per_second: float | None = 10.0
    """Stored messages are delivered at this rate when a persistent session resumes."""

    @classmethod
    def unlimited(cls) -> BrokerLimits:
        """Limits for benchmarks: no throttles and no rate limits (sizes stay as AWS's)."""
        return cls(
            publishes_per_second_per_connection=None,
            connects_per_second_per_client_id=None,
            connects_per_second_per_account=None,
            max_subscriptions_per_connection=None,
            queued_drain_per_second=None,
        )


class RegistrationTimestamp(Enum):
    """How the JITR event's ``certificateRegistrationTimestamp`` is written (§2.3: AWS has
    been seen sending both)."""

    NULL = "null"  # ``null`` (the 2023 capture)
    STRING_MS = "string"  # the registration time as a string of epoch milliseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoRegistrationConfig:
    """Just-in-time provisioning and registration (JITP/JITR, §1 and §2 of the reference)."""

    jitp_latency_s: tuple[float, float] = (0.1, 0.5)
    """JITP runs this long after the first connect (uniformly drawn from ``(low, high)``)."""

    jitp_error_rate: float = 0.0
    """Share of JITP attempts that fail as if AWS had an internal error (0 to 1)."""

    register_thing_tps: float | None = 10.0
    """JITP runs through RegisterThing, whose quota applies (10 TPS): attempts above it are
    throttled and retried at the device's next connect. None switches the quota off."""

    register_thing_burst: float | None = None
    """Token-bucket burst of that quota (None: one second's worth)."""

    jitp_registered_event: bool = True
    """JITP publishes ``$aws/events/certificates/registered/<caId>`` too (§1.6: unverified)."""

    registration_timestamp: RegistrationTimestamp = RegistrationTimestamp.NULL
    """How ``certificateRegistrationTimestamp`` is written in the registered event."""

    source_ip_in_event: bool = True
    """Add the (undocumented, but observed) ``sourceIp`` field to the registered event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything the local AWS IoT Core emulator needs to start."""

    host: str = "127.0.0.1"
    """Address the listeners bind to."""

    port: int = 8883
    """MQTT over mutual TLS (0 picks a free port, as tests do)."""

    alpn_port: int | None = None
    """Optional second listener that requires ALPN ``x-amzn-mqtt-ca`` (AWS's port 443)."""

    data_dir: Path = field(default_factory=lambda: Path(".fleetsim-emulator"))
    """Where the registry database, the emulator's PKI and ``endpoint.json`` live."""

    account_id: str = "123456789012"
    """The fake AWS account id (12 digits)."""

    region: str = "us-east-1"
    """The fake AWS region, used in ARNs."""

    endpoint: str = "localhost"
    """The data endpoint name: what clients connect to and send as SNI."""

    require_sni: bool = True
    """Refuse TLS connections whose ClientHello has no SNI (AWS does)."""

    handshake_timeout_s: float = 10.0
    """Connections that finish no TLS handshake and CONNECT within this are dropped."""

    limits: BrokerLimits = field(default_factory=BrokerLimits)
    """Message-broker quotas."""

    subscribe_denial: SubscribeDenial = SubscribeDenial.SUBACK_FAILURE
    """MQTT 3.1.1 answer to a denied SUBSCRIBE."""

    publish_denial: PublishDenial = PublishDenial.DROP
    """MQTT 5 answer to a denied QoS 0 PUBLISH."""

    lifecycle_events: bool = True
    """Publish presence and subscription events on ``$aws/events/...`` (AWS always does)."""

    control_plane_port: int | None = 0
    """HTTP port of the AWS IoT control-plane API (0 picks a free port; None switches it off)."""

    throttle_control_plane: bool = False
    """Answer ``ThrottlingException`` above AWS's default per-operation API rates."""

    ownership_token_ttl_s: float = 3600.0
    """Fleet provisioning: certificate ownership tokens expire after this (AWS: 1 hour)."""

    pre_provisioning_hooks: Mapping[str, PreProvisioningHandler] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Fleet provisioning: a template's pre-provisioning hook ``targetArn`` → the Python
    callable ``handler(event, context)`` that plays the Lambda."""

    pre_provisioning_hook_timeout_s: float = 5.0
    """Fleet provisioning: a hook taking longer denies the request (AWS: 5 s)."""

    fleet_register_thing_tps: float | None = 10.0
    """Fleet provisioning: MQTT RegisterThing requests per second for the account (AWS's
    RegisterThing quota: 10); the excess is rejected with 429 ``Throttled``. None switches
    the quota off."""

    auto_registration: AutoRegistrationConfig = field(default_factory=AutoRegistrationConfig)
    """JITP latency, error rate and quota; the JITR/JITP registered event's shape."""
