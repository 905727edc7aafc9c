"""Weights to conductance pairs and back: exact through the ideal crossbar, zeros silent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.nn.data import row_voltages, with_bias
from xbarlab.nn.mapping import (
    OFF,
    ON,
    UNUSED,
    ConductanceLevels,
    cell_targets,
    conductance_pairs,
    decode_products,
    measured_levels,
)
from xbarlab.nn.placement import place_layers
from xbarlab.physics import solve_crossbar

LEVELS = ConductanceLevels(g_on=100e-6, g_off=1e-6)


def test_binary_and_ternary_levels_map_to_the_complementary_pairs():
    g_plus, g_minus = conductance_pairs(np.array([[1, -1, 0]]), LEVELS)
    assert np.array_equal(g_plus, [[100e-6, 1e-6, 1e-6]])
    assert np.array_equal(g_minus, [[1e-6, 100e-6, 1e-6]])


def test_levels_and_weights_out_of_range_are_refused():
    with pytest.raises(ValueError, match="g_on = 1e-06 S: allowed a finite conductance above"):
        ConductanceLevels(1e-6, 1e-6)
    with pytest.raises(ValueError, match="g_off = -1e-06 S"):
        ConductanceLevels(1e-4, -1e-6)
    with pytest.raises(ValueError, match=r"weights must lie in \[-1, 1\].*got values in \[-1.5"):
        conductance_pairs(np.array([-1.5, 0.0]), LEVELS)


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_ideal_crossbar_forward_pass_equals_the_software_product_to_1e_9(kind):
    """Every tile of a 64-54-10 net on one 128 x 128 array, solved by the circuit solver with
    no wire, source or sense resistance: the decoded products are x @ W to 1e-9 relative."""
    rng = np.random.default_rng(7)
    sizes = (64, 54, 10)
    placement = place_layers(sizes, 128, 128)
    values = [-1.0, 1.0] if kind == "binary" else [-1.0, 0.0, 1.0]
    weights = [rng.choice(values, size=(a + 1, b))
               for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
    g = np.full((128, 128), LEVELS.g_off)  # unused cells at HRS
    for tile, w in zip(placement.tiles, weights, strict=True):
        rows, plus, minus = tile.cells()
        g[rows, plus], g[rows, minus] = conductance_pairs(w, LEVELS)
    for tile, w in zip(placement.tiles, weights, strict=True):
        x = with_bias(rng.uniform(0, 1, (16, tile.inputs - 1)))
        v_rows = np.zeros((16, 128))
        v_rows[:, list(tile.rows)] = row_voltages(x, 0.2)
        currents = solve_crossbar(g, v_rows, np.zeros(128)).i_col
        products = decode_products(currents[:, list(tile.plus_cols)],
                                   currents[:, list(tile.minus_cols)], LEVELS, 0.2)
        expected = x @ w
        assert np.max(np.abs(products - expected)) <= 1e-9 * np.max(np.abs(expected))


def test_a_ternary_zero_weight_contributes_nothing():
    w = np.array([[0.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])
    g_plus, g_minus = conductance_pairs(w, LEVELS)

    def products(x):
        v = row_voltages(np.array(x), 0.2)
        return decode_products(solve_crossbar(g_plus, v, np.zeros(2)).i_col,
                               solve_crossbar(g_minus, v, np.zeros(2)).i_col, LEVELS, 0.2)

    assert products([1.0, 0.0, 0.0])[0] == 0.0  # exactly: g_off - g_off
    assert products([0.0, 0.0, 1.0])[1] == 0.0
    without, with_zero = products([0.0, 0.6, 0.3]), products([1.0, 0.6, 0.3])
    assert abs(with_zero[0] - without[0]) <= 1e-12 * abs(without[0])
    assert with_zero[1] - without[1] == pytest.approx(1.0, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**20), rows=st.integers(1, 12), cols=st.integers(1, 12),
       g_off=st.floats(0.0, 1e-5), ratio=st.floats(1.5, 1e4), v_read=st.floats(0.01, 1.0))
def test_mapping_then_decoding_any_weights_in_unit_range_gives_back_x_at_w(
        seed, rows, cols, g_off, ratio, v_read):
    rng = np.random.default_rng(seed)
    levels = ConductanceLevels(g_on=max(g_off, 1e-7) * ratio, g_off=g_off)
    w = rng.choice([-1.0, 0.0, 1.0, rng.uniform(-1, 1)], size=(rows, cols))
    x = rng.uniform(0, 1, (3, rows))
    g_plus, g_minus = conductance_pairs(w, levels)
    v = row_voltages(x, v_read)
    products = decode_products(v @ g_plus, v @ g_minus, levels, v_read)
    scale = max(1.0, np.abs(x).sum())
    assert np.allclose(products, x @ w, rtol=0, atol=1e-12 * scale * (1 + g_off / levels.step))


def test_cell_targets_mark_each_pair_and_measured_levels_are_their_medians():
    placement = place_layers((1, 2), 3, 5)  # one tile: rows 0-1, columns 0-3
    targets = cell_targets(placement, [np.array([[1.0, 0.0], [-1.0, 1.0]])])
    assert targets.tolist() == [[ON, OFF, OFF, OFF, UNUSED], [OFF, ON, ON, OFF, UNUSED],
                                [UNUSED] * 5]
    g = np.where(targets == ON, 90e-6, 2e-6)
    g[0, 0] = 5e-6  # a stuck-off cell among the on cells moves the median little
    g[1, 3] = np.nan  # not read
    levels = measured_levels(g, targets)
    assert (levels.g_on, levels.g_off) == (90e-6, 2e-6)
    with pytest.raises(ValueError, match="no measured cell is programmed on"):
        measured_levels(np.full((3, 5), np.nan), targets)
    with pytest.raises(ValueError, match=r"levels of layer 0 have shape \(2, 3\)"):
        cell_targets(placement, [np.zeros((2, 3))])
