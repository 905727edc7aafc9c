"""Helpers of the reliability tests: bench files written next to the test (each path its own
virtual bench), the World behind one (only to check what reached the instruments), and faults."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

BENCHES = ("default", "keysight", "classic", "board")
"""The embedded benches with every kind of instrument: 2636B + 707B, B2902B + E5250A,
2400 + 2450 + 707B, array board."""


def embedded_text(name: str) -> str:
    return importlib.resources.files("xbarlab.benches").joinpath(f"{name}.toml").read_text()


def set_key(text: str, key: str, value: str, section: str = "") -> str:
    """Replace the first ``key = ...`` line (after ``[section]`` when given) with
    ``key = value``."""
    start = text.index(f"[{section}]") if section else 0
    new, count = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", text[start:],
                         count=1)
    assert count == 1, key
    return text[:start] + new


def small_text(name: str, rows: int = 4, cols: int = 4) -> str:
    """Embedded bench `name` cut to a rows x cols chip on the same instruments (lines 0.. on
    the first outputs of each wiring group), so the World solves a small circuit."""
    text = embedded_text(name)
    groups = re.findall(
        r'lines = "(row|col):0-(\d+)"\ninstrument = "(\w+)"\noutputs = "(\d+)-(\d+)"', text)
    for kind, last, instrument, first, end in groups:
        size = rows if kind == "row" else cols
        old = f'lines = "{kind}:0-{last}"\ninstrument = "{instrument}"\noutputs = "{first}-{end}"'
        new = (f'lines = "{kind}:0-{size - 1}"\ninstrument = "{instrument}"\n'
               f'outputs = "{first}-{int(first) + size - 1}"')
        text = text.replace(old, new)
    text = set_key(text, "rows", str(rows), "chip")
    return set_key(text, "cols", str(cols), "chip")


def write_bench(folder: Path, text: str, stem: str = "bench") -> Path:
    path = folder / f"{stem}.toml"
    path.write_text(text)
    return path


def fault(instrument: str, kind: str, **fields) -> str:
    """A ``[[sim.faults]]`` table."""
    body = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in fields.items())
    return f'\n[[sim.faults]]\ninstrument = "{instrument}"\nkind = "{kind}"\n{body}'
