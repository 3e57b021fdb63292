"""The scenario model used from Python: frozen values, rules, round trips, helpers."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from fleet_sim.scenario import (
    DEFAULT_POLICY,
    ConnectSettings,
    DeviceGroup,
    EndpointTarget,
    PublishBehaviour,
    Scenario,
    parse_scenario,
)
from fleet_sim.scenario.model_identity import CertificateFiles


def scenario(**overrides: Any) -> Scenario:
    data = {"name": "s", "fleet": [{"name": "g", "count": 3}], **overrides}
    return Scenario.model_validate(data)


def test_models_are_frozen_and_hashable():
    value = scenario()
    with pytest.raises(ValidationError, match="frozen"):
        value.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        value.fleet[0].count = 5  # type: ignore[misc]
    assert isinstance(value.fleet, tuple)
    assert hash(value) == hash(scenario())
    assert value == scenario()


def test_json_dump_round_trips_to_an_equal_scenario():
    text = (
        "name: rt\n"
        "fleet:\n"
        "  - name: g\n"
        "    count: 2\n"
        "    arrival: {type: linear, from: 1/s, to: 5/s, over: 10s}\n"
        "    behaviours:\n"
        "      - {type: publish, topic: 'dt/{thing_name}/x', rate: 2,\n"
        "         payload: '{{\"a\": {seq}}}'}\n"
        "thresholds: ['connect.p99 < 2s']\n"
        "reports: {json: 'r/{name}.json'}\n"
    )
    value = parse_scenario(text, env={})
    dumped = value.model_dump(mode="json", by_alias=True)
    assert dumped["fleet"][0]["arrival"] == {
        "type": "linear",
        "from": "1/s",
        "to": "5/s",
        "over": "10s",
    }
    assert dumped["thresholds"] == ["connect.p99 < 2s"]
    assert dumped["reports"]["json"] == "r/{name}.json"
    assert Scenario.model_validate(dumped) == value


def test_rule_violations_name_the_key_when_used_from_python():
    with pytest.raises(ValidationError) as caught:
        scenario(fleet=[{"name": "g", "count": 2, "thing_name": "same"}])
    assert "thing_name: every device of the group would be 'same'" in str(caught.value)


def test_endpoint_defaults():
    target = EndpointTarget.model_validate(
        {"host": "x-ats.iot.us-west-2.amazonaws.com", "port": 443}
    )
    assert target.alpn == "x-amzn-mqtt-ca"
    assert target.region == "us-west-2"
    assert target.server_name == "x-ats.iot.us-west-2.amazonaws.com"
    assert target.is_aws
    assert target.has_control_plane
    plain = EndpointTarget.model_validate({"host": "broker.local", "port": 8884, "sni": "iot"})
    assert plain.alpn is None
    assert plain.region is None
    assert plain.server_name == "iot"
    assert not plain.is_aws
    assert not plain.has_control_plane
    with pytest.raises(ValidationError, match="AWS IoT serves MQTT over TLS on 8883 or 443"):
        EndpointTarget.model_validate({"host": "x-ats.iot.us-west-2.amazonaws.com", "port": 1883})


def test_generated_jitp_ca_on_aws_needs_a_role():
    with pytest.raises(ValidationError, match="a generated JITP CA on AWS needs role_arn"):
        scenario(
            target={"type": "endpoint", "host": "x-ats.iot.eu-west-1.amazonaws.com"},
            fleet=[{"name": "g", "count": 2, "provisioning": {"type": "jitp", "ca": "generate"}}],
        )


def test_claim_without_csr_rejects_a_key_type():
    claim = {"type": "claim", "template_name": "T", "claim_certificate": "generate"}
    group = {"name": "g", "count": 2, "provisioning": {**claim, "use_csr": False}}
    with pytest.raises(ValidationError, match="CreateKeysAndCertificate makes the key"):
        scenario(fleet=[{**group, "key_type": "rsa-2048"}])
    assert scenario(fleet=[group]).fleet[0].provisioning.type == "claim"
    assert scenario(fleet=[{**group, "provisioning": claim, "key_type": "rsa-2048"}])


def test_policies_with_conditions_are_not_second_guessed():
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:*",
                "Resource": "*",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            }
        ],
    }
    group = {"name": "g", "count": 2, "client_id": "c-{index}", "policy": policy}
    assert scenario(fleet=[group]).fleet[0].client_id.source == "c-{index}"


def test_default_policy_allows_thing_scoped_topics():
    group = DeviceGroup.model_validate(
        {
            "name": "g",
            "count": 2,
            "behaviours": [
                {"type": "publish", "topic": "$aws/things/{thing_name}/shadow/update", "rate": 1},
                {"type": "publish", "topic": "dt/{group}/{thing_name}", "rate": 1},
                {"type": "subscribe", "filters": ["cmd/{thing_name}/#", "cmd/{thing_name}"]},
            ],
        }
    )
    assert group.policy == DEFAULT_POLICY


def test_group_helpers():
    group = DeviceGroup.model_validate(
        {
            "name": "g",
            "count": 3,
            "first_index": 5,
            "thing_name": "t{index}",
            "client_id": "{thing_name}",
        }
    )
    assert list(group.indices) == [5, 6, 7]
    assert group.device_values(6) == {
        "index": 6,
        "group": "g",
        "thing_name": "t6",
        "client_id": "t6",
    }
    publish = PublishBehaviour.model_validate({"topic": "a/{thing_name}/b", "rate": "4/s"})
    assert publish.period == 0.25
    assert publish.topic.render({"thing_name": "x"}, random.Random(0)) == "a/x/b"
    assert CertificateFiles.model_validate({"cert": "a/ca.pem"}).key_file.name == "ca.key"
    assert ConnectSettings().keep_alive == 30.0


def test_scenario_helpers():
    value = scenario(fleet=[{"name": "a", "count": 3}, {"name": "b", "count": 4}])
    assert value.device_count == 7
    assert value.group("b").count == 4
    with pytest.raises(KeyError):
        value.group("c")


def test_shorthands_and_their_full_forms_are_equal():
    short = scenario(
        target="local",
        fleet=[
            {
                "name": "g",
                "count": 1,
                "arrival": "5/s",
                "provisioning": "preregistered",
                "policy": "P",
            }
        ],
    )
    full = scenario(
        target={"type": "local"},
        fleet=[
            {
                "name": "g",
                "count": 1,
                "arrival": {"type": "constant", "rate": 5},
                "provisioning": {"type": "preregistered"},
                "policy": {"name": "P"},
            }
        ],
    )
    assert short == full


def test_policy_is_not_judged_where_provisioning_picks_it():
    cvm = {"type": "cvm", "url": "https://cvm.example.com/getcert", "token": "t"}
    group = {"name": "g", "count": 2, "client_id": "c-{index}", "provisioning": cvm}
    assert scenario(fleet=[group]).fleet[0].client_id.source == "c-{index}"
    with pytest.raises(ValidationError, match="does not allow iot:Connect as 'c-0'"):
        scenario(fleet=[{**group, "provisioning": "preregistered"}])


def test_two_reports_cannot_share_a_file():
    with pytest.raises(ValidationError, match="junit: is the same file as the json report"):
        scenario(reports={"json": "r/{name}", "junit": "r/{name}"})


def test_a_group_without_behaviours_just_holds_its_connection():
    assert [b.type for b in scenario().fleet[0].behaviours] == ["idle"]
