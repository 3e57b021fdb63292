"""Import contracts: the pure core never imports I/O, and nothing imports the edges.

Checked statically by parsing every module, so a forbidden import fails here even if it sits
in a branch no other test executes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fleet_sim"

#: Packages that form the pure core: no event loop, no sockets, no TLS I/O, no clock reads.
PURE_PACKAGES = ("mqtt", "policy", "provisioning")
FORBIDDEN_IN_PURE = {"asyncio", "socket", "ssl", "selectors", "threading", "time", "uvloop"}

#: Nobody below the edges imports the CLI or locust.
EDGE_MODULES = {"fleet_sim.cli", "locust", "gevent"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules_under(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


@pytest.mark.parametrize("sub", PURE_PACKAGES)
def test_pure_core_does_no_io(sub: str) -> None:
    offenders = []
    for path in _modules_under(sub):
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN_IN_PURE:
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_only_edges_import_edges() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if rel.parts[1] in {"cli", "integrations"} or rel.name == "__main__.py":
            continue
        for name in _imports(path):
            if any(name == edge or name.startswith(edge + ".") for edge in EDGE_MODULES):
                offenders.append(f"{rel} imports {name}")
    assert not offenders, "\n".join(offenders)
