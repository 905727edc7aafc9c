"""Virtual benches for the tests: small switch-matrix bench files written into a test's tmp
dir (each file a fresh World), and the World behind an open one (tests may look inside;
protocols never do). A module of its own at the top of tests/ so that every test folder
imports the same one (a conftest cannot be imported by name)."""

from __future__ import annotations

from pathlib import Path

import pyvisa

_SMU = """
[instruments.{name}]
driver = "keithley2600"
model = "2636B"
address = "GPIB0::{address}::INSTR"
backend = "@xbarsim"
"""

_BENCH = """
[bench]
name = "test-{rows}x{cols}"
description = "{smus} x 2636B + 707B, {rows}x{cols} passive crossbar (protocol tests)"
{smu_tables}
[instruments.matrix]
driver = "keithley707b"
model = "707B"
address = "GPIB0::18::INSTR"
backend = "@xbarsim"
cards = {cards}

[wiring]
path_resistance = {path_resistance}

[wiring.inputs.matrix]
{inputs}
H = "ground"

[[wiring.lines]]
lines = "row:0-{last_row}"
instrument = "matrix"
outputs = "1-{rows}"

[[wiring.lines]]
lines = "col:0-{last_col}"
instrument = "matrix"
outputs = "{first_col_output}-{last_col_output}"

[chip]
rows = {rows}
cols = {cols}
device = "passive"
preset = "{preset}"
masked = {masked}

[limits]
max_voltage = 5.0
max_compliance = 0.01
max_pulse_width = 1.0
max_energy = 1e-3

[idle]
mode = "ground"

[sim]
seed = {seed}
r_wire_row = 1.0
r_wire_col = 1.0
r_path_row = 2.0
r_path_col = 2.0
defects = {defects}
read_noise = {read_noise}
{harder_read_noise}pristine = {pristine}
"""


def write_matrix_bench(directory: Path, rows: int = 8, cols: int = 8, smus: int = 2,
                       preset: str = "binary", seed: int = 7, defects: bool = True,
                       read_noise: bool = True, harder_read_noise: bool = False,
                       pristine: bool = False,
                       masked: str = "[]", name: str = "bench",
                       path_resistance: float = 2.0) -> Path:
    """A matrix bench file: `smus` 2636B units (two channels each) and a 707B with the rows on
    the first outputs and the columns on the next card(s); written to ``<name>.toml`` (a new
    name is a new World)."""
    channels = [f"{'smu' if k == 0 else f'smu{k + 1}'}.{ch}" for k in range(smus)
                for ch in "ab"]
    inputs = "\n".join(f'{label} = "{terminal}"' for label, terminal in zip("ABCDEFG", channels,
                                                                            strict=False))
    row_cards = -(-rows // 12)
    cards = row_cards + -(-cols // 12)
    first_col = row_cards * 12 + 1
    text = _BENCH.format(
        rows=rows, cols=cols, smus=smus, cards=cards, inputs=inputs, last_row=rows - 1,
        last_col=cols - 1, first_col_output=first_col, last_col_output=first_col + cols - 1,
        path_resistance=path_resistance, preset=preset, seed=seed,
        defects=str(defects).lower(),
        read_noise=str(read_noise).lower(),
        harder_read_noise="harder_read_noise = true\n" if harder_read_noise else "",
        pristine=str(pristine).lower(), masked=masked,
        smu_tables="".join(_SMU.format(name="smu" if k == 0 else f"smu{k + 1}", address=26 + k)
                           for k in range(smus)),
    )
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def world_of(bench_path: Path | str):
    """The World behind a virtual bench file while a bench on it is open (tests only; closing
    the bench drops the backend, and the next opening builds a fresh World)."""
    return pyvisa.ResourceManager(f"{bench_path}@xbarsim").visalib.world


def _spec_row(model: str, current: float) -> list[float] | None:
    """[range, resolution, % of reading, offset] of the range `model` autoranges to for
    `current` (A), read from the specification table the virtual meters report through
    (``measurement_specs.toml``); None for a model without a table."""
    import importlib.resources
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    specs = tomllib.loads(importlib.resources.files("xbarlab.sim_instruments").joinpath(
        "measurement_specs.toml").read_text())
    for table in specs.values():
        if model in table["models"] and table["current"]:
            ranges = [row for row in table["current"] if row[0] >= abs(current)]
            return ranges[0] if ranges else table["current"][-1]
    return None


def reading_quantum(model: str, current: float) -> float:
    """Half the resolution of the range `model` reads `current` on: how far a noise-free
    reading can be from the current the circuit carries (0 without a table)."""
    row = _spec_row(model, current)
    return 0.0 if row is None else row[1] / 2


def reading_sigma(model: str, current: float) -> float:
    """Standard deviation of the meter's error of one reading of `current` at 1 NPLC: the
    sheet's accuracy (% of reading + offset) read as 3 sigma (0 without a table or figure)."""
    row = _spec_row(model, current)
    if row is None or row[2] != row[2]:  # NaN: no figure for that range
        return 0.0
    return (row[2] / 100 * abs(current) + row[3]) / 3
