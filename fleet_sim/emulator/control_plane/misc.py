"""Control-plane handlers that read the emulator rather than one resource: DescribeEndpoint
(the emulator's own data endpoint) and TestAuthorization (answered by the policy engine the
broker uses, with the same request context a connecting device gets).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet_sim.emulator.broker.access import Principal
from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.gateway.registry_access import RegistryAccess
from fleet_sim.emulator.registry.models import Policy
from fleet_sim.errors import InvalidRequest, ResourceNotFound
from fleet_sim.policy import (
    ConnectionAuthorizer,
    Decision,
    PolicyDocument,
    RequestContext,
    evaluate,
    parse_policy,
)

#: Endpoint types the emulator answers with its data endpoint (``iot:Data`` is the default).
DATA_ENDPOINT_TYPES = frozenset({"iot:Data", "iot:Data-ATS"})

#: TestAuthorization's action types and the policy actions they stand for.
ACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "PUBLISH": "iot:Publish",
        "SUBSCRIBE": "iot:Subscribe",
        "RECEIVE": "iot:Receive",
        "CONNECT": "iot:Connect",
    }
)


def describe_endpoint(ctx: HandlerContext, params: Params) -> Result:
    """DescribeEndpoint: the data endpoint name (the port is in ``endpoint.json``)."""
    kind = params.get("endpointType") or "iot:Data"
    if kind not in DATA_ENDPOINT_TYPES:
        raise InvalidRequest(f"endpoint type {kind!r} is not emulated")
    return {"endpointAddress": ctx.endpoint}


def _all_attached(ctx: HandlerContext, target: str) -> list[Policy]:
    found: list[Policy] = []
    marker: str | None = None
    while True:
        page = ctx.registry.attachments.list_attached_policies(target, marker=marker)
        found.extend(page.items)
        marker = page.next_marker
        if marker is None:
            return found


def _principal_policies(
    ctx: HandlerContext, principal: str | None, client_id: str
) -> tuple[list[tuple[str, str]], RequestContext]:
    """The principal's policies and the request context a connection of it would get."""
    now = ctx.now()
    plain = RequestContext(
        client_id=client_id, region=ctx.region, account_id=ctx.account_id, now=now
    )
    if principal is None:
        return [], plain
    registry = ctx.registry
    cert_id = _certificate_id(ctx, principal)
    if cert_id is None:
        return [(p.name, p.document) for p in _all_attached(ctx, principal)], plain
    record = registry.certificate_by_id(cert_id)
    if record is None:
        raise ResourceNotFound(f"certificate {cert_id} does not exist")
    der = x509.load_pem_x509_certificate(record.pem.encode("ascii")).public_bytes(Encoding.DER)
    authorizer = RegistryAccess(registry, clock=ctx.clock).authorizer(
        Principal(cert_id, certificate_der=der),
        client_id=client_id,
        source_ip="",
        persistent=False,
        will_topic=None,
    )
    assert isinstance(authorizer, ConnectionAuthorizer)
    context = dataclasses.replace(authorizer.context, source_ip=None)
    return registry.policies_for_certificate(cert_id), context


def _certificate_id(ctx: HandlerContext, principal: str) -> str | None:
    prefix = ctx.arn("cert/")
    if not principal.startswith(prefix):
        return None
    return principal[len(prefix) :].lower()


def _policies(ctx: HandlerContext, params: Params) -> tuple[list[PolicyDocument], RequestContext]:
    principal, client_id = params.get("principal"), params.get("clientId", "")
    attached, context = _principal_policies(ctx, principal, client_id)
    skip = set(params.get("policyNamesToSkip", ()))
    texts = {name: text for name, text in attached if name not in skip}
    for name in params.get("policyNamesToAdd", ()):
        texts[name] = ctx.registry.policies.describe(name).document
    return [parse_policy(text, name=name) for name, text in texts.items()], context


def _named(ctx: HandlerContext, names: Iterable[str | None]) -> Result:
    unique = dict.fromkeys(name for name in names if name is not None)
    return {"policies": [{"policyName": n, "policyArn": ctx.arn(f"policy/{n}")} for n in unique]}


def _auth_result(
    ctx: HandlerContext, info: Mapping[str, object], decisions: Sequence[Decision], every: Result
) -> Result:
    deny = [d for d in decisions if d.reason == "explicit_deny"]
    allowed = bool(decisions) and all(d.allowed for d in decisions)
    empty: Result = {"policies": []}
    result: Result = {
        "authInfo": info,
        "allowed": empty,
        "denied": {"implicitDeny": empty, "explicitDeny": empty},
        "missingContextValues": [],
    }
    if deny:
        names = [n for d in deny for n in d.policy_names]
        result["denied"] = {"implicitDeny": empty, "explicitDeny": _named(ctx, names)}
        result["authDecision"] = "EXPLICIT_DENY"
    elif allowed:
        result["allowed"] = _named(ctx, [n for d in decisions for n in d.policy_names])
        result["authDecision"] = "ALLOWED"
    else:
        result["denied"] = {"implicitDeny": every, "explicitDeny": empty}
        result["authDecision"] = "IMPLICIT_DENY"
    return result


def run_test_authorization(ctx: HandlerContext, params: Params) -> Result:
    """TestAuthorization: each authInfo's resources checked against the principal's policies
    (plus ``policyNamesToAdd``, minus ``policyNamesToSkip``)."""
    infos = params["authInfos"]
    if not 1 <= len(infos) <= 10:
        raise InvalidRequest("authInfos must hold 1 to 10 entries")
    documents, context = _policies(ctx, params)
    every = _named(ctx, [document.name for document in documents])
    results: list[Result] = []
    for info in infos:
        action = ACTIONS.get(info.get("actionType", ""))
        if action is None:
            raise InvalidRequest(f"actionType must be one of {', '.join(ACTIONS)}")
        resources = info.get("resources") or []
        decisions = [evaluate(documents, action, resource, context) for resource in resources]
        results.append(_auth_result(ctx, info, decisions, every))
    return {"authResults": results}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "DescribeEndpoint": describe_endpoint,
        "TestAuthorization": run_test_authorization,
    }
)
