"""Helpers shared by the virtual-bench tests (bench-file text, opening instruments)."""

from __future__ import annotations

import importlib.resources
import re
import sys

import numpy as np

from xbarlab.benches import board_of_size
from xbarlab.physics.solver import CrossbarSolver

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["count_solves", "embedded_text", "k707b_channel", "open_default_quiet",
           "open_instrument", "set_key", "small_board_text", "tomllib"]


def embedded_text(name: str) -> str:
    return importlib.resources.files("xbarlab.benches").joinpath(f"{name}.toml").read_text()


def set_key(text: str, key: str, value: str) -> str:
    """Replace the first ``key = ...`` line of a bench file with ``key = value``."""
    new, count = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", text, count=1)
    assert count == 1, key
    return new


def open_instrument(rm, address: str, termination: str = "\n"):
    return rm.open_resource(address, read_termination=termination, write_termination=termination)


def small_board_text(rows: int = 4, cols: int = 4) -> str:
    """The embedded board bench shrunk to a rows x cols board and chip (same wiring rule and
    name)."""
    return board_of_size(rows, cols, name="board")


def count_solves(monkeypatch) -> list[int]:
    """Wrap every circuit solve (``CrossbarSolver.solve``) so each call appends how many
    vectors it solved at once to the list returned (one entry per call into the solver)."""
    calls: list[int] = []
    solve = CrossbarSolver.solve

    def counted(self, v_row, v_col, **kwargs):
        calls.append(max(np.shape(v_row)[0] if np.ndim(v_row) == 2 else 1,
                         np.shape(v_col)[0] if np.ndim(v_col) == 2 else 1))
        return solve(self, v_row, v_col, **kwargs)

    monkeypatch.setattr(CrossbarSolver, "solve", counted)
    return calls


def k707b_channel(row: str, output: int) -> str:
    """The 707B crosspoint of matrix row `row` (A-H) and 1-based output `output` on 12-column
    cards: slot, row, column (e.g. ``1A01``)."""
    slot, col = divmod(output - 1, 12)
    return f"{slot + 1}{row}{col + 1:02d}"


def open_default_quiet(open_bench):
    """The embedded default bench without read noise: (first 2636B with 16-digit replies,
    707B, World)."""
    rm, lib = open_bench("default", read_noise="false")
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    smu.write("format.asciiprecision = 16")
    return smu, matrix, lib.world
