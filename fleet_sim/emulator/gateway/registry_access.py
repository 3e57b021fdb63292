"""Authentication and authorization backed by the registry and the policy engine.

:class:`RegistryAuthenticator` decides what happens after a TLS handshake (§7.7, §11.1 of the
reference): a registered ACTIVE certificate under an ACTIVE CA (or registered without a CA)
becomes a principal; a registered certificate in another state is refused at CONNECT; an
unknown certificate, or one still PENDING_ACTIVATION, is dropped without a CONNACK after the
auto-registration hook has had its say (JITP/JITR plug in there).

:class:`RegistryAccess` builds a policy-engine :class:`ConnectionAuthorizer` per connection
from the policies attached to the certificate and the thing named by the client id.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from fleet_sim.clock import Clock
from fleet_sim.emulator.broker.access import Authorizer, Principal
from fleet_sim.emulator.gateway.authenticate import Accepted, Dropped
from fleet_sim.emulator.registry.models import (
    CAStatus,
    Certificate,
    CertificateMode,
    CertificateStatus,
)
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import FleetSimError
from fleet_sim.policy import (
    ConnectionAuthorizer,
    PolicyDocument,
    RequestContext,
    ThingInfo,
    parse_policy,
)

logger = logging.getLogger(__name__)

#: Certificate subject/issuer attributes by the names AWS's policy variables use.
_ATTRIBUTE_NAMES = {
    NameOID.COMMON_NAME: "CommonName",
    NameOID.COUNTRY_NAME: "Country",
    NameOID.ORGANIZATION_NAME: "Organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OrganizationalUnit",
    NameOID.STATE_OR_PROVINCE_NAME: "State",
    NameOID.SERIAL_NUMBER: "SerialNumber",
    NameOID.DN_QUALIFIER: "DistinguishedNameQualifier",
    NameOID.TITLE: "Title",
    NameOID.SURNAME: "Surname",
    NameOID.GIVEN_NAME: "GivenName",
    NameOID.INITIALS: "Initials",
    NameOID.PSEUDONYM: "Pseudonym",
    NameOID.GENERATION_QUALIFIER: "GenerationQualifier",
}


class AutoRegistration(Protocol):
    """What happens to a certificate the registry does not know (JITP/JITR live here)."""

    def unknown_certificate(
        self,
        certificate: x509.Certificate,
        certificate_id: str,
        *,
        server_name: str | None,
        source_ip: str | None = None,
    ) -> str:
        """Handle an unknown certificate; returns the reason the connection is dropped."""
        ...

    def pending_certificate(
        self, record: Certificate, *, server_name: str | None, source_ip: str | None = None
    ) -> str:
        """Handle a certificate still PENDING_ACTIVATION; returns the drop reason."""
        ...


class NoAutoRegistration:
    """The default: unknown and pending certificates are simply refused."""

    def unknown_certificate(
        self,
        certificate: x509.Certificate,
        certificate_id: str,
        *,
        server_name: str | None,
        source_ip: str | None = None,
    ) -> str:
        """Refuse."""
        return "unknown_certificate"

    def pending_certificate(
        self, record: Certificate, *, server_name: str | None, source_ip: str | None = None
    ) -> str:
        """Refuse."""
        return "pending_activation"


class RegistryAuthenticator:
    """Looks client certificates up in the registry (one indexed query per handshake)."""

    def __init__(
        self,
        registry: Registry,
        *,
        auto_registration: AutoRegistration | None = None,
    ) -> None:
        self.registry = registry
        self.auto_registration: AutoRegistration = auto_registration or NoAutoRegistration()

    def authenticate(
        self, certificate_der: bytes, *, server_name: str | None, source_ip: str | None = None
    ) -> Accepted | Dropped:
        """Decide what happens to a connection presenting ``certificate_der``."""
        certificate_id = hashlib.sha256(certificate_der).hexdigest()
        state = self.registry.certificate_state(certificate_id)
        if state is not None and state[0] == "ACTIVE" and state[2] != "SNI_ONLY":
            active = state[1] is None or state[3] == "ACTIVE"
            return Accepted(
                Principal(certificate_id, active=active, certificate_der=certificate_der)
            )
        record = self.registry.certificate_by_id(certificate_id)
        if record is None:
            certificate = x509.load_der_x509_certificate(certificate_der)
            return Dropped(
                self.auto_registration.unknown_certificate(
                    certificate, certificate_id, server_name=server_name, source_ip=source_ip
                )
            )
        if record.certificate_mode == CertificateMode.SNI_ONLY and server_name is None:
            return Dropped("sni_required")
        if record.status == CertificateStatus.PENDING_ACTIVATION:
            return Dropped(
                self.auto_registration.pending_certificate(
                    record, server_name=server_name, source_ip=source_ip
                )
            )
        active = record.status == CertificateStatus.ACTIVE
        if active and record.ca_certificate_id is not None:
            ca = self.registry.ca_by_id(record.ca_certificate_id)
            active = ca is not None and ca.status == CAStatus.ACTIVE
        return Accepted(Principal(certificate_id, active=active, certificate_der=certificate_der))


class RegistryAccess:
    """Builds each connection's policy authorizer from the registry."""

    def __init__(self, registry: Registry, *, clock: Clock, cache_size: int = 1024) -> None:
        self.registry = registry
        self.clock = clock
        self._documents: dict[tuple[str, str], PolicyDocument] = {}
        self._cache_size = cache_size

    def authorizer(
        self,
        principal: Principal,
        *,
        client_id: str,
        source_ip: str,
        persistent: bool,
        will_topic: str | None,
    ) -> Authorizer:
        """The authorizer for ``principal`` connecting as ``client_id``."""
        registry = self.registry
        with registry.snapshot():
            texts = registry.policies_for_certificate(principal.certificate_id)
            thing = registry.thing(client_id)
            attached = thing is not None and registry.is_thing_attached(
                principal.certificate_id, client_id
            )
            if attached:
                # Policies attached to the thing's groups apply to its connection too (AWS IoT
                # evaluates them with the certificate's when the client id is the attached thing).
                seen = {name for name, _ in texts}
                texts = texts + [
                    (name, text)
                    for name, text in registry.attachments.policies_for_thing(client_id)
                    if name not in seen
                ]
        policies = [
            document for name, text in texts if (document := self._document(name, text)) is not None
        ]
        uses_certificate = any("iot:certificate." in text.lower() for _, text in texts)
        thing_info: ThingInfo | None = None
        if thing is not None:
            thing_info = ThingInfo(
                name=thing.name,
                type_name=thing.thing_type_name,
                attributes=dict(thing.attributes),
                is_attached=attached,
            )
        attributes: tuple[str, ...] = ()
        if persistent:
            attributes += ("PersistentConnect",)
        if will_topic is not None:
            attributes += ("LastWill",)
        certificate_facts = (
            _certificate_facts(principal.certificate_der) if uses_certificate else {}
        )
        context = RequestContext(
            client_id=client_id,
            source_ip=source_ip,
            thing=thing_info,
            certificate_id=principal.certificate_id,
            connect_attributes=attributes,
            last_will_topic=will_topic,
            region=registry.region,
            account_id=registry.account_id,
            now=self.clock.wall(),
            **certificate_facts,  # type: ignore[arg-type]
        )
        return ConnectionAuthorizer(
            policies, context, region=registry.region, account_id=registry.account_id
        )

    def forget_policy(self, name: str) -> None:
        """Drop cached parses of a policy whose document changed."""
        for key in [k for k in self._documents if k[0] == name]:
            del self._documents[key]

    def _document(self, name: str, text: str) -> PolicyDocument | None:
        key = (name, text)
        document = self._documents.get(key)
        if document is None:
            try:
                document = parse_policy(text, name=name)
            except FleetSimError as error:  # stored documents were validated; be safe anyway
                logger.warning("ignoring unparsable policy %r: %s", name, error)
                return None
            if len(self._documents) >= self._cache_size:
                self._documents.pop(next(iter(self._documents)))
            self._documents[key] = document
        return document


def _names(name: x509.Name) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in name:
        aws_name = _ATTRIBUTE_NAMES.get(attribute.oid)
        if aws_name is not None:
            values.setdefault(aws_name, []).append(str(attribute.value))
    return values


_SAN_TYPES: dict[str, Callable[[x509.SubjectAlternativeName], list[str]]] = {
    "RFC822Name": lambda san: [str(v) for v in san.get_values_for_type(x509.RFC822Name)],
    "DNSName": lambda san: [str(v) for v in san.get_values_for_type(x509.DNSName)],
    "UniformResourceIdentifier": lambda san: [
        str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)
    ],
    "IPAddress": lambda san: [str(v) for v in san.get_values_for_type(x509.IPAddress)],
    "DirectoryName": lambda san: [
        v.rfc4514_string() for v in san.get_values_for_type(x509.DirectoryName)
    ],
}


def _certificate_facts(der: bytes | None) -> dict[str, object]:
    if der is None:
        return {}
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    facts: dict[str, object] = {
        "subject": _names(certificate.subject),
        "issuer": _names(certificate.issuer),
        "certificate_serial_number": str(certificate.serial_number),
        "certificate_not_before": certificate.not_valid_before_utc.timestamp(),
        "certificate_not_after": certificate.not_valid_after_utc.timestamp(),
    }
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return facts
    alternative = {kind: pick(san) for kind, pick in _SAN_TYPES.items()}
    facts["subject_alternative_names"] = {k: v for k, v in alternative.items() if v}
    return facts
