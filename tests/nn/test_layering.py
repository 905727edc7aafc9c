"""xbarlab.nn is core: it imports no driver, no simulator, no physics, no protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import xbarlab.nn

FORBIDDEN = ("xbarlab.drivers", "xbarlab.sim_instruments", "xbarlab.physics",
             "xbarlab.protocols", "pyvisa")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nn_modules_import_nothing_below_or_above_the_core():
    files = sorted(Path(xbarlab.nn.__file__).parent.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        bad = [name for name in imported_modules(path) if name.startswith(FORBIDDEN)]
        assert bad == [], f"{path.name} imports {bad}"
