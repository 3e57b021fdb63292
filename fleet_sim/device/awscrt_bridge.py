"""Carrying awscrt's callbacks from its native threads onto one asyncio event loop.

awscrt runs TLS and MQTT in C on its own event-loop threads and calls Python back there
(lifecycle events, received messages, completed ``concurrent.futures`` of operations). Nothing
may touch asyncio objects from those threads, so every callback only takes a timestamp and
posts a call to the loop through a :class:`LoopBridge`.

A bridge batches: the first call posted while none is pending wakes the loop once
(``call_soon_threadsafe``, a write to the loop's self-pipe); calls posted before the loop gets
to them ride along in the same wake-up. At hundreds of connects or tens of thousands of
acknowledgements per second that saves most of the wake-ups one hop per callback would cost.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

__all__ = ["LoopBridge"]


class LoopBridge:
    """Runs callables on one event loop, posted from any thread, in arrival order.

    Args:
        loop: the loop the posted calls run on.
    """

    __slots__ = ("_loop", "_queue", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._scheduled = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the posted calls run on."""
        return self._loop

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon. Safe from any thread, never blocks.

        Calls posted after the loop closed are dropped (nobody is left to run them).
        """
        self._queue.append((fn, args))
        if self._scheduled:
            return
        self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed
            self._queue.clear()

    def _drain(self) -> None:
        # Cleared first: a call posted from now on schedules another drain, so none is left
        # behind between the last pop below and this drain returning.
        self._scheduled = False
        queue = self._queue
        for _ in range(len(queue)):
            fn, args = queue.popleft()
            try:
                fn(*args)
            except Exception as error:  # one bad callback must not drop the others
                self._loop.call_exception_handler(
                    {"message": f"exception in awscrt callback {fn!r}", "exception": error}
                )
