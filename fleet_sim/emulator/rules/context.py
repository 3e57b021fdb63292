"""The ``context`` object a local rule's handler receives: AWS Lambda's Python context, as far
as a handler written for Lambda reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """What AWS Lambda passes as ``context`` to ``handler(event, context)``.

    Attributes:
        function_name: the function (the local rule's name).
        aws_request_id: a fresh UUID per invocation.
        invoked_function_arn: ``arn:aws:lambda:<region>:<account>:function:<name>``.
        deadline: when the invocation times out, on ``now``'s clock.
        now: the clock ``deadline`` is on (monotonic seconds).
        function_version: ``$LATEST``.
        memory_limit_in_mb: nominal; nothing is enforced.
        log_group_name: ``/aws/lambda/<name>``.
        log_stream_name: a fixed local name.
        identity: None (asynchronous invocations from IoT rules carry none).
        client_context: None, likewise.
    """

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    deadline: float
    now: Callable[[], float]
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = "fleetsim-emulator"
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's timeout (0 once past it)."""
        return max(0, int((self.deadline - self.now()) * 1000))
