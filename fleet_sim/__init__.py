"""fleetsim: load-test and verify AWS IoT device onboarding and fleet behaviour.

The package is layered in three rings (see ``docs/architecture.md``): a pure core with no
asyncio or sockets (``mqtt``, ``tls`` helpers, AWS rules, scenario model, statistics), thin
asyncio drivers, and edges (CLI, reports).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
