"""RegisterThing's quota (AWS: 10 per second; 1 here): the excess is rejected 429."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.integration.fleet_provisioning.conftest import Hooks, start_emulator
from tests.integration.fleet_provisioning.support import (
    Identity,
    fleet_client,
    provision_topic,
    subscribe_replies,
)
from tests.support.emulator_thread import EmulatorThread

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory, hooks: Hooks) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with start_emulator(data_dir, hooks, fleet_register_thing_tps=1.0) as running:
        yield running


def test_register_thing_over_the_quota_is_throttled(
    emu: EmulatorThread, claim: Identity, template: str
) -> None:
    topic = provision_topic(template)
    request = json.dumps({"certificateOwnershipToken": "not-a-token"})
    with fleet_client(emu, claim) as client:
        subscribe_replies(client, topic)
        for _ in range(3):
            client.publish(topic, request, qos=0)
        codes = [json.loads(client.next_message(f"{topic}/")[1]) for _ in range(3)]
        assert [(c["statusCode"], c["errorCode"]) for c in codes] == [
            (400, "InvalidCertificateOwnershipToken"),
            (429, "Throttled"),
            (429, "Throttled"),
        ]
        time.sleep(1.05)  # the bucket refilled
        client.publish(topic, request)
        reply = json.loads(client.next_message(f"{topic}/")[1])
        assert reply["statusCode"] == 400
    assert emu.call(lambda: emu.emulator.fleet_provisioning.stats.throttled) == 2
