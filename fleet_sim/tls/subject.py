"""The certificate subject fields AWS IoT JITP reads, as a value: :class:`DeviceSubject`.

JITP fills ``AWS::IoT::Certificate::*`` template parameters only from the subject DN (C, O, OU,
dnQualifier, ST, CN and the serialNumber attribute, OID 2.5.4.5); locality is kept as well
because policy variables can read it. Values are checked against the X.520 upper bounds and
string types that ``openssl req`` enforces, so whatever this module builds openssl could too.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from fleet_sim.errors import CertificateError

# Printable characters of X.680 PrintableString (no '_', '@', '&', '*'…).
_PRINTABLE = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    oid: ObjectIdentifier
    short: str
    max_length: int
    printable_only: bool = False


# Order of the RDNs in names built here: the usual C, ST, L, O, OU, CN order of openssl -subj.
_FIELDS: tuple[_Field, ...] = (
    _Field("country", NameOID.COUNTRY_NAME, "C", 2, printable_only=True),
    _Field("state", NameOID.STATE_OR_PROVINCE_NAME, "ST", 128),
    _Field("locality", NameOID.LOCALITY_NAME, "L", 128),
    _Field("organization", NameOID.ORGANIZATION_NAME, "O", 64),
    _Field("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", 64),
    _Field("common_name", NameOID.COMMON_NAME, "CN", 64),
    _Field("serial_number", NameOID.SERIAL_NUMBER, "serialNumber", 64, printable_only=True),
    _Field("dn_qualifier", NameOID.DN_QUALIFIER, "dnQualifier", 64, printable_only=True),
)


@dataclass(frozen=True, slots=True)
class DeviceSubject:
    """A certificate subject limited to the attributes AWS IoT reads; None means absent.

    Attributes:
        common_name: CN, ``AWS::IoT::Certificate::CommonName`` (1–64 characters).
        country: C, two letters, ``AWS::IoT::Certificate::Country``.
        organization: O, ``AWS::IoT::Certificate::Organization``.
        organizational_unit: OU, ``AWS::IoT::Certificate::OrganizationalUnit``.
        state: ST, ``AWS::IoT::Certificate::StateName``.
        locality: L (a policy variable, not a JITP parameter).
        serial_number: the subject serialNumber attribute (OID 2.5.4.5), not the X.509 serial;
            ``AWS::IoT::Certificate::SerialNumber``.
        dn_qualifier: dnQualifier, ``AWS::IoT::Certificate::DistinguishedNameQualifier``.
    """

    common_name: str | None = None
    country: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    state: str | None = None
    locality: str | None = None
    serial_number: str | None = None
    dn_qualifier: str | None = None

    def validate(self) -> None:
        """Check every present field against its X.520 length bound and string type.

        Raises:
            CertificateError: naming the first bad field and why.
        """
        for field in _FIELDS:
            value = getattr(self, field.name)
            if value is None:
                continue
            if not 1 <= len(value) <= field.max_length:
                limit = "2 letters" if field.name == "country" else f"1–{field.max_length} chars"
                raise CertificateError(
                    f"subject {field.short} must be {limit}, got {len(value)}: {value!r}"
                )
            if field.printable_only and not set(value) <= _PRINTABLE:
                bad = "".join(sorted(set(value) - _PRINTABLE))
                raise CertificateError(
                    f"subject {field.short} {value!r} has characters a PrintableString cannot "
                    f"hold: {bad!r}"
                )

    def to_name(self) -> x509.Name:
        """Build the X.509 name (C, ST, L, O, OU, CN, serialNumber, dnQualifier order).

        Raises:
            CertificateError: a field is invalid (see :meth:`validate`).
        """
        self.validate()
        attributes = [
            x509.NameAttribute(field.oid, getattr(self, field.name))
            for field in _FIELDS
            if getattr(self, field.name) is not None
        ]
        return x509.Name(attributes)

    @classmethod
    def from_name(cls, name: x509.Name) -> DeviceSubject:
        """Read the known attributes of ``name`` (the first value of each); others are ignored."""
        values: dict[str, str] = {}
        for field in _FIELDS:
            found = name.get_attributes_for_oid(field.oid)
            if found and isinstance(found[0].value, str):
                values[field.name] = found[0].value
        return cls(**values)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> DeviceSubject:
        """Build from a mapping of field names (as in YAML/JSON) to strings.

        Raises:
            CertificateError: an unknown key or a non-string value.
        """
        known = {field.name for field in _FIELDS}
        values: dict[str, str] = {}
        for key, value in data.items():
            if key not in known:
                raise CertificateError(f"unknown subject field {key!r}")
            if value is None:
                continue
            if not isinstance(value, str):
                raise CertificateError(f"subject field {key!r} must be a string")
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        """The present fields by name, in :class:`DeviceSubject` field order."""
        return {
            field.name: value
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) is not None
        }

    def merged_with(self, overrides: DeviceSubject) -> DeviceSubject:
        """A copy where every field present in ``overrides`` replaces this one's."""
        return dataclasses.replace(self, **overrides.to_dict())

    def with_common_name(self, common_name: str) -> DeviceSubject:
        """A copy with ``common_name`` as CN."""
        return dataclasses.replace(self, common_name=common_name)

    def to_openssl(self) -> str:
        """The ``-subj`` spelling openssl takes, e.g. ``/C=US/O=Acme/CN=sensor-1``."""
        parts = []
        for field in _FIELDS:
            value = getattr(self, field.name)
            if value is not None:
                escaped = value.replace("\\", "\\\\").replace("/", "\\/")
                parts.append(f"/{field.short}={escaped}")
        return "".join(parts) or "/"
