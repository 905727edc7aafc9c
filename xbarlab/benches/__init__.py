"""Embedded bench files (TOML), loaded by name through :func:`xbarlab.benchfile.load_bench`.

`board_of_size` writes the embedded ``board`` bench for another chip size, preset or virtual
truth, `with_sim_values` (`with_sim` with keywords) any bench's text with other ``[sim]``
settings: a campaign's task variants, and studies, tests and benchmarks of virtual benches
with chosen hidden values. Each result is a complete, readable bench file that a run store
keeps with its run, so re-running from that text gives the same chip.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from typing import Any

from xbarlab.benchfile import BenchFileError

_BOARD_LINES = {
    "rows = 128\ncols = 128\n\n[wiring]": "rows = {rows}\ncols = {cols}\n\n[wiring]",
    'lines = "row:0-127"': 'lines = "row:0-{last_row}"',
    'outputs = "1-128"': 'outputs = "1-{rows}"',
    'lines = "col:0-127"': 'lines = "col:0-{last_col}"',
    'outputs = "129-256"': 'outputs = "{first_col}-{last_channel}"',
    "[chip]\nrows = 128\ncols = 128": "[chip]\nrows = {rows}\ncols = {cols}",
    'preset = "binary"': 'preset = "{preset}"',
    'name = "board"': 'name = "{name}"',
}


def board_of_size(rows: int, cols: int, *, preset: str = "binary", name: str = "",
                  **sim: float | int | bool) -> str:
    """The embedded ``board`` bench's text for a rows x cols chip of `preset` on a board of
    that size, its ``[sim]`` settings replaced or added from `sim` (``seed``,
    ``r_path_row``, ``r_path_spread``, ...); the bench is named `name` (default
    ``board-<rows>x<cols>``). The text is checked as any bench file when it is loaded."""
    text = importlib.resources.files(__name__).joinpath("board.toml").read_text("utf-8")
    values = {"rows": rows, "cols": cols, "last_row": rows - 1, "last_col": cols - 1,
              "first_col": rows + 1, "last_channel": rows + cols, "preset": preset,
              "name": name or f"board-{rows}x{cols}"}
    for old, new in _BOARD_LINES.items():
        if old not in text:
            raise ValueError(f"the embedded board bench has no {old!r} to replace")
        text = text.replace(old, new.format(**values))
    return with_sim(text, **sim)


def with_sim(text: str, **sim: float | int | bool) -> str:
    """Bench-file `text` with its ``[sim]`` settings replaced or added from `sim`
    (`with_sim_values`)."""
    return with_sim_values(text, sim)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def toml_value(value: Any) -> str:
    """`value` (a bool, number or string) as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"{value!r}: allowed a bool, a number or a string")


def with_sim_values(text: str, values: dict[str, Any], origin: str = "bench") -> str:
    """Bench-file `text` with each ``[sim]`` setting of `values` set (replaced where the file
    has it, added after the ``[sim]`` header otherwise). A bench without ``[sim]`` (a real
    bench) has nothing to vary: BenchFileError."""
    if not values:
        return text
    lines = text.splitlines()
    headers = [(k, match.group(1)) for k, line in enumerate(lines)
               if (match := _HEADER.match(line))]
    start = next((k for k, name in headers if name == "sim" and "[[" not in lines[k]), None)
    if start is None:
        raise BenchFileError(f"bench file {origin}: has no [sim] section, so "
                             f"{', '.join(f'sim.{key}' for key in values)} cannot vary; "
                             "allowed: sim.* values on virtual benches only")
    end = next((k for k, _ in headers if k > start), len(lines))
    for key, value in values.items():
        line = f"{key} = {toml_value(value)}"
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        found = next((k for k in range(start + 1, end) if pattern.match(lines[k])), None)
        if found is None:
            lines.insert(start + 1, line)
            end += 1
        else:
            lines[found] = line
    return "\n".join(lines) + "\n"
