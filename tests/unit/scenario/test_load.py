"""Loading scenario YAML: good files load, bad files report every problem at its path and line.

Each bad fixture marks the line where a problem must be reported with a trailing comment
``# expect: <yaml path>: <fragment of the message>``; the test checks that exactly those
problems are reported, each at that line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet_sim.errors import ScenarioError, ScenarioValidationError
from fleet_sim.scenario import (
    ClaimProvisioning,
    CvmProvisioning,
    EndpointTarget,
    InlinePolicy,
    JitpProvisioning,
    JitrProvisioning,
    LinearArrival,
    LocalTarget,
    NamedPolicy,
    PoissonArrival,
    PreregisteredProvisioning,
    PublishBehaviour,
    load_scenario,
    parse_scenario,
)
from fleet_sim.scenario.model import DEFAULT_POLICY, CertificateFiles, ChurnBehaviour, Jitter
from fleet_sim.tls.keys import KeyType

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {"FLEETSIM_TEST_COUNT": "10", "FLEETSIM_TEST_PORT": "443", "FLEETSIM_TEST_EMPTY": ""}
_EXPECT = re.compile(r"#\s*expect:\s*(?P<path>[^:]*):\s*(?P<fragment>.+?)\s*$")
BAD = sorted(path.name for path in (FIXTURES / "bad").glob("*.yaml"))


def _expectations(text: str) -> list[tuple[int, str, str]]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _EXPECT.search(line)
        if match:
            found.append((number, match.group("path").strip(), match.group("fragment")))
    return found


def _line(problem: ScenarioError) -> int:
    return int(problem.source.rsplit(":", 1)[1])


def test_there_is_a_bad_fixture_for_each_kind_of_mistake():
    kinds = {
        "unknown_key",
        "wrong_type",
        "bad_enum",
        "bad_units",
        "bad_threshold",
        "impossible",
        "template_fields",
        "missing_env",
        "yaml_syntax",
        "duplicate_key",
        "policy_denies",
    }
    assert kinds <= {name.removesuffix(".yaml") for name in BAD}


@pytest.mark.parametrize("name", BAD)
def test_bad_fixture_reports_every_problem_at_its_path_and_line(name):
    path = FIXTURES / "bad" / name
    expected = _expectations(path.read_text(encoding="utf-8"))
    assert expected, f"{name} marks no expected problem"
    with pytest.raises(ScenarioValidationError) as caught:
        load_scenario(path, env=ENV)
    got = [(_line(p), p.path, p.message) for p in caught.value.problems]
    shown = "\n".join(map(str, got))
    assert len(got) == len(expected), f"expected {len(expected)} problems, got:\n{shown}"
    for line, yaml_path, fragment in expected:
        assert any(
            g_line == line and g_path == yaml_path and fragment in message
            for g_line, g_path, message in got
        ), f"no problem '{yaml_path}: {fragment}' at line {line}; got:\n{shown}"
    # the one exception's message lists every problem with its path and file:line
    text = str(caught.value)
    for problem in caught.value.problems:
        assert f"({path}:{_line(problem)})" in text
        assert problem.message in text


def test_a_single_problem_reads_path_message_and_file_line():
    text = (
        "name: x\n"
        "fleet:\n"
        "  - name: a\n"
        "    count: 1\n"
        "    connect:\n"
        "      retry:\n"
        "        jitter: fulll\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="scenario.yaml")
    assert str(caught.value) == (
        "fleet[0].connect.retry.jitter: must be one of none, full, equal, decorrelated; "
        "got 'fulll' (scenario.yaml:7)"
    )
    assert caught.value.path == "fleet[0].connect.retry.jitter"
    assert caught.value.source == "scenario.yaml:7"
    assert caught.value.failure == "invalid_scenario"


def test_several_problems_are_listed_in_file_order_under_one_error():
    text = "name: x\nfleet:\n  - name: a\n    count: 0\n    engine: paho\nrun: {duration: 1y}\n"
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(text, source="s.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0] == "s.yaml: 3 problems"
    assert lines[1].startswith("  fleet[0].count: must be greater than or equal to 1")
    assert lines[1].endswith("(s.yaml:4)")
    assert lines[2].startswith("  fleet[0].engine: must be one of native, awscrt")
    assert lines[3].startswith("  run.duration: must be a duration")


def test_minimal_scenario_gets_the_documented_defaults():
    scenario = load_scenario(FIXTURES / "good" / "minimal.yaml", env={})
    assert scenario.target == LocalTarget()
    (group,) = scenario.fleet
    assert group.key_type is KeyType.EC_P256
    assert group.engine == "native"
    assert group.provisioning == PreregisteredProvisioning()
    assert group.policy == DEFAULT_POLICY
    assert group.connect.protocol == "mqtt5"
    assert group.connect.retry.jitter is Jitter.FULL
    assert group.device_values(0) == {
        "index": 0,
        "group": "sensors",
        "thing_name": "sensors-00000",
        "client_id": "sensors-00000",
    }
    assert scenario.run.seed is None
    assert scenario.thresholds == ()
    assert scenario.reports.paths("minimal", "t") == {}


def test_full_scenario_loads_every_section():
    good = FIXTURES / "good"
    scenario = load_scenario(good / "full.yaml", env=ENV)
    target = scenario.target
    assert isinstance(target, EndpointTarget)
    assert target.host == "abc123-ats.iot.eu-central-1.amazonaws.com"  # the default
    assert target.port == 443  # from the environment, as text
    assert target.alpn == "x-amzn-mqtt-ca"  # implied on 443
    assert target.region == "eu-central-1"  # taken from the host
    assert target.sni == "iot.example.com"  # the default also replaces an empty value
    assert target.ca_file == good / "certs" / "ca.pem"  # relative to the scenario file

    pre, jitp, jitr, claim, cvm = scenario.fleet
    assert pre.connect.timeout == 2.5
    assert pre.connect.keep_alive == 60.0
    assert pre.connect.clean_session is False
    assert pre.connect.retry.cap == 90.0
    assert pre.arrival.type == "constant"
    assert pre.key_type is KeyType.EC_P384
    assert [b.type for b in pre.behaviours] == ["publish", "subscribe", "churn"]
    publish = pre.behaviours[0]
    assert isinstance(publish, PublishBehaviour)
    assert publish.period == 0.25
    assert isinstance(pre.behaviours[2], ChurnBehaviour)
    assert pre.behaviours[2].downtime == 0.5
    assert list(pre.indices) == [10, 11, 12, 13]

    # merge keys: the anchor's settings, with the overrides written next to the merge
    assert jitp.connect.protocol == "mqtt311"
    assert jitp.connect.retry.jitter is Jitter.DECORRELATED
    assert jitp.connect.retry.max_attempts == 4
    assert isinstance(jitp.provisioning, JitpProvisioning)
    assert jitp.provisioning.ca == CertificateFiles(
        cert=good / "certs" / "ca.pem", key=good / "certs" / "ca.key"
    )
    assert jitp.policy == NamedPolicy(name="ExistingPolicy")
    assert isinstance(jitp.arrival, LinearArrival)
    assert (jitp.arrival.start, jitp.arrival.end, jitp.arrival.over) == (0.0, 10.0, 30.0)

    assert isinstance(jitr.provisioning, JitrProvisioning)
    assert isinstance(jitr.provisioning.ca, CertificateFiles)
    assert jitr.provisioning.ca.key_file == good / "certs" / "ca.key"
    assert isinstance(jitr.arrival, PoissonArrival)
    assert jitr.arrival.rate == 1.0

    assert isinstance(claim.provisioning, ClaimProvisioning)
    assert claim.provisioning.payload_format == "cbor"
    assert claim.provisioning.parameters["SerialNumber"].render({"index": 7}, None) == "SN-000007"  # type: ignore[arg-type]
    assert isinstance(claim.policy, InlinePolicy)
    assert claim.policy.parsed["Statement"][0]["Action"] == "iot:*"

    assert isinstance(cvm.provisioning, CvmProvisioning)
    assert cvm.provisioning.token == "secret"

    assert scenario.run.duration == 5400.0
    assert scenario.run.graceful_stop == 0.0
    assert scenario.run.stop_when.failures == 5
    assert [t.key for t in scenario.thresholds] == [
        "connect.p99.9",
        "provision.p50",
        "publish.max",
        "failure_ratio",
        "connected_ratio",
        "messages_received",
        "publish_rate",
    ]
    assert scenario.thresholds[6].value == 2.0
    assert scenario.reports.paths(scenario.name, "T1") == {
        "json": "out/full.example-T1.json",
        "junit": "out/full.example.xml",
    }


def test_interpolation_leaves_policy_variables_and_escapes_alone():
    text = (
        "name: x\n"
        "description: '$${NOT_A_VAR} and ${iot:Connection.Thing.ThingName} and ${WHO}'\n"
        "fleet: [{name: a, count: 1}]\n"
    )
    scenario = parse_scenario(text, env={"WHO": "me"})
    assert scenario.description == ("${NOT_A_VAR} and ${iot:Connection.Thing.ThingName} and me")


def test_environment_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("FLEETSIM_TEST_NAME", "from-env")
    scenario = parse_scenario("name: ${FLEETSIM_TEST_NAME}\nfleet: [{name: a, count: 1}]\n")
    assert scenario.name == "from-env"


def test_load_scenario_checks_named_files_exist(tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text(
        "name: x\n"
        "fleet:\n"
        "  - name: a\n"
        "    count: 1\n"
        "    provisioning:\n"
        "      type: jitr\n"
        "      ca: missing/ca.pem\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioValidationError) as caught:
        load_scenario(file, env={})
    (problem,) = caught.value.problems
    assert problem.path == "fleet[0].provisioning.ca"
    assert problem.message == f"no such file: {tmp_path / 'missing' / 'ca.pem'}"
    assert problem.source == f"{file}:7"
    # parse_scenario alone does not touch the file system
    assert parse_scenario(file.read_text(encoding="utf-8"), env={}).fleet[0].count == 1


def test_unreadable_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the scenario"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the scenario is empty (<string>:1)"),
        ("a: &x [*x]\n", "a[0]: recursive alias (<string>:1)"),
        (
            "name: x\n? [a, b]\n: 1\nfleet: [{name: a, count: 1}]\n",
            "a key must be a plain string (<string>:2)",
        ),
        (
            "name: !Ref x\nfleet: [{name: a, count: 1}]\n",
            "name: could not determine a constructor for the tag '!Ref' (<string>:1)",
        ),
        (
            "name: x\nfleet: [{name: a, count: 1}]\n---\nname: y\n",
            "expected a single document in the stream but found another document (<string>:3)",
        ),
        (
            "name: x\nfleet: [{name: a, count: 1}]\n1: one\n",
            "1: key 1 must be a string (quote it: '1') (<string>:3)",
        ),
    ],
)
def test_yaml_level_problems(text, expected):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, env={})
    assert expected in str(caught.value)
