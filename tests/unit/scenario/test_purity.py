"""The scenario package is pure: no event loop, sockets, TLS or clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "fleet_sim" / "scenario"
FORBIDDEN = {"asyncio", "socket", "ssl", "selectors", "threading", "time", "uvloop", "datetime"}
#: only the loader reads files and the environment
IO_MODULES = {"os", "pathlib"}
ALLOWED_IO = {"load.py": {"os", "pathlib"}, "model_types.py": {"pathlib"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_module_imports_no_io(path):
    imports = _imports(path)
    assert not imports & FORBIDDEN
    assert imports & IO_MODULES <= ALLOWED_IO.get(path.name, set())


def test_nothing_evaluates_user_text():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & {"eval", "exec", "compile", "__import__"}, path.name
