"""Calibration for the engine benchmark: this machine's client-side OpenSSL cost of a handshake.

The benchmark machine's speed drifts (shared host): the same code measured 1.0 and 1.5 ms of
client CPU per TLS handshake half an hour apart. Absolute CPU goals ("1.5 ms per connect") are
only comparable across runs next to a figure every Python stack pays: the client-side OpenSSL
CPU of one mutual-TLS 1.2 handshake with an EC P-256 device key, measured here in-process over
memory BIOs against an in-process server (only the client's calls are timed, with
``time.thread_time()``), so no socket, event loop or broker is in it. A Python client cannot
connect for less; what it spends above this floor is its own overhead.
"""

from __future__ import annotations

import contextlib
import ssl
import time

from benchmarks.engine_fixtures import SERVER_NAME, Fixture

#: Untimed handshakes first (OpenSSL initialises and caches algorithm fetches lazily).
WARM_UP = 20

MAX_ROUNDS = 8


def _server_context(fixture: Fixture) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(fixture.server_cert), str(fixture.server_key))
    context.load_verify_locations(cafile=str(fixture.ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_context(fixture: Fixture, index: int) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(fixture.ca_file))
    context.load_cert_chain(str(fixture.pem_file(index)))
    return context


def _step(obj: ssl.SSLObject) -> None:
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> float:
    """One handshake; returns the client side's thread CPU seconds."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    spent = 0.0
    began = time.thread_time()
    tls = client.wrap_bio(c_in, c_out, server_hostname=SERVER_NAME)
    spent += time.thread_time() - began
    peer = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(MAX_ROUNDS):
        began = time.thread_time()
        _step(tls)
        spent += time.thread_time() - began
        s_in.write(c_out.read())
        _step(peer)
        c_in.write(s_out.read())
        if c_in.pending == 0 and c_out.pending == 0 and s_out.pending == 0:
            break
    began = time.thread_time()
    tls.do_handshake()  # raises if it did not complete
    spent += time.thread_time() - began
    return spent


class HandshakeFloor:
    """Measures the floor repeatedly with contexts built once (only handshakes are timed).

    Args:
        fixture: the CA, server identity and device PEMs.
        contexts: distinct device contexts to cycle through.
    """

    def __init__(self, fixture: Fixture, contexts: int = 100) -> None:
        count = max(1, min(contexts, fixture.count))
        self._server = _server_context(fixture)
        self._clients = [_client_context(fixture, index) for index in range(count)]
        for client in self._clients[:WARM_UP]:
            _handshake(client, self._server)

    def measure_ms(self, handshakes: int = 300) -> float:
        """Mean client CPU ms of ``handshakes`` full handshakes (cycling the device contexts)."""
        clients, server = self._clients, self._server
        total = sum(_handshake(clients[i % len(clients)], server) for i in range(handshakes))
        return total / max(1, handshakes) * 1000
