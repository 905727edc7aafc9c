"""Small array-board benches for the protocol tests: the embedded ``board`` bench shrunk."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from xbarlab.campaign.variants import with_sim_values


def write_board(directory: Path, size: int, seed: int, **sim) -> Path:
    """The embedded board bench shrunk to a size x size board and chip (binary preset), with
    `seed` and any other ``[sim]`` values; each written to its own file (a fresh World)."""
    text = importlib.resources.files("xbarlab.benches").joinpath("board.toml").read_text()
    for old, new in (
        ("rows = 128\ncols = 128\n", f"rows = {size}\ncols = {size}\n"),
        ('lines = "row:0-127"', f'lines = "row:0-{size - 1}"'),
        ('outputs = "1-128"', f'outputs = "1-{size}"'),
        ('lines = "col:0-127"', f'lines = "col:0-{size - 1}"'),
        ('outputs = "129-256"', f'outputs = "{size + 1}-{2 * size}"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    text = with_sim_values(text, {"seed": seed, **sim})
    suffix = "".join(f"-{key}{value}" for key, value in sim.items())
    path = directory / f"board-{size}-{seed}{suffix}.toml"
    path.write_text(text)
    return path
