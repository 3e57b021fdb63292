"""The emulator's local rules engine: topic filters routed to Lambda-style handlers, fed by
device publishes and the service's own messages, with a concurrency limit and a latency."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleet_sim.emulator.app import Emulator
from fleet_sim.emulator.rules import LambdaContext
from fleet_sim.errors import InvalidRequest, ResourceAlreadyExists
from fleet_sim.mqtt.packets import QoS
from tests.integration.provisioning.support import (
    TIMEOUT,
    active_device,
    config,
    dial,
    eventually,
)
from tests.support.devices import make_ca, register_ca


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(config(tmp_path)) as emu:
        yield emu


class Recorder:
    """A handler that records its calls (from the rule's threads)."""

    def __init__(self, *, sleep_s: float = 0.0, fail: bool = False) -> None:
        self.calls: list[tuple[Any, LambdaContext, float]] = []
        self.sleep_s = sleep_s
        self.fail = fail
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: LambdaContext) -> None:
        with self._lock:
            self.calls.append((event, context, time.monotonic()))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if self.fail:
                raise RuntimeError("handler failure")
        finally:
            with self._lock:
                self.running -= 1


async def drained(emulator: Emulator) -> None:
    await asyncio.wait_for(emulator.rules.drain(), TIMEOUT)


async def test_a_device_publish_reaches_the_handler_as_a_lambda_event(
    emulator: Emulator, tmp_path: Path
) -> None:
    ca = make_ca("rules CA")
    register_ca(emulator.registry, ca)
    files, name = active_device(emulator, ca, tmp_path)
    recorder = Recorder()
    rule = emulator.rules.add_rule("telemetry/+/temp", recorder, name="temps", timeout_s=2.0)
    conn = await dial(emulator, files.chain_bundle, files.private_key, name)
    await conn.publish("telemetry/a/temp", b'{"celsius": 21.5}', qos=QoS.AT_LEAST_ONCE, timeout_s=5)
    await conn.publish("telemetry/a/humidity", b'{"rh": 40}', qos=QoS.AT_LEAST_ONCE, timeout_s=5)
    await conn.disconnect()
    await eventually(lambda: rule.stats.succeeded == 1)
    [(event, context, _)] = recorder.calls
    assert event == {"celsius": 21.5}
    assert context.function_name == "temps"
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:temps"
    assert uuid.UUID(context.aws_request_id).version == 4
    assert 0 < context.get_remaining_time_in_millis() <= 2000
    assert rule.stats.matched == 1


async def test_service_messages_reach_rules_too(emulator: Emulator) -> None:
    recorder = Recorder()
    emulator.rules.add_rule("$aws/events/presence/+/+", recorder, name="presence")
    emulator.broker.publish("$aws/events/presence/connected/x", b'{"clientId": "x"}', qos=1)
    await drained(emulator)
    assert [event for event, _, _ in recorder.calls] == [{"clientId": "x"}]


async def test_basic_ingest_reaches_the_named_rule_only(emulator: Emulator, tmp_path: Path) -> None:
    ca = make_ca("ingest CA")
    register_ca(emulator.registry, ca)
    files, name = active_device(emulator, ca, tmp_path)
    ingest, other = Recorder(), Recorder()
    emulator.rules.add_rule("not/this/topic", ingest, name="ingest_rule")
    emulator.rules.add_rule("$aws/rules/ingest_rule/#", other, name="spy")
    conn = await dial(emulator, files.chain_bundle, files.private_key, name)
    payload = json.dumps({"n": 1}).encode()
    topic = "$aws/rules/ingest_rule/plant/7"
    await conn.publish(topic, payload, qos=QoS.AT_LEAST_ONCE, timeout_s=5)
    await conn.disconnect()
    await eventually(lambda: len(ingest.calls) == 1)
    await drained(emulator)
    assert ingest.calls[0][0] == {"n": 1}
    assert other.calls == []


async def test_concurrency_limit_queues_the_excess(emulator: Emulator) -> None:
    recorder = Recorder(sleep_s=0.1)
    rule = emulator.rules.add_rule("work", recorder, name="limited", concurrency=2)
    for index in range(6):
        emulator.broker.publish("work", json.dumps({"i": index}).encode())
    await drained(emulator)
    assert rule.stats.succeeded == 6
    assert recorder.max_running == 2
    assert sorted(event["i"] for event, _, _ in recorder.calls) == list(range(6))


async def test_latency_is_added_before_the_call(emulator: Emulator) -> None:
    recorder = Recorder()
    emulator.rules.add_rule("slow", recorder, name="delayed", latency_s=0.2)
    published = time.monotonic()
    emulator.broker.publish("slow", b"{}")
    await drained(emulator)
    [(_, _, called)] = recorder.calls
    assert called - published >= 0.2


async def test_failures_and_non_json_payloads_are_counted(emulator: Emulator) -> None:
    failing = Recorder(fail=True)
    rule = emulator.rules.add_rule("in/#", failing, name="failing")
    emulator.broker.publish("in/a", b"{}")
    emulator.broker.publish("in/b", b"\xff not json")
    await drained(emulator)
    assert (rule.stats.matched, rule.stats.undecodable) == (2, 1)
    assert (rule.stats.invoked, rule.stats.failed, rule.stats.succeeded) == (1, 1, 0)
    assert rule.stats.last_error == "RuntimeError('handler failure')"


async def test_removed_rules_stop_and_close_drops_what_has_not_started(
    emulator: Emulator,
) -> None:
    recorder = Recorder()
    emulator.rules.add_rule("x", recorder, name="removed")
    emulator.rules.remove_rule("removed")
    assert emulator.broker.observers == []
    emulator.broker.publish("x", b"{}")
    delayed = emulator.rules.add_rule("y", recorder, name="delayed", latency_s=5.0)
    emulator.broker.publish("y", b"{}")
    await emulator.rules.close(timeout_s=1.0)
    assert recorder.calls == []
    assert delayed.stats.cancelled == 1


async def test_rule_arguments_are_checked(emulator: Emulator) -> None:
    rules = emulator.rules
    rules.add_rule("a/b", Recorder(), name="ok")
    with pytest.raises(ResourceAlreadyExists):
        rules.add_rule("a/b", Recorder(), name="ok")
    with pytest.raises(InvalidRequest):
        rules.add_rule("a/#/b", Recorder(), name="bad_filter")
    with pytest.raises(InvalidRequest):
        rules.add_rule("a", Recorder(), name="bad name")
    with pytest.raises(InvalidRequest):
        rules.add_rule("a", Recorder(), name="zero", concurrency=0)
