"""The gateway's TLS server context and its live trust store (§7.6 of the reference).

One :class:`ssl.SSLContext` serves every listener: TLS 1.2 and 1.3, the emulator's server
certificate, a client certificate required, no session tickets (AWS supports none), and the
ALPN protocol ``x-amzn-mqtt-ca`` offered for the port-443 listener.

Client certificates are verified by OpenSSL against a trust store that grows while the emulator
runs: the emulator's own device CA, every registered CA certificate and every certificate
registered without a CA. Partial-chain verification makes each of them a trust anchor, so an
intermediate CA registered with AWS IoT works without its root, and a CA-less certificate
trusts itself. Entries cannot be removed from a live OpenSSL store; a CA or certificate that
stops being ACTIVE is refused after the handshake instead (that is AWS's behaviour too: the
TLS handshake succeeds and the connection is closed).
"""

from __future__ import annotations

import ssl
import weakref

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet_sim.emulator.pki import EmulatorPki
from fleet_sim.tls.inspect import certificate_id

#: ALPN protocol AWS IoT requires for MQTT with X.509 on port 443.
ALPN_MQTT_CA = "x-amzn-mqtt-ca"


class GatewayTls:
    """The server context plus the set of certificates it trusts for client authentication."""

    def __init__(self, pki: EmulatorPki, *, require_sni: bool) -> None:
        self.require_sni = require_sni
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(pki.server_certificate_file, pki.server_key_file)
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0  # no TLS 1.3 session tickets either: AWS supports none
        context.set_alpn_protocols([ALPN_MQTT_CA])
        context.sni_callback = self._on_sni
        self.context = context
        self._trusted: set[str] = set()
        self._server_names: weakref.WeakKeyDictionary[ssl.SSLObject, str] = (
            weakref.WeakKeyDictionary()
        )
        self.trust(pki.device_ca.certificate)

    def trust(self, certificate: x509.Certificate) -> bool:
        """Accept client certificates that chain to ``certificate`` (a CA or a leaf itself).

        Returns:
            False when it was trusted already.
        """
        cert_id = certificate_id(certificate)
        if cert_id in self._trusted:
            return False
        self.context.load_verify_locations(cadata=certificate.public_bytes(Encoding.DER))
        self._trusted.add(cert_id)
        return True

    @property
    def trusted_count(self) -> int:
        """How many certificates the store holds."""
        return len(self._trusted)

    def server_name(self, ssl_object: ssl.SSLObject) -> str | None:
        """The SNI name the client sent on this connection, if any."""
        return self._server_names.get(ssl_object)

    def _on_sni(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> int | None:
        if name is None:
            # AWS refuses connections without SNI (§7.6); the toggle allows them.
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if self.require_sni else None
        if isinstance(ssl_object, ssl.SSLObject):
            self._server_names[ssl_object] = name
        return None
