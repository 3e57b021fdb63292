"""What the client and server sessions share: the event queue, the output buffer and the
inbound topic-alias table.

Internal to :mod:`fleet_sim.mqtt.client` and :mod:`fleet_sim.mqtt.server`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from fleet_sim.errors import RemoteProtocolError
from fleet_sim.mqtt.events import Event
from fleet_sim.mqtt.packets import Publish, ReasonCode


class SessionCore:
    """The h11-style output side of a session: ``next_event()`` and ``data_to_send()``."""

    __slots__ = ("_events", "_out")

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []

    def next_event(self) -> Event | None:
        """The oldest event not yet handed out, or ``None``."""
        events = self._events
        return events.popleft() if events else None

    def data_to_send(self) -> bytes:
        """Every byte queued for the peer since the last call (drains the buffer)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data


def resolve_inbound_alias(publish: Publish, aliases: dict[int, str], maximum: int) -> Publish:
    """Apply MQTT 5 topic aliases (§3.3.2.3.4) to an inbound PUBLISH.

    Args:
        publish: a PUBLISH whose properties carry a Topic Alias.
        aliases: this connection's alias table, updated in place.
        maximum: the Topic Alias Maximum we announced (0: aliases not allowed).

    Returns:
        The PUBLISH with its full topic name.

    Raises:
        RemoteProtocolError: the alias is 0 or above ``maximum`` (0x94), or unknown with an
            empty topic (0x82). The sessions turn it into a ``ProtocolViolation``.
    """
    alias = publish.properties.topic_alias
    assert alias is not None
    if alias == 0 or alias > maximum:
        raise RemoteProtocolError(
            f"topic alias {alias} outside 1..{maximum}", reason_code=ReasonCode.TOPIC_ALIAS_INVALID
        )
    if publish.topic:
        aliases[alias] = publish.topic
        return publish
    topic = aliases.get(alias)
    if topic is None:
        raise RemoteProtocolError(
            f"unknown topic alias {alias}", reason_code=ReasonCode.PROTOCOL_ERROR
        )
    return replace(publish, topic=topic)
