"""Virtual benches with chosen hidden values for the calibration tests (written into the test's
tmp dir: each bench file is a fresh World), and the World behind an open one (tests may look
inside; protocols never do)."""

from __future__ import annotations

import pytest
from virtualbenches import world_of, write_matrix_bench

from xbarlab.benches import board_of_size, with_sim
from xbarlab.benchfile import load_bench


@pytest.fixture
def board_file(tmp_path):
    """Factory: a rows x cols board bench with `sim` settings, as a file path."""
    def make(rows, cols, name="board", preset="binary", **sim):
        path = tmp_path / f"{name}.toml"
        path.write_text(board_of_size(rows, cols, preset=preset, **sim))
        return path
    return make


@pytest.fixture
def matrix_file(tmp_path):
    """Factory: the embedded default matrix bench (32 x 32, four SMU channels and ground on a
    707B) with `sim` settings, as a file path."""
    def make(name="matrix", **sim):
        path = tmp_path / f"{name}.toml"
        path.write_text(with_sim(load_bench("default").text, **sim))
        return path
    return make


@pytest.fixture
def world():
    return world_of


@pytest.fixture
def small_matrix_file(tmp_path):
    """Factory: a size x size chip (size <= 12) on a 707B with two 2636B (four channels) and
    a ground input, with `sim` settings, as a file path."""
    def make(size, name="small-matrix", **sim):
        path = write_matrix_bench(tmp_path, size, size, seed=1, name=name,
                                  path_resistance=0.0)
        path.write_text(with_sim(path.read_text(), **sim))
        return path
    return make
