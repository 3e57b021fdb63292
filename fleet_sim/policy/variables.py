"""What the gateway knows about a connection, and how policy variables and keys resolve.

:class:`RequestContext` carries the facts (client id, source IP, attached thing, certificate
subject/issuer, connect attributes …). It resolves a *key* such as ``iot:ClientId`` or
``iot:Certificate.Subject.OrganizationalUnit.List`` to a tuple of values (for conditions) and a
*variable* such as ``${iot:Connection.Thing.ThingName}`` to one string (for substitution).

:class:`Template` is a policy string (a resource or a condition value) split into glob text,
literal text (the escapes ``${*}``, ``${?}``, ``${$}``) and variable references. Substituted
values are always literal: a client id of ``*`` never becomes a wildcard. Note the documented
pitfall that follows: ``+`` and ``#`` are literal in policies anyway, so a client id of ``+``
substituted into ``topicfilter/my/${iot:ClientId}/topic`` grants the filter ``my/+/topic``.

Rules (AWS IoT developer guide; IAM where IoT is silent):

* Key and variable names are case-insensitive (IAM), except the attribute name inside
  ``Attributes[...]``, which is case-sensitive like thing attribute names.
* A variable that does not resolve is **not substituted**: the literal ``${...}`` text stays
  and usually fails to match. Thing variables resolve only when ``thing`` is set and
  ``thing.is_attached``; ``IsAttached`` itself resolves whenever ``thing`` is set.
* Certificate values longer than 1024 characters or containing any of ``* $ + ? #`` are not
  substituted (documented for certificate variables only; other values are substituted as
  literal text). Multi-valued certificate attributes keep at most 5 values; ``.X`` is the first
  value, ``.X.1`` the second, ``.X.2`` the third …, and ``.X.List`` all of them (for
  ``ForAnyValue:``/``ForAllValues:`` conditions). The ``.N`` numbering follows the project
  reference (§6.3) and is **[uncertain]**.
* Multi-valued keys (``….List``, ``iot:ConnectAttributes``) are never substituted.
* ``iot:LastWillTopic`` resolves to the topic's ARN when ``region`` and ``account_id`` are
  known (AWS compares it with ``ArnEquals``), else to the bare topic.
* ``iot:Certificate.SerialNumber`` and ``iot:Certificate.Validity.NotBefore/NotAfter`` are
  provided from memory of the AWS docs **[verify]**; ``Locality`` is not an AWS variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from fleet_sim.policy.arns import topic_arn
from fleet_sim.policy.glob import GlobPart, GlobPattern, compile_glob_parts

__all__ = [
    "ALTERNATIVE_NAME_TYPES",
    "CERTIFICATE_ATTRIBUTES",
    "MAX_ARRAY_ITEMS",
    "MAX_VARIABLE_LENGTH",
    "RequestContext",
    "Template",
    "ThingInfo",
    "normalize_key",
    "parse_template",
]

#: Subject and issuer attribute names AWS defines policy variables for.
CERTIFICATE_ATTRIBUTES = (
    "CommonName",
    "Country",
    "DistinguishedNameQualifier",
    "GenerationQualifier",
    "GivenName",
    "Initials",
    "Organization",
    "OrganizationalUnit",
    "Pseudonym",
    "SerialNumber",
    "State",
    "Surname",
    "Title",
)
#: Subject/issuer alternative-name types AWS defines policy variables for.
ALTERNATIVE_NAME_TYPES = (
    "DNSName",
    "DirectoryName",
    "IPAddress",
    "RFC822Name",
    "UniformResourceIdentifier",
)
MAX_VARIABLE_LENGTH = 1024
MAX_ARRAY_ITEMS = 5
_UNSUBSTITUTABLE = frozenset("*$+?#")

Values = tuple[str, ...]


def normalize_key(key: str) -> str:
    """Fold a key's case, keeping the case of an ``[attribute]`` suffix."""
    head, bracket, rest = key.partition("[")
    return head.lower() + bracket + rest


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _freeze(
    what: str, mapping: Mapping[str, Sequence[str]], allowed: Sequence[str] | None
) -> Mapping[str, Values]:
    frozen: dict[str, Values] = {}
    for name, values in mapping.items():
        if allowed is not None and name not in allowed:
            raise ValueError(f"{what}: unknown name {name!r}; expected one of {list(allowed)}")
        frozen[name] = (values,) if isinstance(values, str) else tuple(values)
    return MappingProxyType(frozen)


@dataclass(frozen=True, slots=True)
class ThingInfo:
    """The thing named by the client id, as the registry knows it.

    Attributes:
        name: the thing name (equal to the MQTT client id).
        type_name: its thing type, if any.
        attributes: its attributes (names are case-sensitive).
        is_attached: whether the thing is attached to the connecting certificate; thing
            variables other than ``IsAttached`` resolve only when it is.
    """

    name: str
    type_name: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    is_attached: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the gateway knows about one connection; resolves policy keys and variables.

    Attributes:
        client_id: the MQTT client id.
        source_ip: the peer's IP address (``aws:SourceIp``).
        thing: the thing whose name is the client id, or None when there is no such thing.
        certificate_id: the client certificate's id (64 hex characters).
        subject: certificate subject attributes by AWS name (``CommonName`` …), each a tuple
            of values in certificate order.
        issuer: certificate issuer attributes, likewise.
        subject_alternative_names: SAN values by type (``DNSName``, ``IPAddress`` …).
        issuer_alternative_names: issuer alternative names by type.
        certificate_serial_number: the certificate's serial number as text.
        certificate_not_before: validity start, seconds since the epoch.
        certificate_not_after: validity end, seconds since the epoch.
        connect_attributes: ``PersistentConnect`` and/or ``LastWill``.
        last_will_topic: the CONNECT's will topic, if any.
        region: the region, to build ARN-valued keys (``iot:LastWillTopic``).
        account_id: the account id, likewise.
        now: wall-clock seconds since the epoch, for ``aws:CurrentTime``/``aws:EpochTime``.
        extra_keys: further condition keys and their values (they override computed ones).
    """

    client_id: str
    source_ip: str | None = None
    thing: ThingInfo | None = None
    certificate_id: str | None = None
    subject: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    issuer: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    subject_alternative_names: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    issuer_alternative_names: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    certificate_serial_number: str | None = None
    certificate_not_before: float | None = None
    certificate_not_after: float | None = None
    connect_attributes: tuple[str, ...] = ()
    last_will_topic: str | None = None
    region: str | None = None
    account_id: str | None = None
    now: float | None = None
    extra_keys: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    _values: dict[str, Values] = field(init=False, repr=False, compare=False, hash=False)
    _variables: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "subject", _freeze("subject", self.subject, CERTIFICATE_ATTRIBUTES))
        setattr_(self, "issuer", _freeze("issuer", self.issuer, CERTIFICATE_ATTRIBUTES))
        for name in ("subject_alternative_names", "issuer_alternative_names"):
            setattr_(self, name, _freeze(name, getattr(self, name), ALTERNATIVE_NAME_TYPES))
        setattr_(self, "extra_keys", _freeze("extra_keys", self.extra_keys, None))
        setattr_(self, "connect_attributes", tuple(self.connect_attributes))
        values, variables = self._resolve_all()
        setattr_(self, "_values", values)
        setattr_(self, "_variables", variables)

    def _resolve_all(self) -> tuple[dict[str, Values], dict[str, str]]:
        values: dict[str, Values] = {}
        variables: dict[str, str] = {}

        def put(key: str, vals: Values, *, certificate: bool = False, single: bool = True) -> None:
            if not vals:
                return
            values[key] = vals
            value = vals[0]
            if not single or len(value) > MAX_VARIABLE_LENGTH:
                return
            if certificate and not _UNSUBSTITUTABLE.isdisjoint(value):
                return
            variables[key] = value

        put("iot:clientid", (self.client_id,))
        if self.source_ip is not None:
            put("aws:sourceip", (self.source_ip,))
        if self.certificate_id is not None:
            put("iot:certificateid", (self.certificate_id,))
        thing = self.thing
        if thing is not None:
            put("iot:connection.thing.isattached", ("true" if thing.is_attached else "false",))
            if thing.is_attached:
                put("iot:connection.thing.thingname", (thing.name,))
                if thing.type_name is not None:
                    put("iot:connection.thing.thingtypename", (thing.type_name,))
                for name, value in thing.attributes.items():
                    put(f"iot:connection.thing.attributes[{name}]", (value,))
        groups: tuple[tuple[str, Mapping[str, Sequence[str]]], ...] = (
            ("iot:certificate.subject.", self.subject),
            ("iot:certificate.issuer.", self.issuer),
            ("iot:certificate.subject.alternativename.", self.subject_alternative_names),
            ("iot:certificate.issuer.alternativename.", self.issuer_alternative_names),
        )
        for prefix, mapping in groups:
            for name, all_values in mapping.items():
                vals = tuple(all_values)[:MAX_ARRAY_ITEMS]
                base = prefix + name.lower()
                put(base, vals[:1], certificate=True)
                for index in range(1, len(vals)):
                    put(f"{base}.{index}", (vals[index],), certificate=True)
                put(f"{base}.list", vals, certificate=True, single=False)
        if self.certificate_serial_number is not None:
            put("iot:certificate.serialnumber", (self.certificate_serial_number,), certificate=True)
        if self.certificate_not_before is not None:
            put("iot:certificate.validity.notbefore", (_iso(self.certificate_not_before),))
        if self.certificate_not_after is not None:
            put("iot:certificate.validity.notafter", (_iso(self.certificate_not_after),))
        put("iot:connectattributes", self.connect_attributes, single=False)
        if self.last_will_topic is not None:
            if self.region is not None and self.account_id is not None:
                will = topic_arn(self.region, self.account_id, self.last_will_topic)
            else:
                will = self.last_will_topic
            put("iot:lastwilltopic", (will,))
        if self.now is not None:
            put("aws:currenttime", (_iso(self.now),))
            put("aws:epochtime", (str(int(self.now)),))
        for key, extra in self.extra_keys.items():
            values.pop(normalize_key(key), None)
            variables.pop(normalize_key(key), None)
            put(normalize_key(key), tuple(extra))
        return values, variables

    def key_values(self, key: str) -> Values | None:
        """The values of condition key ``key`` (any case), or None when it is absent."""
        return self._values.get(normalize_key(key))

    def normalized_key_values(self, normalized_key: str) -> Values | None:
        """Like :meth:`key_values` for a key already passed through :func:`normalize_key`."""
        return self._values.get(normalized_key)

    def variable(self, name: str) -> str | None:
        """The substitution for ``${name}``, or None when it must stay literal."""
        return self._variables.get(normalize_key(name))

    def normalized_variable(self, normalized_name: str) -> str | None:
        """Like :meth:`variable` for a name already passed through :func:`normalize_key`."""
        return self._variables.get(normalized_name)


# --------------------------------------------------------------------------- templates

_GLOB = 0
_LITERAL = 1
_VARIABLE = 2
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = frozenset({"*", "?", "$"})


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string split into glob text, literal text and variable references.

    Build with :func:`parse_template`. Attributes:
        source: the string as written in the policy.
        parts: ``(kind, text, raw)`` triples; kind 0 is glob text, 1 literal text, 2 a
            variable whose normalised name is ``text`` and whose written form is ``raw``.
    """

    source: str
    parts: tuple[tuple[int, str, str], ...]
    _static: GlobPattern | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.has_variables:
            globs = tuple((kind == _LITERAL, text) for kind, text, _ in self.parts)
            object.__setattr__(self, "_static", compile_glob_parts(globs))

    @property
    def has_variables(self) -> bool:
        """Whether any part is a variable reference."""
        return any(kind == _VARIABLE for kind, _, _ in self.parts)

    def glob(self, context: RequestContext) -> GlobPattern:
        """The glob after substitution; substituted values are literal text."""
        if self._static is not None:
            return self._static
        globs: list[GlobPart] = []
        for kind, text, raw in self.parts:
            if kind == _VARIABLE:
                value = context.normalized_variable(text)
                globs.append((True, raw if value is None else value))
            else:
                globs.append((kind == _LITERAL, text))
        return compile_glob_parts(tuple(globs))

    def text(self, context: RequestContext) -> str:
        """The string after substitution, with escapes resolved (for exact comparisons)."""
        out: list[str] = []
        for kind, text, raw in self.parts:
            if kind == _VARIABLE:
                value = context.normalized_variable(text)
                out.append(raw if value is None else value)
            else:
                out.append(text)
        return "".join(out)


def parse_template(source: str, *, variables: bool = True) -> Template:
    """Split ``source`` into parts.

    Args:
        source: a resource pattern or condition value as written in the policy.
        variables: whether ``${...}`` is special (policy version 2012-10-17). When False the
            whole string is glob text, as IAM treats variables in 2008-10-17 policies.
    """
    if not variables or "${" not in source:
        return Template(source, ((_GLOB, source, source),))
    parts: list[tuple[int, str, str]] = []
    position = 0
    for match in _REFERENCE.finditer(source):
        if match.start() > position:
            text = source[position : match.start()]
            parts.append((_GLOB, text, text))
        inner = match.group(1)
        if inner in _ESCAPES:
            parts.append((_LITERAL, inner, match.group(0)))
        else:
            parts.append((_VARIABLE, normalize_key(inner), match.group(0)))
        position = match.end()
    if position < len(source):
        parts.append((_GLOB, source[position:], source[position:]))
    return Template(source, tuple(parts))
