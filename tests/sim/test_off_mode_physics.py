"""The physics of output-off modes on the virtual bench: a read map on `default` with the
unselected lines parked on an SMU that stays off (the ``idle`` scheme) sees the sneak paths its
off mode makes, as the circuit says. ``zero`` holds every idle line at 0 V through its path
resistance; ``high_z`` opens the output relay, and the matrix input still joins the idle lines:
one floating node. Each reading is compared with the crossbar solver fed the World's true
conductances and parasitics, the floating node's voltage found independently (the net current
into it is zero)."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import pyvisa
from scipy.optimize import brentq

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

V_READ = 0.2
CELLS = "0-1,0-3"  # eight cells of the 32 x 32 default chip
PRINTED = 1e-5
"""Relative resolution of a reading: the 2636B prints six significant digits."""


def default_bench(tmp_path, off_mode: str):
    """`default` with smu2 (the SMU the reads leave free) in `off_mode`, read noise off."""
    text = importlib.resources.files("xbarlab.benches").joinpath("default.toml").read_text()
    text = text.replace('model = "2636B"\naddress = "GPIB0::27::INSTR"',
                        f'model = "2636B"\naddress = "GPIB0::27::INSTR"\noff_mode = "{off_mode}"')
    text = text.replace("read_noise = true", "read_noise = false")
    path = tmp_path / f"default-{off_mode}.toml"
    path.write_text(text)
    return path


def read_map(path, store, scheme="idle"):
    """(measured conductance map, the World) of a read map of CELLS at V_READ."""
    with RunStore(store) as runs, open_bench(str(path)) as bench:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        run = runs.start_run("read-map", {}, bench.spec.text, shape=(bench.rows, bench.cols))
        with run:
            metrics = get_protocol("read-map")(bench, run, Progress(show=False),
                                               v_read=V_READ, scheme=scheme, cells=CELLS)
        assert metrics["cells_in_compliance"] == 0
        return run.latest_map("conductance"), world


def predicted(world, row: int, col: int, idle: str) -> float:
    """The sensed column current the circuit gives for cell (row, col): the selected row at
    V_READ and the selected column at 0 V through their path resistances; every other line
    through its path resistance to 0 V (``zero``), to one floating node (``high_z``) or to
    nothing (``float``)."""
    sim, array = world.sim, world.array
    rows, cols = array.shape

    def solve(v_idle: float):
        v_row, v_col = np.full(rows, v_idle), np.full(cols, v_idle)
        v_row[row], v_col[col] = V_READ, 0.0
        return array.solve(v_row, v_col, r_source=np.full(rows, sim.r_path_row),
                           r_sense=np.full(cols, sim.r_path_col), read_noise=False)

    if idle == "zero":
        return float(solve(0.0).i_col[col])
    if idle == "float":
        return float(solve(np.nan).i_col[col])
    others_row = np.arange(rows) != row
    others_col = np.arange(cols) != col

    def into_node(v_node: float) -> float:  # current the idle lines take from the node
        sol = solve(v_node)
        return float(sol.i_row[others_row].sum() - sol.i_col[others_col].sum())

    return float(solve(brentq(into_node, 0.0, V_READ, xtol=1e-15)).i_col[col])


def test_idle_lines_on_an_smu_in_high_z_or_zero_see_the_sneak_paths_the_circuit_gives(tmp_path):
    measured, truths = {}, {}
    for mode in ("zero", "high_z"):
        conductance, world = read_map(default_bench(tmp_path, mode), tmp_path / "store")
        expected = np.full(conductance.shape, np.nan)
        for row, col in zip(*np.nonzero(np.isfinite(conductance)), strict=True):
            expected[row, col] = predicted(world, row, col, mode) / V_READ
        read = np.isfinite(conductance)
        assert read.sum() == 8
        np.testing.assert_allclose(conductance[read], expected[read], rtol=PRINTED)
        measured[mode], truths[mode] = conductance[read], world.conductance()[read]
    # held at 0 V, an idle line takes no sneak current to the sensed column: the cell alone
    # (up to wire and path drops); floating together, the sneak paths add current
    assert np.abs(measured["zero"] / truths["zero"] - 1).max() < 0.05
    excess = measured["high_z"] / measured["zero"] - 1
    assert excess.min() > 0.05


def test_lines_floating_together_differ_from_lines_floating_alone(tmp_path):
    """``high_z`` joins the idle lines on the matrix input; the ``float`` scheme opens their
    relays, every line floating on its own: both as the circuit says, and not the same."""
    path = default_bench(tmp_path, "high_z")
    together, world = read_map(path, tmp_path / "store")
    alone, world_alone = read_map(path, tmp_path / "store", scheme="float")
    read = np.isfinite(together)
    for row, col in zip(*np.nonzero(read), strict=True):
        assert alone[row, col] * V_READ == pytest.approx(
            predicted(world_alone, row, col, "float"), rel=PRINTED)
    assert np.abs(together[read] / alone[read] - 1).max() > 1e-3
