"""Run an in-process emulator on its own event loop in a background thread.

Interop tests drive blocking clients (paho-mqtt, mosquitto_pub, awscrt) from the test thread,
so the emulator must not share the test's loop. The registry is thread-safe and may be used
directly from the test thread; anything touching the broker goes through :meth:`call`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from fleet_sim.emulator.app import Emulator, EndpointInfo
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.registry.registry import Registry

T = TypeVar("T")


class EmulatorThread:
    """``with EmulatorThread(config) as emu:`` — a running emulator for blocking clients."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.emulator = Emulator(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)
        self._stopped = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._stopped.set()

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self._loop).result(timeout=30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._stopped.wait(timeout=30)
        self._thread.join(timeout=30)
        self._loop.close()

    @property
    def info(self) -> EndpointInfo:
        """Host, port, CA file … of the running emulator."""
        return self.emulator.info

    @property
    def registry(self) -> Registry:
        """The registry (thread-safe)."""
        return self.emulator.registry

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop thread and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)
