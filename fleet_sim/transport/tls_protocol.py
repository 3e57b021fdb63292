"""TLS over a plain asyncio transport, driven through memory BIOs.

:class:`TlsProtocol` is an :class:`asyncio.Protocol` for one TCP connection that runs the TLS
state machine of an :class:`ssl.SSLObject` itself, instead of asyncio's built-in SSL transport.
Why not ``loop.create_server(ssl=...)``: Python 3.11's SSL transport keeps a 256 KiB read
buffer per connection (``asyncio.sslproto.SSLProtocol.max_size``), which is most of the memory
of an idle TLS connection. Here every connection decrypts into one read buffer shared by all
connections of a loop (:class:`ReadBuffer`), writes are handed to the transport as they come,
and the handshake is a separate, observable step. The emulator's gateway and the simulator's
native client both use it.

The protocol reports to a :class:`TlsHandler` (the MQTT driver of the connection):
``tls_established`` once, then ``tls_data`` for each decrypted chunk, then ``tls_closed`` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Protocol, cast

logger = logging.getLogger(__name__)

#: Size of the shared plaintext read buffer: one TLS record holds at most 16 KiB of data.
READ_CHUNK = 64 * 1024


class ReadBuffer:
    """A plaintext buffer shared by all TLS connections of one event loop.

    Decryption happens synchronously inside ``data_received``, so one buffer per loop is enough
    and no connection keeps a buffer of its own while idle.
    """

    __slots__ = ("buffer", "view")

    def __init__(self, size: int = READ_CHUNK) -> None:
        self.buffer = bytearray(size)
        self.view = memoryview(self.buffer)


class TlsHandler(Protocol):
    """What a :class:`TlsProtocol` tells the code above it."""

    def tls_established(self, tls: TlsProtocol) -> None:
        """The handshake finished; peer certificate, SNI and ALPN are available."""

    def tls_data(self, data: bytes) -> None:
        """Decrypted application data arrived."""

    def tls_closed(self, error: BaseException | None) -> None:
        """The connection is gone (``error`` is None for an orderly close)."""

    def tls_pause_writing(self) -> None:
        """The transport's write buffer passed its high-water mark."""

    def tls_resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""


class TlsProtocol(asyncio.Protocol):
    """One TLS connection (client or server side) over a plain TCP transport."""

    __slots__ = (
        "_autostart",
        "_closed",
        "_established",
        "_handler",
        "_incoming",
        "_outgoing",
        "_read",
        "_ssl",
        "error",
        "server_name",
        "transport",
    )

    def __init__(
        self,
        context: ssl.SSLContext,
        handler: TlsHandler,
        *,
        server_side: bool,
        read_buffer: ReadBuffer,
        server_hostname: str | None = None,
        autostart: bool = True,
    ) -> None:
        self._handler = handler
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        self._read = read_buffer
        self._established = False
        self._closed = False
        self._autostart = autostart
        self.transport: asyncio.Transport | None = None
        #: The SNI name the client sent (server side), set by the gateway's SNI callback.
        self.server_name: str | None = None
        #: The TLS error that ended the connection (handshake or later), if any.
        self.error: ssl.SSLError | None = None

    # ------------------------------------------------------------------ facts after handshake

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The underlying :class:`ssl.SSLObject` (peer certificate, cipher, version, ALPN)."""
        return self._ssl

    @property
    def established(self) -> bool:
        """Whether the TLS handshake has completed."""
        return self._established

    def peer_certificate_der(self) -> bytes | None:
        """The peer's leaf certificate in DER form, if it presented one."""
        return self._ssl.getpeercert(binary_form=True)

    def alpn_protocol(self) -> str | None:
        """The ALPN protocol both sides agreed on, if any."""
        return self._ssl.selected_alpn_protocol()

    def tls_version(self) -> str | None:
        """The negotiated TLS version, e.g. ``TLSv1.2``."""
        return self._ssl.version()

    def peer_address(self) -> tuple[str, int] | None:
        """The remote (host, port) of the TCP connection."""
        if self.transport is None:
            return None
        peer = self.transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            return str(peer[0]), int(peer[1])
        return None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the handshake (the client speaks first; the server waits for ClientHello)."""
        # uvloop's TCPTransport implements the Transport interface without subclassing it.
        self.transport = cast("asyncio.Transport", transport)
        if not self._ssl.server_side and self._autostart:
            self.start_handshake()

    def start_handshake(self) -> None:
        """Send the ClientHello (client side; automatic unless ``autostart=False``).

        With ``autostart=False`` a client can time the TCP connect and the TLS handshake as
        two separate phases.
        """
        if self._handshake():
            self._drain_plaintext()

    def data_received(self, data: bytes) -> None:
        """Feed ciphertext in; decrypt and hand plaintext up."""
        if self._closed:
            return
        self._incoming.write(data)
        if not self._established and not self._handshake():
            return
        self._drain_plaintext()

    def eof_received(self) -> bool:
        """The peer closed its side: close ours too."""
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        """The TCP connection is gone."""
        if self._closed:
            return
        self._closed = True
        self._handler.tls_closed(exc if exc is not None else self.error)

    def pause_writing(self) -> None:
        """Forward transport back-pressure to the handler."""
        self._handler.tls_pause_writing()

    def resume_writing(self) -> None:
        """Forward transport back-pressure relief to the handler."""
        self._handler.tls_resume_writing()

    # ------------------------------------------------------------------ sending and closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and send it (ignored once closing)."""
        if self._closed or not self._established:
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError as error:
            self._fail(error)
            return
        self._flush()

    def write_buffer_size(self) -> int:
        """Bytes queued in the transport, not yet accepted by the kernel."""
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    def close(self) -> None:
        """Send close_notify (best effort) and close the TCP connection after flushing."""
        if self._closed or self.transport is None:
            return
        if self._established:
            # The peer's close_notify has usually not arrived yet: no need to wait for it.
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()
            self._flush()
        self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection at once, without close_notify or flushing."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def pause_reading(self) -> None:
        """Stop reading from the socket (back-pressure towards the peer)."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Resume reading from the socket."""
        if self.transport is not None:
            self.transport.resume_reading()

    # ------------------------------------------------------------------ internals

    def _handshake(self) -> bool:
        """Advance the handshake; True once it is done and the connection is still open."""
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as error:
            self._flush()  # the alert, so the peer learns why
            self._fail(error)
            return False
        self._established = True
        self._flush()
        self._handler.tls_established(self)
        return not self._closed and not (self.transport is None or self.transport.is_closing())

    def _drain_plaintext(self) -> None:
        read = self._ssl.read
        buffer = self._read.buffer
        view = self._read.view
        chunks: list[bytes] = []
        ending: ssl.SSLError | None = None
        eof = False
        while True:
            try:
                count = int(read(READ_CHUNK, buffer))  # returns a count when given a buffer
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except ssl.SSLError as error:
                ending = error
                break
            if not count:
                eof = True
                break
            chunks.append(bytes(view[:count]))
        if chunks:
            self._handler.tls_data(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if self._closed or (self.transport is not None and self.transport.is_closing()):
                return
        if ending is not None:
            self._fail(ending)
            return
        if eof:
            self.close()
            return
        if self._outgoing.pending:  # post-handshake messages (TLS 1.3 key updates, tickets)
            self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending and self.transport is not None:
            self.transport.write(self._outgoing.read())

    def _fail(self, error: ssl.SSLError) -> None:
        if self.error is None:
            self.error = error
        logger.debug("TLS failure on %s: %s", self.peer_address(), error)
        if self.transport is not None:
            self.transport.close()
