"""Control-plane handlers for provisioning templates and their versions.

CreateProvisioningTemplate, DescribeProvisioningTemplate, ListProvisioningTemplates,
UpdateProvisioningTemplate, DeleteProvisioningTemplate, CreateProvisioningTemplateVersion,
DescribeProvisioningTemplateVersion, ListProvisioningTemplateVersions,
DeleteProvisioningTemplateVersion. Rules are the registry's
(:mod:`fleet_sim.emulator.registry.templates`); a new template or version's body must also
parse as a provisioning template (:func:`fleet_sim.provisioning.parse_template`), else
``InvalidRequestException`` with the template engine's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet_sim.emulator.control_plane.context import Handler, HandlerContext, Params, Result
from fleet_sim.emulator.control_plane.paging import page_of
from fleet_sim.emulator.registry.models import (
    PreProvisioningHook,
    ProvisioningTemplate,
    TemplateType,
)
from fleet_sim.emulator.registry.paging import DEFAULT_PAGE_SIZE
from fleet_sim.provisioning.template import parse_template


def _hook(value: Mapping[str, Any] | None) -> PreProvisioningHook | None:
    if value is None:
        return None
    version = value.get("payloadVersion")
    if version is None:
        return PreProvisioningHook(value["targetArn"])
    return PreProvisioningHook(value["targetArn"], version)


def _hook_out(hook: PreProvisioningHook | None) -> Result | None:
    if hook is None:
        return None
    return {"payloadVersion": hook.payload_version, "targetArn": hook.target_arn}


def create_provisioning_template(ctx: HandlerContext, params: Params) -> Result:
    """CreateProvisioningTemplate (FLEET_PROVISIONING by default, or JITP)."""
    parse_template(params["templateBody"], name=params["templateName"])
    template = ctx.registry.templates.create(
        params["templateName"],
        params["templateBody"],
        now=ctx.now(),
        provisioning_role_arn=params["provisioningRoleArn"],
        type=params.get("type", TemplateType.FLEET_PROVISIONING),
        enabled=bool(params.get("enabled")),
        description=params.get("description"),
        pre_provisioning_hook=_hook(params.get("preProvisioningHook")),
    )
    return {
        "templateArn": template.arn,
        "templateName": template.name,
        "defaultVersionId": template.default_version_id,
    }


def _summary(template: ProvisioningTemplate) -> Result:
    return {
        "templateArn": template.arn,
        "templateName": template.name,
        "description": template.description,
        "creationDate": template.created,
        "lastModifiedDate": template.last_modified,
        "enabled": template.enabled,
        "type": template.type.value,
    }


def describe_provisioning_template(ctx: HandlerContext, params: Params) -> Result:
    """DescribeProvisioningTemplate (the default version's body)."""
    template = ctx.registry.templates.describe(params["templateName"])
    return {
        **_summary(template),
        "defaultVersionId": template.default_version_id,
        "templateBody": template.body,
        "provisioningRoleArn": template.provisioning_role_arn,
        "preProvisioningHook": _hook_out(template.pre_provisioning_hook),
    }


def list_provisioning_templates(ctx: HandlerContext, params: Params) -> Result:
    """ListProvisioningTemplates (``nextToken``/``maxResults``)."""
    page = ctx.registry.templates.list(
        marker=params.get("nextToken"), page_size=params.get("maxResults", DEFAULT_PAGE_SIZE)
    )
    return {"templates": [_summary(t) for t in page.items], "nextToken": page.next_marker}


def update_provisioning_template(ctx: HandlerContext, params: Params) -> Result:
    """UpdateProvisioningTemplate."""
    ctx.registry.templates.update(
        params["templateName"],
        now=ctx.now(),
        description=params.get("description"),
        enabled=params.get("enabled"),
        default_version_id=params.get("defaultVersionId"),
        provisioning_role_arn=params.get("provisioningRoleArn"),
        pre_provisioning_hook=_hook(params.get("preProvisioningHook")),
        remove_pre_provisioning_hook=bool(params.get("removePreProvisioningHook")),
    )
    return {}


def delete_provisioning_template(ctx: HandlerContext, params: Params) -> Result:
    """DeleteProvisioningTemplate (refused while a CA's registration config names it)."""
    ctx.registry.templates.delete(params["templateName"])
    return {}


def create_provisioning_template_version(ctx: HandlerContext, params: Params) -> Result:
    """CreateProvisioningTemplateVersion (at most 5 versions)."""
    name = params["templateName"]
    parse_template(params["templateBody"], name=name)
    templates = ctx.registry.templates
    version = templates.create_version(
        name, params["templateBody"], now=ctx.now(), set_as_default=bool(params.get("setAsDefault"))
    )
    return {
        "templateArn": templates.describe(name).arn,
        "templateName": name,
        "versionId": version.version_id,
        "isDefaultVersion": version.is_default,
    }


def describe_provisioning_template_version(ctx: HandlerContext, params: Params) -> Result:
    """DescribeProvisioningTemplateVersion."""
    version = ctx.registry.templates.describe_version(params["templateName"], params["versionId"])
    return {
        "versionId": version.version_id,
        "creationDate": version.created,
        "templateBody": version.body,
        "isDefaultVersion": version.is_default,
    }


def list_provisioning_template_versions(ctx: HandlerContext, params: Params) -> Result:
    """ListProvisioningTemplateVersions (oldest first)."""
    versions = ctx.registry.templates.list_versions(params["templateName"])
    items, token = page_of(versions, params.get("nextToken"), params.get("maxResults"))
    return {
        "versions": [
            {"versionId": v.version_id, "creationDate": v.created, "isDefaultVersion": v.is_default}
            for v in items
        ],
        "nextToken": token,
    }


def delete_provisioning_template_version(ctx: HandlerContext, params: Params) -> Result:
    """DeleteProvisioningTemplateVersion (never the default one)."""
    ctx.registry.templates.delete_version(params["templateName"], params["versionId"])
    return {}


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "CreateProvisioningTemplate": create_provisioning_template,
        "DescribeProvisioningTemplate": describe_provisioning_template,
        "ListProvisioningTemplates": list_provisioning_templates,
        "UpdateProvisioningTemplate": update_provisioning_template,
        "DeleteProvisioningTemplate": delete_provisioning_template,
        "CreateProvisioningTemplateVersion": create_provisioning_template_version,
        "DescribeProvisioningTemplateVersion": describe_provisioning_template_version,
        "ListProvisioningTemplateVersions": list_provisioning_template_versions,
        "DeleteProvisioningTemplateVersion": delete_provisioning_template_version,
    }
)
