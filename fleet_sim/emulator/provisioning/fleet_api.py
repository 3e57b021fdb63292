"""The fleet-provisioning MQTT API on the wire: request topics, payload codecs, error replies.

Topics and field names are AWS's (reference §3.1, §3.2):

* ``$aws/certificates/create/<fmt>`` (CreateKeysAndCertificate),
  ``$aws/certificates/create-from-csr/<fmt>`` (CreateCertificateFromCsr) and
  ``$aws/provisioning-templates/<templateName>/provision/<fmt>`` (RegisterThing), where
  ``<fmt>`` is ``json`` or ``cbor``; replies go to ``<request topic>/accepted`` or
  ``/rejected``, encoded like the request.
* Every rejection is ``{"statusCode": …, "errorCode": …, "errorMessage": …}``.

AWS documents neither the ``errorCode`` strings nor which failure gets which; the only real
example seen is ``400 InvalidCertificateOwnershipToken "Certificate ownership token cannot be
empty."``. The emulator's codes (:class:`ErrorCode`) are therefore an **inference**.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from fleet_sim.errors import FleetProvisioningRejected

CERTIFICATES_PREFIX = "$aws/certificates/"
TEMPLATES_PREFIX = "$aws/provisioning-templates/"

#: AWS's own message for a request without a token (the one rejection seen in the wild).
EMPTY_TOKEN_MESSAGE = "Certificate ownership token cannot be empty."  # noqa: S105


class Operation(enum.StrEnum):
    """The three fleet-provisioning MQTT operations."""

    CREATE_KEYS_AND_CERTIFICATE = "CreateKeysAndCertificate"
    CREATE_CERTIFICATE_FROM_CSR = "CreateCertificateFromCsr"
    REGISTER_THING = "RegisterThing"


class PayloadFormat(enum.StrEnum):
    """How a request and its reply are encoded (the topic's last level)."""

    JSON = "json"
    CBOR = "cbor"


class ErrorCode(enum.Enum):
    """Rejections as ``(statusCode, errorCode)`` [inference, see the module docstring]."""

    INVALID_PAYLOAD = (400, "InvalidPayload")
    INVALID_TOKEN = (400, "InvalidCertificateOwnershipToken")
    INVALID_PARAMETERS = (400, "InvalidParameters")
    REGISTRATION_FAILURE = (400, "ResourceRegistrationFailure")
    ACCESS_DENIED = (403, "AccessDenied")
    NOT_FOUND = (404, "ResourceNotFound")
    THROTTLED = (429, "Throttled")
    INTERNAL_FAILURE = (500, "InternalFailure")

    @property
    def status_code(self) -> int:
        """The ``statusCode``."""
        status: int = self.value[0]
        return status

    @property
    def error_code(self) -> str:
        """The ``errorCode``."""
        code: str = self.value[1]
        return code

    def error(self, message: str) -> FleetProvisioningRejected:
        """The exception that rejects a request with this code and ``message``."""
        return FleetProvisioningRejected(
            message, status_code=self.status_code, error_code=self.error_code
        )


_CERTIFICATE_OPERATIONS: Mapping[str, Operation] = {
    "create": Operation.CREATE_KEYS_AND_CERTIFICATE,
    "create-from-csr": Operation.CREATE_CERTIFICATE_FROM_CSR,
}
_FORMATS: Mapping[str, PayloadFormat] = {f.value: f for f in PayloadFormat}


@dataclass(frozen=True, slots=True)
class FleetRequest:
    """What a request topic names.

    Attributes:
        operation: the operation asked for.
        payload_format: JSON or CBOR (request and reply).
        topic: the request topic itself.
        template_name: RegisterThing's template, else None.
    """

    operation: Operation
    payload_format: PayloadFormat
    topic: str
    template_name: str | None = None

    @property
    def accepted_topic(self) -> str:
        """Where a success is answered."""
        return f"{self.topic}/accepted"

    @property
    def rejected_topic(self) -> str:
        """Where a failure is answered."""
        return f"{self.topic}/rejected"


def parse_request_topic(topic: str) -> FleetRequest | None:
    """The request a topic names, or None when it is no fleet-provisioning request topic
    (reply topics included)."""
    if topic.startswith(CERTIFICATES_PREFIX):
        kind, slash, fmt = topic[len(CERTIFICATES_PREFIX) :].partition("/")
        operation = _CERTIFICATE_OPERATIONS.get(kind)
        payload_format = _FORMATS.get(fmt)
        if not slash or operation is None or payload_format is None:
            return None
        return FleetRequest(operation, payload_format, topic)
    if topic.startswith(TEMPLATES_PREFIX):
        levels = topic[len(TEMPLATES_PREFIX) :].split("/")
        if len(levels) != 3 or not levels[0] or levels[1] != "provision":
            return None
        payload_format = _FORMATS.get(levels[2])
        if payload_format is None:
            return None
        return FleetRequest(Operation.REGISTER_THING, payload_format, topic, levels[0])
    return None


# ---------------------------------------------------------------------- payloads


def decode_request(payload: bytes, payload_format: PayloadFormat) -> Mapping[str, Any]:
    """A request's body; an empty payload is an empty object.

    Raises:
        FleetProvisioningRejected: InvalidPayload (not JSON/CBOR, or not an object).
    """
    if not payload:
        return {}
    try:
        json_format = payload_format is PayloadFormat.JSON
        body = json.loads(payload) if json_format else cbor2.loads(payload)
    except (ValueError, RecursionError, cbor2.CBORError) as error:
        raise ErrorCode.INVALID_PAYLOAD.error(
            f"the payload is not valid {payload_format.value.upper()}: {error}"
        ) from None
    if not isinstance(body, Mapping):
        raise ErrorCode.INVALID_PAYLOAD.error("the payload must be an object")
    return body


def encode_reply(body: Mapping[str, Any], payload_format: PayloadFormat) -> bytes:
    """A reply's payload in the request's format."""
    if payload_format is PayloadFormat.JSON:
        return json.dumps(body, separators=(",", ":")).encode("utf-8")
    return cbor2.dumps(dict(body))


def rejection_body(error: FleetProvisioningRejected) -> dict[str, Any]:
    """The ``…/rejected`` payload of ``error``."""
    return {
        "statusCode": error.status_code,
        "errorCode": error.error_code,
        "errorMessage": error.message,
    }


def optional_string(body: Mapping[str, Any], name: str) -> str | None:
    """A string member, None when absent or null.

    Raises:
        FleetProvisioningRejected: InvalidPayload (present but not a string).
    """
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ErrorCode.INVALID_PAYLOAD.error(f"{name} must be a string")


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """An optional string-to-string map member (RegisterThing's ``parameters``).

    Raises:
        FleetProvisioningRejected: InvalidPayload (not an object of strings).
    """
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ErrorCode.INVALID_PAYLOAD.error(f"{name} must be an object of string values")
    return dict(value)
