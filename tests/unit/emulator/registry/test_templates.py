"""Provisioning templates and their versions."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import (
    PreProvisioningHook,
    ProvisioningTemplateChanged,
    RegistrationConfig,
)
from fleet_sim.errors import (
    DeleteConflict,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionsLimitExceeded,
)
from tests.unit.emulator.registry.support import ACCOUNT, NOW, REGION, ROLE, TEMPLATE, Pki

TEMPLATE_2 = '{"Parameters": {}, "Resources": {"thing": {"Type": "AWS::IoT::Thing"}}}'
HOOK = PreProvisioningHook("arn:aws:lambda:eu-west-1:111122223333:function:hook")


def test_create_and_describe(registry, events):
    template = registry.templates.create(
        "fleet",
        TEMPLATE,
        now=NOW,
        provisioning_role_arn=ROLE,
        enabled=True,
        description="claims",
        pre_provisioning_hook=HOOK,
    )
    assert template.arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/fleet"
    assert (template.type, template.enabled, template.description) == (
        "FLEET_PROVISIONING",
        True,
        "claims",
    )
    assert template.pre_provisioning_hook == HOOK
    assert (template.default_version_id, template.body) == (1, TEMPLATE)
    assert [v.version_id for v in template.versions] == [1]
    assert registry.templates.describe("fleet") == template
    assert events == [ProvisioningTemplateChanged("fleet")]


def test_create_defaults(registry):
    template = registry.templates.create("t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    assert (template.type, template.enabled, template.pre_provisioning_hook) == (
        "FLEET_PROVISIONING",
        False,
        None,
    )


def test_create_twice_is_resource_already_exists(registry):
    registry.templates.create("t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    with pytest.raises(ResourceAlreadyExists):
        registry.templates.create("t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)


@pytest.mark.parametrize(
    ("name", "body", "role", "kind", "description", "hook"),
    [
        ("x" * 37, TEMPLATE, ROLE, "FLEET_PROVISIONING", None, None),
        ("new", "not json", ROLE, "FLEET_PROVISIONING", None, None),
        ("new", "{}" + " " * 10240, ROLE, "FLEET_PROVISIONING", None, None),
        ("new", TEMPLATE, "arn:aws:iam::1:user/x", "FLEET_PROVISIONING", None, None),
        ("new", TEMPLATE, ROLE, "OTHER", None, None),
        ("new", TEMPLATE, ROLE, "FLEET_PROVISIONING", "d" * 501, None),
        ("new", TEMPLATE, ROLE, "JITP", None, HOOK),
    ],
)
def test_create_rejects_bad_input(registry, name, body, role, kind, description, hook):
    with pytest.raises(InvalidRequest):
        registry.templates.create(
            name,
            body,
            now=NOW,
            provisioning_role_arn=role,
            type=kind,
            description=description,
            pre_provisioning_hook=hook,
        )
    assert registry.templates.list().items == ()


def test_versions(registry, events):
    registry.templates.create("t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    v2 = registry.templates.create_version("t", TEMPLATE_2, now=NOW + 1)
    assert (v2.version_id, v2.is_default) == (2, False)
    assert registry.templates.describe("t").body == TEMPLATE
    v3 = registry.templates.create_version("t", TEMPLATE_2, now=NOW + 2, set_as_default=True)
    assert v3.is_default
    assert registry.templates.describe("t").body == TEMPLATE_2
    assert [v.version_id for v in registry.templates.list_versions("t")] == [1, 2, 3]
    assert registry.templates.describe_version("t", 2) == v2
    with pytest.raises(DeleteConflict):
        registry.templates.delete_version("t", 3)
    registry.templates.delete_version("t", 2)
    assert registry.templates.create_version("t", TEMPLATE, now=NOW).version_id == 4
    with pytest.raises(ResourceNotFound):
        registry.templates.describe_version("t", 2)
    with pytest.raises(ResourceNotFound):
        registry.templates.delete_version("t", 2)
    assert all(isinstance(e, ProvisioningTemplateChanged) for e in events)


def test_at_most_five_versions(registry):
    registry.templates.create("t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    for _ in range(4):
        registry.templates.create_version("t", TEMPLATE, now=NOW)
    with pytest.raises(VersionsLimitExceeded):
        registry.templates.create_version("t", TEMPLATE, now=NOW)


def test_update(registry):
    registry.templates.create(
        "t", TEMPLATE, now=NOW, provisioning_role_arn=ROLE, pre_provisioning_hook=HOOK
    )
    registry.templates.create_version("t", TEMPLATE_2, now=NOW)
    other_role = "arn:aws:iam::111122223333:role/Other"
    updated = registry.templates.update(
        "t",
        now=NOW + 5,
        description="new",
        enabled=True,
        default_version_id=2,
        provisioning_role_arn=other_role,
        remove_pre_provisioning_hook=True,
    )
    assert (updated.description, updated.enabled, updated.default_version_id) == ("new", True, 2)
    assert (updated.provisioning_role_arn, updated.pre_provisioning_hook) == (other_role, None)
    assert (updated.body, updated.last_modified, updated.created) == (TEMPLATE_2, NOW + 5, NOW)
    untouched = registry.templates.update("t", now=NOW + 6)
    assert (untouched.description, untouched.enabled) == ("new", True)
    with pytest.raises(ResourceNotFound):
        registry.templates.update("t", now=NOW, default_version_id=9)
    with pytest.raises(InvalidRequest):
        registry.templates.update(
            "t", now=NOW, pre_provisioning_hook=HOOK, remove_pre_provisioning_hook=True
        )


def test_jitp_templates_take_no_hook_on_update(registry):
    registry.templates.create("j", TEMPLATE, now=NOW, provisioning_role_arn=ROLE, type="JITP")
    with pytest.raises(InvalidRequest):
        registry.templates.update("j", now=NOW, pre_provisioning_hook=HOOK)


def test_delete(registry, pki: Pki, events):
    registry.templates.create("j", TEMPLATE, now=NOW, provisioning_role_arn=ROLE, type="JITP")
    registry.templates.create_version("j", TEMPLATE_2, now=NOW)
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        certificate_mode="SNI_ONLY",
        registration_config=RegistrationConfig(template_name="j"),
    )
    with pytest.raises(DeleteConflict, match=ca.certificate_id):
        registry.templates.delete("j")
    registry.cas.update(ca.certificate_id, now=NOW, remove_auto_registration=True)
    events.clear()
    registry.templates.delete("j")
    assert registry.templates.get("j") is None
    assert events == [ProvisioningTemplateChanged("j", deleted=True)]
    with pytest.raises(ResourceNotFound):
        registry.templates.delete("j")


def test_list_paginates_by_name(registry):
    for name in ["c", "a", "b"]:
        registry.templates.create(name, TEMPLATE, now=NOW, provisioning_role_arn=ROLE)
    first = registry.templates.list(page_size=2)
    rest = registry.templates.list(page_size=2, marker=first.next_marker)
    assert [t.name for t in first.items + rest.items] == ["a", "b", "c"]
