"""The pure parts of fleet provisioning: request topics, payload codecs, ownership tokens,
and hook verdicts and their once-only delivery."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import cbor2
import pytest

from fleet_sim.emulator.provisioning.fleet_api import (
    ErrorCode,
    Operation,
    PayloadFormat,
    decode_request,
    encode_reply,
    parse_request_topic,
    rejection_body,
    string_map,
)
from fleet_sim.emulator.provisioning.hooks import HookRunner, HookVerdict, verdict_of
from fleet_sim.emulator.provisioning.ownership import OwnershipTokens
from fleet_sim.errors import FleetProvisioningRejected


@pytest.mark.parametrize(
    ("topic", "operation", "fmt", "template"),
    [
        ("$aws/certificates/create/json", Operation.CREATE_KEYS_AND_CERTIFICATE, "json", None),
        ("$aws/certificates/create/cbor", Operation.CREATE_KEYS_AND_CERTIFICATE, "cbor", None),
        (
            "$aws/certificates/create-from-csr/json",
            Operation.CREATE_CERTIFICATE_FROM_CSR,
            "json",
            None,
        ),
        (
            "$aws/provisioning-templates/T-1/provision/cbor",
            Operation.REGISTER_THING,
            "cbor",
            "T-1",
        ),
    ],
)
def test_request_topics(topic: str, operation: Operation, fmt: str, template: str | None):
    request = parse_request_topic(topic)
    assert request is not None
    assert (request.operation, request.payload_format.value, request.template_name) == (
        operation,
        fmt,
        template,
    )
    assert request.accepted_topic == f"{topic}/accepted"
    assert request.rejected_topic == f"{topic}/rejected"


@pytest.mark.parametrize(
    "topic",
    [
        "$aws/certificates/create/json/accepted",
        "$aws/certificates/create/xml",
        "$aws/certificates/create",
        "$aws/certificates/delete/json",
        "$aws/provisioning-templates//provision/json",
        "$aws/provisioning-templates/T/provision/json/rejected",
        "$aws/provisioning-templates/T/deprovision/json",
        "$aws/things/t/shadow/update",
        "certificates/create/json",
    ],
)
def test_other_topics_are_not_requests(topic: str) -> None:
    assert parse_request_topic(topic) is None


def test_payload_codecs_and_rejection_shape() -> None:
    body = {"a": "b", "n": {"k": "v"}}
    for fmt in PayloadFormat:
        assert decode_request(encode_reply(body, fmt), fmt) == body
        assert decode_request(b"", fmt) == {}
    assert cbor2.loads(encode_reply(body, PayloadFormat.CBOR)) == body
    for payload, fmt in [
        (b"{", PayloadFormat.JSON),
        (b"[]", PayloadFormat.JSON),
        (b"\xff", PayloadFormat.JSON),
        (b"\xff\x00", PayloadFormat.CBOR),
        (cbor2.dumps([1]), PayloadFormat.CBOR),
    ]:
        with pytest.raises(FleetProvisioningRejected) as info:
            decode_request(payload, fmt)
        assert rejection_body(info.value) == {
            "statusCode": 400,
            "errorCode": "InvalidPayload",
            "errorMessage": info.value.message,
        }
    assert ErrorCode.THROTTLED.error("x").status_code == 429
    with pytest.raises(FleetProvisioningRejected):
        string_map({"parameters": {"a": 1}}, "parameters")
    assert string_map({}, "parameters") == {}


def test_tokens_are_random_bound_to_a_certificate_and_expire_in_order() -> None:
    tokens = OwnershipTokens(ttl_s=10.0, random_bytes=random.Random(7).randbytes)
    first = tokens.issue("a" * 64, now=0.0)
    second = tokens.issue("b" * 64, now=5.0)
    assert first.token != second.token
    assert len(first.token) == 64
    assert tokens.redeem(first.token, now=9.9).certificate_id == "a" * 64
    with pytest.raises(FleetProvisioningRejected, match="has expired"):
        tokens.redeem(first.token, now=10.0)
    for bad in ("", None, "nope"):
        with pytest.raises(FleetProvisioningRejected) as info:
            tokens.redeem(bad, now=1.0)
        assert info.value.error_code == "InvalidCertificateOwnershipToken"
    assert [g.certificate_id for g in tokens.expire(now=10.0)] == ["a" * 64]
    assert len(tokens) == 1
    assert tokens.expire(now=14.9) == []
    assert [g.token for g in tokens.expire(now=15.0)] == [second.token]
    with pytest.raises(ValueError, match="positive"):
        OwnershipTokens(ttl_s=0, random_bytes=random.randbytes)


@pytest.mark.parametrize(
    ("result", "allowed"),
    [
        ({"allowProvisioning": True}, True),
        ({"allowProvisioning": True, "parameterOverrides": {"a": "b"}}, True),
        ({"allowProvisioning": "true"}, False),
        ({"allowProvisioning": False}, False),
        ({}, False),
        (None, False),
        ({"allowProvisioning": True, "parameterOverrides": {"a": 1}}, False),
        ({"allowProvisioning": True, "parameterOverrides": ["a"]}, False),
    ],
)
def test_hook_verdicts(result: object, allowed: bool) -> None:
    verdict = verdict_of(result)
    assert verdict.allowed is allowed
    assert bool(verdict.reason) is not allowed


class FakeLoop:
    """Runs cross-thread calls when the test pumps it; timers fire when the test says."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], object]] = []
        self.timers: list[Callable[[], object]] = []
        self.posted = threading.Event()

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> object:
        self.soon.append(callback)
        self.posted.set()
        return None

    def call_later(self, delay: float, callback: Callable[[], object]) -> FakeLoop:
        self.timers.append(callback)
        return self

    def cancel(self) -> None:
        self.timers.clear()


def test_hook_runner_settles_once_timeout_first() -> None:
    loop = FakeLoop()
    release = threading.Event()
    verdicts: list[HookVerdict] = []

    def slow(event: dict[str, object], context: object) -> object:
        release.wait(5)
        return {"allowProvisioning": True}

    runner = HookRunner({"arn:slow": slow}, loop=loop, new_request_id=lambda: "id")
    runner.invoke("arn:slow", {}, verdicts.append)
    loop.timers[0]()  # the timeout fires first
    release.set()
    assert loop.posted.wait(5)
    for callback in loop.soon:
        callback()  # the late answer is ignored
    assert [(v.allowed, "timed out" in v.reason) for v in verdicts] == [(False, True)]
    assert runner.timeouts == 1


def test_hook_runner_answer_cancels_the_timer() -> None:
    loop = FakeLoop()
    verdicts: list[HookVerdict] = []
    seen: list[tuple[dict[str, object], object]] = []

    def allow(event: dict[str, object], context: object) -> object:
        seen.append((event, context))
        return {"allowProvisioning": True, "parameterOverrides": {"k": "v"}}

    runner = HookRunner(
        {"arn:aws:lambda:r:1:function:allow": allow}, loop=loop, new_request_id=lambda: "id"
    )
    runner.invoke("arn:aws:lambda:r:1:function:allow", {"x": 1}, verdicts.append)
    assert loop.posted.wait(5)
    loop.soon[0]()
    assert loop.timers == []  # cancelled
    assert verdicts == [HookVerdict(True, {"k": "v"})]
    event, context = seen[0]
    assert event == {"x": 1}
    assert getattr(context, "function_name") == "allow"  # noqa: B009
    runner.invoke("arn:missing", {}, verdicts.append)
    assert not verdicts[-1].allowed
    assert "no pre-provisioning hook" in verdicts[-1].reason
