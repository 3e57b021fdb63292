"""The façade: the gateway's lookups, a JITP-shaped grouped provisioning, ids and events."""

from __future__ import annotations

import pytest

from fleet_sim.emulator.registry import (
    AttachmentChanged,
    CACertificateChanged,
    CertificateStatusChanged,
    PolicyChanged,
    ProvisioningTemplateChanged,
    RegistrationConfig,
    Registry,
    RegistryEvent,
    ThingChanged,
)
from fleet_sim.emulator.registry.events import decode_event, encode_event
from fleet_sim.errors import ResourceAlreadyExists
from tests.unit.emulator.registry.support import NOW, POLICY, ROLE, TEMPLATE, Pki, open_registry


def _jitp(registry: Registry, pki: Pki, leaf_pem: str) -> str:
    """What the JITP service will do for an unknown leaf: all of it, or none of it."""
    with registry.transaction():
        cert = registry.certificates.register(leaf_pem, now=NOW, status="PENDING_ACTIVATION")
        name = cert.subject_fields.common_name
        assert name is not None
        registry.things.create(name, attributes={"serial": name})
        if registry.policies.get("jitp") is None:
            registry.policies.create("jitp", POLICY, now=NOW)
        registry.attachments.attach_policy("jitp", cert.arn)
        registry.attachments.attach_thing_principal(name, cert.arn)
        registry.certificates.update_status(cert.certificate_id, "ACTIVE", now=NOW + 1)
    return cert.certificate_id


def test_gateway_flow_for_an_unknown_leaf(registry, pki: Pki, events):
    ca = registry.cas.register(
        pki.pem(pki.ca),
        now=NOW,
        certificate_mode="SNI_ONLY",
        set_as_active=True,
        allow_auto_registration=True,
        registration_config=RegistrationConfig(template_body=TEMPLATE, role_arn=ROLE),
    )
    leaf = pki.leaf("dev-7")
    leaf_id = pki.id_of(leaf)
    assert registry.certificate_by_id(leaf_id) is None
    candidates = registry.cas_by_subject("CN=Registry Test CA,O=Acme,C=US")
    assert [c.certificate_id for c in candidates] == [ca.certificate_id]
    events.clear()
    assert _jitp(registry, pki, leaf) == leaf_id
    cert = registry.certificate_by_id(leaf_id)
    assert cert.status == "ACTIVE"
    assert registry.policies_for_certificate(leaf_id) == [("jitp", POLICY)]
    assert [t.name for t in registry.things_for_certificate(leaf_id)] == ["dev-7"]
    assert registry.thing("dev-7").attributes == {"serial": "dev-7"}
    assert events == [
        CertificateStatusChanged(leaf_id, None, "PENDING_ACTIVATION"),
        ThingChanged("dev-7"),
        PolicyChanged("jitp"),
        AttachmentChanged("policy", "jitp", cert.arn, True),
        AttachmentChanged("thing_principal", "dev-7", cert.arn, True),
        CertificateStatusChanged(leaf_id, "PENDING_ACTIVATION", "ACTIVE"),
    ]


def test_a_failed_provisioning_leaves_nothing(registry, pki: Pki, events):
    registry.cas.register(pki.pem(pki.ca), now=NOW, certificate_mode="SNI_ONLY", set_as_active=True)
    registry.things.create("dev-8", attributes={"other": "x"})
    events.clear()
    leaf = pki.leaf("dev-8")
    with pytest.raises(ResourceAlreadyExists):
        _jitp(registry, pki, leaf)
    assert registry.certificate_by_id(pki.id_of(leaf)) is None
    assert registry.policies.get("jitp") is None
    assert registry.thing("dev-8").attributes == {"other": "x"}
    assert events == []


def test_region_and_account_shape_every_arn(pki: Pki):
    with Registry.open(":memory:", region="ap-south-1", account_id="000011112222") as reg:
        thing = reg.things.create("t")
        assert thing.arn == "arn:aws:iot:ap-south-1:000011112222:thing/t"
        assert (reg.region, reg.account_id) == ("ap-south-1", "000011112222")


def test_default_randomness_gives_distinct_ids():
    with Registry.open(":memory:") as first, Registry.open(":memory:") as second:
        assert first.things.create("t").thing_id != second.things.create("t").thing_id
        assert first.cas.get_registration_code() != second.cas.get_registration_code()


def test_seeded_randomness_gives_reproducible_ids():
    with open_registry(":memory:", seed=5) as first, open_registry(":memory:", seed=5) as second:
        assert first.things.create("t").thing_id == second.things.create("t").thing_id


@pytest.mark.parametrize(
    "event",
    [
        CertificateStatusChanged("ab" * 32, None, "ACTIVE"),
        CACertificateChanged("cd" * 32, "ACTIVE", None),
        PolicyChanged("p", deleted=True),
        AttachmentChanged("policy", "p", "arn:x", False),
        ThingChanged("t"),
        ProvisioningTemplateChanged("tpl"),
    ],
)
def test_events_round_trip_through_the_change_log(event: RegistryEvent):
    assert decode_event(*encode_event(event)) == event


def test_unknown_event_kinds_are_skipped():
    assert decode_event("FromTheFuture", "{}") is None
