"""Shared test fixtures and helpers."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    """Path of an external program a test needs (mosquitto, openssl …).

    Locally a missing program skips the test; in CI (``FLEETSIM_REQUIRE_INTEROP=1``) it fails,
    so a broken install step cannot hide behind skips.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install mosquitto mosquitto-clients openssl)"
        if os.environ.get("FLEETSIM_REQUIRE_INTEROP") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
