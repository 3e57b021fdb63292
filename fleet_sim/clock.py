"""Time as an input: the :class:`Clock` protocol and its two implementations.

The pure core never reads the time; it is handed ``now`` (seconds, monotonic) by its driver.
Drivers take a :class:`Clock` so tests can run them against a :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Where drivers get the time from and how they wait."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (for timestamps AWS sends: events, shadows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of this clock's time."""
        ...


class LoopClock:
    """The real clock: the running loop's monotonic time and :func:`time.time`."""

    def now(self) -> float:
        """Seconds on the event loop's monotonic clock."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when a test calls :meth:`advance`.

    ``sleep`` parks the caller until the clock has been advanced far enough.
    """

    def __init__(self, start: float = 0.0, *, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        """The current manual time."""
        return self._now

    def wall(self) -> float:
        """The manual time shifted to a plausible epoch."""
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` has moved the clock ``seconds`` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for _, future in sorted(due, key=lambda item: item[0]):
            if not future.done():
                future.set_result(None)


async def sleep_unless(clock: Clock, seconds: float, event: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock`` unless ``event`` is set first; True if it was set.

    The wait for the event and the clock's sleep race; whichever loses is cancelled.
    """
    if event.is_set():
        return True
    if seconds <= 0:
        return event.is_set()
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
    return event.is_set()
