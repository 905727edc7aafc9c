"""Fixtures for the protocol tests: small virtual benches written into the test's tmp dir, and a
runner that plays a registered protocol on one with a fresh run store.

Test modules reach the helpers through fixtures (``bench_file``, ``run_named``,
``stop_after``). Each bench file lives at its own tmp path and each opening of it builds a
fresh World (closing a bench drops the ``@xbarsim`` backend), so runs never share state. Tests
look inside the World for the truth (``Outcome.before`` and ``Outcome.world``); protocols
never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

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
path_resistance = 2.0

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
pristine = {pristine}
"""


def write_bench(directory: Path, rows: int = 8, cols: int = 8, smus: int = 2,
                preset: str = "binary", seed: int = 7, defects: bool = True,
                read_noise: bool = True, pristine: bool = False,
                masked: str = "[]", name: str = "bench") -> Path:
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
        preset=preset, seed=seed, defects=str(defects).lower(),
        read_noise=str(read_noise).lower(), pristine=str(pristine).lower(), masked=masked,
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


@dataclass
class Outcome:
    """What a protocol returned, its run, and the World it ran on: ``before`` is the true
    conductance map when the protocol started, ``world`` the World as the protocol left it."""

    metrics: dict
    run_id: int
    store: Path
    before: np.ndarray
    world: object


class StopAfter(Progress):
    """A progress that raises KeyboardInterrupt after `steps` steps (an interrupted run)."""

    def __init__(self, steps: int):
        super().__init__(show=False)
        self.left = steps

    def advance(self, steps: int = 1) -> None:
        super().advance(steps)
        self.left -= steps
        if self.left <= 0:
            raise KeyboardInterrupt


def run_protocol(name: str, bench_path, store_dir: Path, progress: Progress | None = None,
                 resume: int | None = None, **params) -> Outcome:
    """Play protocol `name` on the bench as ``xbarlab run`` does (a new run, or `resume` one);
    an interrupt leaves the run aborted and re-raises."""
    protocol = get_protocol(name)
    with RunStore(store_dir) as store:
        with open_bench(str(bench_path)) as bench:
            world = world_of(bench_path)
            before = world.conductance().copy()
            run = (store.resume(resume) if resume is not None else
                   store.start_run(name, params, bench.spec.text, shape=(bench.rows, bench.cols)))
            with run:
                metrics = protocol(bench, run, progress or Progress(show=False), **params)
        return Outcome(dict(metrics), run.run_id, store_dir, before, world)


@pytest.fixture
def bench_file(tmp_path):
    """Factory: ``bench_file(**write_bench options)`` -> path of a fresh bench in tmp_path."""
    return lambda **options: write_bench(tmp_path, **options)


@pytest.fixture(scope="session")
def run_named():
    """`run_protocol` as a fixture (test modules cannot import this conftest by name); session
    scoped, so module-scoped fixtures can run protocols too."""
    return run_protocol


@pytest.fixture(scope="session")
def stop_after():
    """`StopAfter` as a fixture."""
    return StopAfter
