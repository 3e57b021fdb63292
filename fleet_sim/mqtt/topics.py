"""MQTT topic names and topic filters: validation, AWS IoT limits, shared filters, matching.

Pure functions shared by the client (which raises :class:`~fleet_sim.errors.LocalProtocolError`
on a bad topic) and the broker (which answers with a reason code). Validators return a
human-readable reason or ``None``; they never raise.

Matching follows MQTT 3.1.1 §4.7 / MQTT 5 §4.7 with two switches:

* ``$`` topics: a filter whose first level is a wildcard never matches a topic starting with
  ``$`` (both specs, and AWS IoT).
* AWS IoT's multi-level wildcard: with ``aws=True`` (the default) ``a/#`` matches ``a/`` and
  ``a/x/y`` but **not** ``a``; with ``aws=False`` it also matches the parent ``a`` as the spec
  says.
"""

from __future__ import annotations

#: Largest UTF-8 encoded string MQTT can carry (two-byte length prefix).
MAX_STRING_BYTES = 65535

#: AWS IoT topic size limit in bytes (§7.1), not counting the Basic Ingest prefix.
AWS_MAX_TOPIC_BYTES = 256

#: AWS IoT limit on ``/`` in a topic or filter (§7.1).
AWS_MAX_SLASHES = 7

#: Prefix of an MQTT 5 (and AWS IoT 3.1.1) shared subscription filter.
SHARE_PREFIX = "$share/"

#: Prefix of an AWS IoT Basic Ingest topic: ``$aws/rules/<rule>/...``.
BASIC_INGEST_PREFIX = "$aws/rules/"


def _string_error(text: str, what: str) -> str | None:
    if not text:
        return f"{what} is empty"
    if "\x00" in text:
        return f"{what} contains U+0000"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{what} is not valid UTF-8 (it contains a lone surrogate)"
    if size > MAX_STRING_BYTES:
        return f"{what} is {size} bytes of UTF-8, more than {MAX_STRING_BYTES}"
    return None


def topic_name_error(topic: str) -> str | None:
    """Check a topic name (what PUBLISH carries) against the MQTT rules.

    Args:
        topic: the topic name.

    Returns:
        Why the name is invalid, or ``None`` if it is valid.
    """
    error = _string_error(topic, "topic name")
    if error is not None:
        return error
    if "+" in topic or "#" in topic:
        return f"topic name {topic!r} contains a wildcard (+ or #)"
    return None


def _levels_error(topic_filter: str) -> str | None:
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            return f"topic filter {topic_filter!r}: '#' must be the last level and alone in it"
        if "+" in level and level != "+":
            return f"topic filter {topic_filter!r}: '+' must be alone in its level"
    return None


def topic_filter_error(topic_filter: str) -> str | None:
    """Check a topic filter (what SUBSCRIBE carries) against the MQTT rules.

    A shared filter ``$share/<name>/<filter>`` is checked as well: the share name must be
    non-empty and free of ``/``, ``+`` and ``#``, and the inner filter must be valid.

    Args:
        topic_filter: the topic filter.

    Returns:
        Why the filter is invalid, or ``None`` if it is valid.
    """
    error = _string_error(topic_filter, "topic filter")
    if error is not None:
        return error
    if topic_filter.startswith(SHARE_PREFIX):
        rest = topic_filter[len(SHARE_PREFIX) :]
        name, slash, inner = rest.partition("/")
        if not slash or not name:
            return f"shared filter {topic_filter!r} must be $share/<name>/<filter>"
        if "+" in name or "#" in name:
            return f"shared filter {topic_filter!r}: the share name contains a wildcard"
        if not inner:
            return f"shared filter {topic_filter!r} has an empty filter"
        return _levels_error(inner)
    return _levels_error(topic_filter)


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split a shared subscription filter into its share name and inner filter.

    Args:
        topic_filter: a filter, validated by :func:`topic_filter_error` beforehand.

    Returns:
        ``(share_name, inner_filter)`` for ``$share/<name>/<filter>``, else
        ``(None, topic_filter)`` (also for a malformed ``$share/`` filter, which validation
        rejects).
    """
    if topic_filter.startswith(SHARE_PREFIX):
        name, slash, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
        if slash and name and inner:
            return name, inner
    return None, topic_filter


def _strip_aws_prefixes(topic_or_filter: str) -> str:
    if topic_or_filter.startswith(SHARE_PREFIX):
        return parse_shared(topic_or_filter)[1]
    if topic_or_filter.startswith(BASIC_INGEST_PREFIX):
        _rule, slash, rest = topic_or_filter[len(BASIC_INGEST_PREFIX) :].partition("/")
        if slash:
            return rest
    return topic_or_filter


def aws_topic_limit_error(
    topic_or_filter: str,
    *,
    max_bytes: int = AWS_MAX_TOPIC_BYTES,
    max_slashes: int = AWS_MAX_SLASHES,
) -> str | None:
    """Check AWS IoT's topic size and depth limits (reference §7.1).

    A ``$aws/rules/<rule>/`` (Basic Ingest) or ``$share/<name>/`` prefix is not counted. Call
    this on a name or filter that already passed the MQTT checks.

    Args:
        topic_or_filter: a topic name or topic filter.
        max_bytes: the size limit in bytes of UTF-8.
        max_slashes: the largest number of ``/`` allowed.

    Returns:
        Which limit is exceeded, or ``None``.
    """
    counted = _strip_aws_prefixes(topic_or_filter)
    try:
        size = len(counted.encode("utf-8"))
    except UnicodeEncodeError:
        return "topic is not valid UTF-8"
    if size > max_bytes:
        return f"topic is {size} bytes of UTF-8, more than AWS IoT's {max_bytes}"
    slashes = counted.count("/")
    if slashes > max_slashes:
        return f"topic has {slashes} slashes, more than AWS IoT's {max_slashes}"
    return None


def matches(topic_filter: str, topic: str, *, aws: bool = True) -> bool:
    """Whether a topic filter matches a topic name.

    Pass the inner filter of a shared subscription (see :func:`parse_shared`). Both arguments
    are assumed valid.

    Args:
        topic_filter: a (non-shared) topic filter.
        topic: a topic name.
        aws: AWS IoT's rule that ``a/#`` does not match ``a``; ``False`` for the spec's rule.

    Returns:
        ``True`` if the filter matches.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    topic_count = len(topic_levels)
    for index, level in enumerate(filter_levels):
        if level == "#":
            # '#' matches what is left; the spec also lets it match zero levels (the parent).
            return index < topic_count or not aws
        if index >= topic_count:
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == topic_count
