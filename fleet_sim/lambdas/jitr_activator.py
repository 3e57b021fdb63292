"""Reference JITR activator: an AWS Lambda function that onboards auto-registered certificates.

Deploy this file unchanged as a Lambda function (runtime Python 3.11+, handler
``jitr_activator.handler``) behind an AWS IoT rule
``SELECT * FROM '$aws/events/certificates/registered/<caCertificateId>'`` (or ``.../+``) with
a Lambda action; it needs only the standard library and boto3, which the Lambda runtime has
(``cryptography`` is not there, so the certificate's subject CN is read by a small DER walk).
Locally, the fleetsim emulator runs the very same function as a local rule::

    emulator.rules.add_rule("$aws/events/certificates/registered/+", handler, name="jitr")

with ``AWS_ENDPOINT_URL_IOT`` (honoured by boto3 ≥ 1.28.57) or ``FLEETSIM_IOT_ENDPOINT`` set to
the emulator's control-plane URL.

For each registered event (``{"certificateId": …, "caCertificateId": …,
"certificateStatus": "PENDING_ACTIVATION", …}``) it:

1. ``DescribeCertificate``; a certificate no longer PENDING_ACTIVATION is left alone (ACTIVE:
   an earlier invocation finished, as activation is its last step; INACTIVE or REVOKED: an
   operator decided otherwise);
2. reads the subject CN from the certificate PEM: it becomes the thing name;
3. ``CreateThing`` (an existing thing is fine);
4. ``GetPolicy``, and ``CreatePolicy`` when absent;
5. ``AttachPolicy`` to the certificate, ``AttachThingPrincipal``;
6. ``UpdateCertificate`` to ACTIVE — last, so that a device reconnecting meanwhile is refused
   at TLS level (certificate still pending, event re-published) rather than at CONNECT for want
   of a policy. (AWS's JITR blog sample activates first; either order converges.)

Every step is idempotent, so a re-published event (the device reconnected before activation)
or a retried invocation does no harm; once the certificate is ACTIVE, an invocation costs one
DescribeCertificate.

Environment:
    JITR_POLICY_NAME: the policy attached to every certificate (default
        ``fleetsim-jitr-device``).
    JITR_POLICY_DOCUMENT: its document, created when the policy does not exist (default: connect
        as the thing named by the CN; publish, receive and subscribe on ``*/<thing>`` and
        ``*/<thing>/*``, as fleetsim's default device policy).
    AWS_ENDPOINT_URL_IOT: the AWS IoT control-plane endpoint (boto3 reads it itself);
    FLEETSIM_IOT_ENDPOINT: the same, for boto3 versions that do not read the former. With it
        (a local emulator, which checks no signature), the region defaults to ``us-east-1``
        and the credentials to dummies when ``AWS_ACCESS_KEY_ID`` is not set.
    AWS_REGION / AWS_DEFAULT_REGION: the region (Lambda sets AWS_REGION).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

DEFAULT_POLICY_NAME = "fleetsim-jitr-device"

_THING = "${iot:Connection.Thing.ThingName}"
_ARN = "arn:aws:iot:*:*:"

DEFAULT_POLICY_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{_ARN}client/{_THING}",
            },
            {
                "Sid": "OwnTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{_ARN}topic/*/{_THING}", f"{_ARN}topic/*/{_THING}/*"],
            },
            {
                "Sid": "OwnTopicFilters",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{_ARN}topicfilter/*/{_THING}", f"{_ARN}topicfilter/*/{_THING}/*"],
            },
        ],
    },
    separators=(",", ":"),
)

#: DER encoding of the commonName attribute type, OID 2.5.4.3.
_COMMON_NAME_OID = bytes([0x55, 0x04, 0x03])

#: ASN.1 string types found in X.509 names, and how to decode them.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T61; Latin-1 in practice)
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}

_SEQUENCE, _SET, _EXPLICIT_VERSION, _OID = 0x30, 0x31, 0xA0, 0x06


@dataclass(frozen=True, slots=True)
class Settings:
    """What the activator reads from its environment.

    Attributes:
        policy_name: the policy attached to every activated certificate.
        policy_document: its document, used when the policy has to be created.
        endpoint_url: the control-plane endpoint (None: boto3 decides, e.g. from
            ``AWS_ENDPOINT_URL_IOT`` or the region).
        region: the region, or None for boto3's default.
        dummy_credentials: sign with placeholder credentials (a local emulator without AWS
            credentials in the environment).
    """

    policy_name: str = DEFAULT_POLICY_NAME
    policy_document: str = DEFAULT_POLICY_DOCUMENT
    endpoint_url: str | None = None
    region: str | None = None
    dummy_credentials: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Read :class:`Settings` from environment variables (see the module docstring)."""
        endpoint = None
        if not environ.get("AWS_ENDPOINT_URL_IOT"):
            endpoint = environ.get("FLEETSIM_IOT_ENDPOINT") or None
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
        return cls(
            policy_name=environ.get("JITR_POLICY_NAME") or DEFAULT_POLICY_NAME,
            policy_document=environ.get("JITR_POLICY_DOCUMENT") or DEFAULT_POLICY_DOCUMENT,
            endpoint_url=endpoint,
            region=region or ("us-east-1" if endpoint else None),
            dummy_credentials=endpoint is not None and not environ.get("AWS_ACCESS_KEY_ID"),
        )


# One client per endpoint and region, built once and reused by warm invocations (the Lambda
# idiom); building a boto3 client costs tens of milliseconds. Clients are thread-safe once
# built; building them is not, hence the lock.
_clients: dict[tuple[str | None, str | None, bool, str | None], Any] = {}
_clients_lock = threading.Lock()


def iot_client(settings: Settings) -> Any:
    """A (cached) boto3 AWS IoT client for ``settings``' endpoint and region."""
    key = (
        settings.endpoint_url,
        settings.region,
        settings.dummy_credentials,
        os.environ.get("AWS_ENDPOINT_URL_IOT"),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            secret = "fleetsim-emulator" if settings.dummy_credentials else None
            session = boto3.session.Session(aws_access_key_id=secret, aws_secret_access_key=secret)
            client = session.client(
                "iot",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
            _clients[key] = client
        return client


def handler(event: Mapping[str, Any], context: Any) -> dict[str, str]:
    """The Lambda entry point: activate the certificate of one registered event."""
    settings = Settings.from_environment(os.environ)
    return activate(event, iot_client(settings), settings)


def activate(event: Mapping[str, Any], iot: Any, settings: Settings) -> dict[str, str]:
    """Onboard the certificate named by ``event["certificateId"]`` (see the module docstring).

    Args:
        event: the registered event.
        iot: a boto3 AWS IoT client.
        settings: the policy to attach.

    Returns:
        ``certificateId``, ``thingName``, ``policyName`` and ``status`` (``ACTIVE``), or
        ``certificateId`` and ``skipped`` (why nothing was done).

    Raises:
        KeyError: the event has no ``certificateId``.
        ValueError: the certificate has no subject CN to name the thing after.
        botocore.exceptions.ClientError: an API call failed (Lambda reports the failure).
    """
    certificate_id = str(event["certificateId"])
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    status = description["status"]
    if status != "PENDING_ACTIVATION":
        if status != "ACTIVE":
            logger.warning("certificate %s is %s: not activating it", certificate_id, status)
        return {"certificateId": certificate_id, "skipped": f"certificate is {status}"}
    arn = description["certificateArn"]
    thing_name = common_name_from_pem(description["certificatePem"])
    if not thing_name:
        raise ValueError(f"certificate {certificate_id} has no subject CN to name its thing")
    try:
        iot.create_thing(thingName=thing_name)
    except ClientError as error:
        if _code(error) != "ResourceAlreadyExistsException":
            raise
        logger.info("thing %s exists already (with other attributes); using it", thing_name)
    _ensure_policy(iot, settings)
    iot.attach_policy(policyName=settings.policy_name, target=arn)
    iot.attach_thing_principal(thingName=thing_name, principal=arn)
    iot.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")
    logger.info("activated certificate %s for thing %s", certificate_id, thing_name)
    return {
        "certificateId": certificate_id,
        "thingName": thing_name,
        "policyName": settings.policy_name,
        "status": "ACTIVE",
    }


def _ensure_policy(iot: Any, settings: Settings) -> None:
    try:
        iot.get_policy(policyName=settings.policy_name)
        return
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
    try:
        iot.create_policy(policyName=settings.policy_name, policyDocument=settings.policy_document)
    except ClientError as error:
        if _code(error) != "ResourceAlreadyExistsException":  # created concurrently
            raise


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# ---------------------------------------------------------------------- the CN, by a DER walk


def common_name_from_pem(pem: str) -> str | None:
    """The first subject commonName of the first certificate in ``pem``, None without one.

    Raises:
        ValueError: no PEM certificate, or malformed DER.
    """
    return common_name_from_der(_pem_to_der(pem))


def common_name_from_der(der: bytes) -> str | None:
    """The first subject commonName of a DER certificate, None without one.

    Walks ``Certificate → tbsCertificate → [version] serial signature issuer validity subject``.

    Raises:
        ValueError: malformed DER.
    """
    try:
        tag, start, end = _tlv(der, 0)
        _expect(tag, _SEQUENCE, "Certificate")
        tag, start, end = next(_children(der, start, end))
        _expect(tag, _SEQUENCE, "tbsCertificate")
        fields = list(_children(der, start, end))
        if fields and fields[0][0] == _EXPLICIT_VERSION:
            fields = fields[1:]
        if len(fields) < 5:
            raise ValueError("tbsCertificate is too short")
        tag, start, end = fields[4]
        _expect(tag, _SEQUENCE, "subject")
        for rdn_tag, rdn_start, rdn_end in _children(der, start, end):
            _expect(rdn_tag, _SET, "RelativeDistinguishedName")
            for pair_tag, pair_start, pair_end in _children(der, rdn_start, rdn_end):
                _expect(pair_tag, _SEQUENCE, "AttributeTypeAndValue")
                pair = list(_children(der, pair_start, pair_end))
                if len(pair) != 2:
                    raise ValueError("AttributeTypeAndValue needs a type and a value")
                (oid_tag, oid_start, oid_end), (value_tag, value_start, value_end) = pair
                _expect(oid_tag, _OID, "attribute type")
                if der[oid_start:oid_end] == _COMMON_NAME_OID:
                    return _decode_string(value_tag, der[value_start:value_end])
    except (IndexError, StopIteration):
        raise ValueError("truncated DER certificate") from None
    return None


def _pem_to_der(pem: str) -> bytes:
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    first = pem.find(begin)
    last = pem.find(end, first + len(begin))
    if first < 0 or last < 0:
        raise ValueError("no PEM certificate found")
    body = "".join(pem[first + len(begin) : last].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the PEM certificate is not valid base64") from None


def _tlv(der: bytes, offset: int) -> tuple[int, int, int]:
    """The (tag, value start, value end) of the DER element at ``offset``."""
    tag = der[offset]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags do not occur in certificate names")
    length = der[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(der):
        raise ValueError("truncated DER certificate")
    return tag, offset, end


def _children(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    while start < end:
        tag, value_start, value_end = _tlv(der, start)
        if value_end > end:
            raise ValueError("a DER element overruns its parent")
        yield tag, value_start, value_end
        start = value_end


def _expect(tag: int, wanted: int, what: str) -> None:
    if tag != wanted:
        raise ValueError(f"{what}: expected DER tag 0x{wanted:02x}, found 0x{tag:02x}")


def _decode_string(tag: int, value: bytes) -> str:
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        raise ValueError(f"unsupported string type 0x{tag:02x} in the subject CN")
    try:
        return value.decode(codec)
    except UnicodeDecodeError:
        raise ValueError("the subject CN is not decodable") from None
