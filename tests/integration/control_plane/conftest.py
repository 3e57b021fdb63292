"""A running emulator per test module and a real boto3 client for its control plane."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config

from fleet_sim.emulator.config import EmulatorConfig
from tests.support.emulator_thread import EmulatorThread

#: No retries: a test that expects an error must see the first answer.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with EmulatorThread(EmulatorConfig(port=0, data_dir=data_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def iot(emu: EmulatorThread) -> Any:
    return emu.emulator.boto3_client(config=NO_RETRIES)
