"""The policy package is pure: it imports no asyncio, socket or ssl."""

from __future__ import annotations

import subprocess
import sys


def test_policy_package_imports_no_io_modules() -> None:
    code = (
        "import sys; import fleet_sim.policy, fleet_sim.policy.authorizer; "
        "bad = sorted({'asyncio', 'socket', 'ssl'} & set(sys.modules)); print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
