"""The one exception hierarchy of fleetsim.

Every error fleetsim raises derives from :class:`FleetSimError`. Each class carries a stable,
machine-readable ``failure`` name (``"tls_handshake_failed"``, ``"connack_refused:135"`` …) so
reports and metrics count failures by kind without ever parsing messages.

Foreign exceptions (``OSError``, ``ssl.SSLError``, ``cryptography`` errors, YAML errors) are
translated into these classes at the edge of the I/O ring; the pure core raises only these.

Peer misbehaviour is *data* in the sans-IO core (an event, a decode result), and becomes an
exception only where a caller asked for something that then failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class FleetSimError(Exception):
    """Root of every error fleetsim raises."""

    failure: str = "error"


# --------------------------------------------------------------------------- input errors


class ScenarioError(FleetSimError):
    """A scenario file or model is invalid.

    Attributes:
        path: the YAML path of the offending node, e.g. ``fleet[1].connect.retry.jitter``.
        source: the file and line, e.g. ``scenario.yaml:23``, when known.
    """

    failure = "invalid_scenario"

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        self.message = message
        self.path = path
        self.source = source
        text = f"{path}: {message}" if path else message
        if source:
            text = f"{text} ({source})"
        super().__init__(text)


class ScenarioValidationError(ScenarioError):
    """A scenario has one or more problems; nothing runs until all are fixed.

    The message lists every problem, one per line, each with its YAML path and its
    ``file:line``. With a single problem, ``path`` and ``source`` are that problem's.

    Attributes:
        problems: each problem as a :class:`ScenarioError`, in file order.
    """

    def __init__(self, problems: Sequence[ScenarioError], *, file: str = "") -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            only = self.problems[0]
            super().__init__(only.message, path=only.path, source=only.source)
            return
        where = f"{file}: " if file else ""
        lines = [f"{where}{len(self.problems)} problems"]
        lines.extend(f"  {problem}" for problem in self.problems)
        super().__init__("\n".join(lines), source="")


class CertificateError(FleetSimError):
    """A certificate, key, CSR or chain is unusable.

    The message names the file (when there is one) and the problem.
    """

    failure = "invalid_certificate"

    def __init__(self, message: str, *, file: Path | str | None = None) -> None:
        self.message = message
        self.file = Path(file) if file is not None else None
        super().__init__(f"{self.file}: {message}" if self.file is not None else message)


class KeyExistsError(CertificateError):
    """Refused to overwrite an existing private key (pass ``force`` to replace it)."""

    failure = "key_exists"


# --------------------------------------------------------------------------- protocol errors


class ProtocolError(FleetSimError):
    """An MQTT protocol rule was broken (abstract: see the two subclasses)."""

    failure = "protocol_error"


class LocalProtocolError(ProtocolError):
    """We attempted something MQTT forbids (a bug or a misuse of the API)."""

    failure = "local_protocol_error"


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or illegal.

    Attributes:
        reason_code: the MQTT 5 reason code a server should send back before closing
            (0x81 Malformed Packet unless a more precise one applies).
    """

    failure = "remote_protocol_error"

    def __init__(self, message: str, *, reason_code: int = 0x81) -> None:
        self.reason_code = reason_code
        super().__init__(message)


# --------------------------------------------------------------------------- connection errors


class ConnectionFailed(FleetSimError):
    """A connect attempt did not reach a successful CONNACK.

    Attributes:
        phase: where it failed: ``dns``, ``tcp``, ``tls`` or ``mqtt``.
    """

    failure = "connect_failed"

    def __init__(self, message: str, *, phase: str, failure: str | None = None) -> None:
        self.phase = phase
        if failure is not None:
            self.failure = failure
        super().__init__(message)


class ConnectTimeout(ConnectionFailed):
    """No answer within the connect timeout."""

    failure = "connect_timeout"


class TlsHandshakeFailed(ConnectionFailed):
    """The TLS handshake failed (server untrusted, our certificate rejected, …)."""

    failure = "tls_handshake_failed"


class ConnectRefused(ConnectionFailed):
    """The server answered CONNECT with a non-success CONNACK."""

    #: CONNACK codes that mean "over a rate quota" (AWS: 1 CONNECT/s per client id, account
    #: CONNECT/s): counted as ``throttled`` rather than as a refusal.
    THROTTLE_CODES = frozenset({0x97, 0x9F})

    def __init__(self, message: str, *, reason_code: int) -> None:
        self.reason_code = reason_code
        throttled = reason_code in self.THROTTLE_CODES
        self.failure = "throttled" if throttled else f"connack_refused:{reason_code}"
        super().__init__(message, phase="mqtt")


class ConnectionLost(FleetSimError):
    """An established connection ended without our asking (server DISCONNECT or EOF)."""

    failure = "connection_lost"

    def __init__(
        self, message: str, *, reason_code: int | None = None, failure: str | None = None
    ) -> None:
        self.reason_code = reason_code
        if failure is not None:
            self.failure = failure
        super().__init__(message)


class OperationRejected(FleetSimError):
    """The server refused an operation (negative SUBACK or PUBACK)."""

    def __init__(self, message: str, *, operation: str, reason_code: int) -> None:
        self.operation = operation
        self.reason_code = reason_code
        self.failure = f"{operation}_failure:{reason_code}"
        super().__init__(message)


class OperationTimeout(FleetSimError):
    """An operation got no answer in time."""

    def __init__(self, message: str, *, operation: str) -> None:
        self.operation = operation
        self.failure = f"{operation}_timeout"
        super().__init__(message)


# --------------------------------------------------------------------------- emulator errors


class EmulatorError(FleetSimError):
    """An error of the local AWS IoT emulator, shaped like AWS's API errors.

    Attributes:
        aws_code: the AWS error code, e.g. ``ResourceNotFoundException``.
        http_status: the HTTP status AWS answers with.
    """

    failure = "emulator_error"
    aws_code = "InternalFailureException"
    http_status = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ResourceNotFound(EmulatorError):
    """The named resource does not exist."""

    aws_code = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExists(EmulatorError):
    """A resource with that name or id exists already."""

    aws_code = "ResourceAlreadyExistsException"
    http_status = 409


class InvalidRequest(EmulatorError):
    """The request is malformed or names impossible values."""

    aws_code = "InvalidRequestException"
    http_status = 400


class MalformedPolicy(EmulatorError):
    """An AWS IoT policy document is not valid JSON or breaks the policy grammar.

    The message names the policy (when named), the statement (1-based number and Sid) and the
    problem, e.g. ``policy 'dev': statement 2 (Sid 'pub'): Effect must be 'Allow' or 'Deny',
    got 'allow'``.

    Attributes:
        problem: the problem alone, without the policy and statement prefix.
        policy_name: the policy's name, when known.
        statement_number: the 1-based number of the offending statement, when there is one.
        sid: the offending statement's Sid, when it has one.
    """

    failure = "malformed_policy"
    aws_code = "MalformedPolicyException"
    http_status = 400

    def __init__(
        self,
        problem: str,
        *,
        policy_name: str | None = None,
        statement_number: int | None = None,
        sid: str | None = None,
    ) -> None:
        self.problem = problem
        self.policy_name = policy_name
        self.statement_number = statement_number
        self.sid = sid
        where: list[str] = []
        if policy_name is not None:
            where.append(f"policy {policy_name!r}")
        if statement_number is not None:
            where.append(
                f"statement {statement_number}"
                + (f" (Sid {sid!r})" if sid is not None else "")
            )
        super().__init__(": ".join([*where, problem]))


# --------------------------------------------------------------------------- registry errors


class CertificateState(EmulatorError):
    """The certificate's (or CA's) status forbids the operation (e.g. deleting an ACTIVE one)."""

    aws_code = "CertificateStateException"
    http_status = 406


class CertificateValidation(EmulatorError):
    """The certificate is invalid: unparsable, not signed by its CA, or its CA is unknown."""

    aws_code = "CertificateValidationException"
    http_status = 400


class CertificateConflict(EmulatorError):
    """Several registered CAs with the device certificate's issuer subject could have signed it."""

    aws_code = "CertificateConflictException"
    http_status = 409


class RegistrationCodeValidation(EmulatorError):
    """A CA verification certificate's CN is not the account's registration code."""

    aws_code = "RegistrationCodeValidationException"
    http_status = 400


class DeleteConflict(EmulatorError):
    """The resource is still attached to (or referenced by) another one."""

    aws_code = "DeleteConflictException"
    http_status = 409


class VersionConflict(EmulatorError):
    """An ``expectedVersion`` does not match the resource's current version."""

    aws_code = "VersionConflictException"
    http_status = 409


class VersionsLimitExceeded(EmulatorError):
    """A policy or provisioning template already has its maximum of 5 versions."""

    aws_code = "VersionsLimitExceededException"
    http_status = 409


class LimitExceeded(EmulatorError):
    """A quota is exhausted (10 policies per target, 10 CAs with one subject …)."""

    aws_code = "LimitExceededException"
    http_status = 410


class ResourceRegistrationFailure(EmulatorError):
    """Provisioning (RegisterThing, JITP) could not create or bind the template's resources."""

    aws_code = "ResourceRegistrationFailureException"
    http_status = 400


class ServiceUnavailable(EmulatorError):
    """The registry's database stayed locked by another process past the busy timeout."""

    aws_code = "ServiceUnavailableException"
    http_status = 503


# --------------------------------------------------------------------------- report errors


class RunFileError(FleetSimError):
    """A saved run (``fleetsim run``'s JSON report) cannot be read or is not a valid run.

    The message names the file (when there is one), the JSON location and the problem.
    """

    failure = "invalid_run_file"

    def __init__(self, message: str, *, file: Path | str | None = None) -> None:
        self.message = message
        self.file = Path(file) if file is not None else None
        super().__init__(f"{self.file}: {message}" if self.file is not None else message)


# --------------------------------------------------------------------------- control-plane errors


class Throttled(EmulatorError):
    """A control-plane request exceeded its operation's transactions-per-second quota."""

    aws_code = "ThrottlingException"
    http_status = 400


class OperationNotSupported(EmulatorError):
    """The request names an AWS IoT API operation the emulator does not implement, or no
    operation at all."""

    aws_code = "NotImplementedException"
    http_status = 501


# --------------------------------------------------------------------------- provisioning templates


class TemplateError(InvalidRequest):
    """A provisioning template is invalid, or cannot be rendered with the given parameters.

    An :class:`InvalidRequest` (``InvalidRequestException``, 400), so the control plane answers
    it as AWS does; the pure template engine (:mod:`fleet_sim.provisioning`) raises it too.
    The message names the template (when named), the location and the problem, e.g.
    ``template 'JITP': Resources.thing.Properties.ThingName: Ref to undeclared parameter
    'Serial'``.

    Attributes:
        problem: the problem alone, without the template and location prefix.
        template_name: the template's name, when known.
        path: where in the template, e.g. ``Resources.thing.Properties.ThingGroups[1]``.
        resource: the logical name of the resource concerned, when there is one.
        property_name: the resource property concerned, when there is one.
    """

    failure = "invalid_template"

    def __init__(
        self,
        problem: str,
        *,
        template_name: str | None = None,
        path: str = "",
        resource: str | None = None,
        property_name: str | None = None,
    ) -> None:
        self.problem = problem
        self.template_name = template_name
        self.path = path
        self.resource = resource
        self.property_name = property_name
        prefix = "template" if template_name is None else f"template {template_name!r}"
        where = f"{path}: " if path else ""
        super().__init__(f"{prefix}: {where}{problem}")


class MissingTemplateParameter(TemplateError):
    """A template parameter has no value and no ``Default`` (how JITP fails for a certificate
    without, e.g., a Country).

    Attributes:
        parameter: the parameter's name.
    """

    failure = "missing_template_parameter"

    def __init__(self, parameter: str, *, template_name: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(
            f"no value for parameter {parameter!r} and no Default",
            template_name=template_name,
            path=f"Parameters.{parameter}",
        )


class ResourceConflicts(EmulatorError):
    """A provisioning template's ``OverrideSettings`` say ``FAIL`` and an existing resource
    differs from the template (AWS: "the request fails with a ResourceConflictsException")."""

    failure = "resource_conflicts"
    aws_code = "ResourceConflictsException"
    http_status = 409


# --------------------------------------------------------------------------- fleet provisioning


class FleetProvisioningRejected(EmulatorError):
    """A fleet-provisioning MQTT request is refused; the emulator answers it on the request's
    ``…/rejected`` topic as ``{"statusCode", "errorCode", "errorMessage"}``.

    Attributes:
        status_code: the ``statusCode`` (400, 403, 404, 429 or 500).
        error_code: the ``errorCode``, e.g. ``InvalidCertificateOwnershipToken``.
    """

    failure = "fleet_provisioning_rejected"

    def __init__(self, message: str, *, status_code: int, error_code: str) -> None:
        self.status_code = status_code
        self.error_code = error_code
        super().__init__(message)
