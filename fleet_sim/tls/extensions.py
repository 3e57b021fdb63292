"""The X.509 v3 extensions fleetsim puts in certificates, modelled on OpenSSL's ``v3_ca`` and
``usr_cert`` sections: CAs get critical ``basicConstraints CA:TRUE`` and ``keyUsage
keyCertSign, cRLSign, digitalSignature``; leaves get critical ``CA:FALSE``, a key usage that
fits their key, one extended key usage, optional subjectAltNames; both get key identifiers.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from fleet_sim.errors import CertificateError
from fleet_sim.tls.keys import PublicKey

Extensions = list[tuple[x509.ExtensionType, bool]]
"""Extensions with their ``critical`` flag, in the order they are added."""


class LeafPurpose(enum.StrEnum):
    """The extended key usage of an issued leaf certificate."""

    CLIENT = "client"
    SERVER = "server"


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A ``KeyUsage`` with the named bits set and every other bit clear."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def authority_key_identifier(
    issuer: x509.Certificate | None, issuer_public_key: PublicKey
) -> x509.AuthorityKeyIdentifier:
    """The AKI pointing at ``issuer``: its SKI when it has one, else derived from its key
    (``issuer`` None: a self-signed certificate, derived from its own key)."""
    if issuer is not None:
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            pass
        else:
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key)


def ca_extensions(
    public_key: PublicKey, authority: x509.AuthorityKeyIdentifier, path_length: int | None
) -> Extensions:
    """Extensions of a CA certificate for ``public_key``."""
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (authority, False),
    ]


def leaf_extensions(
    public_key: PublicKey,
    authority: x509.AuthorityKeyIdentifier,
    purpose: LeafPurpose,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> Extensions:
    """Extensions of a leaf certificate for ``public_key`` (keyEncipherment only for RSA).

    Raises:
        CertificateError: an IP address that does not parse.
    """
    usage = (
        ExtendedKeyUsageOID.CLIENT_AUTH
        if purpose is LeafPurpose.CLIENT
        else ExtendedKeyUsageOID.SERVER_AUTH
    )
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    extensions: Extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(digital_signature=True, key_encipherment=is_rsa), True),
        (x509.ExtendedKeyUsage([usage]), False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (authority, False),
    ]
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    for address in ip_addresses:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            raise CertificateError(f"{address!r} is not an IP address") from None
    if alt_names:
        extensions.append((x509.SubjectAlternativeName(alt_names), False))
    return extensions
