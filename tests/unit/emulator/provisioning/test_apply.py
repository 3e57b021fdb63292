"""Applying rendered plans to a real (in-memory SQLite) registry: creation, OverrideSettings,
certificate status, CSR issuing, policies by hash name, and all-or-nothing failures."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from fleet_sim.emulator.control_plane.issuing import csr_issuer
from fleet_sim.emulator.provisioning import ProvisionedResources, apply_plan
from fleet_sim.emulator.registry import Registry, RegistryEvent
from fleet_sim.errors import (
    CertificateState,
    InvalidRequest,
    MalformedPolicy,
    ResourceConflicts,
    ResourceNotFound,
)
from fleet_sim.provisioning import (
    CertificateOverrides,
    CertificatePlan,
    OverrideAction,
    PolicyPlan,
    ProvisioningPlan,
    ThingOverrides,
    ThingPlan,
    jitp_parameters,
    parse_template,
    render_template,
)
from fleet_sim.tls.ca import CertificateAuthority
from fleet_sim.tls.csr import create_csr, csr_to_pem
from fleet_sim.tls.inspect import is_issued_by
from fleet_sim.tls.keys import KeyType, generate_private_key
from fleet_sim.tls.subject import DeviceSubject
from tests.unit.emulator.registry.support import (
    ISSUED_AT,
    NOW,
    POLICY,
    Pki,
    open_registry,
    register_sni_ca,
)
from tests.unit.provisioning.examples import BULK, JITP

ALLOW_CONNECT = POLICY


@pytest.fixture(scope="module")
def pki() -> Pki:
    subject = DeviceSubject(common_name="Provisioning Test CA", country="US")
    return Pki(
        ca=CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, ISSUED_AT),
        twin=CertificateAuthority.create_root(subject, KeyType.EC_P256, 3650, ISSUED_AT),
        other=CertificateAuthority.create_root(
            DeviceSubject(common_name="Other CA"), KeyType.EC_P256, 3650, ISSUED_AT
        ),
    )


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = open_registry(":memory:")
    yield reg
    reg.close()


@pytest.fixture
def events(registry: Registry) -> list[RegistryEvent]:
    seen: list[RegistryEvent] = []
    registry.subscribe(seen.append)
    return seen


def csr(common_name: str) -> str:
    key = generate_private_key(KeyType.EC_P256)
    return csr_to_pem(create_csr(key, DeviceSubject(common_name=common_name))).decode()


def registered(registry: Registry, pki: Pki, cn: str, status: str = "INACTIVE") -> str:
    """A device certificate from pki.ca registered with ``status``; its id."""
    return registry.certificates.register(pki.leaf(cn), now=NOW, status=status).certificate_id


def snapshot(registry: Registry) -> dict[str, Any]:
    """Everything provisioning could have touched, for before/after comparisons."""
    return {
        "things": [t.name for t in registry.things.list().items],
        "certificates": [c.certificate_id for c in registry.certificates.list().items],
        "policies": [p.name for p in registry.policies.list().items],
    }


# ---------------------------------------------------------------------- JITP end to end


def test_jitp_template_provisions_a_pending_certificate(registry: Registry, pki: Pki) -> None:
    register_sni_ca(registry, pki)
    registry.thing_types.create("lightBulb-versionA", now=NOW)
    for group in ("v1-lightbulbs", "DE"):
        registry.thing_groups.create(group, now=NOW)
    pem = pki.leaf("bulb-1", country="DE", serial_number="SN-1")
    cert = registry.certificates.register(pem, now=NOW, status="PENDING_ACTIVATION")
    subject = cert.subject_fields
    plan = render_template(parse_template(JITP), jitp_parameters(cert.certificate_id, subject))

    done = apply_plan(registry, plan, now=NOW + 1)

    # DO_NOTHING on Status does not keep a certificate that is still being provisioned.
    assert done.certificate_status == "ACTIVE"
    assert registry.certificates.describe(cert.certificate_id).status == "ACTIVE"
    thing = registry.things.describe("bulb-1")
    assert dict(thing.attributes) == {"version": "v1", "serialNumber": "SN-1"}
    assert thing.thing_type_name == "lightBulb-versionA"
    groups = [g.name for g in registry.thing_groups.groups_of_thing("bulb-1")]
    assert groups == ["DE", "v1-lightbulbs"]
    assert [t.name for t in registry.things_for_certificate(cert.certificate_id)] == ["bulb-1"]
    (policy_name,) = done.policy_names
    assert [name for name, _ in registry.policies_for_certificate(cert.certificate_id)] == [
        policy_name
    ]
    assert done == ProvisionedResources(
        thing_name="bulb-1",
        thing_arn=thing.arn,
        thing_created=True,
        certificate_id=cert.certificate_id,
        certificate_arn=cert.arn,
        certificate_pem=cert.pem,
        certificate_status="ACTIVE",
        policy_names=(policy_name,),
        policy_arns=(registry.policies.describe(policy_name).arn,),
        device_configuration=plan.device_configuration,
        resource_arns={
            "certificate": cert.arn,
            "thing": thing.arn,
            "policy": registry.policies.describe(policy_name).arn,
        },
    )


# ---------------------------------------------------------------------- thing overrides

EXISTING_ATTRIBUTES = {"version": "v0", "color": "red"}
TEMPLATE_ATTRIBUTES = {"version": "v1", "serialNumber": "SN"}


@pytest.fixture
def existing_thing(registry: Registry) -> str:
    for type_name in ("typeA", "typeB"):
        registry.thing_types.create(type_name, now=NOW)
    for group in ("g1", "g2", "g3"):
        registry.thing_groups.create(group, now=NOW)
    registry.things.create("lamp", thing_type_name="typeA", attributes=EXISTING_ATTRIBUTES)
    registry.thing_groups.add_thing("g1", "lamp")
    registry.thing_groups.add_thing("g3", "lamp")
    return "lamp"


def thing_plan(**overrides: OverrideAction) -> ProvisioningPlan:
    return ProvisioningPlan(
        thing=ThingPlan(
            "thing",
            "lamp",
            attributes=TEMPLATE_ATTRIBUTES,
            type_name="typeB",
            groups=("g1", "g2"),
            overrides=ThingOverrides(**overrides),
        )
    )


def thing_state(registry: Registry) -> tuple[dict[str, str], str | None, set[str]]:
    thing = registry.things.describe("lamp")
    groups = {g.name for g in registry.thing_groups.groups_of_thing("lamp")}
    return dict(thing.attributes), thing.thing_type_name, groups


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (OverrideAction.DO_NOTHING, EXISTING_ATTRIBUTES),
        (OverrideAction.REPLACE, TEMPLATE_ATTRIBUTES),
        (OverrideAction.MERGE, {**EXISTING_ATTRIBUTES, **TEMPLATE_ATTRIBUTES}),
        (OverrideAction.FAIL, None),
    ],
)
def test_attribute_payload_overrides(
    registry: Registry, existing_thing: str, action: OverrideAction, expected: Any
) -> None:
    plan = thing_plan(attribute_payload=action)
    if expected is None:
        with pytest.raises(ResourceConflicts, match=r"Resources\.thing: the thing's Attr"):
            apply_plan(registry, plan, now=NOW)
        expected = EXISTING_ATTRIBUTES
    else:
        assert apply_plan(registry, plan, now=NOW).thing_created is False
    assert thing_state(registry) == (expected, "typeA", {"g1", "g3"})


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (OverrideAction.DO_NOTHING, "typeA"),
        (OverrideAction.REPLACE, "typeB"),
        (OverrideAction.FAIL, None),
    ],
)
def test_thing_type_overrides(
    registry: Registry, existing_thing: str, action: OverrideAction, expected: str | None
) -> None:
    plan = thing_plan(thing_type_name=action)
    if expected is None:
        with pytest.raises(ResourceConflicts) as caught:
            apply_plan(registry, plan, now=NOW)
        assert caught.value.aws_code == "ResourceConflictsException"
        expected = "typeA"
    else:
        apply_plan(registry, plan, now=NOW)
    assert thing_state(registry) == (EXISTING_ATTRIBUTES, expected, {"g1", "g3"})


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (OverrideAction.DO_NOTHING, {"g1", "g3"}),
        (OverrideAction.REPLACE, {"g1", "g2"}),
        (OverrideAction.MERGE, {"g1", "g2", "g3"}),
        (OverrideAction.FAIL, None),
    ],
)
def test_thing_groups_overrides(
    registry: Registry, existing_thing: str, action: OverrideAction, expected: set[str] | None
) -> None:
    plan = thing_plan(thing_groups=action)
    if expected is None:
        with pytest.raises(ResourceConflicts, match="ThingGroups"):
            apply_plan(registry, plan, now=NOW)
        expected = {"g1", "g3"}
    else:
        apply_plan(registry, plan, now=NOW)
    assert thing_state(registry) == (EXISTING_ATTRIBUTES, "typeA", expected)


def test_fail_does_not_fire_when_the_thing_matches_the_template(
    registry: Registry, existing_thing: str
) -> None:
    fail = OverrideAction.FAIL
    plan = ProvisioningPlan(
        thing=ThingPlan(
            "thing",
            "lamp",
            attributes=EXISTING_ATTRIBUTES,
            type_name="typeA",
            groups=("g3", "g1"),
            overrides=ThingOverrides(fail, fail, fail),
        )
    )
    version = registry.things.describe("lamp").version
    assert apply_plan(registry, plan, now=NOW).thing_created is False
    assert registry.things.describe("lamp").version == version  # not even touched


def test_a_conflict_undoes_the_certificate_created_before_it(
    registry: Registry, existing_thing: str, events: list[RegistryEvent]
) -> None:
    before = snapshot(registry)
    events.clear()
    plan = thing_plan(attribute_payload=OverrideAction.FAIL)
    plan = ProvisioningPlan(
        thing=plan.thing, certificate=CertificatePlan("certificate", csr=csr("lamp"))
    )
    issuer = csr_issuer(registry_ca(), lambda: ISSUED_AT)
    with pytest.raises(ResourceConflicts):
        apply_plan(registry, plan, now=NOW, issuer=issuer)
    assert snapshot(registry) == before
    assert events == []


def registry_ca() -> CertificateAuthority:
    return CertificateAuthority.create_root(
        DeviceSubject(common_name="Device CA"), KeyType.EC_P256, 3650, ISSUED_AT
    )


# ---------------------------------------------------------------------- certificate status


@pytest.mark.parametrize(
    ("initial", "action", "expected"),
    [
        ("INACTIVE", None, "ACTIVE"),
        ("INACTIVE", OverrideAction.REPLACE, "ACTIVE"),
        ("INACTIVE", OverrideAction.DO_NOTHING, "INACTIVE"),
        ("INACTIVE", OverrideAction.FAIL, ResourceConflicts),
        ("ACTIVE", OverrideAction.FAIL, "ACTIVE"),
        ("PENDING_ACTIVATION", OverrideAction.DO_NOTHING, "ACTIVE"),
        ("PENDING_ACTIVATION", OverrideAction.FAIL, "ACTIVE"),
        ("REVOKED", OverrideAction.DO_NOTHING, "REVOKED"),
        ("REVOKED", OverrideAction.REPLACE, CertificateState),
    ],
)
def test_certificate_status_overrides(
    registry: Registry, pki: Pki, initial: str, action: OverrideAction | None, expected: Any
) -> None:
    register_sni_ca(registry, pki)
    cert_id = registered(registry, pki, "dev", status=initial)
    overrides = CertificateOverrides() if action is None else CertificateOverrides(action)
    plan = ProvisioningPlan(
        certificate=CertificatePlan("certificate", certificate_id=cert_id, overrides=overrides)
    )
    if isinstance(expected, type):
        with pytest.raises(expected, match=r"Resources\.certificate: "):
            apply_plan(registry, plan, now=NOW)
        expected = initial
    else:
        assert apply_plan(registry, plan, now=NOW).certificate_status == expected
    assert registry.certificates.describe(cert_id).status == expected


def test_inactive_status_from_the_template(registry: Registry, pki: Pki) -> None:
    register_sni_ca(registry, pki)
    cert_id = registered(registry, pki, "dev", status="PENDING_ACTIVATION")
    plan = ProvisioningPlan(
        certificate=CertificatePlan("cert", certificate_id=cert_id, status="INACTIVE")
    )
    assert apply_plan(registry, plan, now=NOW).certificate_status == "INACTIVE"


def test_unknown_certificate_id(registry: Registry) -> None:
    plan = ProvisioningPlan(certificate=CertificatePlan("cert", certificate_id="ab" * 32))
    with pytest.raises(ResourceNotFound, match=r"^Resources\.cert: certificate ab"):
        apply_plan(registry, plan, now=NOW)


# ---------------------------------------------------------------------- CSR and PEM


def test_csr_is_issued_by_the_issuer_and_recorded(registry: Registry) -> None:
    ca = registry_ca()
    template = parse_template(BULK)
    registry.thing_types.create("lightBulb-versionA", now=NOW)
    for group in ("v1-lightbulbs", "WA"):
        registry.thing_groups.create(group, now=NOW)
    plan = render_template(template, {"ThingName": "b1", "SerialNumber": "1", "CSR": csr("b1")})

    done = apply_plan(registry, plan, now=NOW, issuer=csr_issuer(ca, lambda: ISSUED_AT))

    assert done.certificate_pem is not None
    issued = x509.load_pem_x509_certificate(done.certificate_pem.encode())
    assert issued.subject.rfc4514_string() == "CN=b1"
    assert is_issued_by(issued, ca.certificate)
    assert issued.not_valid_after_utc.year == 2049
    record = registry.certificates.describe(done.certificate_id or "")
    assert (record.status, record.ca_certificate_id) == ("ACTIVE", None)
    assert [t.name for t in registry.things_for_certificate(record.certificate_id)] == ["b1"]


@pytest.mark.parametrize(
    ("csr_text", "issuer", "problem"),
    [
        ("not a csr", True, "expected a certificate signing request"),
        (None, False, "certificates cannot be issued from a CSR here"),
    ],
)
def test_unusable_csr_or_no_issuer(
    registry: Registry, csr_text: str | None, issuer: bool, problem: str
) -> None:
    plan = ProvisioningPlan(certificate=CertificatePlan("certificate", csr=csr_text or csr("x")))
    with pytest.raises(InvalidRequest) as caught:
        apply_plan(
            registry,
            plan,
            now=NOW,
            issuer=csr_issuer(registry_ca(), lambda: ISSUED_AT) if issuer else None,
        )
    assert caught.value.message.startswith(
        "Resources.certificate.Properties.CertificateSigningRequest: "
    )
    assert problem in caught.value.message
    assert snapshot(registry)["certificates"] == []


def test_certificate_pem_is_registered_or_reused(registry: Registry, pki: Pki) -> None:
    ca_id = register_sni_ca(registry, pki)
    pem = pki.leaf("dev-pem")
    plan = ProvisioningPlan(
        certificate=CertificatePlan(
            "certificate",
            certificate_pem=pem,
            ca_certificate_pem=pki.pem(pki.ca),
            status="INACTIVE",
        )
    )
    first = apply_plan(registry, plan, now=NOW)
    record = registry.certificates.describe(first.certificate_id or "")
    assert (record.status, record.ca_certificate_id) == ("INACTIVE", ca_id)
    second = apply_plan(registry, plan, now=NOW)
    assert second.certificate_id == first.certificate_id
    assert len(snapshot(registry)["certificates"]) == 1


def test_certificate_pem_of_an_unregistered_ca_fails(registry: Registry, pki: Pki) -> None:
    plan = ProvisioningPlan(certificate=CertificatePlan("c", certificate_pem=pki.leaf("d")))
    with pytest.raises(Exception, match=r"Resources\.c: .*not signed by a registered CA"):
        apply_plan(registry, plan, now=NOW)


# ---------------------------------------------------------------------- policies


def test_policy_by_document_is_created_once_and_reused(registry: Registry, pki: Pki) -> None:
    register_sni_ca(registry, pki)
    name = hashlib.sha256(ALLOW_CONNECT.encode()).hexdigest()
    policy = PolicyPlan("policy", name, ALLOW_CONNECT)
    ids = [registered(registry, pki, f"dev-{i}") for i in range(3)]
    for cert_id in ids:
        plan = ProvisioningPlan(
            certificate=CertificatePlan("certificate", certificate_id=cert_id), policies=(policy,)
        )
        done = apply_plan(registry, plan, now=NOW)
        assert done.policy_names == (name,)
    assert snapshot(registry)["policies"] == [name]
    assert len(registry.policies.describe(name).versions) == 1
    for cert_id in ids:
        assert registry.policies_for_certificate(cert_id) == [(name, ALLOW_CONNECT)]


def test_policy_by_name_must_exist_and_a_bad_document_is_refused(registry: Registry) -> None:
    with pytest.raises(ResourceNotFound, match=r"^Resources\.named: policy 'nope'"):
        apply_plan(registry, ProvisioningPlan(policies=(PolicyPlan("named", "nope"),)), now=NOW)
    bad = PolicyPlan("doc", "h" * 64, '{"Statement": [{"Effect": "allow"}]}')
    with pytest.raises(MalformedPolicy, match=r"^Resources\.doc: "):
        apply_plan(registry, ProvisioningPlan(policies=(bad,)), now=NOW)
    registry.policies.create("named", ALLOW_CONNECT, now=NOW)
    done = apply_plan(registry, ProvisioningPlan(policies=(PolicyPlan("p", "named"),)), now=NOW)
    assert done.resource_arns == {"p": registry.policies.describe("named").arn}


# ---------------------------------------------------------------------- all or nothing


def test_a_late_failure_leaves_nothing_behind(
    registry: Registry, events: list[RegistryEvent]
) -> None:
    registry.thing_groups.create("g1", now=NOW)
    before = snapshot(registry)
    events.clear()
    plan = ProvisioningPlan(
        thing=ThingPlan("thing", "atomic", attributes={"a": "1"}, groups=("g1",)),
        certificate=CertificatePlan("certificate", csr=csr("atomic")),
        policies=(
            PolicyPlan("created", "c" * 64, ALLOW_CONNECT),
            PolicyPlan("missing", "no-such-policy"),
        ),
    )
    with pytest.raises(ResourceNotFound, match=r"^Resources\.missing: "):
        apply_plan(registry, plan, now=NOW, issuer=csr_issuer(registry_ca(), lambda: ISSUED_AT))
    assert snapshot(registry) == before
    assert registry.thing_groups.list_things("g1").items == ()
    assert events == []


@pytest.mark.parametrize(
    ("thing", "error", "problem"),
    [
        (ThingPlan("thing", "t", groups=("ghost",)), ResourceNotFound, "thing group 'ghost'"),
        (ThingPlan("thing", "t", type_name="ghost"), ResourceNotFound, "thing type 'ghost'"),
        (ThingPlan("thing", "t", billing_group="bg"), ResourceNotFound, "billing group 'bg'"),
        (ThingPlan("thing", "bad name!"), InvalidRequest, "thing name 'bad name!'"),
    ],
)
def test_thing_failures(
    registry: Registry, thing: ThingPlan, error: type[Exception], problem: str
) -> None:
    with pytest.raises(error) as caught:
        apply_plan(registry, ProvisioningPlan(thing=thing), now=NOW)
    assert str(caught.value).startswith("Resources.thing: ")
    assert problem in str(caught.value)
    assert snapshot(registry)["things"] == []


def test_one_template_provisions_many_devices(registry: Registry, pki: Pki) -> None:
    register_sni_ca(registry, pki)
    template_raw = copy.deepcopy(JITP)
    del template_raw["Resources"]["thing"]["Properties"]["ThingTypeName"]
    template_raw["Resources"]["thing"]["Properties"]["ThingGroups"] = ["fleet"]
    registry.thing_groups.create("fleet", now=NOW)
    template = parse_template(template_raw)
    names = []
    for i in range(5):
        pem = pki.leaf(f"bulb-{i}", country="DE", serial_number=f"SN-{i}")
        cert = registry.certificates.register(pem, now=NOW, status="PENDING_ACTIVATION")
        plan = render_template(template, jitp_parameters(cert.certificate_id, cert.subject_fields))
        names.append(apply_plan(registry, plan, now=NOW).thing_name)
    assert names == [f"bulb-{i}" for i in range(5)]
    assert list(registry.thing_groups.list_things("fleet").items) == names
    assert len(snapshot(registry)["policies"]) == 1
