"""Embedded bench files (TOML), loaded by name through :func:`xbarlab.benchfile.load_bench`.

`board_of_size` writes the embedded ``board`` bench for another chip size, preset or virtual
truth, `with_sim` any bench's text with other ``[sim]`` settings (studies, tests and
benchmarks of virtual benches with chosen hidden values).
"""

from __future__ import annotations

import importlib.resources
import re

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
    """Bench-file `text` with its ``[sim]`` settings replaced or added from `sim`."""
    head, found_sim, section = text.partition("\n[sim]\n")
    if not found_sim:
        raise ValueError("the bench file has no [sim] section")
    for key, value in sim.items():
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        line = f"{key} = {shown}"
        section, found = re.subn(rf"(?m)^{re.escape(key)} = .*$", line, section)
        if not found:
            section = section.rstrip("\n") + f"\n{line}\n"
    return f"{head}\n[sim]\n{section}"
