"""Corrections with the calibrated model, on virtual benches whose truth the test knows: with
the true resistances and the true cells, a corrected read (any scheme), row read and product
is what the cells are, to rounding; the raw ones are not. Pre-distortion and the per-column
linear correction against independent solves."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.bench import READ_SCHEMES, open_bench
from xbarlab.calibration import (
    ChipModel,
    LinearColumnCorrection,
    Parasitics,
    predistort,
)
from xbarlab.physics import solve_crossbar

RESOLUTION = 2e-5
"""The instruments reply with 6-7 significant digits: a correction is that exact relative to
what was sensed, which under float and half-select schemes is mostly other cells' current."""
TRUTH = dict(seed=11, r_path_row=120.0, r_path_col=90.0, r_path_spread=0.2, r_wire_row=2.0,
             r_wire_col=3.0, read_noise=False)


def true_model(world, estimate=None) -> ChipModel:
    """A chip model with the World's hidden resistances and cells (or `estimate`)."""
    parasitics = Parasitics(world.path_row, world.path_col, world.sim.r_wire_row,
                            world.sim.r_wire_col)
    cells = world.conductance().copy() if estimate is None else estimate
    return ChipModel(parasitics, cells)


def program_pattern(world, density=0.4, seed=0) -> np.ndarray:
    """Healthy cells to a seeded binary pattern (initial conditions; tests only)."""
    lrs = np.random.default_rng(seed).random(world.array.shape) < density
    world.array.set_state(lrs.astype(float))
    world.changed()
    return world.conductance().copy()


@pytest.mark.parametrize("scheme", READ_SCHEMES)
def test_cell_reads_in_every_scheme_are_what_the_cell_is(matrix_file, world, scheme):
    path = matrix_file(**TRUTH)
    with open_bench(str(path)) as bench:
        w = world(path)
        G = program_pattern(w)
        estimate = G.copy()
        estimate[5, 7] *= 3.0  # the read cell's own estimate does not matter
        bench.chip_model = true_model(w, estimate)
        for row, col in ((5, 7), (0, 31), (20, 3)):
            reading = bench.read(row, col, 0.2, scheme, current_limit=1e-2)
            assert reading.corrected and not reading.compliance
            cell = G[row, col] * 0.2
            precision = RESOLUTION * max(1.0, reading.raw_current / cell)
            assert reading.current == pytest.approx(cell, rel=precision)
            assert abs(reading.raw_current / cell - 1) > 1e-3
        bench.correct = False
        assert not bench.read(5, 7, 0.2, scheme).corrected


def test_board_row_reads_and_products_are_what_the_cells_give(board_file, world):
    path = board_file(12, 10, **TRUTH)
    with open_bench(str(path)) as bench:
        w = world(path)
        G = program_pattern(w, density=0.5, seed=3)
        bench.chip_model = true_model(w, G * np.exp(0.05 * np.random.default_rng(1)
                                                    .standard_normal(G.shape)))
        raw = np.array([[r.raw_current for r in bench.read_row(row, 0.2)]
                        for row in range(12)])
        # rows read one by one with others' estimates off by 5 %, then the whole map again
        g = bench.chip_model.correct_map(raw, 0.2, None)
        assert np.allclose(g, G, rtol=1e-6)
        bench.chip_model = true_model(w)
        v = np.random.default_rng(2).uniform(0, 0.2, 12)
        product = bench.mvm(v)
        assert np.allclose(product.currents, v @ G, rtol=1e-7)
        assert np.max(np.abs(product.raw_currents / (v @ G) - 1)) > 0.01


def test_predistorted_cells_carry_the_ideal_currents_and_clipping_is_reported():
    rng = np.random.default_rng(4)
    m, n = 10, 12
    parasitics = Parasitics(rng.uniform(50, 150, m), rng.uniform(50, 150, n), 2.0, 2.0)
    targets = rng.uniform(2e-6, 30e-6, (m, n))
    result = predistort(targets, parasitics, 0.1, 1e-6, 40e-6)
    assert not result.clipped.any()
    solution = solve_crossbar(result.conductances, np.full(m, 0.1), np.zeros(n),
                              r_source=parasitics.r_source, r_sense=parasitics.r_sense,
                              r_wire_row=2.0, r_wire_col=2.0)
    assert np.allclose(result.conductances * solution.v_cell, targets * 0.1, rtol=1e-5)
    assert result.column_error_after < 1e-5 < result.column_error_before
    bound = predistort(targets, parasitics, 0.1, 1e-6, targets.max() * 1.001)
    assert bound.clipped.any() and bound.column_error_after > result.column_error_after


def test_linear_column_correction_recovers_a_gain_and_offset():
    rng = np.random.default_rng(6)
    ideal = rng.uniform(0, 1e-5, (10, 4))
    measured = ideal * [0.8, 0.9, 0.7, 0.95] + [1e-7, 0, -2e-7, 5e-8]
    fit = LinearColumnCorrection.fit(measured, ideal)
    assert np.allclose(fit.apply(measured), ideal, atol=1e-18)
    with pytest.raises(ValueError, match="K >= 2"):
        LinearColumnCorrection.fit(measured[:1], ideal[:1])
