"""The built-in template parameters of just-in-time provisioning (JITP).

AWS fills exactly eight ``AWS::IoT::Certificate::*`` parameters, and only from the device
certificate's subject (plus the certificate id); a certificate without, say, a C= field
simply has no ``AWS::IoT::Certificate::Country`` value, and a template that declares that
parameter without a ``Default`` then fails to render (:class:`MissingTemplateParameter`).
"""

from __future__ import annotations

from fleet_sim.tls.subject import DeviceSubject

#: ``AWS::IoT::Certificate::Id``: the certificate id (also what fleet provisioning fills).
CERTIFICATE_ID = "AWS::IoT::Certificate::Id"

#: The documented JITP parameters and the :class:`DeviceSubject` field each comes from
#: (None for the certificate id).
_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("AWS::IoT::Certificate::Country", "country"),
    ("AWS::IoT::Certificate::Organization", "organization"),
    ("AWS::IoT::Certificate::OrganizationalUnit", "organizational_unit"),
    ("AWS::IoT::Certificate::DistinguishedNameQualifier", "dn_qualifier"),
    ("AWS::IoT::Certificate::StateName", "state"),
    ("AWS::IoT::Certificate::CommonName", "common_name"),
    ("AWS::IoT::Certificate::SerialNumber", "serial_number"),
    (CERTIFICATE_ID, None),
)

#: The eight documented JITP parameter names, in the order of AWS's table.
JITP_PARAMETERS: tuple[str, ...] = tuple(name for name, _ in _SOURCES)


def jitp_parameters(certificate_id: str, subject: DeviceSubject) -> dict[str, str]:
    """The JITP parameter values of one device certificate.

    Args:
        certificate_id: the certificate's id (64 hex characters).
        subject: the certificate's subject fields.

    Returns:
        ``AWS::IoT::Certificate::Id`` always, and each subject parameter only when the
        subject has that field (``SerialNumber`` is the subject's serialNumber attribute,
        OID 2.5.4.5, not the X.509 serial).
    """
    values: dict[str, str] = {}
    for name, attribute in _SOURCES:
        if attribute is None:
            values[name] = certificate_id
            continue
        value = getattr(subject, attribute)
        if value is not None:
            values[name] = value
    return values
