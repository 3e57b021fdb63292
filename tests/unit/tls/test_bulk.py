from __future__ import annotations

import time
from datetime import timedelta

import pytest

from fleet_sim.errors import CertificateError
from fleet_sim.tls.bulk import (
    BulkResult,
    IdentitySpec,
    build_identities,
    cache_path_for,
    generate_identities,
)
from fleet_sim.tls.inspect import is_issued_by
from fleet_sim.tls.keys import KeyType
from fleet_sim.tls.subject import DeviceSubject

SPEC = IdentitySpec("sensor-{index:05d}", KeyType.EC_P256, DeviceSubject(organization="Acme"), 30)


def test_spec_names_and_subjects():
    assert SPEC.common_name(7) == "sensor-00007"
    assert SPEC.subject_for(7) == DeviceSubject(common_name="sensor-00007", organization="Acme")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("sensor", "must contain \\{index\\}"),
        ("sensor-{idx}", "bad name pattern"),
        ("sensor-{index:q}", "bad name pattern"),
        ("{index}" + "x" * 64, "CN must be 1–64"),
    ],
)
def test_bad_patterns(pattern, message):
    with pytest.raises(CertificateError, match=message):
        IdentitySpec(pattern)


def test_cache_key_depends_on_every_shaping_field():
    keys = {
        SPEC.cache_key("ca1"),
        SPEC.cache_key("ca2"),
        IdentitySpec("sensor-{index:04d}", SPEC.key_type, SPEC.subject, 30).cache_key("ca1"),
        IdentitySpec(SPEC.name_pattern, KeyType.EC_P384, SPEC.subject, 30).cache_key("ca1"),
        IdentitySpec(SPEC.name_pattern, SPEC.key_type, DeviceSubject(), 30).cache_key("ca1"),
        IdentitySpec(SPEC.name_pattern, SPEC.key_type, SPEC.subject, 31).cache_key("ca1"),
    }
    assert len(keys) == 6
    assert SPEC.cache_key("ca1") == IdentitySpec(
        "sensor-{index:05d}", KeyType.EC_P256, DeviceSubject(organization="Acme"), 30
    ).cache_key("ca1")


def test_generates_distinct_identities_issued_by_the_ca(intermediate_ca, now):
    identities = generate_identities(intermediate_ca, SPEC, 5, now=now, start=10)
    names = [identity.subject().common_name for identity in identities]
    assert names == [f"sensor-{i:05d}" for i in range(10, 15)]
    assert len({identity.private_key_pem for identity in identities}) == 5
    for identity in identities:
        assert is_issued_by(identity.certificate(), intermediate_ca.certificate)
        assert identity.chain_pems == intermediate_ca.chain_pems()
        assert identity.subject().organization == "Acme"
        assert KeyType.of(identity.private_key()) is KeyType.EC_P256


def test_zero_count(root_ca, now, tmp_path):
    result = build_identities(root_ca, SPEC, 0, now=now, cache_dir=tmp_path)
    assert result == BulkResult((), 0, 0, 0, cache_path_for(tmp_path, root_ca, SPEC))


@pytest.mark.parametrize(
    ("count", "workers", "message"),
    [(-1, 1, "must not be negative"), (1, 0, "workers must be at least 1")],
)
def test_bad_arguments(root_ca, now, count, workers, message):
    with pytest.raises(CertificateError, match=message):
        build_identities(root_ca, SPEC, count, now=now, workers=workers)


def test_expired_ca_is_refused(root_ca, now):
    with pytest.raises(CertificateError, match="CA certificate expired"):
        build_identities(root_ca, SPEC, 1, now=now + timedelta(days=4000))


def test_cache_reuse_returns_the_same_identities_fast(rsa_root_ca, now, tmp_path):
    spec = IdentitySpec("rsa-{index}", KeyType.RSA_2048, validity_days=5)
    began = time.perf_counter()
    cold = build_identities(rsa_root_ca, spec, 3, now=now, cache_dir=tmp_path)
    cold_seconds = time.perf_counter() - began
    began = time.perf_counter()
    warm = build_identities(rsa_root_ca, spec, 3, now=now + timedelta(hours=1), cache_dir=tmp_path)
    warm_seconds = time.perf_counter() - began
    assert (cold.generated, cold.reused) == (3, 0)
    assert cold.cache_path is not None
    assert (warm.generated, warm.reused, warm.rejected) == (0, 3, 0)
    assert warm.identities == cold.identities
    assert warm_seconds < cold_seconds / 5
    assert (
        cold.cache_path
        == tmp_path
        / rsa_root_ca.certificate_id[:16]
        / (spec.cache_key(rsa_root_ca.certificate_id)[:16])
    )
    assert sorted(p.name for p in cold.cache_path.iterdir()) == [
        "0.pem",
        "1.pem",
        "2.pem",
        "spec.json",
    ]


def test_cache_files_are_private(root_ca, now, tmp_path):
    result = build_identities(root_ca, SPEC, 1, now=now, cache_dir=tmp_path)
    assert result.cache_path is not None
    assert (result.cache_path / "0.pem").stat().st_mode & 0o777 == 0o600


def test_cache_grows_and_reuses_the_overlap(root_ca, now, tmp_path):
    first = build_identities(root_ca, SPEC, 3, now=now, cache_dir=tmp_path)
    second = build_identities(root_ca, SPEC, 5, now=now, cache_dir=tmp_path, start=1)
    assert (second.reused, second.generated) == (2, 3)
    assert second.identities[:2] == first.identities[1:]


def test_corrupted_or_partial_entries_are_regenerated(root_ca, now, tmp_path):
    first = build_identities(root_ca, SPEC, 6, now=now, cache_dir=tmp_path)
    entries = first.cache_path
    assert entries is not None
    whole = (entries / "0.pem").read_bytes()
    (entries / "0.pem").write_bytes(whole[: len(whole) // 2])  # partial write
    data = bytearray((entries / "1.pem").read_bytes())
    position = data.index(b"-----BEGIN PRIVATE KEY-----") + 40
    data[position] = ord("A") if data[position] != ord("A") else ord("B")  # a flipped byte
    (entries / "1.pem").write_bytes(bytes(data))
    (entries / "2.pem").write_bytes(b"garbage")
    (entries / "3.pem").write_bytes((entries / "4.pem").read_bytes())  # entry of another index
    (entries / "5.pem").write_bytes(whole.split(b"\n", 5)[5])  # header lost

    second = build_identities(root_ca, SPEC, 6, now=now, cache_dir=tmp_path)
    assert (second.generated, second.reused, second.rejected) == (5, 1, 5)
    assert second.identities[4] == first.identities[4]
    for index in (0, 1, 2, 3, 5):
        identity = second.identities[index]
        assert identity != first.identities[index]
        assert identity.subject().common_name == SPEC.common_name(index)
        assert is_issued_by(identity.certificate(), root_ca.certificate)
        identity.private_key()
    third = build_identities(root_ca, SPEC, 6, now=now, cache_dir=tmp_path)
    assert (third.generated, third.reused, third.rejected) == (0, 6, 0)
    assert third.identities == second.identities


def test_expired_entries_are_regenerated(root_ca, now, tmp_path):
    build_identities(root_ca, SPEC, 2, now=now, cache_dir=tmp_path)
    later = build_identities(root_ca, SPEC, 2, now=now + timedelta(days=31), cache_dir=tmp_path)
    assert (later.generated, later.rejected) == (2, 2)


def test_other_ca_with_the_same_name_does_not_share_the_cache(
    root_ca, other_root_ca, now, tmp_path
):
    first = build_identities(root_ca, SPEC, 2, now=now, cache_dir=tmp_path)
    other = build_identities(other_root_ca, SPEC, 2, now=now, cache_dir=tmp_path)
    assert other.generated == 2
    assert other.cache_path != first.cache_path
    for identity in other.identities:
        assert is_issued_by(identity.certificate(), other_root_ca.certificate)


def test_entries_copied_from_another_ca_are_rejected(root_ca, other_root_ca, now, tmp_path):
    first = build_identities(root_ca, SPEC, 1, now=now, cache_dir=tmp_path)
    target = cache_path_for(tmp_path, other_root_ca, SPEC)
    target.mkdir(parents=True)
    assert first.cache_path is not None
    (target / "0.pem").write_bytes((first.cache_path / "0.pem").read_bytes())
    other = build_identities(other_root_ca, SPEC, 1, now=now, cache_dir=tmp_path)
    assert (other.generated, other.rejected) == (1, 1)


@pytest.mark.parametrize("start_method", [None, "forkserver"])
def test_worker_processes(root_ca, now, tmp_path, start_method):
    result = build_identities(
        root_ca, SPEC, 9, now=now, workers=2, cache_dir=tmp_path, start_method=start_method
    )
    assert result.generated == 9
    names = [identity.subject().common_name for identity in result.identities]
    assert names == [SPEC.common_name(i) for i in range(9)]
    assert len({identity.certificate_id() for identity in result.identities}) == 9
    for identity in result.identities:
        assert is_issued_by(identity.certificate(), root_ca.certificate)
    again = build_identities(root_ca, SPEC, 9, now=now, workers=2, cache_dir=tmp_path)
    assert again.identities == result.identities
