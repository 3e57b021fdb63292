"""Which reason codes each MQTT packet type may carry (MQTT 5 §3.x.2.1; MQTT 3.1.1 §3.2.2.3
and §3.9.3).

The encoder refuses a code outside its packet type's set with :class:`LocalProtocolError`; the
decoder answers one with a Protocol Error. The names of the codes are
:class:`fleet_sim.mqtt.packets.ReasonCode`; these sets are plain ``int`` so membership tests
on the hot paths stay cheap.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTH_V5",
    "CONNACK_V4",
    "CONNACK_V5",
    "DISCONNECT_REASON_CODES",
    "PUBACK_V5",
    "PUBREL_V5",
    "SUBACK_V4",
    "SUBACK_V5",
    "UNSUBACK_V5",
]

#: CONNACK return codes of MQTT 3.1.1 (§3.2.2.3).
CONNACK_V4: Final = frozenset(range(6))
#: CONNACK reason codes of MQTT 5 (§3.2.2.2).
CONNACK_V5: Final = frozenset(
    {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
     0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
)  # fmt: skip
#: PUBACK and PUBREC reason codes (§3.4.2.1, §3.5.2.1).
PUBACK_V5: Final = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
#: PUBREL and PUBCOMP reason codes (§3.6.2.1, §3.7.2.1).
PUBREL_V5: Final = frozenset({0x00, 0x92})
#: SUBACK return codes of MQTT 3.1.1 (§3.9.3).
SUBACK_V4: Final = frozenset({0x00, 0x01, 0x02, 0x80})
#: SUBACK reason codes of MQTT 5 (§3.9.3).
SUBACK_V5: Final = frozenset(
    {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}
)
#: UNSUBACK reason codes of MQTT 5 (§3.11.3); MQTT 3.1.1's UNSUBACK has none.
UNSUBACK_V5: Final = frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})
#: Reason codes an MQTT 5 DISCONNECT may carry (§3.14.2.1).
DISCONNECT_REASON_CODES: Final = frozenset(
    {0x00, 0x04, *range(0x80, 0x84), 0x87, 0x89, *range(0x8B, 0x91), *range(0x93, 0xA3)}
)
#: AUTH reason codes (§3.15.2.1).
AUTH_V5: Final = frozenset({0x00, 0x18, 0x19})
