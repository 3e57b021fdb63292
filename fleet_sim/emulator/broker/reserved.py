"""Which reserved ``$`` topics a device may publish or subscribe to (§7.2 of the reference).

AWS IoT refuses publishes and subscriptions on ``$`` topics except the ones its services
define; a RETAIN publish to a reserved topic is always refused. Messages to
``$aws/rules/<rule>/…`` (Basic Ingest) go to the rules engine only, never to subscribers.
"""

from __future__ import annotations

import re

_PUBLISHABLE = re.compile(
    r"""^\$aws/(?:
        things/[^/]+/shadow/(?:name/[^/]+/)?(?:get|update|delete)
      | things/[^/]+/jobs/.+
      | certificates/create(?:-from-csr)?/(?:json|cbor)
      | provisioning-templates/[^/]+/provision/(?:json|cbor)
      | rules/[^/]+/.+
      | defender/metrics/(?:json|cbor)/?.*
    )$""",
    re.VERBOSE,
)

_SUBSCRIBABLE_PREFIXES = (
    "$aws/events/",
    "$aws/things/",
    "$aws/certificates/",
    "$aws/provisioning-templates/",
    "$aws/defender/",
)

BASIC_INGEST_PREFIX = "$aws/rules/"


def is_reserved(topic: str) -> bool:
    """Whether a topic name or filter is in the reserved ``$`` space."""
    return topic.startswith("$")


def may_publish(topic: str) -> bool:
    """Whether a device may publish to ``topic`` at all (policy still decides afterwards)."""
    return not topic.startswith("$") or _PUBLISHABLE.match(topic) is not None


def may_subscribe(topic_filter: str) -> bool:
    """Whether a device may subscribe to ``topic_filter`` at all (policy decides afterwards)."""
    return not topic_filter.startswith("$") or topic_filter.startswith(_SUBSCRIBABLE_PREFIXES)


def is_basic_ingest(topic: str) -> bool:
    """Basic Ingest topics reach the rules engine, not subscribers."""
    return topic.startswith(BASIC_INGEST_PREFIX)
