"""The embedded ``analog`` bench cut to a small chip, for the write-verify tests (a small board
programs in seconds; the device model keeps the preset's cited noise, nonlinearity and
relaxation)."""

from __future__ import annotations

from pathlib import Path

from xbarlab.benchfile import load_bench


def analog_block(directory: Path, rows: int, cols: int, seed: int, name: str) -> Path:
    """The embedded analog bench cut to a rows x cols chip on a board of that size, with its own
    seed, written to ``<directory>/<name>.toml`` (a new name is a new World)."""
    text = load_bench("analog").text
    for old, new in {"rows = 32": f"rows = {rows}", "cols = 32": f"cols = {cols}",
                     'lines = "row:0-31"': f'lines = "row:0-{rows - 1}"',
                     'outputs = "1-32"': f'outputs = "1-{rows}"',
                     'lines = "col:0-31"': f'lines = "col:0-{cols - 1}"',
                     'outputs = "33-64"': f'outputs = "{rows + 1}-{rows + cols}"',
                     "seed = 4032": f"seed = {seed}"}.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path
