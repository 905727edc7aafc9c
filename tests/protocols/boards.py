"""Small array-board benches for the protocol tests: the embedded ``board`` bench shrunk."""

from __future__ import annotations

from pathlib import Path

from xbarlab.benches import board_of_size


def write_board(directory: Path, size: int, seed: int, **sim) -> Path:
    """The embedded board bench shrunk to a size x size board and chip (binary preset), with
    `seed` and any other ``[sim]`` values; each written to its own file (a fresh World)."""
    suffix = "".join(f"-{key}{value}" for key, value in sim.items())
    path = directory / f"board-{size}-{seed}{suffix}.toml"
    path.write_text(board_of_size(size, size, seed=seed, **sim))
    return path
