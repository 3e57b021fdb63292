"""The control plane's HTTP server: AWS IoT's REST-JSON API on the emulator's event loop.

One catch-all aiohttp route hands every request to :meth:`ControlPlaneServer.dispatch`,
which finds the operation in the route table built from botocore's model, applies the
optional throttle, parses the input, runs the handler (synchronously: registry operations take
about a millisecond) and renders the output. SigV4 signatures are accepted without checking;
account and region are the emulator's.

Errors are answered as AWS does, so botocore raises ``ClientError`` with the AWS code: the
status of the :class:`EmulatorError`, a ``x-amzn-ErrorType: <Code>`` header (which botocore's
rest-json parser reads first) and a ``{"message": ..., "__type": <Code>}`` body.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext
from fleet_sim.emulator.control_plane.operations import HANDLERS
from fleet_sim.emulator.control_plane.service_model import IotApi, load_iot_api
from fleet_sim.emulator.control_plane.throttle import OperationThrottle
from fleet_sim.errors import (
    EmulatorError,
    FleetSimError,
    InvalidRequest,
    OperationNotSupported,
    Throttled,
)

logger = logging.getLogger(__name__)

#: Largest request body accepted (templates are ≤ 10 KiB, certificates a few KiB).
MAX_BODY_BYTES = 1024 * 1024

#: How long closing waits for requests still being answered.
SHUTDOWN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def error_reply(error: EmulatorError) -> Reply:
    """The AWS-shaped answer to ``error``."""
    body = {"message": error.message, "__type": error.aws_code}
    return Reply(
        error.http_status,
        {"Content-Type": "application/json", "x-amzn-ErrorType": error.aws_code},
        json.dumps(body).encode("utf-8"),
    )


class ControlPlaneServer:
    """AWS IoT's control-plane API over HTTP, answered from the emulator's registry.

    Args:
        context: what handlers work on (registry, issuing CA, endpoint, clock).
        host: address to listen on.
        port: TCP port (0 picks a free one).
        throttle: per-operation rate limits, or None for none.
        api: the service model (defaults to the installed botocore's).
        handlers: the operation table (defaults to every implemented operation).
    """

    def __init__(
        self,
        context: HandlerContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle: OperationThrottle | None = None,
        api: IotApi | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.context = context
        self.host = host
        self.port = port
        self.throttle = throttle
        self.api = api if api is not None else load_iot_api()
        self.handlers = HANDLERS if handlers is None else handlers
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        assert self._url is not None, "the control plane is not running"
        return self._url

    async def start(self) -> str:
        """Start listening; returns :attr:`url`."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}"
        logger.info("control plane listening on %s", self._url)
        return self._url

    async def close(self) -> None:
        """Stop listening and finish (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = {key: request.query.getall(key) for key in request.query}
        reply = self.dispatch(request.method, request.raw_path, query, request.headers, body)
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    def dispatch(
        self,
        method: str,
        raw_path: str,
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        """Answer one request (what the HTTP route calls; usable without a socket)."""
        request_id = str(uuid.uuid4())
        try:
            reply = self._answer(method, raw_path, query, headers, body)
        except EmulatorError as error:
            reply = error_reply(error)
        except FleetSimError as error:
            reply = error_reply(InvalidRequest(str(error)))
        except Exception:
            logger.exception("control plane: %s %s failed", method, raw_path)
            internal = EmulatorError("internal failure in the emulator's control plane")
            reply = error_reply(internal)
        headers_out = {**reply.headers, "x-amzn-RequestId": request_id}
        return Reply(reply.status, headers_out, reply.body)

    def _answer(
        self,
        method: str,
        raw_path: str,
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        matched = self.api.match(method, raw_path)
        if matched is None:
            raise OperationNotSupported(f"no AWS IoT operation matches {method} {raw_path}")
        operation, labels = matched
        handler = self.handlers.get(operation)
        if handler is None:
            raise OperationNotSupported(f"the emulator does not implement {operation}")
        if self.throttle is not None and not self.throttle.allow(
            operation, self.context.clock.now()
        ):
            raise Throttled(f"Rate exceeded for {operation}")
        params = self.api.parse_request(
            operation, labels=labels, query=query, headers=headers, body=body
        )
        logger.debug("control plane: %s %s", operation, sorted(params))
        result = handler(self.context, params)
        rendered = self.api.render_output(operation, result)
        return Reply(
            200, {"Content-Type": "application/json"}, json.dumps(rendered).encode("utf-8")
        )
