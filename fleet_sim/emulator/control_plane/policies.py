"""Control-plane handlers for policies, policy versions and policy attachments.

CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion, GetPolicyVersion,
ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion, AttachPolicy,
DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy. Documents are checked by the policy
engine (:class:`MalformedPolicy`); a new default version reaches the data plane through the
registry's listeners and applies to the next connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.registry.models import Page, Policy
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE
from fleet_sim.errors import InvalidRequest


def create_policy(ctx: HandlerContext, params: Params) -> Result:
    """CreatePolicy (version 1, the default)."""
    policy = ctx.registry.policies.create(
        params["policyName"], params["policyDocument"], now=ctx.now()
    )
    return {
        "policyName": policy.name,
        "policyArn": policy.arn,
        "policyDocument": policy.document,
        "policyVersionId": policy.default_version_id,
    }


def get_policy(ctx: HandlerContext, params: Params) -> Result:
    """GetPolicy (the default version's document)."""
    policy = ctx.registry.policies.describe(params["policyName"])
    return {
        "policyName": policy.name,
        "policyArn": policy.arn,
        "policyDocument": policy.document,
        "defaultVersionId": policy.default_version_id,
        "creationDate": policy.created,
        "lastModifiedDate": policy.last_modified,
        "generationId": policy.generation_id,
    }


def _names(page: Page[Policy]) -> Result:
    return {
        "policies": [{"policyName": p.name, "policyArn": p.arn} for p in page.items],
        "nextMarker": page.next_marker,
    }


def list_policies(ctx: HandlerContext, params: Params) -> Result:
    """ListPolicies (``marker``/``pageSize``, ``ascendingOrder``)."""
    return _names(
        ctx.registry.policies.list(
            marker=params.get("marker"),
            page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
            ascending=params.get("ascendingOrder", True),
        )
    )


def delete_policy(ctx: HandlerContext, params: Params) -> Result:
    """DeletePolicy (refused while attached or with non-default versions)."""
    ctx.registry.policies.delete(params["policyName"])
    return {}


def create_policy_version(ctx: HandlerContext, params: Params) -> Result:
    """CreatePolicyVersion (at most 5 versions)."""
    name = params["policyName"]
    version = ctx.registry.policies.create_version(
        name,
        params["policyDocument"],
        now=ctx.now(),
        set_as_default=bool(params.get("setAsDefault")),
    )
    return {
        "policyArn": version.policy_arn,
        "policyDocument": version.document,
        "policyVersionId": version.version_id,
        "isDefaultVersion": version.is_default,
    }


def get_policy_version(ctx: HandlerContext, params: Params) -> Result:
    """GetPolicyVersion."""
    policies = ctx.registry.policies
    policy = policies.describe(params["policyName"])
    version = policies.describe_version(policy.name, params["policyVersionId"])
    return {
        "policyArn": version.policy_arn,
        "policyName": version.policy_name,
        "policyDocument": version.document,
        "policyVersionId": version.version_id,
        "isDefaultVersion": version.is_default,
        "creationDate": version.created,
        "lastModifiedDate": policy.last_modified,
        "generationId": policy.generation_id,
    }


def list_policy_versions(ctx: HandlerContext, params: Params) -> Result:
    """ListPolicyVersions (newest first, as AWS lists them)."""
    versions = ctx.registry.policies.list_versions(params["policyName"])
    return {
        "policyVersions": [
            {"versionId": v.version_id, "isDefaultVersion": v.is_default, "createDate": v.created}
            for v in reversed(versions)
        ]
    }


def set_default_policy_version(ctx: HandlerContext, params: Params) -> Result:
    """SetDefaultPolicyVersion."""
    ctx.registry.policies.set_default_version(
        params["policyName"], params["policyVersionId"], now=ctx.now()
    )
    return {}


def delete_policy_version(ctx: HandlerContext, params: Params) -> Result:
    """DeletePolicyVersion (never the default one)."""
    ctx.registry.policies.delete_version(params["policyName"], params["policyVersionId"])
    return {}


def attach_policy(ctx: HandlerContext, params: Params) -> Result:
    """AttachPolicy (target: a certificate ARN, thing-group ARN or Cognito identity)."""
    ctx.registry.attachments.attach_policy(params["policyName"], params["target"])
    return {}


def detach_policy(ctx: HandlerContext, params: Params) -> Result:
    """DetachPolicy."""
    ctx.registry.attachments.detach_policy(params["policyName"], params["target"])
    return {}


def list_attached_policies(ctx: HandlerContext, params: Params) -> Result:
    """ListAttachedPolicies (policies attached to the target itself)."""
    if params.get("recursive"):
        raise InvalidRequest("recursive listing is not supported by the emulator")
    return _names(
        ctx.registry.attachments.list_attached_policies(
            params["target"],
            marker=params.get("marker"),
            page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
        )
    )


def list_targets_for_policy(ctx: HandlerContext, params: Params) -> Result:
    """ListTargetsForPolicy."""
    page = ctx.registry.attachments.list_policy_targets(
        params["policyName"],
        marker=params.get("marker"),
        page_size=params.get("pageSize", DEFAULT_PAGE_SIZE),
    )
    return {"targets": list(page.items), "nextMarker": page.next_marker}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "CreatePolicy": create_policy,
        "GetPolicy": get_policy,
        "ListPolicies": list_policies,
        "DeletePolicy": delete_policy,
        "CreatePolicyVersion": create_policy_version,
        "GetPolicyVersion": get_policy_version,
        "ListPolicyVersions": list_policy_versions,
        "SetDefaultPolicyVersion": set_default_policy_version,
        "DeletePolicyVersion": delete_policy_version,
        "AttachPolicy": attach_policy,
        "DetachPolicy": detach_policy,
        "ListAttachedPolicies": list_attached_policies,
        "ListTargetsForPolicy": list_targets_for_policy,
    }
)
