"""The broker's subscription index: a trie of topic filters keyed by topic level.

:class:`TopicTree` answers "who subscribed to something matching this topic?" in time that
depends on the topic's depth and the number of matching filters, never on the number of
subscriptions. It follows the same rules as :func:`fleet_sim.mqtt.topics.matches` (``$``
topics, AWS IoT's ``#`` rule) and stores filters literally: a broker indexes the *inner* filter
of a shared subscription (:func:`~fleet_sim.mqtt.topics.parse_shared`) under a key that names
the share group.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from fleet_sim.errors import LocalProtocolError
from fleet_sim.mqtt.topics import topic_filter_error

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Node(Generic[K, V]):
    """One topic level: literal children, the ``+`` child, and ``#`` subscribers."""

    __slots__ = ("children", "hash_subscribers", "plus", "subscribers")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K, V]] = {}
        self.plus: _Node[K, V] | None = None
        # Filters ending here: key -> (filter, value).
        self.subscribers: dict[K, tuple[str, V]] = {}
        # Filters ending in "#" right below this level: key -> (filter, value).
        self.hash_subscribers: dict[K, tuple[str, V]] = {}

    def is_empty(self) -> bool:
        return not (self.children or self.plus or self.subscribers or self.hash_subscribers)


class TopicTree(Generic[K, V]):
    """A subscription trie mapping topic filters to subscriber keys and values.

    Each ``(key, filter)`` pair holds one value (e.g. the granted QoS and options); the same key
    may subscribe many filters. A reverse index makes :meth:`remove_key` proportional to that
    key's own subscriptions.

    Args:
        aws: AWS IoT's rule that ``a/#`` does not match ``a`` (``False``: the spec's rule).
    """

    __slots__ = ("_by_key", "_count", "_root", "aws")

    def __init__(self, *, aws: bool = True) -> None:
        self.aws = aws
        self._root: _Node[K, V] = _Node()
        self._by_key: dict[K, set[str]] = {}
        self._count = 0

    def __len__(self) -> int:
        """The number of ``(key, filter)`` subscriptions."""
        return self._count

    def add(self, topic_filter: str, key: K, value: V) -> bool:
        """Subscribe ``key`` to ``topic_filter``, replacing the value of an existing one.

        Args:
            topic_filter: a valid (non-shared) topic filter.
            key: who subscribes (a client id, a session, a share group…).
            value: what to hand back on a match.

        Returns:
            ``True`` if the subscription is new, ``False`` if it replaced one.

        Raises:
            LocalProtocolError: the filter is not a valid MQTT topic filter.
        """
        error = topic_filter_error(topic_filter)
        if error is not None:
            raise LocalProtocolError(error)
        node = self._root
        levels = topic_filter.split("/")
        is_hash = levels[-1] == "#"
        if is_hash:
            levels.pop()
        for level in levels:
            if level == "+":
                if node.plus is None:
                    node.plus = _Node()
                node = node.plus
            else:
                child = node.children.get(level)
                if child is None:
                    child = node.children[level] = _Node()
                node = child
        table = node.hash_subscribers if is_hash else node.subscribers
        is_new = key not in table
        table[key] = (topic_filter, value)
        if is_new:
            self._by_key.setdefault(key, set()).add(topic_filter)
            self._count += 1
        return is_new

    def remove(self, topic_filter: str, key: K) -> bool:
        """Unsubscribe ``key`` from ``topic_filter``.

        Returns:
            ``True`` if the subscription existed.
        """
        filters = self._by_key.get(key)
        if filters is None or topic_filter not in filters:
            return False
        levels = topic_filter.split("/")
        is_hash = levels[-1] == "#"
        if is_hash:
            levels.pop()
        path: list[tuple[_Node[K, V], str]] = []
        node = self._root
        for level in levels:
            path.append((node, level))
            next_node = node.plus if level == "+" else node.children.get(level)
            assert next_node is not None, "reverse index and trie disagree"
            node = next_node
        table = node.hash_subscribers if is_hash else node.subscribers
        del table[key]
        filters.discard(topic_filter)
        if not filters:
            del self._by_key[key]
        self._count -= 1
        # Prune the levels nobody needs any more, deepest first.
        for parent, level in reversed(path):
            if not node.is_empty():
                break
            if level == "+":
                parent.plus = None
            else:
                del parent.children[level]
            node = parent
        return True

    def remove_key(self, key: K) -> int:
        """Drop every subscription of ``key``.

        Returns:
            How many subscriptions were removed.
        """
        filters = self._by_key.get(key)
        if not filters:
            return 0
        removed = 0
        for topic_filter in list(filters):
            removed += self.remove(topic_filter, key)
        return removed

    def filters(self, key: K) -> frozenset[str]:
        """The filters ``key`` subscribes to."""
        return frozenset(self._by_key.get(key, ()))

    def keys(self) -> Iterator[K]:
        """Every key with at least one subscription."""
        return iter(self._by_key)

    def match(self, topic: str) -> list[tuple[K, str, V]]:
        """Every subscription whose filter matches ``topic``.

        Args:
            topic: a valid topic name.

        Returns:
            ``(key, filter, value)`` for each matching subscription, in no particular order. A
            key appears once per matching filter.
        """
        levels = topic.split("/")
        depth = len(levels)
        aws = self.aws
        result: list[tuple[K, str, V]] = []
        root = self._root
        # At the root, a topic starting with "$" is invisible to wildcards.
        if topic.startswith("$"):
            frontier: list[_Node[K, V]] = []
            child = root.children.get(levels[0])
            if child is not None:
                frontier.append(child)
            start = 1
        else:
            frontier = [root]
            start = 0
        for index in range(start, depth):
            level = levels[index]
            next_frontier: list[_Node[K, V]] = []
            for node in frontier:
                if node.hash_subscribers:
                    for key, (topic_filter, value) in node.hash_subscribers.items():
                        result.append((key, topic_filter, value))
                child = node.children.get(level)
                if child is not None:
                    next_frontier.append(child)
                if node.plus is not None:
                    next_frontier.append(node.plus)
            if not next_frontier:
                return result
            frontier = next_frontier
        for node in frontier:
            for key, (topic_filter, value) in node.subscribers.items():
                result.append((key, topic_filter, value))
            if not aws and node.hash_subscribers:
                # The spec's "a/#" also matches the parent level "a".
                for key, (topic_filter, value) in node.hash_subscribers.items():
                    result.append((key, topic_filter, value))
        return result
