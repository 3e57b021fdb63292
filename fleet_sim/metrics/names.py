"""The names the engine records under: phases, counters and gauges (the metrics vocabulary).

Phase names are the latency metrics thresholds name (``connect.p99 < 2s`` reads the
``connect`` phase), so :class:`Phase` mirrors the latency entries of
:data:`fleet_sim.scenario.thresholds.METRICS`. Counters and gauges feed the ratios, counts
and rates of :func:`fleet_sim.metrics.values.metric_values`.

Every enum here is a :class:`~enum.StrEnum`, so a member *is* its name: the recorder takes
plain strings, and an engine may record extra phases or counters of its own (they appear in
reports, they just have no threshold).
"""

from __future__ import annotations

import enum

__all__ = ["Counter", "Gauge", "Phase", "phase_sort_key"]


class Phase(enum.StrEnum):
    """Timed phases (recorded with :meth:`MetricsRecorder.phase`, in seconds)."""

    DNS = "dns"
    """Name resolution."""
    TCP = "tcp"
    """TCP connect."""
    TLS = "tls"
    """TLS handshake."""
    CONNACK = "connack"
    """MQTT CONNECT sent to CONNACK received."""
    CONNECT = "connect"
    """A whole successful connect: TCP + TLS + CONNACK (an engine that cannot split the
    connect, such as awscrt, records only this one)."""
    PROVISION = "provision"
    """Obtaining a device identity (JITP/JITR retry included, fleet provisioning, CVM)."""
    PUBLISH = "publish"
    """QoS 1 PUBLISH to PUBACK."""
    SUBSCRIBE = "subscribe"
    """SUBSCRIBE to SUBACK."""


class Counter(enum.StrEnum):
    """Counters (recorded with :meth:`MetricsRecorder.count`)."""

    DEVICES = "devices"
    """Devices the engine started (the denominator of ``failure_ratio`` and
    ``connected_ratio``)."""
    DEVICES_CONNECTED = "devices_connected"
    """Devices that completed at least one connect (the numerator of ``connected_ratio``)."""
    PROVISION_ATTEMPTS = "provision_attempts"
    """Connect attempts (JITP/JITR) or provisioning attempts (claim) until a device had its
    identity; divided by ``devices_connected`` for ``provision_attempts_per_device``."""
    DEVICES_FAILED = "devices_failed"
    """Devices that gave up: their last attempt failed and no retry is left."""
    RECONNECTS = "reconnects"
    """Connects after a device's first successful connect."""
    MESSAGES_SENT = "messages_sent"
    """Messages published (any QoS; for QoS 1, counted when sent, not when acknowledged)."""
    MESSAGES_RECEIVED = "messages_received"
    """Messages received on subscriptions."""


class Gauge(enum.StrEnum):
    """Gauges (recorded with :meth:`MetricsRecorder.gauge`: the value now, per group)."""

    CONNECTED = "connected"
    """Devices with an open MQTT connection."""
    CONNECTING = "connecting"
    """Devices with a connect attempt in flight."""


_PHASE_ORDER = {phase.value: i for i, phase in enumerate(Phase)}


def phase_sort_key(phase: str) -> tuple[int, str]:
    """Sort key putting known phases in connect order (dns … subscribe), then others by name."""
    return _PHASE_ORDER.get(phase, len(_PHASE_ORDER)), phase
