"""The README's links point at files inside the repository (the architecture notes included)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_readme_links_stay_inside_the_repository_and_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
               if not target.startswith(("http://", "https://", "#"))]
    assert "docs/ARCHITECTURE.md" in targets
    for target in targets:
        path = (ROOT / target.split("#")[0]).resolve()
        assert ROOT in path.parents and path.exists(), target
    assert "../" not in text  # no reference to anything outside the repository


def test_pyvisa_default_terminations_reach_the_virtual_instruments():
    import pyvisa

    manager = pyvisa.ResourceManager("@xbarsim")
    for address in manager.list_resources():
        if "ASRL" in address:
            continue  # the array board's firmware takes exactly one LF (drivers/array_board.md)
        resource = manager.open_resource(address)
        assert resource.write_termination == "\r\n"  # pyvisa's defaults, unchanged
        assert resource.read_termination is None
        assert resource.query("*IDN?").strip(), address
        resource.close()


def test_the_drivers_readme_example_reads_the_cell_it_connects():
    text = (ROOT / "drivers" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(example, "drivers/README.md", "exec"), scope)
    reading, readings = scope["reading"], scope["readings"]
    assert not reading.compliance and not any(r.compliance for r in readings)
    g = -reading.current / 0.2
    assert 1e-7 < g < 1e-3  # a crossbar cell's conductance, not a compliance limit
    assert len(readings) == 200
    assert abs(np.mean([r.current for r in readings]) - reading.current) < 0.05 * abs(
        reading.current)
