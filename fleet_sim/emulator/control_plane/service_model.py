"""AWS IoT's REST-JSON wire protocol, driven by botocore's own service model.

botocore ships the machine-readable model that every AWS SDK is generated from
(``botocore/data/iot/<version>/service-2.json``). This module loads it once and derives:

* a **route table**: HTTP method + ``requestUri`` template (``/things/{thingName}``) →
  operation name, matched segment by segment on the *raw* (still percent-encoded) path, so a
  label holding an ARN with ``/`` in it (botocore encodes it as ``%2F``) stays one segment;
  literal segments win over labels (``/thing-groups/addThingToThingGroup`` before
  ``/thing-groups/{thingGroupName}``); a greedy label (``{arn+}``) takes the rest of the path;
* a **request parser**: each input member comes from its ``location`` (``uri``,
  ``querystring``, ``header``, or the JSON body) under its ``locationName``, and is converted
  to the Python value of its shape type; the result is keyed by the *member* names;
* an **output renderer**: a handler's dict (member names, epoch-second floats for timestamps)
  becomes the JSON body under each member's wire name, with ``None`` values dropped and
  unknown keys refused (a handler returning a key AWS does not send is a bug).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from fleet_sim.errors import InvalidRequest

#: The service name botocore files the AWS IoT control plane under.
SERVICE_NAME = "iot"


@dataclass(frozen=True, slots=True)
class Route:
    """One operation's method and URI template, split into path segments.

    Attributes:
        operation: the operation name, e.g. ``CreateThing``.
        method: the HTTP method, upper case.
        segments: each path segment: literal text, or None for a label.
        labels: the label name of each None segment, in order.
        greedy: whether the last label is greedy (``{arn+}``) and takes the rest of the path.
    """

    operation: str
    method: str
    segments: tuple[str | None, ...]
    labels: tuple[str, ...]
    greedy: bool

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sort key: literal segments (0) before labels (1), left to right; greedy last."""
        return (*(0 if s is not None else 1 for s in self.segments), int(self.greedy))

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The decoded label values when ``parts`` (raw path segments) fit this route."""
        count = len(self.segments)
        if len(parts) < count or (len(parts) > count and not self.greedy):
            return None
        values: dict[str, str] = {}
        label_index = 0
        for index, segment in enumerate(self.segments):
            if segment is not None:
                if parts[index] != segment:
                    return None
                continue
            name = self.labels[label_index]
            label_index += 1
            last = index == count - 1
            raw = "/".join(parts[index:]) if (last and self.greedy) else parts[index]
            if not raw:
                return None
            values[name] = unquote(raw)
        return values


def parse_route(operation: str, method: str, request_uri: str) -> Route:
    """The :class:`Route` for one operation's ``http`` entry of the model."""
    path = request_uri.split("?", 1)[0]
    segments: list[str | None] = []
    labels: list[str] = []
    greedy = False
    for part in path.strip("/").split("/") if path.strip("/") else []:
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.endswith("+"):
                greedy = True
                name = name[:-1]
            segments.append(None)
            labels.append(name)
        else:
            segments.append(part)
    return Route(operation, method.upper(), tuple(segments), tuple(labels), greedy)


class IotApi:
    """The AWS IoT control-plane model: routes, request parsing and output rendering."""

    def __init__(self, model: ServiceModel) -> None:
        """Index ``model`` (use :func:`load_iot_api` for the shared, cached instance)."""
        self.model = model
        routes: dict[str, list[Route]] = {}
        for name in model.operation_names:
            http = model.operation_model(name).http
            route = parse_route(name, http["method"], http["requestUri"])
            routes.setdefault(route.method, []).append(route)
        self._routes = {
            method: tuple(sorted(found, key=lambda r: r.specificity))
            for method, found in routes.items()
        }

    @property
    def operation_names(self) -> list[str]:
        """Every operation of the model."""
        return list(self.model.operation_names)

    def operation(self, name: str) -> OperationModel:
        """The botocore operation model called ``name``."""
        return self.model.operation_model(name)

    def match(self, method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
        """The operation and its decoded URI labels for a request, or None."""
        path = raw_path.split("?", 1)[0].strip("/")
        parts = path.split("/") if path else []
        for route in self._routes.get(method.upper(), ()):
            labels = route.match(parts)
            if labels is not None:
                return route.operation, labels
        return None

    # ------------------------------------------------------------------ requests

    def parse_request(
        self,
        operation: str,
        *,
        labels: Mapping[str, str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        """The operation's input as ``{member name: Python value}``.

        Raises:
            InvalidRequest: the body is not a JSON object, a value does not fit its shape, or
                a required member is missing.
        """
        shape = self.operation(operation).input_shape
        if shape is None:
            return {}
        document = _json_body(body)
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = _from_text(member, labels[wire], name)
            elif location == "querystring":
                values = query.get(wire)
                if values:
                    if isinstance(member, ListShape):
                        params[name] = [_from_text(member.member, v, name) for v in values]
                    else:
                        params[name] = _from_text(member, values[-1], name)
            elif location == "header":
                value = _header(headers, wire)
                if value is not None:
                    params[name] = _from_text(member, value, name)
            elif location is None and wire in document and document[wire] is not None:
                params[name] = _from_json(member, document[wire], name)
        missing = [name for name in shape.required_members if name not in params]
        if missing:
            raise InvalidRequest(f"{operation}: missing required parameter(s) {', '.join(missing)}")
        return params

    # ------------------------------------------------------------------ responses

    def render_output(self, operation: str, result: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body for a handler's ``result`` (keyed by member names).

        Raises:
            ValueError: ``result`` has a key the output shape does not have.
        """
        shape = self.operation(operation).output_shape
        if shape is None:
            if result:
                raise ValueError(f"{operation} has no output, got {sorted(result)}")
            return {}
        rendered = _render(shape, result, operation)
        assert isinstance(rendered, dict)
        return rendered

    def error_status(self, code: str) -> int | None:
        """The HTTP status the model gives error ``code``, if it knows the error."""
        try:
            shape = self.model.shape_for(code)
        except Exception:  # botocore raises NoShapeFoundError
            return None
        status = shape.metadata.get("error", {}).get("httpStatusCode")
        return int(status) if status is not None else None


@functools.cache
def load_iot_api() -> IotApi:
    """The AWS IoT model of the installed botocore, loaded once per process."""
    model = botocore.session.get_session().get_service_model(SERVICE_NAME)
    return IotApi(model)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return document


def _from_text(shape: Shape, text: str, what: str) -> Any:
    kind = shape.type_name
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise InvalidRequest(f"{what} must be true or false, got {text!r}")
        return lowered == "true"
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise InvalidRequest(f"{what} must be an integer, got {text!r}") from None
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise InvalidRequest(f"{what} must be a number, got {text!r}") from None
    if kind == "timestamp":
        try:
            return float(text)
        except ValueError:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return text


def _from_json(shape: Shape, value: Any, what: str) -> Any:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise InvalidRequest(f"{what} must be an object")
        parsed: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if value.get(wire) is not None:
                parsed[name] = _from_json(member, value[wire], f"{what}.{name}")
        return parsed
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise InvalidRequest(f"{what} must be a list")
        return [_from_json(shape.member, item, f"{what}[]") for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise InvalidRequest(f"{what} must be an object")
        return {str(k): _from_json(shape.value, v, f"{what}.{k}") for k, v in value.items()}
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "integer": int,
        "long": int,
        "float": (int, float),
        "double": (int, float),
        "timestamp": (int, float, str),
    }
    wanted = expected.get(kind)
    if wanted is not None and (
        not isinstance(value, wanted) or (kind != "boolean" and isinstance(value, bool))
    ):
        raise InvalidRequest(f"{what} must be of type {kind}, got {type(value).__name__}")
    return value


def _render(shape: Shape, value: Any, where: str) -> Any:
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping for {shape.name}")
        unknown = sorted(set(value) - set(shape.members))
        if unknown:
            raise ValueError(f"{where}: {shape.name} has no member(s) {unknown}")
        rendered: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue
            member = shape.members[name]
            wire = str(member.serialization.get("name", name))
            rendered[wire] = _render(member, item, f"{where}.{name}")
        return rendered
    if isinstance(shape, ListShape):
        return [_render(shape.member, item, f"{where}[]") for item in value]
    if isinstance(shape, MapShape):
        return {str(k): _render(shape.value, v, f"{where}.{k}") for k, v in value.items()}
    if shape.type_name == "timestamp":
        return _epoch(value)
    return value


def _epoch(value: Any) -> float | int:
    if isinstance(value, datetime):
        value = value.timestamp()
    number = float(value)
    # whole seconds go out as integers, the rest with millisecond precision (as AWS does)
    return int(number) if number.is_integer() else round(number, 3)
