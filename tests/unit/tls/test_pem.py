from __future__ import annotations

import pytest

from fleet_sim.errors import CertificateError
from fleet_sim.tls.pem import describe_pem_labels, pem_blocks, read_pem_file

CERT = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----\n"


def test_splits_blocks_in_order_skipping_text():
    data = b"Bag Attributes\n" + CERT + b"between\n" + KEY
    blocks = pem_blocks(data)
    assert [b.label for b in blocks] == ["CERTIFICATE", "PRIVATE KEY"]
    assert blocks[0].text == CERT
    assert blocks[1].text == KEY


def test_crlf_is_normalised_and_missing_final_newline_added():
    blocks = pem_blocks(CERT.replace(b"\n", b"\r\n").rstrip())
    assert blocks[0].text == CERT


def test_truncated_block_is_dropped():
    assert [b.label for b in pem_blocks(CERT + KEY[:40])] == ["CERTIFICATE"]


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "nothing (empty file)"),
        (b"garbage", "no PEM data"),
        (KEY[:40], "a truncated or malformed PEM block"),
        (KEY, "a private key"),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nQQ==\n-----END CERTIFICATE REQUEST-----\n",
            "a certificate signing request",
        ),
        (b"-----BEGIN PUBLIC KEY-----\nQQ==\n-----END PUBLIC KEY-----\n", "a public key"),
        (b"-----BEGIN X509 CRL-----\nQQ==\n-----END X509 CRL-----\n", "X509 CRL PEM data"),
    ],
)
def test_describe_labels(data, phrase):
    assert describe_pem_labels(data) == phrase


def test_read_pem_file_names_the_file(tmp_path):
    with pytest.raises(CertificateError, match=f"^{tmp_path / 'nope'}: cannot read CSR: "):
        read_pem_file(tmp_path / "nope", "CSR")
