"""What the awscrt engine's links share: one connection attempt of one device on awscrt.

A link owns one awscrt client (``awscrt.mqtt5.Client`` in :mod:`fleet_sim.device.awscrt_mqtt5`,
or an ``awscrt.mqtt.Connection`` of the device's MQTT 3.1.1 client in
:mod:`fleet_sim.device.awscrt_mqtt311`) for the life of one connection and implements the
:class:`~fleet_sim.device.link.DeviceLink` protocol on top of it. :class:`CrtLink` holds the
version-independent part:

- awscrt's own reconnects are switched off: the MQTT 5 client gets a reconnect delay of a day
  and is stopped on its first connection failure or disconnection; the 3.1.1 connection is
  connected once and disconnected as soon as it is interrupted (its reconnect timer is a day
  too). Retrying is the scenario's retry policy, with a new link.
- Callbacks arrive on awscrt's threads; each takes a timestamp and posts to the loop through a
  :class:`~fleet_sim.device.awscrt_bridge.LoopBridge`. The connect is timed from ``start()`` /
  ``connect()`` to the CONNACK callback, on the native thread (no loop latency included).
- Errors get the native engine's failure names (:mod:`fleet_sim.device.awscrt_failures`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from awscrt import io

from fleet_sim.device.awscrt_bridge import LoopBridge
from fleet_sim.device.awscrt_failures import (
    connect_failure,
    crt_error_name,
    lost_failure,
    operation_failure,
)
from fleet_sim.device.link import ConnectTimings
from fleet_sim.errors import (
    ConnectionFailed,
    ConnectionLost,
    ConnectTimeout,
    FleetSimError,
    LocalProtocolError,
    OperationTimeout,
)
from fleet_sim.mqtt.packets import Publish

__all__ = ["CrtDeviceSettings", "CrtLink", "crt_result", "socket_options"]

#: awscrt's reconnect delay: a day, i.e. never within a run (each link stops its client first).
NEVER_MS = 24 * 3600 * 1000
#: How long :meth:`disconnect` waits for the connection to close after DISCONNECT.
DISCONNECT_WAIT_S = 2.0

OnMessage = Callable[[Publish], None]


@dataclass(frozen=True, slots=True)
class CrtDeviceSettings:
    """What every link of one prepared device shares (built once, outside the connect)."""

    host: str
    """The name awscrt resolves, sends as SNI and checks the server certificate against."""
    port: int
    client_id: str
    keep_alive_s: int
    clean_session: bool
    bootstrap: Any
    """The engine's ``awscrt.io.ClientBootstrap``."""
    tls_context: Any
    """The device's ``awscrt.io.ClientTlsContext``."""
    connect_packet: Any = None
    """MQTT 5: the ``awscrt.mqtt5.ConnectPacket`` every attempt sends."""
    mqtt3_client: Any = None
    """MQTT 3.1.1: the device's ``awscrt.mqtt.Client`` (its connections are the links)."""


def socket_options(timeout_s: float) -> Any:
    """awscrt socket options whose TCP connect timeout is the connect timeout."""
    options = io.SocketOptions()
    options.connect_timeout_ms = max(1, int(timeout_s * 1000))
    return options


class CrtLink:
    """What both MQTT versions share: connect bookkeeping, the closed future, operations."""

    __slots__ = (
        "__weakref__",  # lets tests prove a finished link is collected
        "_bridge",
        "_closed",
        "_connack",
        "_connected",
        "_down",
        "_loop",
        "_on_message",
        "_pending",
        "_settings",
        "_started",
    )

    def __init__(
        self, settings: CrtDeviceSettings, bridge: LoopBridge, on_message: OnMessage | None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        assert bridge.loop is self._loop, "the bridge must serve the running loop"
        self._settings = settings
        self._bridge = bridge
        self._on_message = on_message
        self._closed: asyncio.Future[FleetSimError | None] = self._loop.create_future()
        self._connack: asyncio.Future[float] | None = None
        self._connected = False
        self._down: asyncio.Future[None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._started = 0.0

    @property
    def closed(self) -> asyncio.Future[FleetSimError | None]:
        """Resolves when the connection ends: None for our own disconnect, else the error."""
        return self._closed

    @property
    def connected(self) -> bool:
        """CONNACK received and not closed since."""
        return self._connected

    # ------------------------------------------------------------------ connect

    async def connect(self, *, timeout_s: float) -> ConnectTimings:
        """Connect up to CONNACK (one attempt, no reconnects), timed as a whole.

        Raises:
            ConnectionFailed: with ``failure`` ``dns``, ``tcp_refused``, ``tcp_timeout``,
                ``tcp_error``, ``tls_handshake_failed``, ``tls_cert_rejected``,
                ``closed_before_connack``, ``connack_refused:<code>``, ``connect_timeout``
                (phase ``connect``: awscrt does not say how far it got) or
                ``connect_failed:<awscrt error name>``.
            LocalProtocolError: the link was connected before (a link is one attempt).
        """
        if self._connack is not None or self._closed.done():
            raise LocalProtocolError("a link connects once: ask the device for a new link")
        connack = self._connack = self._loop.create_future()
        self._start(timeout_s)
        # A plain timer rather than asyncio.timeout(): one object less per connect.
        timer = self._loop.call_later(timeout_s, self._timed_out, timeout_s)
        try:
            acked_at = await connack
        except ConnectionFailed:
            raise
        except BaseException:  # cancelled: leave nothing connecting behind
            self._give_up(ConnectionLost("connect cancelled", failure="aborted"))
            raise
        finally:
            timer.cancel()
        self._connected = True
        return ConnectTimings(total_s=acked_at - self._started)

    def _timed_out(self, timeout_s: float) -> None:
        if self._connack is not None and not self._connack.done():
            self._give_up(ConnectTimeout(f"no CONNACK within {timeout_s:g} s", phase="connect"))

    def _start(self, timeout_s: float) -> None:
        raise NotImplementedError

    def _stop(self, *, graceful: bool) -> None:
        """Stop the awscrt client or connection (with DISCONNECT when ``graceful``).

        Called again (not graceful) once the connection is down: that is when a link lets go
        of its awscrt client.
        """
        raise NotImplementedError

    def _give_up(self, error: FleetSimError) -> None:
        self._finish(error)
        self._stop(graceful=False)

    # ------------------------------------------------------------------ loop-side events

    def _acked(self, acked_at: float) -> None:
        connack = self._connack
        if connack is None or connack.done() or self._closed.done():
            self._stop(graceful=True)  # we gave up on this attempt before the CONNACK came
            return
        connack.set_result(acked_at)

    def _refused(self, name: str, code: int | None, detail: str) -> None:
        error = connect_failure(name, connack_code=code, detail=detail)
        connack = self._connack
        if connack is not None and not connack.done():
            connack.set_exception(error)
        self._finish(error)
        self._stop(graceful=False)

    def _went_down(self, name: str, code: int | None) -> None:
        if self._down is not None and not self._down.done():
            self._down.set_result(None)
        if not self._closed.done():  # else: our own disconnect or abort
            self._finish(lost_failure(name, disconnect_code=code))
        self._stop(graceful=False)  # no reconnect; the connection is gone anyway

    def _finish(self, error: FleetSimError | None) -> None:
        self._connected = False
        connack = self._connack
        if connack is not None and not connack.done():  # disconnect() or abort() mid-connect
            connack.set_exception(
                error
                if isinstance(error, ConnectionFailed)
                else ConnectionFailed(
                    "the simulator closed the link before CONNACK",
                    phase="connect",
                    failure="aborted",
                )
            )
        if self._pending:
            lost = error if error is not None else ConnectionLost("disconnected", failure="closed")
            for future in self._pending:
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
        if not self._closed.done():
            self._closed.set_result(error)

    # ------------------------------------------------------------------ operations

    def _require_open(self) -> None:
        if not self._connected:
            error = self._closed.result() if self._closed.done() else None
            raise error or ConnectionLost("not connected", failure="not_connected")

    def _track(
        self, crt_future: Future[Any], convert: Callable[[Future[Any]], Any]
    ) -> asyncio.Future[Any]:
        """An asyncio future settled on the loop (through the bridge) from ``crt_future``."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending.add(future)
        post, settle = self._bridge.post, self._settle
        crt_future.add_done_callback(lambda done: post(settle, future, done, convert))
        return future

    def _settle(
        self,
        future: asyncio.Future[Any],
        crt_future: Future[Any],
        convert: Callable[[Future[Any]], Any],
    ) -> None:
        if future.done():
            self._pending.discard(future)
            return  # timed out, or failed when the connection ended
        try:
            result = convert(crt_future)
        except ConnectionLost:
            # awscrt fails in-flight operations as the connection goes, often just before the
            # disconnection callback: leave the future to _finish, which fails it with the
            # same error ``closed`` gets (or to the caller's timeout, should that never come).
            if self._closed.done():
                self._pending.discard(future)
                future.set_exception(
                    self._closed.result() or ConnectionLost("disconnected", failure="closed")
                )
            return
        except FleetSimError as error:
            self._pending.discard(future)
            future.set_exception(error)
            return
        self._pending.discard(future)
        future.set_result(result)

    async def _wait(self, future: asyncio.Future[Any], timeout_s: float, operation: str) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            self._pending.discard(future)
            raise OperationTimeout(
                f"no answer to {operation} in time", operation=operation
            ) from None

    async def _wait_down(self) -> None:
        down = self._down
        if down is not None:
            try:
                async with asyncio.timeout(DISCONNECT_WAIT_S):
                    await down
            except TimeoutError:
                pass

    def _message(self, publish: Publish) -> None:
        if self._on_message is not None:
            self._on_message(publish)


def crt_result(operation: str) -> Callable[[Future[Any]], Any]:
    """A converter for :meth:`CrtLink._track`: the awscrt future's result, or its error
    classified (:func:`~fleet_sim.device.awscrt_failures.operation_failure`)."""

    def convert(crt_future: Future[Any]) -> Any:
        error = crt_future.exception()
        if error is not None:
            raise operation_failure(crt_error_name(error), operation=operation)
        return crt_future.result()

    return convert
