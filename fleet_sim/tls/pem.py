"""PEM framing: split text into its ``-----BEGIN X-----`` … ``-----END X-----`` blocks.

``cryptography`` loads one kind of object at a time; this module lets callers see what a file
actually holds (a key where a certificate was expected, a CSR, a bundle) and say so clearly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet_sim.errors import CertificateError

_BEGIN = b"-----BEGIN "
_DASHES = b"-----"


@dataclass(frozen=True, slots=True)
class PemBlock:
    """One PEM block.

    Attributes:
        label: the text between ``BEGIN`` and the dashes, e.g. ``CERTIFICATE``.
        text: the block from its BEGIN line to its END line, plus a final newline.
    """

    label: str
    text: bytes


def pem_blocks(data: bytes) -> list[PemBlock]:
    """Return the complete PEM blocks in ``data`` in order; text between blocks is skipped.

    A block whose END line is missing (a truncated file) is not returned.
    """
    blocks: list[PemBlock] = []
    position = 0
    while True:
        begin = data.find(_BEGIN, position)
        if begin < 0:
            return blocks
        label_end = data.find(_DASHES, begin + len(_BEGIN))
        newline = data.find(b"\n", begin)
        if label_end < 0 or (0 <= newline < label_end):
            return blocks
        label = data[begin + len(_BEGIN) : label_end]
        end_marker = b"-----END " + label + _DASHES
        end = data.find(end_marker, label_end)
        if end < 0:
            return blocks
        stop = end + len(end_marker)
        text = data[begin:stop].replace(b"\r\n", b"\n") + b"\n"
        blocks.append(PemBlock(label.decode("ascii", "replace"), text))
        position = stop


def describe_pem_labels(data: bytes) -> str:
    """A short phrase naming what ``data`` holds, for error messages ("a private key", …)."""
    labels = [block.label for block in pem_blocks(data)]
    if not labels:
        if not data.strip():
            return "nothing (empty file)"
        return "no PEM data" if b"-----BEGIN" not in data else "a truncated or malformed PEM block"
    if any(label.endswith("PRIVATE KEY") for label in labels):
        return "a private key"
    if any("CERTIFICATE REQUEST" in label for label in labels):
        return "a certificate signing request"
    if any(label.endswith("PUBLIC KEY") for label in labels):
        return "a public key"
    return " and ".join(sorted(set(labels))) + " PEM data"


def read_pem_file(path: Path | str, what: str) -> bytes:
    """Read ``path``, turning an ``OSError`` into a :class:`CertificateError` naming the file.

    Args:
        path: the file.
        what: what it should hold, for the message (``certificate``, ``CA private key``…).
    """
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {what}: {exc.strerror or exc}", file=path) from None
