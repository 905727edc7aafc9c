"""Virtual benches with chosen hidden values for the calibration tests (written into the test's
tmp dir: each bench file is a fresh World), and the World behind an open one (tests may look
inside; protocols never do)."""

from __future__ import annotations

import pytest
import pyvisa

from xbarlab.benches import board_of_size, with_sim
from xbarlab.benchfile import load_bench


def world_of(bench_path):
    """The World behind a virtual bench file while a bench on it is open."""
    return pyvisa.ResourceManager(f"{bench_path}@xbarsim").visalib.world


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


_MATRIX = """
[bench]
name = "{name}"

[instruments.smu]
driver = "keithley2600"
model = "2636B"
address = "GPIB0::26::INSTR"
backend = "@xbarsim"

[instruments.smu2]
driver = "keithley2600"
model = "2636B"
address = "GPIB0::27::INSTR"
backend = "@xbarsim"

[instruments.matrix]
driver = "keithley707b"
model = "707B"
address = "GPIB0::18::INSTR"
backend = "@xbarsim"
cards = 2

[wiring.inputs.matrix]
A = "smu.a"
B = "smu.b"
C = "smu2.a"
D = "smu2.b"
H = "ground"

[[wiring.lines]]
lines = "row:0-{last}"
instrument = "matrix"
outputs = "1-{size}"

[[wiring.lines]]
lines = "col:0-{last}"
instrument = "matrix"
outputs = "13-{last_col}"

[chip]
rows = {size}
cols = {size}

[limits]
max_voltage = 5.0
max_compliance = 0.01
max_pulse_width = 1.0
max_energy = 1e-3

[idle]
mode = "ground"

[sim]
seed = 1
"""


@pytest.fixture
def small_matrix_file(tmp_path):
    """Factory: a size x size chip (size <= 12) on a 707B with two 2636B (four channels) and
    a ground input, with `sim` settings, as a file path."""
    def make(size, name="small-matrix", **sim):
        path = tmp_path / f"{name}.toml"
        text = _MATRIX.format(name=name, size=size, last=size - 1, last_col=12 + size)
        path.write_text(with_sim(text, **sim))
        return path
    return make
