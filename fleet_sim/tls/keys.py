"""Private keys: the key types fleetsim generates, PEM encoding and tolerant PEM loading.

AWS IoT accepts RSA and ECDSA device keys, so those are the only families loaded here. PEM
input may be anything ``openssl`` writes: PKCS#8 (``genpkey``, ``genrsa`` in OpenSSL 3),
PKCS#1 (``genrsa -traditional``) or SEC1 (``ecparam -genkey``, with or without the leading
``EC PARAMETERS`` block). Keys are written as unencrypted PKCS#8, as OpenSSL 3 does.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from fleet_sim.errors import CertificateError
from fleet_sim.tls.pem import pem_blocks, read_pem_file

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The private keys fleetsim generates, loads and signs with."""

PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
"""The public half of :data:`PrivateKey`."""

RSA_PUBLIC_EXPONENT = 65537

_PRIVATE_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
)


class KeyType(enum.StrEnum):
    """A key algorithm and size; the value is the spelling used on the CLI and in YAML."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"

    @classmethod
    def parse(cls, text: str) -> KeyType:
        """Return the key type spelled ``text`` (case-insensitive).

        Raises:
            CertificateError: ``text`` names no supported key type.
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise CertificateError(f"unknown key type {text!r} (choose one of {choices})") from None

    @classmethod
    def of(cls, key: PrivateKeyTypes | PublicKeyTypes) -> KeyType | None:
        """Return the key type of ``key``, or None when it is none of the four members."""
        try:
            return cls(key_type_name(key))
        except ValueError:
            return None


def generate_private_key(key_type: KeyType) -> PrivateKey:
    """Generate a fresh private key of ``key_type`` (EC is about 100x cheaper than RSA)."""
    if key_type is KeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    bits = 2048 if key_type is KeyType.RSA_2048 else 3072
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=bits)


def key_type_name(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    """Name any key the way :class:`KeyType` spells it: ``ec-p256``, ``rsa-4096``, ``ed25519``…"""
    public = key.public_key() if isinstance(key, _PRIVATE_TYPES) else key
    if isinstance(public, rsa.RSAPublicKey):
        return f"rsa-{public.key_size}"
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = public.curve.name
        short = {"secp256r1": "ec-p256", "secp384r1": "ec-p384", "secp521r1": "ec-p521"}
        return short.get(curve, f"ec-{curve}")
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public, ed448.Ed448PublicKey):
        return "ed448"
    if isinstance(public, dsa.DSAPublicKey):
        return f"dsa-{public.key_size}"
    if isinstance(public, x25519.X25519PublicKey | x448.X448PublicKey):
        return "x25519" if isinstance(public, x25519.X25519PublicKey) else "x448"
    return type(public).__name__.lower()


def private_key_to_pem(key: PrivateKey) -> bytes:
    """Encode ``key`` as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_der(key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key: equal bytes iff the same key."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key_pem(
    data: bytes,
    *,
    source: Path | str | None = None,
    password: bytes | None = None,
    skip_rsa_validation: bool = False,
) -> PrivateKey:
    """Load an RSA or EC private key from PEM in any format ``openssl`` writes.

    Args:
        data: the PEM text; other PEM blocks (``EC PARAMETERS``, certificates) are ignored.
        source: the file the data came from, named in errors.
        password: the passphrase of an encrypted key.
        skip_rsa_validation: skip the RSA consistency check (tens of ms); only for keys this
            program wrote itself and checked some other way.

    Raises:
        CertificateError: no private key in ``data``, a malformed or encrypted one without a
            (correct) password, or a key that is neither RSA nor EC.
    """
    block = _private_key_block(data)
    if block is None:
        raise CertificateError("no PEM private key found", file=source)
    try:
        key = serialization.load_pem_private_key(
            block, password, unsafe_skip_rsa_key_validation=skip_rsa_validation
        )
    except TypeError as exc:
        problem = "is encrypted; a password is needed" if password is None else str(exc)
        raise CertificateError(f"private key {problem}", file=source) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"unreadable private key ({_short(exc)})", file=source) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(
            f"unsupported key type {key_type_name(key.public_key())} (AWS IoT takes RSA or EC)",
            file=source,
        )
    return key


def load_private_key_file(path: Path | str, *, password: bytes | None = None) -> PrivateKey:
    """Read and load the PEM private key in ``path`` (see :func:`load_private_key_pem`).

    Raises:
        CertificateError: the file cannot be read or holds no usable key.
    """
    data = read_pem_file(path, "private key")
    return load_private_key_pem(data, source=path, password=password)


def _private_key_block(data: bytes) -> bytes | None:
    """The first PEM block whose label ends in ``PRIVATE KEY``."""
    for block in pem_blocks(data):
        if block.label.endswith("PRIVATE KEY"):
            return block.text
    return None


def _short(exc: Exception) -> str:
    """The first sentence of a ``cryptography`` error, without its FAQ link."""
    return str(exc).split(". See ")[0].rstrip(".") or type(exc).__name__
