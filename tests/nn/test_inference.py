"""Products measured through a bench: board (mvm) and cell-by-cell reads, one code path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import pyvisa
from model_bench import ModelBench

from xbarlab.bench import open_bench
from xbarlab.nn.bench_chip import BenchChip
from xbarlab.nn.data import with_bias
from xbarlab.nn.inference import BenchForward, InferenceError
from xbarlab.nn.mapping import ON, ConductanceLevels, cell_targets, measured_levels
from xbarlab.nn.placement import PlacementError, place_layers
from xbarlab.nn.updates import plan_writes
from xbarlab.physics import BINARY, CrossbarArray

IDEAL = dataclasses.replace(BINARY, d2d_sigma=0.0, read_noise=0.0, p_stuck_on=0.0,
                            p_stuck_off=0.0, relax_poly=(0.0,))
LEVELS = ConductanceLevels(BINARY.g_max, BINARY.g_min)


def programmed(weights, placement, array):
    """`array` with every tile's pairs set to their levels directly (the truth)."""
    array.set_state(cell_targets(placement, weights) == ON)
    return array


@pytest.mark.parametrize("board", [True, False])
def test_an_ideal_bench_measures_x_at_w_to_1e_9_on_a_board_and_by_reads(board):
    rng = np.random.default_rng(4)
    sizes = (12, 7, 3)
    placement = place_layers(sizes, 24, 24)
    weights = [rng.choice([-1.0, 0.0, 1.0], (a + 1, b)) for a, b in zip(sizes[:-1], sizes[1:],
                                                                        strict=False)]
    array = programmed(weights, placement,
                       CrossbarArray(24, 24, IDEAL, r_wire_row=0.0, r_wire_col=0.0))
    bench = ModelBench(array, board=board)
    forward = BenchForward(bench, placement, LEVELS, 0.2)
    assert forward.mode == ("mvm" if board else "read")
    for k, w in enumerate(weights):
        x = with_bias(rng.uniform(0, 1, (5, sizes[k])))
        expected = x @ w
        assert np.max(np.abs(forward(k, x) - expected)) <= 1e-9 * np.max(np.abs(expected))
    assert (bench.mvm_calls, bench.reads) == ((10, 0) if board else (0, 13 * 14 + 8 * 6))


def test_the_correction_sees_the_whole_array_and_its_result_is_decoded():
    placement = place_layers((2, 1), 4, 4)
    weights = [np.array([[1.0], [-1.0], [1.0]])]
    array = programmed(weights, placement, CrossbarArray(4, 4, IDEAL, r_wire_row=0.0,
                                                         r_wire_col=0.0))
    seen = []

    def correct(v_rows, currents):
        seen.append((v_rows.copy(), currents.copy()))
        return 2.0 * currents

    forward = BenchForward(ModelBench(array), placement, LEVELS, 0.2, correct=correct)
    x = np.array([[0.5, 0.25, 1.0]])
    assert forward(0, x) == pytest.approx(2.0 * (x @ weights[0]), rel=1e-12)
    v_rows, currents = seen[0]
    assert v_rows.tolist() == [0.1, 0.05, 0.2, 0.0] and currents.shape == (4,)


def test_a_reading_at_its_limit_or_a_cell_not_read_is_refused():
    placement = place_layers((2, 1), 4, 4)
    array = programmed([np.ones((3, 1))], placement, CrossbarArray(4, 4, IDEAL))
    limited = BenchForward(ModelBench(array, current_limit=1e-5), placement, LEVELS, 0.2)
    with pytest.raises(InferenceError, match="column 0 reached its current limit"):
        limited(0, np.ones((1, 3)))
    bench = ModelBench(array, board=False)
    read_map = bench.read_map
    bench.read_map = lambda *a: np.where(np.eye(4, dtype=bool), np.nan, read_map(*a))
    with pytest.raises(InferenceError, match=r"cell \(0, 0\) of layer 0 was not read"):
        BenchForward(bench, placement, LEVELS, 0.2)(0, np.ones((1, 3)))
    with pytest.raises(PlacementError, match="placement is for a 4 x 4 array; this array is "
                                             "8 x 8"):
        BenchForward(ModelBench(CrossbarArray(8, 8, IDEAL)), placement, LEVELS, 0.2)


def test_programming_through_the_chip_rereads_what_it_wrote_on_a_reading_bench():
    placement = place_layers((2, 2), 4, 4)
    old = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    new = old.copy()
    new[1, 0] = -1.0
    array = programmed([old], placement, CrossbarArray(4, 4, IDEAL, r_wire_row=0.0,
                                                       r_wire_col=0.0))
    bench = ModelBench(array, board=False)
    chip = BenchChip(BenchForward(bench, placement, LEVELS, 0.2), bench.one_pulse_programmer())
    x = np.array([[0.0, 1.0, 0.0]])
    assert chip.forward(0, x)[0, 0] == pytest.approx(1.0, rel=1e-9)
    assert chip.apply(plan_writes(0, old, new)) == 2 and chip.energy > 0
    assert bench.pulses == 2
    rows, cols = (1, 1), (0, 1)  # row 1's plus cell of neuron 0 RESET, its minus cell SET
    g = array.conductance()
    assert g[rows[0], cols[0]] < 10e-6 and g[rows[1], cols[1]] > 80e-6
    assert chip.forward(0, x)[0, 0] == pytest.approx(-1.0, rel=0.1)  # one pulse, not exact


@pytest.mark.parametrize("name", ["analog", "classic"])
def test_the_virtual_benches_measure_the_products_their_true_conductances_give(name):
    """A board (mvm) and a switch-matrix bench (cell reads) through the real Bench: products
    within read noise and line resistance of x @ (G+ - G-) / step of the World's truth."""
    rng = np.random.default_rng(8)
    sizes = (7, 3, 2)
    weights = [rng.choice([-1.0, 1.0], (a + 1, b)) for a, b in zip(sizes[:-1], sizes[1:],
                                                                   strict=False)]
    with open_bench(name) as bench:
        world = pyvisa.ResourceManager(f"{name}@xbarsim").visalib.world
        placement = place_layers(sizes, bench.rows, bench.cols)
        programmed(weights, placement, world.array)
        world.changed()
        g = world.conductance()
        levels = measured_levels(g, cell_targets(placement, weights))
        forward = BenchForward(bench, placement, levels, 0.2)
        assert forward.mode == ("mvm" if name == "analog" else "read")
        for k, tile in enumerate(placement.tiles):
            x = with_bias(rng.uniform(0, 1, (3, sizes[k])))
            truth = x @ ((g[np.ix_(tile.rows, tile.plus_cols)]
                          - g[np.ix_(tile.rows, tile.minus_cols)]) / levels.step)
            error = np.abs(forward(k, x) - truth).max() / np.abs(truth).max()
            assert error < 0.05
