"""The failure taxonomy: stable names, agreement with errors.py, descriptions."""

from __future__ import annotations

import pytest

from fleet_sim.errors import (
    ConnectionFailed,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    OperationRejected,
    OperationTimeout,
    TlsHandshakeFailed,
)
from fleet_sim.metrics.failures import Failure, FailureKind, describe_failure


@pytest.mark.parametrize(
    ("failure", "name"),
    [
        (Failure.dns(), "dns"),
        (Failure.tcp_refused(), "tcp_refused"),
        (Failure.tcp_timeout(), "tcp_timeout"),
        (Failure.tls_handshake_failed(), "tls_handshake_failed"),
        (Failure.tls_cert_rejected(), "tls_cert_rejected"),
        (Failure.closed_before_connack(), "closed_before_connack"),
        (Failure.connack_refused(0x87), "connack_refused:135"),
        (Failure.connack_refused(5), "connack_refused:5"),
        (Failure.connect_timeout(), "connect_timeout"),
        (Failure.keepalive_timeout(), "keepalive_timeout"),
        (Failure.disconnected_by_server(0x8E), "disconnected_by_server:142"),
        (Failure.suback_failure(), "suback_failure"),
        (Failure.suback_failure(0x80), "suback_failure:128"),
        (Failure.puback_failure(0x87), "puback_failure:135"),
        (Failure.publish_timeout(), "publish_timeout"),
        (Failure.throttled(), "throttled"),
    ],
)
def test_named_constructors_give_the_stable_names(failure: Failure, name: str) -> None:
    assert failure.name == name
    assert str(failure) == name
    assert Failure.parse(name) == failure


@pytest.mark.parametrize(
    "error",
    [
        ConnectRefused("refused", reason_code=0x87),
        OperationRejected("nope", operation="puback", reason_code=0x87),
        OperationTimeout("late", operation="publish"),
        ConnectTimeout("late", phase="mqtt"),
        TlsHandshakeFailed("bad", phase="tls"),
        ConnectionFailed("refused", phase="tcp", failure="tcp_refused"),
        ConnectionLost("bye", reason_code=0x8E, failure="disconnected_by_server:142"),
    ],
)
def test_errors_failure_names_are_valid_and_agree(error: Exception) -> None:
    failure = Failure.of(error)
    assert failure.name == error.failure  # type: ignore[attr-defined]


def test_errors_and_constructors_agree_on_the_names_both_produce() -> None:
    assert Failure.of(ConnectRefused("x", reason_code=0x87)) == Failure.connack_refused(0x87)
    rejected = OperationRejected("x", operation="puback", reason_code=0x97)
    assert Failure.of(rejected) == Failure.puback_failure(0x97)
    assert Failure.of(OperationTimeout("x", operation="publish")) == Failure.publish_timeout()
    assert Failure.of(ConnectTimeout("x", phase="tls")) == Failure.connect_timeout()
    assert Failure.of(TlsHandshakeFailed("x", phase="tls")) == Failure.tls_handshake_failed()


def test_a_foreign_exception_is_named_error() -> None:
    assert Failure.of(OSError("boom")).name == "error"


@pytest.mark.parametrize("bad", ["", "Tcp", "1dns", "connack_refused:", "a b", "x:y:z", "x:<b>"])
def test_malformed_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a failure name"):
        Failure.parse(bad)


@pytest.mark.parametrize("code", [-1, 256])
def test_reason_codes_must_be_bytes(code: int) -> None:
    with pytest.raises(ValueError, match="byte"):
        Failure.connack_refused(code)


def test_kind_and_detail_split() -> None:
    failure = Failure.parse("disconnected_by_server:142")
    assert (failure.kind, failure.detail) == ("disconnected_by_server", "142")
    assert Failure.parse("throttled").detail is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("connack_refused:135", "CONNACK refused: 0x87 not authorized"),
        ("connack_refused:5", "CONNACK refused: 5 not authorized"),  # MQTT 3.1.1 return code
        ("disconnected_by_server:142", "server sent DISCONNECT: 0x8e session taken over"),
        ("puback_failure:151", "PUBACK with a failure code: 0x97 quota exceeded"),
        ("tcp_refused", "TCP connection refused"),
        ("provisioning_rejected:InvalidPayload", "provisioning request rejected: InvalidPayload"),
        ("made_up_kind", "made_up_kind"),
        ("not a name", "not a name"),
    ],
)
def test_descriptions(name: str, text: str) -> None:
    assert describe_failure(name) == text


def test_every_kind_has_a_description() -> None:
    for kind in FailureKind:
        assert kind.description
