"""The emulator's control plane: AWS IoT's REST-JSON management API over HTTP.

An unmodified ``boto3.client("iot", endpoint_url=...)`` or ``aws iot ... --endpoint-url``
works against it. Routing, request parsing and output rendering are driven by botocore's
service model (:mod:`.service_model`); one small handler per operation (grouped by resource
in :mod:`.cas`, :mod:`.certificates`, :mod:`.things`, :mod:`.groups`, :mod:`.policies`,
:mod:`.principals`, :mod:`.templates`, :mod:`.register_thing`, :mod:`.misc`) calls the
registry, whose listeners carry every change to the data plane at once.
"""

from __future__ import annotations

from fleet_sim.emulator.control_plane.context import HandlerContext
from fleet_sim.emulator.control_plane.operations import HANDLERS
from fleet_sim.emulator.control_plane.server import ControlPlaneServer
from fleet_sim.emulator.control_plane.throttle import DEFAULT_TPS, OperationThrottle

__all__ = ["DEFAULT_TPS", "HANDLERS", "ControlPlaneServer", "HandlerContext", "OperationThrottle"]
