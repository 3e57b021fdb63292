"""A running emulator per test module (with locally played pre-provisioning hooks), its boto3
control-plane client, a fleet template and a claim certificate made through that client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from fleet_sim.emulator.config import EmulatorConfig
from tests.integration.fleet_provisioning.support import (
    Identity,
    claim_policy,
    create_claim,
    create_template,
    device_policy,
    fleet_template,
    hook_arn,
    unique,
)
from tests.support.emulator_thread import EmulatorThread

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
#: The hook timeout of the test emulators (AWS: 5 s), so the timeout test is quick.
HOOK_TIMEOUT_S = 0.5


class Hooks:
    """The pre-provisioning handlers the test emulator plays, and what they were given."""

    ALLOW = hook_arn("allow")
    DENY = hook_arn("deny")
    RAISE = hook_arn("raise")
    SLOW = hook_arn("slow")
    OVERRIDE = hook_arn("override")
    MISSING = hook_arn("not-configured")

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.release = threading.Event()

    def handlers(self) -> dict[str, Any]:
        return {
            self.ALLOW: self._allow,
            self.DENY: self._deny,
            self.RAISE: self._raise,
            self.SLOW: self._slow,
            self.OVERRIDE: self._override,
        }

    def _allow(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append((event, context))
        return {"allowProvisioning": True}

    def _deny(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append((event, context))
        return {"allowProvisioning": False}

    def _raise(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("the hook broke")

    def _slow(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.release.wait(10)  # released by the fixture's teardown at the latest
        return {"allowProvisioning": True}

    def _override(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append((event, context))
        serial = event["parameters"]["SerialNumber"]
        return {
            "allowProvisioning": True,
            "parameterOverrides": {"SerialNumber": f"hooked-{serial}"},
        }


@pytest.fixture(autouse=True)
def _no_system_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # awscrt re-reads a system bundle named by these for every TLS context (slow); the
    # emulator's CA is given explicitly anyway.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    box = Hooks()
    yield box
    box.release.set()


def start_emulator(data_dir: Path, hooks: Hooks, **overrides: Any) -> EmulatorThread:
    settings: dict[str, Any] = {
        "pre_provisioning_hooks": hooks.handlers(),
        "pre_provisioning_hook_timeout_s": HOOK_TIMEOUT_S,
        "fleet_register_thing_tps": None,
        **overrides,
    }
    return EmulatorThread(EmulatorConfig(port=0, data_dir=data_dir, **settings))


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory, hooks: Hooks) -> Iterator[EmulatorThread]:
    with start_emulator(tmp_path_factory.mktemp("emulator"), hooks) as running:
        yield running


@pytest.fixture(scope="module")
def iot(emu: EmulatorThread) -> Any:
    return emu.emulator.boto3_client(config=NO_RETRIES)


@pytest.fixture(scope="module")
def device_policy_name(iot: Any) -> str:
    name = unique("device-policy")
    iot.create_policy(policyName=name, policyDocument=device_policy())
    return name


@pytest.fixture(scope="module")
def template(iot: Any, device_policy_name: str) -> str:
    return create_template(iot, fleet_template(device_policy_name))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identities")


@pytest.fixture(scope="module")
def claim(iot: Any, files: Path, template: str) -> Identity:
    return create_claim(iot, files, claim_policy(template))
