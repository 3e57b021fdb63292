"""Ownership tokens expire (a short TTL here; AWS: 1 hour), and then a certificate never
activated and attached to nothing is deleted: at once when the expired token is presented,
else on the emulator's housekeeping tick. A provisioned certificate is kept."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fleet_sim.emulator.registry.models import CertificateStatus
from tests.integration.fleet_provisioning.conftest import Hooks, start_emulator
from tests.integration.fleet_provisioning.support import (
    Identity,
    create_keys,
    fleet_client,
    register,
    rejection,
    unique,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop

TTL_S = 1.0
#: The emulator's housekeeping runs every 2 s.
HOUSEKEEPING_WAIT_S = TTL_S + 4.0


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory, hooks: Hooks) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with start_emulator(data_dir, hooks, ownership_token_ttl_s=TTL_S) as running:
        yield running


def test_expired_token_is_rejected_and_its_certificate_deleted(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        time.sleep(TTL_S + 0.1)
        outcome, body = register(
            client, template, keys["certificateOwnershipToken"], {"SerialNumber": unique("s")}
        )
    assert (outcome, body) == ("rejected", rejection(400, "InvalidCertificateOwnershipToken"))
    assert body["errorMessage"] in (
        "Certificate ownership token has expired.",
        "Certificate ownership token is invalid.",  # housekeeping forgot it first
    )
    assert emu.registry.certificates.get(keys["certificateId"]) is None


def test_housekeeping_deletes_unclaimed_certificates(emu: EmulatorThread, claim: Identity) -> None:
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
    certificates = emu.registry.certificates
    assert certificates.get(keys["certificateId"]) is not None
    deadline = time.monotonic() + HOUSEKEEPING_WAIT_S
    while certificates.get(keys["certificateId"]) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert certificates.get(keys["certificateId"]) is None


def test_provisioned_certificate_survives_its_token(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    with fleet_client(emu, claim) as client:
        keys = create_keys(client)
        outcome, body = register(
            client, template, keys["certificateOwnershipToken"], {"SerialNumber": unique("s")}
        )
        assert outcome == "accepted", body
    time.sleep(TTL_S + 0.1)
    fleet = emu.emulator.fleet_provisioning
    emu.call(fleet.expire_tokens)
    cert = emu.registry.certificates.describe(keys["certificateId"])
    assert cert.status is CertificateStatus.ACTIVE
