"""AWS's own device SDK (awsiotsdk's ``awsiot.iotidentity``, unmodified) provisions a device by
claim against the emulator, with CreateKeysAndCertificate and with CreateCertificateFromCsr;
the device then reconnects with its new certificate and publishes.

Built as an application builds it for AWS: ``mtls_from_path`` with the endpoint, the claim
certificate and key, and the emulator's CA. awscrt calls back from native threads, so results
travel through ``concurrent.futures.Future`` and every wait is bounded.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt
from awsiot import iotidentity, mqtt_connection_builder

from fleet_sim.emulator.registry.models import CertificateStatus
from tests.integration.fleet_provisioning.support import (
    TIMEOUT,
    Identity,
    new_csr,
    unique,
    write_identity,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

QOS = mqtt.QoS.AT_LEAST_ONCE


def _connection(emu: EmulatorThread, identity: Identity, client_id: str) -> mqtt.Connection:
    return mqtt_connection_builder.mtls_from_path(
        endpoint=emu.info.endpoint,
        port=emu.info.port,
        cert_filepath=str(identity.certificate),
        pri_key_filepath=str(identity.key),
        ca_filepath=emu.info.ca_file,
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=60,
    )


def _answer() -> tuple[Future[Any], Any]:
    future: Future[Any] = Future()

    def resolve(response: Any) -> None:
        if not future.done():
            future.set_result(response)

    return future, resolve


def _disconnect(connection: mqtt.Connection) -> None:
    try:
        connection.disconnect().result(TIMEOUT)
    except RuntimeError as error:  # never connected, or closed already
        if "AWS_ERROR_MQTT_NOT_CONNECTED" not in str(error):
            raise


def _register_thing(
    identity: iotidentity.IotIdentityClient, template: str, token: str, serial: str
) -> Any:
    """The SDK sample's RegisterThing step: subscribe to both replies, then publish."""
    registered, resolve = _answer()
    subscription = iotidentity.RegisterThingSubscriptionRequest(template_name=template)
    accepted, _ = identity.subscribe_to_register_thing_accepted(subscription, QOS, resolve)
    rejected, _ = identity.subscribe_to_register_thing_rejected(subscription, QOS, resolve)
    accepted.result(TIMEOUT)
    rejected.result(TIMEOUT)
    request = iotidentity.RegisterThingRequest(
        template_name=template,
        certificate_ownership_token=token,
        parameters={"SerialNumber": serial},
    )
    identity.publish_register_thing(request, QOS).result(TIMEOUT)
    return registered.result(TIMEOUT)


def _use_new_identity(emu: EmulatorThread, identity: Identity, thing_name: str) -> None:
    """Reconnect with the provisioned certificate (as §3.3 says) and publish at QoS 1."""
    device = _connection(emu, identity, thing_name)
    try:
        device.connect().result(TIMEOUT)
        published, _ = device.publish(f"devices/{thing_name}/hello", b"provisioned", QOS)
        published.result(TIMEOUT)  # the PUBACK came back: the new policy allows it
    finally:
        _disconnect(device)


def _check_registry(emu: EmulatorThread, certificate_id: str, thing_name: str, serial: str):
    registry = emu.registry
    cert = registry.certificates.describe(certificate_id)
    assert cert.status is CertificateStatus.ACTIVE
    thing = registry.thing(thing_name)
    assert thing is not None
    assert dict(thing.attributes) == {"serial": serial}
    assert [t.name for t in registry.things_for_certificate(certificate_id)] == [thing_name]
    assert len(registry.policies_for_certificate(certificate_id)) == 1


def test_awsiotsdk_create_keys_and_register_thing(
    emu: EmulatorThread, claim: Identity, template: str, files: Path
) -> None:
    serial = unique("sdk")
    connection = _connection(emu, claim, unique("claim"))
    connection.connect().result(TIMEOUT)
    try:
        identity = iotidentity.IotIdentityClient(connection)
        created, resolve = _answer()
        subscription = iotidentity.CreateKeysAndCertificateSubscriptionRequest()
        accepted, _ = identity.subscribe_to_create_keys_and_certificate_accepted(
            subscription, QOS, resolve
        )
        rejected, _ = identity.subscribe_to_create_keys_and_certificate_rejected(
            subscription, QOS, resolve
        )
        accepted.result(TIMEOUT)
        rejected.result(TIMEOUT)
        identity.publish_create_keys_and_certificate(
            iotidentity.CreateKeysAndCertificateRequest(), QOS
        ).result(TIMEOUT)
        keys = created.result(TIMEOUT)
        assert isinstance(keys, iotidentity.CreateKeysAndCertificateResponse), keys
        assert len(keys.certificate_id) == 64
        assert "PRIVATE KEY" in keys.private_key
        pending = emu.registry.certificates.describe(keys.certificate_id)
        assert pending.status is CertificateStatus.PENDING_ACTIVATION

        registered = _register_thing(identity, template, keys.certificate_ownership_token, serial)
        assert isinstance(registered, iotidentity.RegisterThingResponse), registered
        assert registered.thing_name == f"device-{serial}"
        assert registered.device_configuration == {
            "FallbackUrl": "https://www.example.com/test-site",
            "LocationUrl": f"https://example.com/{serial}",
        }
    finally:
        _disconnect(connection)
    _check_registry(emu, keys.certificate_id, registered.thing_name, serial)
    new = write_identity(files, registered.thing_name, keys.certificate_pem, keys.private_key)
    _use_new_identity(emu, new, registered.thing_name)


def test_awsiotsdk_create_certificate_from_csr_and_register_thing(
    emu: EmulatorThread, claim: Identity, template: str, files: Path
) -> None:
    serial = unique("csr")
    key_pem, csr_pem = new_csr(f"device-{serial}")
    connection = _connection(emu, claim, unique("claim"))
    connection.connect().result(TIMEOUT)
    try:
        identity = iotidentity.IotIdentityClient(connection)
        created, resolve = _answer()
        subscription = iotidentity.CreateCertificateFromCsrSubscriptionRequest()
        accepted, _ = identity.subscribe_to_create_certificate_from_csr_accepted(
            subscription, QOS, resolve
        )
        rejected, _ = identity.subscribe_to_create_certificate_from_csr_rejected(
            subscription, QOS, resolve
        )
        accepted.result(TIMEOUT)
        rejected.result(TIMEOUT)
        identity.publish_create_certificate_from_csr(
            iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr_pem), QOS
        ).result(TIMEOUT)
        issued = created.result(TIMEOUT)
        assert isinstance(issued, iotidentity.CreateCertificateFromCsrResponse), issued
        registered = _register_thing(identity, template, issued.certificate_ownership_token, serial)
        assert isinstance(registered, iotidentity.RegisterThingResponse), registered
    finally:
        _disconnect(connection)
    _check_registry(emu, issued.certificate_id, registered.thing_name, serial)
    new = write_identity(files, registered.thing_name, issued.certificate_pem, key_pem)
    _use_new_identity(emu, new, registered.thing_name)


def test_awsiotsdk_sees_the_rejection_shape(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    """An empty token comes back as the SDK's ErrorResponse, with AWS's own message."""
    connection = _connection(emu, claim, unique("claim"))
    connection.connect().result(TIMEOUT)
    try:
        identity = iotidentity.IotIdentityClient(connection)
        registered, resolve = _answer()
        subscription = iotidentity.RegisterThingSubscriptionRequest(template_name=template)
        rejected, _ = identity.subscribe_to_register_thing_rejected(subscription, QOS, resolve)
        rejected.result(TIMEOUT)
        request = iotidentity.RegisterThingRequest(
            template_name=template, certificate_ownership_token=""
        )
        identity.publish_register_thing(request, QOS).result(TIMEOUT)
        error = registered.result(TIMEOUT)
    finally:
        _disconnect(connection)
    assert isinstance(error, iotidentity.ErrorResponse)
    assert (error.status_code, error.error_code, error.error_message) == (
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token cannot be empty.",
    )
