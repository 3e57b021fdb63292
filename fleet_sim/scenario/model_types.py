"""Field types of the scenario models: templates, thresholds, input files, QoS.

Each is an ``Annotated`` type whose validator turns what YAML holds (a string, a number) into
the value the simulator uses (a compiled :class:`~fleet_sim.scenario.templates.Template`, a
parsed :class:`~fleet_sim.scenario.thresholds.Threshold` …) once, at load time, and whose
serializer turns it back into the text, so ``model_dump(mode="json")`` round-trips.

Topic and filter templates are also checked against the MQTT and AWS IoT rules on a sample
rendering (index 0, short names), which catches wildcards in topic names, malformed filters
and too many levels before anything connects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)

from fleet_sim.mqtt.topics import aws_topic_limit_error, topic_filter_error, topic_name_error
from fleet_sim.scenario.seeding import derive_rng
from fleet_sim.scenario.templates import (
    CLIENT_ID_FIELDS,
    FILTER_FIELDS,
    MESSAGE_FIELDS,
    THING_NAME_FIELDS,
    Template,
    compile_template,
)
from fleet_sim.scenario.thresholds import THRESHOLD_PATTERN, Threshold, parse_threshold

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SAMPLE_VALUES",
    "ClientIdTemplate",
    "FilterTemplate",
    "InputDir",
    "InputFile",
    "ParameterTemplate",
    "PayloadTemplate",
    "QoS",
    "ReportPathTemplate",
    "ThingNameTemplate",
    "ThresholdField",
    "TopicTemplate",
    "frozen_mapping",
    "render_sample",
]

#: AWS IoT's limit on a PUBLISH payload.
MAX_PAYLOAD_BYTES = 128 * 1024

#: The values a template is checked with at load time.
SAMPLE_VALUES: Mapping[str, object] = MappingProxyType(
    {
        "index": 0,
        "group": "group",
        "thing_name": "thing",
        "client_id": "client",
        "seq": 0,
        "timestamp_ms": 0,
    }
)

REPORT_VALUES: Mapping[str, type] = MappingProxyType({"name": str, "timestamp": str})


def render_sample(template: Template, values: Mapping[str, object] = SAMPLE_VALUES) -> str:
    """Render ``template`` with sample values and a fixed generator (for load-time checks)."""
    return template.render(values, derive_rng(0, "sample"))


def _template_validator(
    what: str,
    allowed: tuple[str, ...],
    *,
    generators: bool,
    check: Callable[[str], str | None] | None = None,
    values: Mapping[str, type] | None = None,
) -> Callable[[object], Template]:
    def validate(value: object) -> Template:
        if isinstance(value, Template):
            value = value.source
        if not isinstance(value, str):
            raise ValueError(f"must be a string (a {what} template); got {value!r}")
        if values is None:
            template = compile_template(value, allowed=allowed, generators=generators, what=what)
        else:
            template = compile_template(
                value, allowed=allowed, generators=generators, what=what, values=values
            )
        if check is not None:
            problem = check(render_sample(template))
            if problem is not None:
                raise ValueError(problem)
        return template

    return validate


def _topic_problem(topic: str) -> str | None:
    return topic_name_error(topic) or aws_topic_limit_error(topic)


def _filter_problem(topic_filter: str) -> str | None:
    return topic_filter_error(topic_filter) or aws_topic_limit_error(topic_filter)


def _payload_problem(payload: str) -> str | None:
    size = len(payload.encode("utf-8", "surrogatepass"))
    if size > MAX_PAYLOAD_BYTES:
        return f"payload is {size} bytes, more than AWS IoT's {MAX_PAYLOAD_BYTES}"
    return None


def _schema(description: str, examples: list[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description, "examples": examples})


_MESSAGE_HELP = (
    "str.format template: {index}, {group}, {thing_name}, {client_id}, {seq}, "
    "{timestamp_ms}, {uuid}, {random.uniform(a, b)}, {random.gauss(mu, sigma)}, "
    "{random.randint(a, b)}, {random.choice(x, y)}, {random.hex(n)}; {{ and }} are braces."
)

TopicTemplate = Annotated[
    Template,
    PlainValidator(
        _template_validator("topic", MESSAGE_FIELDS, generators=True, check=_topic_problem)
    ),
    PlainSerializer(str),
    _schema("Topic name " + _MESSAGE_HELP, ["dt/{group}/{thing_name}/telemetry"]),
]
"""A topic name template (message values and generated fields)."""

PayloadTemplate = Annotated[
    Template,
    PlainValidator(
        _template_validator("payload", MESSAGE_FIELDS, generators=True, check=_payload_problem)
    ),
    PlainSerializer(str),
    _schema("Payload " + _MESSAGE_HELP, ['{{"seq": {seq}, "t": {random.uniform(18, 25):.1f}}}']),
]
"""A payload template (message values and generated fields)."""

FilterTemplate = Annotated[
    Template,
    PlainValidator(
        _template_validator("topic filter", FILTER_FIELDS, generators=False, check=_filter_problem)
    ),
    PlainSerializer(str),
    _schema(
        "Topic filter template: {index}, {group}, {thing_name}, {client_id}; + and # wildcards.",
        ["cmd/{thing_name}/#"],
    ),
]
"""A subscription filter template (device values only)."""

ParameterTemplate = Annotated[
    Template,
    PlainValidator(_template_validator("parameter", FILTER_FIELDS, generators=False)),
    PlainSerializer(str),
    _schema("Template over {index}, {group}, {thing_name}, {client_id}.", ["{thing_name}"]),
]
"""A per-device string such as a provisioning parameter (device values only)."""

ThingNameTemplate = Annotated[
    Template,
    PlainValidator(_template_validator("thing name", THING_NAME_FIELDS, generators=False)),
    PlainSerializer(str),
    _schema("Thing name template over {index} and {group}.", ["sensor-{index:05d}"]),
]
"""A thing name template (``index`` and ``group`` only)."""

ClientIdTemplate = Annotated[
    Template,
    PlainValidator(_template_validator("client id", CLIENT_ID_FIELDS, generators=False)),
    PlainSerializer(str),
    _schema("Client id template over {index}, {group} and {thing_name}.", ["{thing_name}"]),
]
"""A client id template (``index``, ``group`` and ``thing_name``)."""

ReportPathTemplate = Annotated[
    Template,
    PlainValidator(
        _template_validator(
            "report path", ("name", "timestamp"), generators=False, values=REPORT_VALUES
        )
    ),
    PlainSerializer(str),
    _schema("File path; {name} and {timestamp} are replaced.", ["reports/{name}.json"]),
]
"""A report file path with ``{name}`` and ``{timestamp}`` placeholders."""


def _threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    return parse_threshold(value)


ThresholdField = Annotated[
    Threshold,
    PlainValidator(_threshold),
    PlainSerializer(lambda threshold: threshold.expression),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": THRESHOLD_PATTERN,
            "description": "'<metric>[.<stat>] <op> <value>', e.g. 'connect.p99 < 2s'.",
            "examples": ["connect.p99 < 2s", "failure_ratio < 0.1%", "connected_ratio >= 99%"],
        }
    ),
]
"""A threshold expression, parsed at load time."""


def _qos(value: int) -> int:
    if value not in (0, 1):
        raise ValueError(f"must be 0 or 1 (AWS IoT has no QoS 2); got {value}")
    return value


QoS = Annotated[int, AfterValidator(_qos), WithJsonSchema({"enum": [0, 1]})]
"""An MQTT QoS AWS IoT supports: 0 or 1."""


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    return info.context if isinstance(info.context, Mapping) else {}


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = _context(info).get("base_dir")
    if base is not None and not path.is_absolute():
        return Path(base) / path
    return path


def _input_file(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if _context(info).get("check_files") and not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _input_dir(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if _context(info).get("check_files") and not path.is_dir():
        raise ValueError(f"no such directory: {path}")
    return path


InputFile = Annotated[Path, AfterValidator(_input_file)]
"""A file fleetsim reads; relative paths are relative to the scenario file."""

InputDir = Annotated[Path, AfterValidator(_input_dir)]
"""A directory fleetsim reads; relative paths are relative to the scenario file."""


def frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """An AfterValidator that freezes a validated dict."""
    return MappingProxyType(dict(value))
