"""Pre-provisioning hooks: the Lambda a FLEET_PROVISIONING template names, played locally by
a Python callable (reference §3.3).

The emulator has no Lambda. ``EmulatorConfig.pre_provisioning_hooks`` maps a hook's
``targetArn`` to ``handler(event, context)``, written as a Python Lambda handler would be:
``event`` is ``{"claimCertificateId", "certificateId", "certificatePem", "templateArn",
"clientId", "parameters"}``, ``context`` a :class:`HookContext`, and the return value
``{"allowProvisioning": True, "parameterOverrides": {...}}``.

The handler runs in its own daemon thread, so a slow one never stalls the broker; the
verdict comes back on the event loop's thread. Provisioning is denied when the handler
raises, returns anything but ``allowProvisioning`` exactly ``True`` (or
``parameterOverrides`` that is not an object of strings), takes longer than the timeout
(AWS: 5 s), or no handler is configured for the ARN (AWS could not invoke the Lambda). A
handler that overruns keeps its thread until it returns; its late answer is ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

#: AWS fails a RegisterThing whose hook takes longer than this.
DEFAULT_HOOK_TIMEOUT_S = 5.0

PreProvisioningHandler = Callable[[dict[str, Any], "HookContext"], Any]
"""``handler(event, context)`` returning ``{"allowProvisioning": …, "parameterOverrides": …}``."""


def _no_overrides() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HookContext:
    """The parts of a Lambda ``context`` a hook may use.

    Attributes:
        function_name: the function's name (the ARN's last part).
        invoked_function_arn: the hook's ``targetArn``.
        aws_request_id: a fresh id per invocation.
        deadline: when the invocation times out (``time.monotonic()`` seconds).
    """

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the timeout (as Lambda's context method)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True, slots=True)
class HookVerdict:
    """What a hook decided.

    Attributes:
        allowed: whether provisioning may go on.
        parameter_overrides: values to merge into the request's parameters.
        reason: why it was denied (empty when allowed).
    """

    allowed: bool
    parameter_overrides: Mapping[str, str] = field(default_factory=_no_overrides)
    reason: str = ""

    @classmethod
    def deny(cls, reason: str) -> HookVerdict:
        """A denial for ``reason``."""
        return cls(False, reason=reason)


def verdict_of(result: Any) -> HookVerdict:
    """Interpret a handler's return value (pure)."""
    if not isinstance(result, Mapping):
        return HookVerdict.deny(
            f"the pre-provisioning hook returned a {type(result).__name__}, not an object"
        )
    if result.get("allowProvisioning") is not True:
        return HookVerdict.deny("the pre-provisioning hook did not allow provisioning")
    overrides = result.get("parameterOverrides")
    if overrides is None:
        return HookVerdict(True)
    if not isinstance(overrides, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in overrides.items()
    ):
        return HookVerdict.deny(
            "the pre-provisioning hook's parameterOverrides is not an object of strings"
        )
    return HookVerdict(True, MappingProxyType(dict(overrides)))


class TimerHandle(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle``)."""

    def cancel(self) -> None:
        """Do not make the call."""
        ...


class LoopScheduler(Protocol):
    """The event loop the verdicts return to (an ``asyncio`` loop satisfies it)."""

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> object:
        """Run ``callback`` on the loop's thread soon (callable from any thread)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` on the loop's thread after ``delay`` seconds."""
        ...


class HookRunner:
    """Invokes pre-provisioning handlers off the loop, with a timeout."""

    def __init__(
        self,
        handlers: Mapping[str, PreProvisioningHandler],
        *,
        loop: LoopScheduler,
        new_request_id: Callable[[], str],
        timeout_s: float = DEFAULT_HOOK_TIMEOUT_S,
    ) -> None:
        """Handlers by ``targetArn``; verdicts are delivered on ``loop``."""
        self._handlers = dict(handlers)
        self._loop = loop
        self._new_request_id = new_request_id
        self.timeout_s = timeout_s
        self.invocations = 0
        self.timeouts = 0

    def invoke(
        self,
        target_arn: str,
        event: dict[str, Any],
        done: Callable[[HookVerdict], None],
    ) -> None:
        """Run the hook for ``target_arn`` with ``event``; ``done(verdict)`` is called exactly
        once, on the loop's thread (at once when no handler is configured)."""
        handler = self._handlers.get(target_arn)
        if handler is None:
            done(HookVerdict.deny(f"no pre-provisioning hook is configured for {target_arn}"))
            return
        self.invocations += 1
        context = HookContext(
            function_name=target_arn.rsplit(":", 1)[-1],
            invoked_function_arn=target_arn,
            aws_request_id=self._new_request_id(),
            deadline=time.monotonic() + self.timeout_s,
        )
        settled = False
        timer: TimerHandle | None = None

        def settle(verdict: HookVerdict) -> None:  # on the loop's thread only
            nonlocal settled
            if settled:
                return
            settled = True
            if timer is not None:
                timer.cancel()
            done(verdict)

        def timed_out() -> None:
            if not settled:
                self.timeouts += 1
            settle(HookVerdict.deny(f"the pre-provisioning hook timed out ({self.timeout_s} s)"))

        def run() -> None:  # on the hook's own thread
            try:
                verdict = verdict_of(handler(event, context))
            except Exception as error:  # the hook's failure is a denial, never ours
                verdict = HookVerdict.deny(
                    f"the pre-provisioning hook failed: {type(error).__name__}: {error}"
                )
            try:
                self._loop.call_soon_threadsafe(lambda: settle(verdict))
            except RuntimeError:  # the loop is closed: the emulator stopped meanwhile
                return

        timer = self._loop.call_later(self.timeout_s, timed_out)
        threading.Thread(target=run, name="pre-provisioning-hook", daemon=True).start()
