"""Persistence, transactions, concurrency and change notifications of the registry store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest

from fleet_sim.emulator.registry import (
    AttachmentChanged,
    CertificateStatusChanged,
    PolicyChanged,
    Registry,
    RegistryEvent,
    ThingChanged,
)
from fleet_sim.emulator.registry.schema import SCHEMA_VERSION
from fleet_sim.errors import (
    EmulatorError,
    InvalidRequest,
    ResourceAlreadyExists,
    ResourceNotFound,
    ServiceUnavailable,
)
from tests.unit.emulator.registry.support import (
    ACCOUNT,
    NOW,
    POLICY,
    REGION,
    Pki,
    open_registry,
    register_sni_ca,
)


def test_file_database_uses_wal_foreign_keys_and_schema_version(db_path):
    with open_registry(db_path):
        pass
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_foreign_keys_are_enforced(registry):
    conn = registry._store._conn
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO thing_principals (thing_name, cert_id) VALUES ('x', 'y')")


def test_data_survives_close_and_reopen(db_path, pki: Pki):
    with open_registry(db_path) as reg:
        ca_id = register_sni_ca(reg, pki)
        cert = reg.certificates.register(pki.leaf("dev-1"), now=NOW, status="ACTIVE")
        reg.things.create("dev-1", attributes={"model": "x1"})
        reg.policies.create("p", POLICY, now=NOW)
        reg.attachments.attach_policy("p", cert.arn)
        reg.attachments.attach_thing_principal("dev-1", cert.arn)
        code = reg.cas.get_registration_code()
    with open_registry(db_path, seed=99) as reg:
        assert reg.cas.describe(ca_id).status == "ACTIVE"
        assert reg.certificate_by_id(cert.certificate_id) == cert
        assert reg.things.describe("dev-1").attributes == {"model": "x1"}
        assert reg.policies_for_certificate(cert.certificate_id) == [("p", POLICY)]
        assert [t.name for t in reg.things_for_certificate(cert.certificate_id)] == ["dev-1"]
        assert reg.cas.get_registration_code() == code


def test_two_registries_on_one_file_see_each_others_commits(db_path, pki: Pki):
    with open_registry(db_path) as first, open_registry(db_path, seed=8) as second:
        register_sni_ca(first, pki)
        cert = first.certificates.register(pki.leaf(), now=NOW)
        assert second.certificate_by_id(cert.certificate_id) == cert
        second.certificates.update_status(cert.certificate_id, "ACTIVE", now=NOW + 1)
        assert first.certificates.describe(cert.certificate_id).status == "ACTIVE"


def test_a_writer_blocked_past_busy_timeout_gets_service_unavailable(db_path, pki: Pki):
    with open_registry(db_path) as reg:
        other = Registry.open(db_path, busy_timeout=0.05)
        try:
            with reg.transaction():
                reg.things.create("held")
                with pytest.raises(ServiceUnavailable) as info:
                    other.things.create("blocked")
            assert info.value.http_status == 503
            assert other.thing("blocked") is None
            assert other.thing("held") is not None
        finally:
            other.close()


def test_threads_writing_concurrently_lose_nothing(registry):
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(25):
                registry.things.create(f"t{worker}-{n}")
                registry.things.update(f"t{worker}-{n}", attributes={"n": str(n)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    page = registry.things.list(page_size=250)
    assert len(page.items) == 100
    assert all(thing.version == 2 for thing in page.items)


def test_failed_operation_calls_no_listener(registry, events):
    registry.things.create("t")
    events.clear()
    with pytest.raises(ResourceAlreadyExists):
        registry.things.create("t", attributes={"a": "b"})
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_policy("missing", "some-target")
    assert events == []


def test_failure_mid_operation_leaves_nothing_behind(registry, events):
    # CreatePolicy writes the policy row, then its version 1; make the second write fail.
    registry._store._conn.execute(
        "CREATE TEMP TRIGGER injected BEFORE INSERT ON policy_versions "
        "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    )
    with pytest.raises(EmulatorError, match="injected fault") as info:
        registry.policies.create("p", POLICY, now=NOW)
    assert info.value.aws_code == "InternalFailureException"
    assert registry.policies.get("p") is None
    assert events == []


def test_a_failing_group_leaves_its_earlier_operations_undone(registry, pki: Pki, events):
    register_sni_ca(registry, pki)
    cert = registry.certificates.register(pki.leaf(), now=NOW)
    registry.policies.create("p", POLICY, now=NOW)
    registry.attachments.attach_policy("p", cert.arn)
    events.clear()

    def detach_then_fail() -> None:
        with registry.transaction():
            registry.attachments.detach_policy("p", cert.arn)
            registry.things.update("no-such-thing", attributes={"a": "b"})

    with pytest.raises(ResourceNotFound):
        detach_then_fail()
    assert registry.policies_for_certificate(cert.certificate_id) == [("p", POLICY)]
    assert events == []


def test_attach_to_a_missing_target_leaves_nothing(registry, events):
    registry.policies.create("p", POLICY, now=NOW)
    events.clear()
    missing = f"arn:aws:iot:eu-west-1:111122223333:cert/{'ab' * 32}"
    with pytest.raises(ResourceNotFound):
        registry.attachments.attach_policy("p", missing)
    assert registry.attachments.list_policy_targets("p").items == ()
    assert events == []


def test_grouped_operations_commit_together_and_notify_after_commit(registry, events):
    seen_inside: list[RegistryEvent] = []
    with registry.transaction():
        registry.things.create("a")
        registry.things.create("b")
        seen_inside.extend(events)
    assert seen_inside == []
    assert events == [ThingChanged("a"), ThingChanged("b")]


def test_a_caught_failure_inside_a_group_undoes_only_that_operation(registry, events):
    with registry.transaction():
        registry.things.create("a")
        with pytest.raises(InvalidRequest):
            registry.things.create("b", attributes={"1": "1", "2": "2", "3": "3", "4": "4"})
        registry.things.create("c")
    assert [t.name for t in registry.things.list().items] == ["a", "c"]
    assert events == [ThingChanged("a"), ThingChanged("c")]


def test_a_failed_nested_group_drops_its_events_but_not_the_outer_ones(registry, events):
    def nested_failure() -> None:
        with registry.transaction():
            registry.things.create("b")
            raise RuntimeError("inner")

    with registry.transaction():
        registry.things.create("a")
        with pytest.raises(RuntimeError):
            nested_failure()
        registry.things.create("c")
    assert registry.thing("b") is None
    assert events == [ThingChanged("a"), ThingChanged("c")]


def test_a_failing_group_rolls_back_everything(registry, events):

    def create_then_fail() -> None:
        with registry.transaction():
            registry.things.create("a")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert registry.thing("a") is None
    assert events == []


def test_listener_exception_does_not_undo_the_change_or_stop_others(registry, caplog):
    seen: list[RegistryEvent] = []

    def broken(event: RegistryEvent) -> None:
        raise ValueError("listener bug")

    registry.subscribe(broken)
    registry.subscribe(seen.append)
    registry.things.create("a")
    assert registry.thing("a") is not None
    assert seen == [ThingChanged("a")]
    assert "listener bug" in caplog.text


def test_unsubscribe_stops_notifications(registry):
    seen: list[RegistryEvent] = []
    unsubscribe = registry.subscribe(seen.append)
    registry.things.create("a")
    unsubscribe()
    registry.things.create("b")
    assert seen == [ThingChanged("a")]


def test_listener_may_read_the_registry_reentrantly(registry):
    versions: list[int] = []

    def listener(event: RegistryEvent) -> None:
        if isinstance(event, ThingChanged):
            versions.append(registry.thing(event.thing_name).version)

    registry.subscribe(listener)
    registry.things.create("a")
    registry.things.update("a", attributes={"k": "v"})
    assert versions == [1, 2]


def test_poll_changes_replays_events_from_another_process(db_path, pki: Pki):
    with open_registry(db_path) as emulator, open_registry(db_path, seed=8) as cli:
        register_sni_ca(emulator, pki)
        cert = emulator.certificates.register(pki.leaf(), now=NOW, status="ACTIVE")
        emulator.policies.create("p", POLICY, now=NOW)
        seen: list[RegistryEvent] = []
        emulator.subscribe(seen.append)
        assert emulator.poll_changes() == 0
        cli.certificates.update_status(cert.certificate_id, "INACTIVE", now=NOW + 5)
        cli.attachments.attach_policy("p", cert.arn)
        assert seen == []
        assert emulator.poll_changes() == 2
        assert seen == [
            CertificateStatusChanged(cert.certificate_id, "ACTIVE", "INACTIVE"),
            AttachmentChanged("policy", "p", cert.arn, True),
        ]
        assert emulator.poll_changes() == 0
        # the CLI hears the emulator's three registrations, never its own two writes
        assert cli.poll_changes() == 3
        assert cli.poll_changes() == 0


def test_a_second_process_changes_status_while_the_first_holds_the_file_open(db_path, pki: Pki):
    with open_registry(db_path) as emulator:
        cert = emulator.certificates.register_without_ca(pki.leaf(), now=NOW, status="ACTIVE")
        seen: list[RegistryEvent] = []
        emulator.subscribe(seen.append)
        script = (
            "import sys\n"
            "from fleet_sim.emulator.registry import Registry\n"
            "with Registry.open(sys.argv[1], region=sys.argv[2], account_id=sys.argv[3]) as r:\n"
            "    r.certificates.update_status(sys.argv[4], 'REVOKED', now=1.0)\n"
        )
        subprocess.run(
            [sys.executable, "-c", script, str(db_path), REGION, ACCOUNT, cert.certificate_id],
            check=True,
            timeout=60,
        )
        assert emulator.certificates.describe(cert.certificate_id).status == "REVOKED"
        assert emulator.poll_changes() == 1
        assert seen == [CertificateStatusChanged(cert.certificate_id, "ACTIVE", "REVOKED")]


def test_poll_changes_skips_own_events(registry):
    seen: list[RegistryEvent] = []
    registry.subscribe(seen.append)
    registry.policies.create("p", POLICY, now=NOW)
    assert seen == [PolicyChanged("p")]
    assert registry.poll_changes() == 0


def test_newer_schema_is_refused(db_path):
    with open_registry(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(EmulatorError, match="newer"):
        open_registry(db_path)


def test_unopenable_path_is_an_emulator_error(tmp_path):
    with pytest.raises(EmulatorError):
        open_registry(tmp_path / "missing-dir" / "registry.sqlite3")


def test_close_is_idempotent(db_path):
    reg = open_registry(db_path)
    reg.close()
    reg.close()
