"""The emulator's local rules engine: topic filters routed to Python handlers written for AWS
Lambda (``handler(event, context)``), as an AWS IoT rule with a Lambda action would.

Minimal but real: :meth:`LocalRules.add_rule` binds a topic filter (AWS IoT matching, so
``a/#`` does not match ``a``) to a handler. Every message the broker routes — published by a
device or by the service itself (the registered event of JITR, lifecycle events …) — is seen
through the broker's ``observers`` hook; a device's Basic Ingest publish to
``$aws/rules/<name>/…`` reaches the rule called ``<name>`` only. A matching message's payload is
decoded as JSON (the rule's ``SELECT *``) and passed as ``event``; payloads that are not JSON
are counted (``undecodable``) and not passed on.

Invocation follows Lambda's asynchronous invocation (what the IoT rule's Lambda action does):
the event waits ``latency_s`` (on the loop, a timer), then queues for the rule's thread pool,
which runs at most ``concurrency`` handlers at once (handlers block: they call boto3); the
excess waits in the queue. A handler's exception is logged and counted (``failed``); Lambda's
retries of failed asynchronous invocations are not emulated. A handler running past
``timeout_s`` is counted (``overran``) but not interrupted (a thread cannot be).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fleet_sim.clock import Clock
from fleet_sim.emulator.broker.broker import Broker
from fleet_sim.emulator.broker.connection import BrokerConnection
from fleet_sim.emulator.broker.reserved import BASIC_INGEST_PREFIX
from fleet_sim.emulator.rules.context import LambdaContext
from fleet_sim.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from fleet_sim.mqtt.packets import Publish
from fleet_sim.mqtt.topics import matches, topic_filter_error

logger = logging.getLogger(__name__)

Handler = Callable[[Any, LambdaContext], object]
"""A Lambda-style handler: ``handler(event, context)``; its return value is ignored."""

#: Local rule names: AWS IoT rule names (``[a-zA-Z0-9_]``, what Basic Ingest topics name) or
#: Lambda function names (hyphens too).
_RULE_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")


@dataclass(slots=True)
class RuleStats:
    """Counters of one rule (updated from the loop and the rule's threads).

    Attributes:
        matched: messages that matched the rule.
        undecodable: matched messages whose payload is not JSON (not invoked).
        invoked: handler calls started.
        succeeded: handler calls that returned.
        failed: handler calls that raised.
        overran: handler calls that ran longer than the rule's timeout.
        cancelled: invocations dropped before running (the rule was removed or closed).
        last_error: the last handler exception, as ``repr``.
    """

    matched: int = 0
    undecodable: int = 0
    invoked: int = 0
    succeeded: int = 0
    failed: int = 0
    overran: int = 0
    cancelled: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class LocalRule:
    """One rule: a topic filter, its handler, how it is invoked (:meth:`LocalRules.add_rule`)."""

    name: str
    topic_filter: str
    handler: Handler
    concurrency: int
    latency_s: float
    timeout_s: float
    arn: str
    stats: RuleStats = field(default_factory=RuleStats)
    executor: ThreadPoolExecutor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    timers: set[asyncio.TimerHandle] = field(default_factory=set)


class LocalRules:
    """Topic filters routed to Lambda-style Python handlers, fed by the broker.

    Args:
        broker: the broker whose routed messages the rules see.
        clock: the emulator's clock (handler deadlines).
        region: the region in the handlers' function ARNs.
        account_id: the account in those ARNs.
        rng: randomness for request ids.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        clock: Clock,
        region: str,
        account_id: str,
        rng: random.Random | None = None,
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self._rng = rng if rng is not None else random.Random()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._rules: tuple[LocalRule, ...] = ()
        self._guard = threading.Lock()
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    # ------------------------------------------------------------------ managing rules

    def add_rule(
        self,
        topic_filter: str,
        handler: Handler,
        *,
        name: str,
        concurrency: int = 10,
        latency_s: float = 0.0,
        timeout_s: float = 3.0,
    ) -> LocalRule:
        """Route messages matching ``topic_filter`` to ``handler(event, context)``.

        Thread-safe (a test thread may add rules to an emulator running on another loop).

        Args:
            topic_filter: an MQTT topic filter (the rule's ``FROM``).
            handler: the Lambda-style handler.
            name: the rule's name (``[a-zA-Z0-9_-]``, 1–128; also its Basic Ingest name and
                the handler's ``function_name``).
            concurrency: at most this many handler calls run at once.
            latency_s: added before each call (the IoT rule → Lambda delay).
            timeout_s: the handler's nominal timeout (``get_remaining_time_in_millis``).

        Raises:
            InvalidRequest: a bad name, filter, concurrency, latency or timeout.
            ResourceAlreadyExists: a rule with that name exists.
        """
        if not _RULE_NAME.fullmatch(name):
            raise InvalidRequest(f"rule name {name!r} must match [a-zA-Z0-9_-]{{1,128}}")
        problem = topic_filter_error(topic_filter)
        if problem is not None:
            raise InvalidRequest(f"rule {name!r}: invalid topic filter: {problem}")
        if concurrency < 1 or latency_s < 0 or timeout_s <= 0:
            raise InvalidRequest(
                f"rule {name!r}: concurrency must be ≥ 1, latency ≥ 0 and the timeout > 0"
            )
        rule = LocalRule(
            name=name,
            topic_filter=topic_filter,
            handler=handler,
            concurrency=concurrency,
            latency_s=latency_s,
            timeout_s=timeout_s,
            arn=f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}",
            executor=ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"rule-{name}"),
        )
        with self._guard:
            if self._closed:
                raise InvalidRequest("the rules engine is closed")
            if any(existing.name == name for existing in self._rules):
                raise ResourceAlreadyExists(f"rule {name!r} exists")
            self._rules = (*self._rules, rule)
            first = len(self._rules) == 1
        if first:
            self._on_loop(self._attach)
        return rule

    def remove_rule(self, name: str) -> None:
        """Stop routing to rule ``name``; invocations not yet started are dropped.

        Raises:
            ResourceNotFound: no such rule.
        """
        with self._guard:
            rule = self.rule(name)
            self._rules = tuple(r for r in self._rules if r is not rule)
            last = not self._rules
        self._on_loop(lambda: self._stop_rule(rule))
        if last:
            self._on_loop(self._detach)

    def rule(self, name: str) -> LocalRule:
        """The rule called ``name``.

        Raises:
            ResourceNotFound: no such rule.
        """
        for rule in self._rules:
            if rule.name == name:
                return rule
        raise ResourceNotFound(f"rule {name!r} does not exist")

    @property
    def rules(self) -> tuple[LocalRule, ...]:
        """Every rule, in the order added."""
        return self._rules

    # ------------------------------------------------------------------ routing

    def observe(self, message: Publish, sender: BrokerConnection | None) -> None:
        """The broker observer: dispatch ``message`` to every matching rule (loop thread)."""
        rules = self._rules
        if not rules or self._closed:
            return
        topic = message.topic
        ingest = _basic_ingest_rule(topic) if sender is not None else None
        for rule in rules:
            if rule.name == ingest if ingest is not None else matches(rule.topic_filter, topic):
                self._dispatch(rule, message)

    def _dispatch(self, rule: LocalRule, message: Publish) -> None:
        with rule.lock:
            rule.stats.matched += 1
        try:
            event = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            with rule.lock:
                rule.stats.undecodable += 1
            return
        self._outstanding += 1
        self._idle.clear()
        if rule.latency_s > 0:
            handle: asyncio.TimerHandle | None = None

            def fire() -> None:
                assert handle is not None
                rule.timers.discard(handle)
                self._submit(rule, event)

            handle = self._loop.call_later(rule.latency_s, fire)
            rule.timers.add(handle)
        else:
            self._submit(rule, event)

    def _submit(self, rule: LocalRule, event: Any) -> None:
        request_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        executor = rule.executor
        try:
            if executor is None:
                raise RuntimeError("the rule is stopped")
            future = executor.submit(self._invoke, rule, event, request_id)
        except RuntimeError:  # shut down meanwhile
            with rule.lock:
                rule.stats.cancelled += 1
            self._finished()
            return
        future.add_done_callback(self._done_from_thread(rule))

    def _done_from_thread(self, rule: LocalRule) -> Callable[[Future[None]], None]:
        def done(future: Future[None]) -> None:
            if future.cancelled():
                with rule.lock:
                    rule.stats.cancelled += 1
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self._loop.call_soon_threadsafe(self._finished)

        return done

    def _invoke(self, rule: LocalRule, event: Any, request_id: str) -> None:
        """Run the handler (a worker thread)."""
        started = self.clock.now()
        context = LambdaContext(
            function_name=rule.name,
            aws_request_id=request_id,
            invoked_function_arn=rule.arn,
            deadline=started + rule.timeout_s,
            now=self.clock.now,
            log_group_name=f"/aws/lambda/{rule.name}",
        )
        with rule.lock:
            rule.stats.invoked += 1
        try:
            rule.handler(event, context)
        except Exception as error:
            logger.exception("local rule %r: handler failed (request %s)", rule.name, request_id)
            with rule.lock:
                rule.stats.failed += 1
                rule.stats.last_error = repr(error)
        else:
            with rule.lock:
                rule.stats.succeeded += 1
        if self.clock.now() - started > rule.timeout_s:
            with rule.lock:
                rule.stats.overran += 1

    def _finished(self) -> None:
        self._outstanding -= 1
        if self._outstanding <= 0:
            self._outstanding = 0
            self._idle.set()

    # ------------------------------------------------------------------ lifecycle

    async def drain(self) -> None:
        """Wait until every dispatched invocation has finished (wrap in a timeout)."""
        await self._idle.wait()

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Stop routing, drop invocations not yet started and wait up to ``timeout_s`` for
        running handlers (idempotent)."""
        with self._guard:
            self._closed = True
            rules, self._rules = self._rules, ()
        self._detach()
        for rule in rules:
            self._stop_rule(rule)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            logger.warning("local rules: handlers still running at close")

    def _stop_rule(self, rule: LocalRule) -> None:
        for handle in list(rule.timers):
            handle.cancel()
            with rule.lock:
                rule.stats.cancelled += 1
            self._finished()
        rule.timers.clear()
        executor, rule.executor = rule.executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _attach(self) -> None:
        if self.observe not in self.broker.observers:
            self.broker.observers.append(self.observe)

    def _detach(self) -> None:
        if self.observe in self.broker.observers:
            self.broker.observers.remove(self.observe)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)


def _basic_ingest_rule(topic: str) -> str | None:
    """``<name>`` of a Basic Ingest topic ``$aws/rules/<name>/…``, else None."""
    if not topic.startswith(BASIC_INGEST_PREFIX):
        return None
    name, _, _rest = topic[len(BASIC_INGEST_PREFIX) :].partition("/")
    return name or None
