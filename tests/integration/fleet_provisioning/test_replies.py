"""Who gets fleet-provisioning replies: the requesting connection only, only after it
subscribed, only if its policy allows iot:Receive; a request its policy denies never reaches
the service (MQTT 5 PUBACK 0x87)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fleet_provisioning.support import (
    CREATE,
    Identity,
    claim_policy,
    create_claim,
    create_keys,
    create_template,
    fleet_client,
    fleet_stats,
    fleet_template,
    provision_topic,
    register,
    subscribe_replies,
    unique,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop


# ---------------------------------------------------------------------- who gets what


def test_replies_go_only_to_the_requesting_connection(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    with fleet_client(emu, claim) as requester, fleet_client(emu, claim) as bystander:
        bystander.subscribe(
            f"{CREATE}/accepted",
            "$aws/certificates/create/#",
            f"{provision_topic(template)}/accepted",
            f"$aws/provisioning-templates/{template}/provision/#",
        )
        keys = create_keys(requester)
        outcome, _ = register(
            requester, template, keys["certificateOwnershipToken"], {"SerialNumber": unique("s")}
        )
        assert outcome == "accepted"
        # Neither the replies nor the requests (with their token) reached the other client.
        assert bystander.silent("$aws/")


def test_no_reply_without_a_prior_subscription(emu: EmulatorThread, claim: Identity) -> None:
    before = fleet_stats(emu).replies_unsubscribed
    with fleet_client(emu, claim) as client:
        code = client.publish(CREATE, b"{}")
        assert code is not None
        assert not code.is_failure
        assert client.silent("$aws/")
        assert fleet_stats(emu).replies_unsubscribed == before + 1
        # Subscribed first, the same request is answered.
        assert create_keys(client)["certificateId"]


def test_no_reply_when_the_policy_denies_receive(
    emu: EmulatorThread, iot: Any, files: Path, template: str
) -> None:
    claim = create_claim(iot, files, claim_policy(template, receive=False))
    before = fleet_stats(emu).replies_denied
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, CREATE)
        code = client.publish(CREATE, b"{}")
        assert code is not None
        assert not code.is_failure
        assert client.silent("$aws/")
    assert fleet_stats(emu).replies_denied == before + 1


def test_request_denied_by_policy_gets_puback_0x87(
    emu: EmulatorThread, claim: Identity, iot: Any, device_policy_name: str
) -> None:
    other = create_template(iot, fleet_template(device_policy_name))  # not in the claim policy
    before = fleet_stats(emu).rejected + fleet_stats(emu).things_provisioned
    with fleet_client(emu, claim) as client:
        code = client.publish(provision_topic(other), json.dumps({"certificateOwnershipToken": ""}))
        assert code is not None
        assert code.value == 0x87
    stats = fleet_stats(emu)
    assert stats.rejected + stats.things_provisioned == before  # the service never saw it
